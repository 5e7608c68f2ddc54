#include "lm_kv_plan.h"

#include <torch/script.h>  // the operators

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define ENCODEC_LM_X86 1
#endif

#include <algorithm>
#include <cmath>
#include <cstring>
#include <map>

#include "lm_matvec.h"  // TestRows, HasFma
#include "lm_window.h"  // the attention measured, StoreKv

namespace encodec {

namespace {
// Widest product probed for variants: OpenBLAS's widest column group is 12 (3 x its 4-column unroll).
constexpr int64_t kMaxChunk = 24;
// Test rows on which each variant's outputs are matched to the two sums of ChainAndPairs.
constexpr int64_t kSchemeRows = 32;
// Outputs per group of KvWeights::groups.
constexpr int64_t kSumGroup = 32;

#ifdef ENCODEC_LM_X86
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
void ChainAndPairs(const float*, const float*, const float*, int64_t, int64_t, float*, float*, int64_t, int64_t) {}
#endif

}  // namespace

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

}  // namespace encodec
