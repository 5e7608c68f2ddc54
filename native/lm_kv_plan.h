// Which rounding "variant" of the key/value projection each row of the LM's attention window takes, and the
// variants computed without BLAS where two sums reproduce them (see lm_step.h for why a cache needs them). Pure
// libtorch and C++: no Node-API here.
#pragma once

#include "torch_names.h"

#include <atomic>
#include <cstdint>
#include <functional>
#include <mutex>
#include <vector>

namespace encodec {

// One layer's key/value projection: `weight_t` [dim, 2 dim] the transposed view of Meta's w_kv, as its F.linear
// passes it to BLAS (whose kernels depend on the layout), and the same weights in groups of 32 outputs for KvPlan's
// sums (group g0 at g0 * dim: [dim][32], the last group's width what remains).
struct KvWeights {
  KvWeights() = default;
  KvWeights(const torch::Tensor& weight_t, const torch::Tensor& bias);
  torch::Tensor weight_t, bias;
  std::vector<float> groups, bias_values;
};

// Which variant of the key/value projection each row of an S-row projection matches, S = 1..max_rows.
class KvPlan {
 public:
  // `weights`: one layer's key/value projection (every layer's has the same shapes, hence the same variants);
  // `heads`: the attention's heads.
  KvPlan(const KvWeights& weights, int64_t max_rows, int64_t heads);

  // Measures the rows of every S up to `rows` (once). False when some row matches no variant.
  bool Ensure(int64_t rows);
  // The variant of each position of an S-row projection (S measured by Ensure).
  const uint8_t* Classes(int64_t S) const { return classes_[S].data(); }
  int variants() const { return static_cast<int>(chunks_.size()); }
  // The variant a one-row product gives.
  int SingleVariant() const { return single_; }
  // Whether the attention's products over S rows (Meta: baddbmm of the scores, bmm of the weights and values)
  // are what AttentionScores / AttentionOutput (lm_window.h) compute (S measured by Ensure).
  bool AttentionExact(int64_t S) const { return attention_[S] != 0; }
  // Whether some S matched no variant (the session then uses the TorchScript step).
  bool failed() const { return failed_.load(std::memory_order_acquire); }
  // Whether Project computes the variants from two sums per row (MeasureSchemes) rather than with BLAS.
  bool sums() const { return emulated_; }

  // Projects rows (x: `dim` floats each) in the variants asked for: pending[c] lists (row id, input) of variant c;
  // `put(row, c, kv)` takes the 2 dim results. Empties `pending`.
  struct Pending {
    int64_t row;
    const float* x;
  };
  void Project(std::vector<std::vector<Pending>>& pending, const KvWeights& weights,
               const std::function<void(int64_t row, int variant, const float* kv)>& put) const;
  // Where sums(): every variant of one row x (`dim` floats) stored at at(variant) in StoreKv's layout; returns the
  // bits of the variants stored (all of them). `parts` 2: part 0 stores the outputs below StoreSplit(), part 1 the
  // rest, so that two threads store a row together.
  uint32_t StoreAll(const float* x, const KvWeights& weights, const std::function<float*(int variant)>& at,
                    int part = 0, int parts = 1) const;
  int64_t StoreSplit() const;

 private:
  struct Chunk {
    int64_t n;                 // columns of the product that computes this variant
    std::vector<int> variant;  // the variant each of its positions gives
  };
  bool Measure(int64_t S);
  bool MeasureAttention(int64_t S);
  // Whether every output of every variant is one of the two sums ChainAndPairs computes (lm_kv_plan.cc) on test rows;
  // sets schemes_.
  bool MeasureSchemes();
  // The variants in the bit set `wanted` of one row x, from its two sums (where sums()): outputs [begin, end) of
  // the kv given to put (multiples of the sums' groups of 32, or end the width).
  void Variants(const float* x, const KvWeights& weights, uint32_t wanted, int64_t begin, int64_t end,
                const std::function<void(int variant, const float* kv)>& put) const;

  KvWeights weights_;
  int64_t dim_, max_rows_;
  std::vector<Chunk> chunks_;           // per variant: the product shape with the most positions of it
  std::vector<std::vector<float>> test_;  // per variant: the projections of the test rows
  torch::Tensor rows_;                  // [max_rows, dim] test rows
  std::vector<std::vector<uint8_t>> classes_;
  std::vector<uint8_t> attention_;
  int64_t heads_;
  std::mutex mutex_;
  std::atomic<int64_t> measured_{0};
  std::atomic<bool> failed_{false};
  int single_ = -1;
  // Where MeasureSchemes found them: Project computes each row's two sums once and takes every variant from them
  // (schemes_[v][m]: 0 the one chain, 1 the even/odd pair), without BLAS.
  bool emulated_ = false;
  std::vector<std::vector<uint8_t>> schemes_;
};

}  // namespace encodec
