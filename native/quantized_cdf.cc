#include "quantized_cdf.h"

#include <torch/types.h>  // the operators (quantized_cdf.h has only torch::Tensor)

#include <stdexcept>

namespace encodec {

namespace {
constexpr double kRoundoff = 1e-8;
constexpr int64_t kMinRange = 2;
}  // namespace

torch::Tensor BuildStableQuantizedCdfs(const torch::Tensor& pdfs, int total_range_bits) {
  if (pdfs.dim() != 2 || pdfs.scalar_type() != torch::kFloat32) {
    throw std::logic_error("BuildStableQuantizedCdfs: expected float32 [K, card] probabilities");
  }
  const int64_t total_range = int64_t{1} << total_range_bits;
  const int64_t cardinality = pdfs.size(1);
  // Python: min_range * cardinality / total_range (integers, true division) and ((1 - alpha) * total_range)
  const double alpha = static_cast<double>(kMinRange * cardinality) / static_cast<double>(total_range);
  if (alpha > 1) throw std::logic_error("BuildStableQuantizedCdfs: cardinality too large for the range");
  // pdf = (pdf / roundoff).floor() * roundoff
  torch::Tensor pdf = (pdfs / kRoundoff).floor() * kRoundoff;
  // ranges = (((1 - alpha) * total_range) * pdf).floor().long(); ranges += min_range
  torch::Tensor ranges = (pdf * ((1 - alpha) * static_cast<double>(total_range))).floor().to(torch::kLong);
  ranges += kMinRange;
  return torch::cumsum(ranges, -1).contiguous();
}

torch::Tensor FrameCdfs(const torch::Tensor& probas) {
  return BuildStableQuantizedCdfs(probas.select(3, 0).select(0, 0).t(), kTotalRangeBits);
}

bool IsValidQuantizedCdf(const int64_t* cdf, int64_t card, int total_range_bits) {
  // Rounding in the softmax can push the total a little past 2^bits; far past it means NaN/garbage.
  const int64_t limit = (int64_t{1} << total_range_bits) + (int64_t{1} << (total_range_bits - 4));
  int64_t previous = 0;
  for (int64_t i = 0; i < card; ++i) {
    if (cdf[i] - previous < kMinRange || cdf[i] > limit) return false;
    previous = cdf[i];
  }
  return true;
}

}  // namespace encodec
