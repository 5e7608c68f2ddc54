#include "lm_matvec.h"

#include "lm_pair.h"  // HalfOf

#include <torch/script.h>  // the operators

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define ENCODEC_LM_X86 1
#endif

#include <algorithm>
#include <cmath>
#include <cstring>

namespace encodec {

#ifdef ENCODEC_LM_X86
bool HasFma() {
  static const bool has = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  return has;
}
#else
bool HasFma() { return false; }  // MatVec then calls at::linear, KvPlan BLAS
#endif

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

#else
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

}  // namespace encodec
