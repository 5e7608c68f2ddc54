#include "lm_step.h"

#include "aten_kernels.h"

#include <torch/script.h>  // the operators and the module's attributes

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define ENCODEC_LM_X86 1
#endif

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <map>
#include <string>

namespace encodec {

namespace {
// Widest product probed for variants: OpenBLAS's widest column group is 12 (3 x its 4-column unroll).
constexpr int64_t kMaxChunk = 24;
// Frames ahead whose missing key/value variants are projected together, so the products are wider than one row.
constexpr int64_t kLookahead = 12;
// Test rows on which each variant's outputs are matched to the two sums of ChainAndPairs.
constexpr int64_t kSchemeRows = 32;
// Outputs per group of KvWeights::groups.
constexpr int64_t kSumGroup = 32;

// Where a pair's two parts of n outputs meet: near the middle, on a multiple of 8 (the products' panels).
inline int64_t HalfOf(int64_t n) { return (n / 2 + 4) / 8 * 8; }

}  // namespace

torch::Tensor TestRows(int64_t rows, int64_t dim, uint32_t seed) {
  torch::Tensor t = at::empty({rows, dim}, at::kFloat);
  float* p = t.data_ptr<float>();
  uint32_t x = seed;
  for (int64_t i = 0; i < rows * dim; ++i) {
    x = x * 1664525u + 1013904223u;
    p[i] = static_cast<float>(static_cast<int32_t>(x >> 8) - (1 << 23)) / static_cast<float>(1 << 22);  // [-2, 2)
  }
  return t;
}

// ---- MatVec ----

namespace {

// The weights are laid out in groups of up to eight panels of eight outputs, each group [K][8 * panels] (one
// contiguous stream per group: 1.7x faster than a stream per panel in a microbenchmark of the heads' 8192 x 200
// product, docs/performance.md), groups of 64 outputs one after another. Each output's sum is the same FMA chain in
// any layout.
constexpr int64_t kGroup = 64;

// Panels in the group of output m0 (a multiple of kGroup) of M outputs.
inline int64_t GroupPanels(int64_t m0, int64_t M) { return std::min<int64_t>(8, (M - m0) / 8); }

#ifdef ENCODEC_LM_X86
bool HasFma() {
  static const bool has = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  return has;
}

// y[begin, end) = bias, then per contraction block y += (FMA chain over the block); begin and end multiples of 8.
__attribute__((target("avx2,fma"))) void RunPanels(const float* panels, const float* bias, const float* x, float* y,
                                                  int64_t K, const int64_t* blocks, size_t n_blocks, int64_t M,
                                                  int64_t begin, int64_t end) {
  for (int64_t g0 = begin / kGroup * kGroup; g0 < end; g0 += kGroup) {
    const int64_t width = 8 * GroupPanels(g0, M);  // floats per contraction step of the group
    const int64_t first = std::max(begin, g0);
    const int64_t n = (std::min(end, g0 + width) - first) / 8;
    const float* base = panels + g0 * K + (first - g0);
    __m256 c[8];
    for (int64_t i = 0; i < n; ++i) c[i] = _mm256_loadu_ps(bias + first + 8 * i);
    int64_t k0 = 0;
    for (size_t b = 0; b < n_blocks; ++b) {
      __m256 acc[8];
      for (int64_t i = 0; i < 8; ++i) acc[i] = _mm256_setzero_ps();
      const int64_t k1 = k0 + blocks[b];
      if (n == 8) {
        const float* w = base + k0 * width;
        for (int64_t k = k0; k < k1; ++k, w += width) {
          const __m256 xk = _mm256_set1_ps(x[k]);
          for (int64_t i = 0; i < 8; ++i) acc[i] = _mm256_fmadd_ps(_mm256_loadu_ps(w + 8 * i), xk, acc[i]);
        }
      } else {
        for (int64_t i = 0; i < n; ++i) {
          const float* w = base + k0 * width + 8 * i;
          for (int64_t k = k0; k < k1; ++k, w += width) acc[i] = _mm256_fmadd_ps(_mm256_loadu_ps(w), _mm256_set1_ps(x[k]), acc[i]);
        }
      }
      for (int64_t i = 0; i < n; ++i) c[i] = _mm256_add_ps(c[i], acc[i]);
      k0 = k1;
    }
    for (int64_t i = 0; i < n; ++i) _mm256_storeu_ps(y + first + 8 * i, c[i]);
  }
}
// RunPanels for many rows: per row and output the same chain (y = bias, then y + (FMA chain) per block), with
// two panels' weights (w0 and w0 + 8, `width` floats per contraction step) loaded once for NR rows.
template <int NR>
__attribute__((target("avx2,fma"))) void PanelRows(const float* w0, int64_t width, const float* bias, const float* x,
                                                  int64_t ldx, float* y, int64_t ldy, int64_t K, const int64_t* blocks,
                                                  size_t n_blocks) {
  for (int r = 0; r < NR; ++r) {
    _mm256_storeu_ps(y + r * ldy, _mm256_loadu_ps(bias));
    _mm256_storeu_ps(y + r * ldy + 8, _mm256_loadu_ps(bias + 8));
  }
  int64_t k0 = 0;
  for (size_t b = 0; b < n_blocks; ++b) {
    __m256 acc0[NR], acc1[NR];
    for (int r = 0; r < NR; ++r) acc0[r] = acc1[r] = _mm256_setzero_ps();
    const int64_t k1 = k0 + blocks[b];
    for (int64_t k = k0; k < k1; ++k) {
      const __m256 a = _mm256_loadu_ps(w0 + k * width), c = _mm256_loadu_ps(w0 + k * width + 8);
      for (int r = 0; r < NR; ++r) {
        const __m256 xk = _mm256_set1_ps(x[r * ldx + k]);
        acc0[r] = _mm256_fmadd_ps(a, xk, acc0[r]);
        acc1[r] = _mm256_fmadd_ps(c, xk, acc1[r]);
      }
    }
    for (int r = 0; r < NR; ++r) {
      _mm256_storeu_ps(y + r * ldy, _mm256_add_ps(_mm256_loadu_ps(y + r * ldy), acc0[r]));
      _mm256_storeu_ps(y + r * ldy + 8, _mm256_add_ps(_mm256_loadu_ps(y + r * ldy + 8), acc1[r]));
    }
    k0 = k1;
  }
}

__attribute__((target("avx2,fma"))) void RunPanelsRows(const float* panels, const float* bias, const float* x,
                                                      int64_t ldx, int64_t rows, float* y, int64_t ldy, int64_t K,
                                                      const int64_t* blocks, size_t n_blocks, int64_t M, int64_t outputs) {
  for (int64_t m0 = 0; m0 < outputs; m0 += 16) {
    if (m0 + 16 > outputs || (m0 % kGroup) + 16 > 8 * GroupPanels(m0 / kGroup * kGroup, M)) {
      // an odd last panel of the outputs or of its group: one row at a time, then on from the next panel
      for (int64_t r = 0; r < rows; ++r) RunPanels(panels, bias, x + r * ldx, y + r * ldy, K, blocks, n_blocks, M, m0, m0 + 8);
      m0 -= 8;  // the loop's step of 16 lands on the panel after this one
      continue;
    }
    const int64_t g0 = m0 / kGroup * kGroup, width = 8 * GroupPanels(g0, M);
    const float* w0 = panels + g0 * K + (m0 - g0);
    int64_t r = 0;
    for (; r + 4 <= rows; r += 4) PanelRows<4>(w0, width, bias + m0, x + r * ldx, ldx, y + r * ldy + m0, ldy, K, blocks, n_blocks);
    switch (rows - r) {
      case 3: PanelRows<3>(w0, width, bias + m0, x + r * ldx, ldx, y + r * ldy + m0, ldy, K, blocks, n_blocks); break;
      case 2: PanelRows<2>(w0, width, bias + m0, x + r * ldx, ldx, y + r * ldy + m0, ldy, K, blocks, n_blocks); break;
      case 1: PanelRows<1>(w0, width, bias + m0, x + r * ldx, ldx, y + r * ldy + m0, ldy, K, blocks, n_blocks); break;
      default: break;
    }
  }
}

// The two sums OpenBLAS's S-row kernels give an output (KvPlan::MeasureSchemes): chain[m] = bias[m] + (one FMA
// chain over k), pairs[m] = bias[m] + (chain over the even k + chain over the odd k). groups: KvWeights::groups.
template <int NB>
__attribute__((target("avx2,fma"))) void ChainAndPairsGroup(const float* w, const float* bias, const float* x,
                                                           int64_t K, float* chain, float* pairs) {
  constexpr int width = 8 * NB;
  __m256 one[NB], even[NB], odd[NB];
  for (int b = 0; b < NB; ++b) one[b] = even[b] = odd[b] = _mm256_setzero_ps();
  int64_t k = 0;
  for (; k + 2 <= K; k += 2, w += 2 * width) {
    const __m256 x0 = _mm256_set1_ps(x[k]), x1 = _mm256_set1_ps(x[k + 1]);
    for (int b = 0; b < NB; ++b) {
      const __m256 w0 = _mm256_loadu_ps(w + 8 * b), w1 = _mm256_loadu_ps(w + width + 8 * b);
      one[b] = _mm256_fmadd_ps(w1, x1, _mm256_fmadd_ps(w0, x0, one[b]));
      even[b] = _mm256_fmadd_ps(w0, x0, even[b]);
      odd[b] = _mm256_fmadd_ps(w1, x1, odd[b]);
    }
  }
  if (k < K) {  // K odd: the last k is even
    const __m256 x0 = _mm256_set1_ps(x[k]);
    for (int b = 0; b < NB; ++b) {
      const __m256 w0 = _mm256_loadu_ps(w + 8 * b);
      one[b] = _mm256_fmadd_ps(w0, x0, one[b]);
      even[b] = _mm256_fmadd_ps(w0, x0, even[b]);
    }
  }
  for (int b = 0; b < NB; ++b) {
    const __m256 bias_b = _mm256_loadu_ps(bias + 8 * b);
    _mm256_storeu_ps(chain + 8 * b, _mm256_add_ps(one[b], bias_b));
    _mm256_storeu_ps(pairs + 8 * b, _mm256_add_ps(_mm256_add_ps(even[b], odd[b]), bias_b));
  }
}

// Outputs [begin, end) (multiples of kSumGroup, or end = M) of the two sums.
__attribute__((target("avx2,fma"))) void ChainAndPairs(const float* groups, const float* bias, const float* x,
                                                      int64_t K, int64_t M, float* chain, float* pairs,
                                                      int64_t begin, int64_t end) {
  for (int64_t g0 = begin; g0 < end; g0 += kSumGroup) {
    const float* w = groups + g0 * K;
    switch ((std::min(kSumGroup, M - g0)) / 8) {
      case 4: ChainAndPairsGroup<4>(w, bias + g0, x, K, chain + g0, pairs + g0); break;
      case 3: ChainAndPairsGroup<3>(w, bias + g0, x, K, chain + g0, pairs + g0); break;
      case 2: ChainAndPairsGroup<2>(w, bias + g0, x, K, chain + g0, pairs + g0); break;
      default: ChainAndPairsGroup<1>(w, bias + g0, x, K, chain + g0, pairs + g0); break;
    }
  }
}

#else
bool HasFma() { return false; }  // MatVec then calls at::linear
void ChainAndPairs(const float*, const float*, const float*, int64_t, int64_t, float*, float*, int64_t, int64_t) {}
void RunPanels(const float*, const float*, const float*, float*, int64_t, const int64_t*, size_t, int64_t, int64_t,
               int64_t) {}
void RunPanelsRows(const float*, const float*, const float*, int64_t, int64_t, float*, int64_t, int64_t,
                   const int64_t*, size_t, int64_t, int64_t) {}
#endif

// OpenBLAS's split of a contraction of K into blocks of at most Q (level3.c: Q while 2 Q remain, then two halves
// rounded up to U).
std::vector<int64_t> Blocks(int64_t K, int64_t Q, int64_t U) {
  std::vector<int64_t> blocks;
  for (int64_t rest = K; rest > 0;) {
    int64_t l = rest;
    if (l >= 2 * Q) {
      l = Q;
    } else if (l > Q) {
      l = ((l / 2 + U - 1) / U) * U;
    }
    blocks.push_back(l);
    rest -= l;
  }
  return blocks;
}

}  // namespace

MatVec::MatVec(const torch::Tensor& weight, const torch::Tensor& bias)
    : weight_(weight), bias_(bias), M_(weight.size(0)), K_(weight.size(1)) {
  if (!HasFma() || M_ % 8 != 0 || weight.scalar_type() != at::kFloat || bias.scalar_type() != at::kFloat) return;
  const torch::Tensor w = weight.contiguous();
  const float* wp = w.data_ptr<float>();
  panels_.resize(M_ * K_);
  for (int64_t m = 0; m < M_; ++m) {
    for (int64_t k = 0; k < K_; ++k) panels_[Panel(m, k)] = wp[m * K_ + k];
  }
  const torch::Tensor b = bias.contiguous();
  bias_values_.assign(b.data_ptr<float>(), b.data_ptr<float>() + M_);
  const torch::Tensor x = TestRows(2, K_).view({2, 1, 1, K_});
  std::vector<torch::Tensor> y;
  for (int64_t r = 0; r < 2; ++r) y.push_back(at::linear(x[r], weight_, bias_).contiguous());
  std::vector<std::vector<int64_t>> candidates{{K_}};
  for (int64_t Q = 32; Q < K_; Q += 16) {
    for (int64_t U : {1, 2, 4, 8, 16, 32}) {
      std::vector<int64_t> b = Blocks(K_, Q, U);
      if (std::find(candidates.begin(), candidates.end(), b) == candidates.end()) candidates.push_back(std::move(b));
    }
  }
  for (const auto& b : candidates) {
    if (Emulates(b, x[0], y[0]) && Emulates(b, x[1], y[1])) {
      blocks_ = b;
      exact_ = true;
      return;
    }
  }
  panels_.clear();
  panels_.shrink_to_fit();
}

bool MatVec::Emulates(const std::vector<int64_t>& blocks, const torch::Tensor& x, const torch::Tensor& y) const {
  const torch::Tensor xc = x.contiguous();
  const float* xp = xc.data_ptr<float>();
  const float* yp = y.data_ptr<float>();
  const float* bp = bias_values_.data();
  for (int64_t m = 0; m < M_; ++m) {
    float c = bp[m];
    int64_t k0 = 0;
    for (int64_t l : blocks) {
      float acc = 0.0f;
      for (int64_t k = k0; k < k0 + l; ++k) acc = std::fma(panels_[Panel(m, k)], xp[k], acc);
      c = c + acc;
      k0 += l;
    }
    if (std::memcmp(&c, yp + m, sizeof(float)) != 0) return false;
  }
  return true;
}

int64_t MatVec::Panel(int64_t m, int64_t k) const {
  const int64_t g0 = m / kGroup * kGroup;
  return g0 * K_ + k * 8 * GroupPanels(g0, M_) + (m - g0);
}

void MatVec::Run(const float* x, float* y, int64_t outputs) const {
  RunPanels(panels_.data(), bias_values_.data(), x, y, K_, blocks_.data(), blocks_.size(), M_, 0, outputs < 0 ? M_ : outputs);
}

void MatVec::RunRange(const float* x, float* y, int64_t begin, int64_t end) const {
  RunPanels(panels_.data(), bias_values_.data(), x, y, K_, blocks_.data(), blocks_.size(), M_, begin, end);
}

void MatVec::IntoPart(const float* x, float* y, int part, int parts) const {
  if (!exact_) {
    if (part == 0) Into(x, y);  // at::linear: one call
    return;
  }
  if (parts == 1) return Run(x, y);
  const int64_t split = Split();
  RunRange(x, y, part == 0 ? 0 : split, part == 0 ? split : M_);
}

int64_t MatVec::Split() const { return HalfOf(M_); }

void MatVec::RunRows(const float* x, int64_t ldx, int64_t rows, float* y, int64_t ldy, int64_t outputs) const {
  RunPanelsRows(panels_.data(), bias_values_.data(), x, ldx, rows, y, ldy, K_, blocks_.data(), blocks_.size(), M_,
                outputs < 0 ? M_ : outputs);
}

void MatVec::Into(const float* x, float* y) const {
  if (exact_) return Run(x, y);
  const torch::Tensor out = at::linear(at::from_blob(const_cast<float*>(x), {1, 1, K_}, at::kFloat), weight_, bias_);
  std::memcpy(y, out.contiguous().data_ptr<float>(), M_ * sizeof(float));
}

// ---- KvPlan ----

KvWeights::KvWeights(const torch::Tensor& weight_t_in, const torch::Tensor& bias_in)
    : weight_t(weight_t_in), bias(bias_in) {
  const torch::Tensor b = bias.contiguous(), w = weight_t.contiguous();
  bias_values.assign(b.data_ptr<float>(), b.data_ptr<float>() + b.numel());
  const int64_t K = w.size(0), M = w.size(1);
  const float* wp = w.data_ptr<float>();
  groups.resize(K * M);
  for (int64_t g0 = 0; g0 < M; g0 += kSumGroup) {
    const int64_t width = std::min(kSumGroup, M - g0);
    for (int64_t k = 0; k < K; ++k) std::memcpy(&groups[g0 * K + k * width], wp + k * M + g0, width * sizeof(float));
  }
}

KvPlan::KvPlan(const KvWeights& weights, int64_t max_rows, int64_t heads)
    : weights_(weights), dim_(weights.weight_t.size(0)), max_rows_(max_rows), heads_(heads) {
  rows_ = TestRows(max_rows_, dim_);
  const int64_t width = weights_.weight_t.size(1);
  // Which positions of an n-column product give the same bits (on three test rows): one variant each.
  std::vector<std::vector<float>> signatures;
  std::map<int64_t, std::vector<int>> variant_at;
  for (int64_t n = 1; n <= kMaxChunk; ++n) {
    std::vector<torch::Tensor> outs;
    for (int64_t r = 0; r < 3; ++r) {
      outs.push_back(at::addmm(weights_.bias, rows_.narrow(0, r, 1).expand({n, dim_}).contiguous(), weights_.weight_t)
                         .contiguous());
    }
    std::vector<int>& at_n = variant_at[n];
    for (int64_t p = 0; p < n; ++p) {
      std::vector<float> sig;
      for (const auto& o : outs) sig.insert(sig.end(), o.data_ptr<float>() + p * width, o.data_ptr<float>() + (p + 1) * width);
      int found = -1;
      for (size_t v = 0; v < signatures.size(); ++v) {
        if (std::memcmp(signatures[v].data(), sig.data(), sig.size() * sizeof(float)) == 0) found = static_cast<int>(v);
      }
      if (found < 0) {
        found = static_cast<int>(signatures.size());
        signatures.push_back(std::move(sig));
      }
      at_n.push_back(found);
    }
  }
  single_ = variant_at[1][0];
  // Each variant is computed with the product shape that holds it at the most positions.
  chunks_.resize(signatures.size());
  std::vector<int64_t> best(signatures.size(), 0);
  for (const auto& [n, at_n] : variant_at) {
    for (size_t v = 0; v < signatures.size(); ++v) {
      const int64_t count = std::count(at_n.begin(), at_n.end(), static_cast<int>(v));
      if (count > best[v]) {
        best[v] = count;
        chunks_[v] = {n, at_n};
      }
    }
  }
  classes_.resize(max_rows_ + 1);
  attention_.assign(max_rows_ + 1, 0);
  // ENCODEC_NATIVE_LM_BLAS_VARIANTS=1: BLAS's products, for comparisons
  emulated_ = !std::getenv("ENCODEC_NATIVE_LM_BLAS_VARIANTS") && MeasureSchemes();
}

bool KvPlan::MeasureSchemes() {
  const int64_t width = weights_.weight_t.size(1);
  if (!HasFma() || width % 8 != 0 || chunks_.empty()) return false;
  // every variant of some test rows as OpenBLAS computes it (Project before emulated_ is set) ...
  const int64_t rows = std::min<int64_t>(kSchemeRows, max_rows_);
  std::vector<std::vector<float>> blas(chunks_.size(), std::vector<float>(rows * width));
  std::vector<std::vector<Pending>> pending(chunks_.size());
  for (size_t v = 0; v < chunks_.size(); ++v) {
    for (int64_t r = 0; r < rows; ++r) pending[v].push_back({r, rows_.data_ptr<float>() + r * dim_});
  }
  Project(pending, weights_, [&](int64_t row, int v, const float* kv) {
    std::memcpy(blas[v].data() + row * width, kv, width * sizeof(float));
  });
  // ... against the two sums of each output: each output of each variant must be one of them on every row
  std::vector<float> chain(rows * width), pairs(rows * width);
  for (int64_t r = 0; r < rows; ++r) {
    ChainAndPairs(weights_.groups.data(), weights_.bias_values.data(), rows_.data_ptr<float>() + r * dim_, dim_,
                  width, chain.data() + r * width, pairs.data() + r * width, 0, width);
  }
  schemes_.assign(chunks_.size(), std::vector<uint8_t>(width, 0));
  for (size_t v = 0; v < chunks_.size(); ++v) {
    for (int64_t m = 0; m < width; ++m) {
      bool is_chain = true, is_pairs = true;
      for (int64_t r = 0; r < rows; ++r) {
        const float y = blas[v][r * width + m];
        is_chain = is_chain && std::memcmp(&y, &chain[r * width + m], sizeof(float)) == 0;
        is_pairs = is_pairs && std::memcmp(&y, &pairs[r * width + m], sizeof(float)) == 0;
      }
      if (!is_chain && !is_pairs) return false;
      schemes_[v][m] = is_chain ? 0 : 1;
    }
  }
  return true;
}

bool KvPlan::MeasureAttention(int64_t S) {
  if (!HasFma()) return false;
  const int64_t D = dim_, hd = D / heads_;
  // Meta's ops on test data (multi_head_attention_forward with T = B = 1), against ScaleQuery and the FMA chains
  const torch::Tensor query = TestRows(1, D);
  const torch::Tensor q = query.view({1, heads_, hd}).transpose(0, 1) / std::sqrt(static_cast<double>(hd));
  const torch::Tensor k = TestRows(S + 1, D).narrow(0, 1, S).contiguous();
  const torch::Tensor v = (TestRows(S + 2, D).narrow(0, 2, S) * 0.5).contiguous();
  const torch::Tensor kh = k.view({S, heads_, hd}).transpose(0, 1), vh = v.view({S, heads_, hd}).transpose(0, 1);
  const torch::Tensor scores = at::baddbmm(at::zeros({1, 1, S}, at::kFloat), q, kh.transpose(-2, -1)).contiguous();
  const torch::Tensor w = at::softmax(scores, -1).contiguous();
  const torch::Tensor out = at::bmm(w, vh).transpose(0, 1).contiguous();
  std::vector<float> qs(D), s(heads_ * S), o(D), kp(S * D);
  ScaleQuery(query.data_ptr<float>(), D, hd, qs.data());
  std::vector<const float*> keys(S), values(S);
  for (int64_t j = 0; j < S; ++j) {
    PermuteKeys(k.data_ptr<float>() + j * D, heads_, hd, kp.data() + j * D);
    keys[j] = kp.data() + j * D;
    values[j] = v.data_ptr<float>() + j * D;
  }
  AttentionScores(qs.data(), keys.data(), S, heads_, hd, s.data());
  AttentionOutput(w.data_ptr<float>(), values.data(), S, heads_, hd, o.data());
  return std::memcmp(s.data(), scores.data_ptr<float>(), s.size() * sizeof(float)) == 0 &&
         std::memcmp(o.data(), out.data_ptr<float>(), o.size() * sizeof(float)) == 0;
}

void KvPlan::Project(std::vector<std::vector<Pending>>& pending, const KvWeights& weights,
                     const std::function<void(int64_t, int, const float*)>& put) const {
  const int64_t width = weights.weight_t.size(1);
  if (emulated_) {
    // each row's two sums once, each variant taking its outputs from them (MeasureSchemes)
    std::map<const float*, std::pair<int64_t, uint32_t>> by_input;  // input: row, variants wanted
    for (size_t v = 0; v < pending.size(); ++v) {
      for (const Pending& item : pending[v]) {
        auto& wanted = by_input.try_emplace(item.x, item.row, 0u).first->second;
        wanted.second |= 1u << v;
      }
      pending[v].clear();
    }
    for (const auto& [x, wanted] : by_input) {
      Variants(x, weights, wanted.second, 0, width, [&](int v, const float* kv) { put(wanted.first, v, kv); });
    }
    return;
  }
  for (size_t v = 0; v < pending.size(); ++v) {
    while (!pending[v].empty()) {
      const Chunk& chunk = chunks_[v];
      torch::Tensor in = at::zeros({chunk.n, dim_}, at::kFloat);
      float* ip = in.data_ptr<float>();
      std::vector<std::pair<int64_t, int>> placed(chunk.n, {-1, -1});
      for (int64_t p = 0; p < chunk.n; ++p) {
        const int w = chunk.variant[p];
        if (pending[w].empty()) continue;
        const Pending item = pending[w].back();
        pending[w].pop_back();
        std::memcpy(ip + p * dim_, item.x, dim_ * sizeof(float));
        placed[p] = {item.row, w};
      }
      const torch::Tensor out = at::addmm(weights.bias, in, weights.weight_t).contiguous();
      const float* op = out.data_ptr<float>();
      for (int64_t p = 0; p < chunk.n; ++p) {
        if (placed[p].first < 0) continue;
        put(placed[p].first, placed[p].second, op + p * width);
      }
    }
  }
}

int64_t KvPlan::StoreSplit() const {
  const int64_t width = weights_.weight_t.size(1);
  return std::min(width, (width / 2 + kSumGroup / 2) / kSumGroup * kSumGroup);
}

uint32_t KvPlan::StoreAll(const float* x, const KvWeights& weights, const std::function<float*(int)>& at, int part,
                          int parts) const {
  const uint32_t all = variants() == 32 ? ~0u : (1u << variants()) - 1;  // Ensure: at most 32
  const int64_t width = weights.weight_t.size(1), split = StoreSplit();
  const int64_t begin = parts == 1 || part == 0 ? 0 : split, end = parts == 1 || part == 1 ? width : split;
  Variants(x, weights, all, begin, end,
           [&](int v, const float* kv) { StoreKvRange(kv, dim_, heads_, begin, end, at(v)); });
  return all;
}

void KvPlan::Variants(const float* x, const KvWeights& weights, uint32_t wanted, int64_t begin, int64_t end,
                      const std::function<void(int, const float*)>& put) const {
  const int64_t width = weights.weight_t.size(1);
  thread_local std::vector<float> sums, mixed;
  sums.resize(2 * width);
  mixed.resize(width);
  float *chain = sums.data(), *pairs = chain + width;
  ChainAndPairs(weights.groups.data(), weights.bias_values.data(), x, dim_, width, chain, pairs, begin, end);
  for (int v = 0; v < variants(); ++v) {
    if (!(wanted >> v & 1u)) continue;
    const uint8_t* scheme = schemes_[v].data();
    for (int64_t m = begin; m < end; ++m) mixed[m] = scheme[m] ? pairs[m] : chain[m];
    put(v, mixed.data());
  }
}

bool KvPlan::Measure(int64_t S) {
  const int64_t width = weights_.weight_t.size(1);
  const torch::Tensor full = at::addmm(weights_.bias, rows_.narrow(0, 0, S), weights_.weight_t).contiguous();
  const float* fp = full.data_ptr<float>();
  std::vector<uint8_t>& cls = classes_[S];
  cls.assign(S, 0);
  for (int64_t j = 0; j < S; ++j) {
    int found = -1;
    for (size_t v = 0; v < test_.size() && found < 0; ++v) {
      if (std::memcmp(fp + j * width, test_[v].data() + j * width, width * sizeof(float)) == 0) found = static_cast<int>(v);
    }
    if (found < 0) return false;
    cls[j] = static_cast<uint8_t>(found);
  }
  return true;
}

bool KvPlan::Ensure(int64_t rows) {
  if (rows > max_rows_) return false;
  if (measured_.load(std::memory_order_acquire) >= rows) return true;
  std::lock_guard<std::mutex> lock(mutex_);
  if (failed_.load(std::memory_order_relaxed)) return false;
  if (measured_.load(std::memory_order_relaxed) >= rows) return true;
  if (chunks_.size() > 32) {  // the steps keep a row's variants as bits of a uint32_t
    failed_.store(true, std::memory_order_release);
    return false;
  }
  // Every variant of the test rows up to `rows`, computed the way the step computes them.
  const int64_t width = weights_.weight_t.size(1);
  const int64_t have = test_.empty() ? 0 : static_cast<int64_t>(test_[0].size()) / width;
  if (test_.empty()) test_.resize(chunks_.size());
  for (auto& t : test_) t.resize(rows * width);
  std::vector<std::vector<Pending>> pending(chunks_.size());
  for (size_t v = 0; v < chunks_.size(); ++v) {
    for (int64_t r = have; r < rows; ++r) pending[v].push_back({r, rows_.data_ptr<float>() + r * dim_});
  }
  Project(pending, weights_, [&](int64_t row, int v, const float* kv) {
    std::memcpy(test_[v].data() + row * width, kv, width * sizeof(float));
  });
  for (int64_t S = measured_.load(std::memory_order_relaxed) + 1; S <= rows; ++S) {
    if (!Measure(S)) {
      failed_.store(true, std::memory_order_release);
      return false;
    }
    attention_[S] = MeasureAttention(S) ? 1 : 0;  // else the step calls ATen's products for this S
    measured_.store(S, std::memory_order_release);
  }
  return true;
}

// ---- LmFastModel ----

std::shared_ptr<LmFastModel> LmFastModel::Create(torch::jit::Module& module, int64_t n_q, int64_t card) {
  try {
    auto m = std::make_shared<LmFastModel>();
    std::map<std::string, torch::Tensor> p;
    for (const auto& item : module.named_parameters(/*recurse=*/true)) p[item.name] = item.value.detach();
    const torch::jit::Module transformer = module.attr("transformer").toModule();
    const torch::jit::Module layers = transformer.attr("layers").toModule();
    const int64_t num_layers = transformer.attr("num_layers").toInt();
    m->past_context = transformer.attr("past_context").toInt();
    const int64_t max_period = transformer.attr("max_period").toInt();
    m->norm_w = p.at("transformer.norm_in.weight");
    m->norm_b = p.at("transformer.norm_in.bias");
    m->eps_in = transformer.attr("norm_in").toModule().attr("eps").toDouble();
    m->dim = m->norm_w.size(0);
    m->n_q = n_q;
    m->card = card;
    const int64_t D = m->dim;
    if (D % 2 != 0 || D < 4 || m->past_context < 1 || num_layers < 1) return nullptr;
    for (int64_t i = 0; i < num_layers; ++i) {
      const std::string pre = "transformer.layers." + std::to_string(i) + ".";
      const torch::jit::Module layer = layers.attr(std::to_string(i)).toModule();
      Layer l;
      const torch::Tensor w = p.at(pre + "self_attn.in_proj_weight"), b = p.at(pre + "self_attn.in_proj_bias");
      if (w.dim() != 2 || w.size(0) != 3 * D || w.size(1) != D || b.size(0) != 3 * D) return nullptr;
      // Meta: w_q, w_kv = w.split([E, E * 2]) (MultiheadAttention's packed key/value path)
      auto ws = w.split_with_sizes({D, 2 * D});
      auto bs = b.split_with_sizes({D, 2 * D});
      l.q = MatVec(ws[0], bs[0]);
      l.kv = MatVec(ws[1], bs[1]);
      l.kv_weights = KvWeights(ws[1].t(), bs[1]);
      l.out = MatVec(p.at(pre + "self_attn.out_proj.weight"), p.at(pre + "self_attn.out_proj.bias"));
      l.linear1 = MatVec(p.at(pre + "linear1.weight"), p.at(pre + "linear1.bias"));
      l.linear2 = MatVec(p.at(pre + "linear2.weight"), p.at(pre + "linear2.bias"));
      l.n1w = p.at(pre + "norm1.weight");
      l.n1b = p.at(pre + "norm1.bias");
      l.n2w = p.at(pre + "norm2.weight");
      l.n2b = p.at(pre + "norm2.bias");
      l.eps1 = layer.attr("norm1").toModule().attr("eps").toDouble();
      l.eps2 = layer.attr("norm2").toModule().attr("eps").toDouble();
      const int64_t heads = layer.attr("self_attn").toModule().attr("num_heads").toInt();
      if (i == 0) m->num_heads = heads;
      if (heads != m->num_heads || heads < 1 || D % heads != 0) return nullptr;
      m->layers.push_back(std::move(l));
    }
    for (int64_t k = 0; k < n_q; ++k) {
      const torch::Tensor e = p.at("emb." + std::to_string(k) + ".weight").contiguous();
      if (e.dim() != 2 || e.size(0) != card + 1 || e.size(1) != D || e.scalar_type() != at::kFloat) return nullptr;
      m->emb.push_back(e);
      m->head_w.push_back(p.at("linears." + std::to_string(k) + ".weight"));
      m->head_b.push_back(p.at("linears." + std::to_string(k) + ".bias"));
    }
    // create_sin_embedding: max_period ** (adim / (half_dim - 1)), the base a float32 tensor (Tensor.__rpow__)
    const int64_t half = D / 2;
    m->divisor = at::pow(at::scalar_tensor(static_cast<double>(max_period), at::kFloat),
                         at::arange(half, at::kLong).view({1, 1, -1}) / (half - 1));
    // All heads as one product where that gives each head's bits.
    m->heads = MatVec(at::cat(m->head_w, 0), at::cat(m->head_b, 0));
    m->heads_exact = m->heads.exact();
    if (m->heads_exact) {
      const torch::Tensor x = TestRows(1, D).view({1, 1, D});
      std::vector<float> y(n_q * card);
      m->heads.Run(x.data_ptr<float>(), y.data(), n_q * card);
      for (int64_t k = 0; k < n_q && m->heads_exact; ++k) {
        const torch::Tensor h = at::linear(x, m->head_w[k], m->head_b[k]).contiguous();
        m->heads_exact = std::memcmp(h.data_ptr<float>(), y.data() + k * card, card * sizeof(float)) == 0;
      }
    }
    // GELU in halves where each half's bits are the whole layer's (elementwise, but oneDNN's kernel might treat a
    // vector's tail differently): on test values spanning its curve, for each layer's split
    m->gelu_parts = true;
    for (const Layer& l : m->layers) {
      const int64_t F = l.linear1.outputs(), split = l.linear1.Split();
      const torch::Tensor h = (TestRows(1, F, 777) * 3.0).view({1, 1, F});
      const torch::Tensor whole = at::gelu(h).contiguous();
      torch::Tensor halves = at::empty({1, 1, F}, at::kFloat);
      for (const auto& [b, e] : {std::pair<int64_t, int64_t>{0, split}, {split, F}}) {
        if (e > b) GeluInto(h.data_ptr<float>() + b, halves.data_ptr<float>() + b, e - b);
      }
      m->gelu_parts = m->gelu_parts && std::memcmp(whole.data_ptr<float>(), halves.data_ptr<float>(),
                                                   F * sizeof(float)) == 0;
    }
    m->plan = std::make_unique<KvPlan>(m->layers[0].kv_weights, m->past_context + 1, m->num_heads);
    if (m->layers[0].kv.exact() && m->plan->variants() > 0) {
      // which variant a one-row product is, so that the step computes it without BLAS
      m->single_variant = m->plan->SingleVariant();
    }
    return m;
  } catch (const std::exception&) {
    return nullptr;  // not laid out as exporter/lm_ts.py lays it out: the TorchScript step is used
  }
}

// ---- LmFastStep ----

LmFastStep::LmFastStep(std::shared_ptr<LmFastModel> model, int64_t K, int64_t rows, LmPair* pair)
    // a window holds at most `rows` rows, so rows + 1 slots keep every row a window or the lookahead reads
    : model_(std::move(model)), K_(K), limit_(rows), cap_(rows + 1), variants_(model_->plan->variants()),
      pair_(pair) {
  const int64_t D = model_->dim;
  caches_.resize(model_->layers.size());
  for (Cache& c : caches_) {
    c.x.reset(new float[cap_ * D]);
    c.kv.reset(new float[cap_ * variants_ * 2 * D]);
    c.have.assign(cap_, 0);
    std::fill(c.x.get(), c.x.get() + D, 0.0f);  // row 0: Meta's zero past (states=None)
    windows_.emplace_back(rows, D, cap_, model_->num_heads);
  }
  pending_.resize(variants_);
  row_kv_.resize(2 * D);
  for (const LmFastModel::Layer& l : model_->layers) hidden_ = std::max(hidden_, l.linear1.outputs());
  buffer_.resize(4 * D + 2 * hidden_);
  rows_.resize(2 * D);
  logits_.resize(K_ * model_->card);
  transposed_.resize(K_ * model_->card);
  probas_ = at::empty({1, model_->card, K_, 1}, at::kFloat);
}

void LmFastStep::Layer(size_t i, const float* xp, float* out) {
  const LmFastModel& m = *model_;
  const LmFastModel::Layer& l = m.layers[i];
  const int64_t D = m.dim, P = m.past_context;
  Cache& c = caches_[i];
  KvWindow& window = windows_[i];
  const int64_t row = t_ + 1;
  std::memcpy(X(c, row), xp, D * sizeof(float));
  uint32_t& fresh = c.have[row % cap_];
  fresh = 0;
  window.Forget(row % cap_);
  float *q = buffer_.data(), *att = q + D, *o = att + D, *yp = o + D, *hidden = yp + D, *gelu = hidden + hidden_;
  bool split_query = false;
  if (m.plan->sums()) {
    // every variant the row will take, now: two sums; its keys and values in two parts, its query in two
    split_query = true;
    const auto at = [&](int v) { return Kv(c, row, v); };
    Parts(4, [&](int part) {
      if (part < 2) {
        const uint32_t stored = m.plan->StoreAll(xp, l.kv_weights, at, part, 2);
        if (part == 0) fresh = stored;
      } else {
        l.q.IntoPart(xp, q, part - 2, 2);
      }
    });
  } else if (m.single_variant >= 0 && l.kv.exact()) {
    l.kv.Run(xp, row_kv_.data());
    StoreKv(row_kv_.data(), D, m.num_heads, Kv(c, row, m.single_variant));
    fresh = 1u << m.single_variant;
  }

  const int64_t H = std::min(t_ + 1, P), S = H + 1, first = t_ + 1 - H;
  const uint8_t* cls = m.plan->Classes(S);
  bool missing = false;
  for (int64_t j = 0; j < S && !missing; ++j) missing = !(c.have[(first + j) % cap_] >> cls[j] & 1u);
  if (missing) {
    // what this frame and the next kLookahead frames need of the rows there are, in as few products as possible
    for (int64_t d = 0; d <= kLookahead; ++d) {
      const int64_t td = t_ + d;
      const int64_t Hd = std::min(td + 1, P), Sd = Hd + 1, firstd = td + 1 - Hd;
      if (Sd > limit_) break;
      const uint8_t* clsd = m.plan->Classes(Sd);
      for (int64_t r = firstd; r <= row; ++r) {
        const int v = clsd[r - firstd];
        uint32_t& have = c.have[r % cap_];
        if (have >> v & 1u) continue;
        have |= 1u << v;
        pending_[v].push_back({r, X(c, r)});
      }
    }
    m.plan->Project(pending_, l.kv_weights,
                    [&](int64_t r, int v, const float* kv) { StoreKv(kv, D, m.num_heads, Kv(c, r, v)); });
  }
  window.Place(first, S, cls, c.kv.get(), variants_, m.plan->AttentionExact(S));
  // Meta's layer on one row; the residual sums are ATen's add (a + 1 * b, one rounding) written out
  if (!split_query) Parts(2, [&](int part) { l.q.IntoPart(xp, q, part, 2); });
  window.Attend(q, first, S, att, pair_);
  Parts(2, [&](int part) { l.out.IntoPart(att, o, part, 2); });
  for (int64_t d = 0; d < D; ++d) o[d] = xp[d] + o[d];
  LayerNormInto(o, yp, 1, D, l.n1w, l.n1b, l.eps1);
  const int64_t F = l.linear1.outputs();
  if (m.gelu_parts && l.linear1.exact()) {
    // each half of the hidden layer and its GELU on one thread (LmFastModel::gelu_parts)
    const int64_t split = l.linear1.Split();
    Parts(2, [&](int part) {
      l.linear1.IntoPart(yp, hidden, part, 2);
      const int64_t begin = part ? split : 0, end = part ? F : split;
      GeluInto(hidden + begin, gelu + begin, end - begin);
    });
  } else {
    l.linear1.Into(yp, hidden);
    GeluInto(hidden, gelu, F);
  }
  Parts(2, [&](int part) { l.linear2.IntoPart(gelu, o, part, 2); });
  for (int64_t d = 0; d < D; ++d) o[d] = yp[d] + o[d];
  LayerNormInto(o, out, 1, D, l.n2w, l.n2b, l.eps2);
}

void LmFastModel::Input(int64_t t, int64_t K, const int64_t* previous, int64_t stride, float* out) const {
  const int64_t D = dim, half = D / 2;
  // Meta: sum(self.emb[k](indices[:, k]) for k in range(K)), indices 1 + the previous codes (0 at the start)
  thread_local std::vector<float> x;
  x.assign(D, 0.0f);
  for (int64_t k = 0; k < K; ++k) {
    const int64_t index = previous ? previous[k * stride] + 1 : 0;
    const float* e = emb[k].data_ptr<float>() + index * D;
    for (int64_t d = 0; d < D; ++d) x[d] = x[d] + e[d];
  }
  // Meta's create_sin_embedding: phase = t / divisor (ATen's true division of the position, cast to float, by each
  // divisor: one IEEE division), then cat(cos(phase), sin(phase)) with ATen's cos and sin on the same shape
  thread_local torch::Tensor phase, cos, sin;
  if (!phase.defined() || phase.size(2) != half) {
    phase = at::empty({1, 1, half}, at::kFloat);
    cos = at::empty({1, 1, half}, at::kFloat);
    sin = at::empty({1, 1, half}, at::kFloat);
  }
  const float position = static_cast<float>(t);
  const float* dp = divisor.data_ptr<float>();
  float* pp = phase.data_ptr<float>();
  for (int64_t i = 0; i < half; ++i) pp[i] = position / dp[i];
  at::cos_out(cos, phase);
  at::sin_out(sin, phase);
  // layer_norm(x) + pos: ATen's add, one rounding per element
  LayerNormInto(x.data(), out, 1, D, norm_w, norm_b, eps_in);
  const float *cp = cos.data_ptr<float>(), *sp = sin.data_ptr<float>();
  for (int64_t i = 0; i < half; ++i) out[i] = out[i] + cp[i];
  for (int64_t i = 0; i < half; ++i) out[half + i] = out[half + i] + sp[i];
}

torch::Tensor LmFastModel::Probabilities(const torch::Tensor& logits) {
  return at::softmax(logits.permute({0, 3, 1, 2}), 1);
}

torch::Tensor LmFastStep::Step(const int64_t* previous) {
  const LmFastModel& m = *model_;
  const int64_t D = m.dim, card = m.card;
  // the input and each layer's output in turns in the rows of rows_
  m.Input(t_, K_, previous, 1, rows_.data());
  const float* x = rows_.data();
  for (size_t i = 0; i < m.layers.size(); ++i) {
    float* out = rows_.data() + ((i + 1) % 2) * D;
    Layer(i, x, out);
    x = out;
  }
  ++t_;
  if (!m.heads_exact) {
    std::vector<torch::Tensor> heads;
    const torch::Tensor xt = at::from_blob(const_cast<float*>(x), {1, 1, D}, at::kFloat);
    for (int64_t k = 0; k < K_; ++k) heads.push_back(at::linear(xt, m.head_w[k], m.head_b[k]));
    return LmFastModel::Probabilities(at::stack(heads, 1));
  }
  // Meta: softmax(logits [1, K, 1, card].permute(0, 3, 1, 2), 1), on the logits laid out [card][K] as ATen's
  // contiguous() lays them out
  float* logits = logits_.data();
  const int64_t n = K_ * card, split = HalfOf(n);
  Parts(2, [&](int part) { m.heads.RunRange(x, logits, part ? split : 0, part ? n : split); });
  for (int64_t k = 0; k < K_; ++k) {
    for (int64_t c = 0; c < card; ++c) transposed_[c * K_ + k] = logits[k * card + c];
  }
  SoftmaxInto(transposed_.data(), probas_.data_ptr<float>(), 1, card, K_);
  return probas_;
}

}  // namespace encodec
