#include "lm_window.h"

#include <torch/script.h>  // the operators

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define ENCODEC_LM_X86 1
#endif

#include <cmath>
#include <cstring>

namespace encodec {

#ifdef ENCODEC_LM_X86
__attribute__((target("avx2,fma"))) void AttentionScores(const float* q, const float* keys_t, int64_t stride,
                                                        int64_t S, int64_t heads, int64_t hd, float* scores) {
  for (int64_t h = 0; h < heads; ++h) {
    const float* qh = q + h * hd;
    int64_t j = 0;
    for (; j + 8 <= S; j += 8) {
      __m256 acc = _mm256_setzero_ps();
      for (int64_t i = 0; i < hd; ++i) {
        acc = _mm256_fmadd_ps(_mm256_loadu_ps(keys_t + (h * hd + i) * stride + j), _mm256_set1_ps(qh[i]), acc);
      }
      _mm256_storeu_ps(scores + h * S + j, _mm256_add_ps(_mm256_setzero_ps(), acc));
    }
    for (; j < S; ++j) {
      float acc = 0.0f;
      for (int64_t i = 0; i < hd; ++i) acc = __builtin_fmaf(keys_t[(h * hd + i) * stride + j], qh[i], acc);
      scores[h * S + j] = 0.0f + acc;
    }
  }
}

__attribute__((target("avx2,fma"))) void AttentionOutput(const float* weights, const float* const* values, int64_t S,
                                                        int64_t heads, int64_t hd, float* out) {
  for (int64_t h = 0; h < heads; ++h) {
    const float* w = weights + h * S;
    int64_t i = 0;
    for (; i + 8 <= hd; i += 8) {
      __m256 acc = _mm256_setzero_ps();
      for (int64_t j = 0; j < S; ++j) acc = _mm256_fmadd_ps(_mm256_loadu_ps(values[j] + h * hd + i), _mm256_set1_ps(w[j]), acc);
      _mm256_storeu_ps(out + h * hd + i, _mm256_add_ps(_mm256_setzero_ps(), acc));
    }
    for (; i < hd; ++i) {
      float acc = 0.0f;
      for (int64_t j = 0; j < S; ++j) acc = __builtin_fmaf(values[j][h * hd + i], w[j], acc);
      out[h * hd + i] = 0.0f + acc;
    }
  }
}
#else
// never called: KvPlan::AttentionExact is false without AVX2 and FMA
void AttentionScores(const float*, const float*, int64_t, int64_t, int64_t, int64_t, float*) {}
void AttentionOutput(const float*, const float* const*, int64_t, int64_t, int64_t, float*) {}
#endif

KvWindow::KvWindow(int64_t rows, int64_t dim, int64_t slots)
    : keys_(at::empty({2 * rows, dim}, at::kFloat)), values_(at::empty({2 * rows, dim}, at::kFloat)),
      keys_t_(2 * rows * dim), written_(slots, -1), copied_(slots, -1), source_(slots, nullptr),
      values_in_order_(rows), dim_(dim), slots_(slots) {}

void KvWindow::Place(int64_t first, int64_t S, const uint8_t* cls,
                     const std::function<const float*(int64_t, int)>& kv, bool fma) {
  const int64_t D = dim_, stride = keys_.size(0);
  if (first + S - base_ > stride) {  // the window would run past the buffer: start again at its beginning
    base_ = first;
    for (int64_t j = 0; j < S; ++j) written_[(first + j) % slots_] = copied_[(first + j) % slots_] = -1;
  }
  fma_ = fma;
  for (int64_t j = 0; j < S; ++j) {
    const int64_t r = first + j, slot = r % slots_;
    if (written_[slot] != cls[j]) {
      const float* src = kv(r, cls[j]);
      for (int64_t d = 0; d < D; ++d) keys_t_[d * stride + (r - base_)] = src[d];
      source_[slot] = src;
      written_[slot] = cls[j];
    }
    values_in_order_[j] = source_[slot] + D;
    if (!fma && copied_[slot] != cls[j]) {
      std::memcpy(keys_.data_ptr<float>() + (r - base_) * D, source_[slot], D * sizeof(float));
      std::memcpy(values_.data_ptr<float>() + (r - base_) * D, source_[slot] + D, D * sizeof(float));
      copied_[slot] = cls[j];
    }
  }
}

void KvWindow::Attend(const float* q, int64_t first, int64_t S, int64_t heads, float* out) const {
  const int64_t D = dim_, hd = D / heads;
  // Meta's multi_head_attention_forward, op for op (T = B = 1, no masked position: the window <= past_context)
  torch::Tensor qt = at::empty({1, 1, D}, at::kFloat);
  std::memcpy(qt.data_ptr<float>(), q, D * sizeof(float));
  const torch::Tensor qs = qt.view({1, heads, hd}).transpose(0, 1) / std::sqrt(static_cast<double>(hd));
  if (fma_) {
    const torch::Tensor qc = qs.contiguous();
    torch::Tensor scores = at::empty({heads, 1, S}, at::kFloat);
    AttentionScores(qc.data_ptr<float>(), keys_t_.data() + (first - base_), keys_.size(0), S, heads, hd,
                    scores.data_ptr<float>());
    const torch::Tensor w = at::softmax(scores, -1).contiguous();
    AttentionOutput(w.data_ptr<float>(), values_in_order_.data(), S, heads, hd, out);
  } else {
    const torch::Tensor kh = keys_.narrow(0, first - base_, S).view({S, heads, hd}).transpose(0, 1);
    const torch::Tensor vh = values_.narrow(0, first - base_, S).view({S, heads, hd}).transpose(0, 1);
    const torch::Tensor mask = at::zeros({1, 1, S}, at::kFloat);
    const torch::Tensor w = at::softmax(at::baddbmm(mask, qs, kh.transpose(-2, -1)), -1);
    const torch::Tensor o = at::bmm(w, vh).transpose(0, 1).contiguous();
    std::memcpy(out, o.data_ptr<float>(), D * sizeof(float));
  }
}

}  // namespace encodec
