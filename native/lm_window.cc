#include "lm_window.h"

#include "aten_kernels.h"

#include <torch/script.h>  // the operators

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define ENCODEC_LM_X86 1
#endif

#include <algorithm>
#include <cmath>
#include <cstring>

namespace encodec {

void PermuteKeys(const float* key, int64_t heads, int64_t hd, float* out) {
  for (int64_t h = 0; h < heads; ++h) {
    for (int64_t i = 0; i < hd; ++i) out[i * heads + h] = key[h * hd + i];
  }
}

void ScaleQuery(const float* q, int64_t D, int64_t hd, float* out) {
  const float scale = static_cast<float>(std::sqrt(static_cast<double>(hd)));
  for (int64_t d = 0; d < D; ++d) out[d] = q[d] / scale;
}

void StoreKv(const float* kv, int64_t dim, int64_t heads, float* out) {
  PermuteKeys(kv, heads, dim / heads, out);
  std::memcpy(out + dim, kv + dim, dim * sizeof(float));
}

void StoreKvRange(const float* kv, int64_t dim, int64_t heads, int64_t begin, int64_t end, float* out) {
  const int64_t hd = dim / heads;
  for (int64_t m = begin; m < std::min(end, dim); ++m) out[(m % hd) * heads + m / hd] = kv[m];
  if (end > dim) {
    const int64_t from = std::max(begin, dim);
    std::memcpy(out + from, kv + from, (end - from) * sizeof(float));
  }
}

namespace {
// Heads the vectorized kernels take (one AVX register of them), and the widest head they take.
constexpr int64_t kLaneHeads = 8, kMaxHeadDim = 128;

// The chains one at a time, for shapes the vectorized kernels do not take.
void ScoresScalar(const float* q, const float* const* keys, int64_t S, int64_t heads, int64_t hd, float* scores) {
  for (int64_t h = 0; h < heads; ++h) {
    for (int64_t j = 0; j < S; ++j) {
      float acc = 0.0f;
      for (int64_t i = 0; i < hd; ++i) acc = std::fma(keys[j][i * heads + h], q[h * hd + i], acc);
      scores[h * S + j] = 0.0f + acc;
    }
  }
}

void OutputScalar(const float* weights, const float* const* values, int64_t S, int64_t heads, int64_t hd,
                  int64_t begin, float* out) {
  for (int64_t d = begin; d < heads * hd; ++d) {
    const float* w = weights + (d / hd) * S;
    float acc = 0.0f;
    for (int64_t j = 0; j < S; ++j) acc = std::fma(values[j][d], w[j], acc);
    out[d] = 0.0f + acc;
  }
}
}  // namespace

#ifdef ENCODEC_LM_X86
namespace {
// Scores of rows [j, j + NR) for 8 heads: one chain per (row, head), NR rows side by side.
template <int NR>
__attribute__((target("avx2,fma"))) void ScoreRows(const float* qp, const float* const* keys, int64_t j, int64_t S,
                                                  int64_t hd, float* scores) {
  __m256 acc[NR];
  for (int r = 0; r < NR; ++r) acc[r] = _mm256_setzero_ps();
  for (int64_t i = 0; i < hd; ++i) {
    const __m256 qi = _mm256_loadu_ps(qp + i * kLaneHeads);
    for (int r = 0; r < NR; ++r) acc[r] = _mm256_fmadd_ps(_mm256_loadu_ps(keys[j + r] + i * kLaneHeads), qi, acc[r]);
  }
  alignas(32) float lanes[kLaneHeads];
  for (int r = 0; r < NR; ++r) {
    _mm256_store_ps(lanes, _mm256_add_ps(_mm256_setzero_ps(), acc[r]));
    for (int64_t h = 0; h < kLaneHeads; ++h) scores[h * S + j + r] = lanes[h];
  }
}

// Outputs [8 m0, 8 (m0 + NB)) for every row: one chain per output over the rows, NB blocks of 8 side by side; row
// j's weight of each output's head taken from wt[j] (the 8 heads' weights of row j) by `index`.
template <int NB>
__attribute__((target("avx2,fma"))) void OutputBlocks(const float* wt, const float* const* values, int64_t S,
                                                     const __m256i* index, int64_t m0, float* out) {
  __m256 acc[NB];
  for (int b = 0; b < NB; ++b) acc[b] = _mm256_setzero_ps();
  for (int64_t j = 0; j < S; ++j) {
    const __m256 w = _mm256_loadu_ps(wt + j * kLaneHeads);
    const float* v = values[j] + 8 * m0;
    for (int b = 0; b < NB; ++b) {
      acc[b] = _mm256_fmadd_ps(_mm256_loadu_ps(v + 8 * b), _mm256_permutevar8x32_ps(w, index[m0 + b]), acc[b]);
    }
  }
  for (int b = 0; b < NB; ++b) _mm256_storeu_ps(out + 8 * (m0 + b), _mm256_add_ps(_mm256_setzero_ps(), acc[b]));
}
}  // namespace

__attribute__((target("avx2,fma"))) void AttentionScores(const float* q, const float* const* keys, int64_t S,
                                                        int64_t heads, int64_t hd, float* scores, int64_t begin,
                                                        int64_t end) {
  if (!AttentionSplits(heads, hd)) return ScoresScalar(q, keys, S, heads, hd, scores);
  if (end < 0) end = S;
  alignas(32) float qp[kLaneHeads * kMaxHeadDim];
  PermuteKeys(q, heads, hd, qp);  // the query in the keys' order
  int64_t j = begin;
  for (; j + 8 <= end; j += 8) {
    // the rows lie wherever their variant was stored: fetch the next block's while this one runs
    for (int64_t r = j + 8; r < std::min(j + 16, end); ++r) {
      const char* row = reinterpret_cast<const char*>(keys[r]);
      for (int64_t b = 0; b < hd * kLaneHeads * 4; b += 64) _mm_prefetch(row + b, _MM_HINT_T0);
    }
    ScoreRows<8>(qp, keys, j, S, hd, scores);
  }
  for (; j < end; ++j) ScoreRows<1>(qp, keys, j, S, hd, scores);
}

void OutputWeights(const float* weights, int64_t S, int64_t heads, std::vector<float>* wt, int64_t h0, int64_t h1) {
  wt->assign(S * kLaneHeads, 0.0f);
  for (int64_t h = h0; h < std::min(h1, heads); ++h) {
    for (int64_t j = 0; j < S; ++j) (*wt)[j * kLaneHeads + h] = weights[h * S + j];
  }
}

__attribute__((target("avx2,fma"))) void AttentionOutputRange(const float* weights, const float* wt,
                                                             const float* const* values, int64_t S, int64_t heads,
                                                             int64_t hd, float* out, int64_t begin, int64_t end) {
  const int64_t blocks = heads * hd / 8;
  __m256i index[kMaxHeadDim];
  for (int64_t m = begin; m < std::min(end, blocks); ++m) {
    alignas(32) int32_t lane_head[8];
    for (int l = 0; l < 8; ++l) lane_head[l] = static_cast<int32_t>((8 * m + l) / hd);
    index[m] = _mm256_load_si256(reinterpret_cast<const __m256i*>(lane_head));
  }
  int64_t m0 = begin;
  const int64_t stop = std::min(end, blocks);
  for (; m0 + 8 <= stop; m0 += 8) OutputBlocks<8>(wt, values, S, index, m0, out);
  switch (stop - m0) {
    case 7: OutputBlocks<7>(wt, values, S, index, m0, out); break;
    case 6: OutputBlocks<6>(wt, values, S, index, m0, out); break;
    case 5: OutputBlocks<5>(wt, values, S, index, m0, out); break;
    case 4: OutputBlocks<4>(wt, values, S, index, m0, out); break;
    case 3: OutputBlocks<3>(wt, values, S, index, m0, out); break;
    case 2: OutputBlocks<2>(wt, values, S, index, m0, out); break;
    case 1: OutputBlocks<1>(wt, values, S, index, m0, out); break;
    default: break;
  }
  if (end >= blocks) OutputScalar(weights, values, S, heads, hd, 8 * blocks, out);  // past the last block of 8
}

void AttentionOutput(const float* weights, const float* const* values, int64_t S, int64_t heads, int64_t hd,
                     float* out) {
  const int64_t D = heads * hd;
  if (heads > kLaneHeads || D > kLaneHeads * kMaxHeadDim) return OutputScalar(weights, values, S, heads, hd, 0, out);
  static thread_local std::vector<float> wt;  // [row][head]
  OutputWeights(weights, S, heads, &wt, 0, heads);
  AttentionOutputRange(weights, wt.data(), values, S, heads, hd, out, 0, D / 8);
}
#else
// never called: KvPlan::AttentionExact is false without AVX2 and FMA
void AttentionScores(const float*, const float* const*, int64_t, int64_t, int64_t, float*, int64_t, int64_t) {}
void AttentionOutput(const float*, const float* const*, int64_t, int64_t, int64_t, float*) {}
void OutputWeights(const float*, int64_t, int64_t, std::vector<float>*, int64_t, int64_t) {}
void AttentionOutputRange(const float*, const float*, const float* const*, int64_t, int64_t, int64_t, float*,
                          int64_t, int64_t) {}
#endif

bool AttentionSplits(int64_t heads, int64_t hd) { return heads == kLaneHeads && hd <= kMaxHeadDim; }

KvWindow::KvWindow(int64_t rows, int64_t dim, int64_t slots, int64_t heads)
    : keys_(at::empty({2 * rows, dim}, at::kFloat)), values_(at::empty({2 * rows, dim}, at::kFloat)),
      copied_(slots, -1), keys_in_order_(rows), values_in_order_(rows), query_(dim), scores_(heads * rows),
      weights_(2 * heads * rows), dim_(dim),
      slots_(slots), heads_(heads) {}

void KvWindow::Place(int64_t first, int64_t S, const uint8_t* cls, const float* kv, int variants, bool fma) {
  const int64_t D = dim_, hd = D / heads_, row_floats = variants * 2 * D;
  fma_ = fma;
  for (int64_t j = 0, slot = first % slots_; j < S; ++j) {
    const float* src = kv + slot * row_floats + cls[j] * 2 * D;
    keys_in_order_[j] = src;
    values_in_order_[j] = src + D;
    if (++slot == slots_) slot = 0;
  }
  if (fma) return;
  if (first + S - base_ > keys_.size(0)) {  // the copies would run past their buffers: start again at the beginning
    base_ = first;
    for (int64_t j = 0; j < S; ++j) copied_[(first + j) % slots_] = -1;
  }
  for (int64_t j = 0; j < S; ++j) {
    const int64_t r = first + j, slot = r % slots_;
    if (copied_[slot] == cls[j]) continue;
    float* keys = keys_.data_ptr<float>() + (r - base_) * D;
    for (int64_t h = 0; h < heads_; ++h) {  // PermuteKeys undone
      for (int64_t i = 0; i < hd; ++i) keys[h * hd + i] = keys_in_order_[j][i * heads_ + h];
    }
    std::memcpy(values_.data_ptr<float>() + (r - base_) * D, values_in_order_[j], D * sizeof(float));
    copied_[slot] = cls[j];
  }
}

void KvWindow::Attend(const float* q, int64_t first, int64_t S, float* out, LmPair* pair) {
  const int64_t D = dim_, heads = heads_, hd = D / heads;
  // Meta's multi_head_attention_forward, op for op (T = B = 1, no masked position: the window <= past_context)
  if (fma_ && pair && AttentionSplits(heads, hd)) {
    // the scores by rows, then the outputs by blocks, half each (the same chains: the same bits)
    ScaleQuery(q, D, hd, query_.data());
    const int64_t rows = HalfOf(S), blocks = D / 8, half = blocks / 2;
    pair->Run(2, [&](int part) {
      AttentionScores(query_.data(), keys_in_order_.data(), S, heads, hd, scores_.data(), part ? rows : 0,
                      part ? S : rows);
    });
    // each part the softmax of the heads its outputs take (the head both take, twice: rows are independent in
    // ATen's kernel), in a buffer of its own
    pair->Run(2, [&](int part) {
      const int64_t b0 = part ? half : 0, b1 = part ? blocks : half;
      const int64_t h0 = 8 * b0 / hd, h1 = part ? heads : (8 * b1 + hd - 1) / hd;
      float* wp = weights_.data() + part * heads * S;
      SoftmaxLastDimInto(scores_.data() + h0 * S, wp + h0 * S, h1 - h0, S);
      OutputWeights(wp, S, heads, &weights_t_[part], h0, h1);
      AttentionOutputRange(wp, weights_t_[part].data(), values_in_order_.data(), S, heads, hd, out, b0, b1);
    });
  } else if (fma_) {
    ScaleQuery(q, D, hd, query_.data());
    AttentionScores(query_.data(), keys_in_order_.data(), S, heads, hd, scores_.data());
    SoftmaxLastDimInto(scores_.data(), weights_.data(), heads, S);
    AttentionOutput(weights_.data(), values_in_order_.data(), S, heads, hd, out);
  } else {
    torch::Tensor qt = at::empty({1, 1, D}, at::kFloat);
    std::memcpy(qt.data_ptr<float>(), q, D * sizeof(float));
    const torch::Tensor qs = qt.view({1, heads, hd}).transpose(0, 1) / std::sqrt(static_cast<double>(hd));
    const torch::Tensor kh = keys_.narrow(0, first - base_, S).view({S, heads, hd}).transpose(0, 1);
    const torch::Tensor vh = values_.narrow(0, first - base_, S).view({S, heads, hd}).transpose(0, 1);
    const torch::Tensor mask = at::zeros({1, 1, S}, at::kFloat);
    const torch::Tensor w = at::softmax(at::baddbmm(mask, qs, kh.transpose(-2, -1)), -1);
    const torch::Tensor o = at::bmm(w, vh).transpose(0, 1).contiguous();
    std::memcpy(out, o.data_ptr<float>(), D * sizeof(float));
  }
}

}  // namespace encodec
