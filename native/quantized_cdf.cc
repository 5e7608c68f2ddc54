#include "quantized_cdf.h"

#include <torch/types.h>  // the operators (quantized_cdf.h has only torch::Tensor)

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define ENCODEC_CDF_X86 1
#endif

#include <cmath>
#include <cstring>
#include <stdexcept>
#include <vector>

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

namespace {

#ifdef ENCODEC_CDF_X86
// QuantizeInto for codebooks [k, k + 8) (`probas` at the first of them, K floats per code), one per lane. The
// ranges of a finite distribution are below 2^24 and their sums below 2^25, so int32 lanes hold them.
__attribute__((target("avx2"))) void QuantizeEight(const float* probas, int64_t card, int64_t K, float roundoff,
                                                  float scale, int64_t* cdfs) {
  const __m256 r = _mm256_set1_ps(roundoff), s = _mm256_set1_ps(scale);
  const __m256i min_range = _mm256_set1_epi32(kMinRange);
  __m256i sum = _mm256_setzero_si256();
  alignas(32) int32_t lanes[8];
  for (int64_t c = 0; c < card; ++c) {
    __m256 pdf = _mm256_div_ps(_mm256_loadu_ps(probas + c * K), r);
    pdf = _mm256_mul_ps(_mm256_floor_ps(pdf), r);
    const __m256 range = _mm256_floor_ps(_mm256_mul_ps(pdf, s));
    sum = _mm256_add_epi32(sum, _mm256_add_epi32(_mm256_cvttps_epi32(range), min_range));
    _mm256_store_si256(reinterpret_cast<__m256i*>(lanes), sum);
    for (int l = 0; l < 8; ++l) cdfs[l * card + c] = lanes[l];
  }
}
#endif

// BuildStableQuantizedCdfs's elementwise ops written out for one step's probabilities (`probas`: [card][K], the
// layout of [1, card, K, 1]), into cdfs [K][card]: the same float32 operations on each element in the same order
// (ATen casts a double scalar to the tensor's float and rounds each op once; there is no sum to reorder), then
// the int64 cumulation.
void QuantizeInto(const float* probas, int64_t card, int64_t K, int64_t* cdfs) {
  const int64_t total_range = int64_t{1} << kTotalRangeBits;
  const double alpha = static_cast<double>(kMinRange * card) / static_cast<double>(total_range);
  const float roundoff = static_cast<float>(kRoundoff);
  const float scale = static_cast<float>((1 - alpha) * static_cast<double>(total_range));
  int64_t k = 0;
#ifdef ENCODEC_CDF_X86
  if (__builtin_cpu_supports("avx2")) {
    for (; k + 8 <= K; k += 8) QuantizeEight(probas + k, card, K, roundoff, scale, cdfs + k * card);
  }
#endif
  for (; k < K; ++k) {
    int64_t sum = 0;
    for (int64_t c = 0; c < card; ++c) {
      float pdf = probas[c * K + k] / roundoff;
      pdf = std::floor(pdf);
      pdf = pdf * roundoff;
      float range = pdf * scale;
      range = std::floor(range);
      sum += static_cast<int64_t>(range) + kMinRange;
      cdfs[k * card + c] = sum;
    }
  }
}

// Whether QuantizeInto gives BuildStableQuantizedCdfs's values here: probabilities of all sizes (softmaxes of
// spread logits, exact multiples of the roundoff and their neighbours, zeros and ones).
bool QuantizeIntoExact() {
  const int64_t card = 1024, K = 8;
  torch::Tensor logits = at::empty({card, K}, at::kFloat);
  float* lp = logits.data_ptr<float>();
  uint32_t x = 777;
  for (int64_t i = 0; i < card * K; ++i) {
    x = x * 1664525u + 1013904223u;
    lp[i] = static_cast<float>(static_cast<int32_t>(x >> 8) - (1 << 23)) / static_cast<float>(1 << 19);  // [-16, 16)
  }
  torch::Tensor probas = at::softmax(logits, 0).contiguous();
  float* pp = probas.data_ptr<float>();
  for (int64_t i = 0; i < 64; ++i) {
    pp[i * K + 3] = static_cast<float>(i) * static_cast<float>(kRoundoff) * (i % 2 ? 1.0f : 1.0000001f);
  }
  pp[5] = 0.0f;
  pp[6] = 1.0f;
  const torch::Tensor expected = BuildStableQuantizedCdfs(probas.t(), kTotalRangeBits);
  std::vector<int64_t> ours(card * K);
  QuantizeInto(pp, card, K, ours.data());
  return std::memcmp(ours.data(), expected.data_ptr<int64_t>(), ours.size() * sizeof(int64_t)) == 0;
}

}  // namespace

torch::Tensor FrameCdfs(const torch::Tensor& probas) {
  static const bool exact = QuantizeIntoExact();
  if (!exact || probas.dim() != 4 || probas.scalar_type() != torch::kFloat32) {
    return BuildStableQuantizedCdfs(probas.select(3, 0).select(0, 0).t(), kTotalRangeBits);
  }
  const torch::Tensor p = probas.contiguous();
  const int64_t card = p.size(1), K = p.size(2);
  if (static_cast<double>(kMinRange * card) > static_cast<double>(int64_t{1} << kTotalRangeBits)) {
    return BuildStableQuantizedCdfs(p.select(3, 0).select(0, 0).t(), kTotalRangeBits);  // its error
  }
  torch::Tensor cdfs = torch::empty({K, card}, torch::kLong);
  QuantizeInto(p.data_ptr<float>(), card, K, cdfs.data_ptr<int64_t>());
  return cdfs;
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
