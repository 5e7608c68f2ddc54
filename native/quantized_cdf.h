// Meta's build_stable_quantized_cdf (encodec/quantization/ac.py) for the codebooks of one LM step, computed with
// the same libtorch float32 ops in the same order, so the CDFs are bit-identical to Meta's on the same machine.
#pragma once

#include "torch_names.h"  // not torch/torch.h nor torch/types.h: see there

#include <cstdint>

namespace encodec {

// Meta's ArithmeticCoder default range, which its compress and decompress use.
constexpr int kTotalRangeBits = 24;

// `pdfs`: float32 [K, card], one distribution per row (any strides). Returns the int64 [K, card] contiguous
// quantized CDFs: ranges floor((1 - alpha) * 2^bits * floor(p / 1e-8) * 1e-8) + 2 (alpha = 2 * card / 2^bits),
// cumulated. Meta builds them with check=False; CheckQuantizedCdf validates one before use.
torch::Tensor BuildStableQuantizedCdfs(const torch::Tensor& pdfs, int total_range_bits = kTotalRangeBits);

// The quantized CDFs [K, card] of one LM step's probabilities [1, card, K, 1] (Meta: build_stable_quantized_cdf
// of probas[0, :, k, 0] for each codebook k).
torch::Tensor FrameCdfs(const torch::Tensor& probas);

// Whether `cdf` (card values) is what a finite distribution gives: increasing by at least the minimum range (2)
// and not beyond about 2^bits. False for the CDF of NaN or negative probabilities.
bool IsValidQuantizedCdf(const int64_t* cdf, int64_t card, int total_range_bits = kTotalRangeBits);

}  // namespace encodec
