// The LM's streaming step in C++ (ATen calls, no TorchScript interpreter), with the keys and values of past frames
// kept instead of projected again at every frame, and probabilities bit-equal to the eager model's (Meta's
// LMModel, test/reference/lm_reference.py). Pure libtorch and C++: no Node-API here.
//
// Why a cache needs care: the eager model projects all S = past + 1 key rows in one matrix product at every frame,
// and BLAS computes a row's result with a kernel that depends on where the row falls in that product (OpenBLAS
// packs columns in groups of 12, 8, 4 and 1, and the groups round differently). So a row's keys differ in their
// last bits from one frame to the next. KvPlan measures, once per process, which variant of the product each
// position of each S uses on this machine, and the cache keeps every variant a row needs; where the measurement
// finds a row no variant reproduces, the session falls back to the TorchScript step.
#pragma once

#include <torch/csrc/jit/api/module.h>

#include "torch_names.h"

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <vector>

#include "lm_pair.h"
#include "lm_window.h"

namespace encodec {

// Deterministic test inputs in [-2, 2) for the measurements that compare a computation with ATen's: `rows` x `dim`.
torch::Tensor TestRows(int64_t rows, int64_t dim, uint32_t seed = 12345);

// One row through a linear layer (at::linear of a [1, 1, K] input: a BLAS product with one column), computed here
// without BLAS's per-call packing of the weights: BLAS's kernel sums each output as FMA chains over blocks of the
// contraction, added to the bias block by block. The blocks are found at construction by comparison with
// at::linear; where no candidate reproduces it bit for bit (another BLAS or CPU), Apply calls at::linear.
class MatVec {
 public:
  MatVec() = default;
  MatVec(const torch::Tensor& weight, const torch::Tensor& bias);
  bool exact() const { return exact_; }
  int64_t outputs() const { return M_; }
  // y[0, outputs) from x[K] (outputs: a multiple of 8, default M); only when exact().
  void Run(const float* x, float* y, int64_t outputs = -1) const;
  // y[begin, end) of Run's outputs (multiples of 8); only when exact().
  void RunRange(const float* x, float* y, int64_t begin, int64_t end) const;
  // Part `part` of Into's outputs split in `parts` (1 or 2; the halves' boundary a multiple of 8): two
  // threads computing one part each give Into's y. Where !exact(), part 0 is the whole at::linear, part 1 nothing.
  void IntoPart(const float* x, float* y, int part, int parts) const;
  // Where IntoPart's two parts meet.
  int64_t Split() const;
  // Run for `rows` inputs (x + r * ldx, into y + r * ldy): each row's outputs the same FMA chains as Run's, the
  // weights read once per few rows instead of once per row.
  void RunRows(const float* x, int64_t ldx, int64_t rows, float* y, int64_t ldy, int64_t outputs = -1) const;
  // at::linear(x, weight, bias) for x[K], into y[outputs()]: Run where exact(), else at::linear.
  void Into(const float* x, float* y) const;

 private:
  bool Emulates(const std::vector<int64_t>& blocks, const torch::Tensor& x, const torch::Tensor& y) const;
  // Where weight (m, k) lies in panels_.
  int64_t Panel(int64_t m, int64_t k) const;

  torch::Tensor weight_, bias_;
  int64_t M_ = 0, K_ = 0;
  std::vector<int64_t> blocks_;
  std::vector<float> panels_;  // groups of 64 outputs, each [K][64] (the last one's width what remains)
  std::vector<float> bias_values_;
  bool exact_ = false;
};

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
  // Whether every output of every variant is one of the two sums ChainAndPairs computes (lm_step.cc) on test rows;
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

// The weights of an LM in the layout the step reads; nullptr from Create when the module is not laid out as
// exporter/lm_ts.py lays it out.
class LmFastModel {
 public:
  static std::shared_ptr<LmFastModel> Create(torch::jit::Module& module, int64_t n_q, int64_t card);

  struct Layer {
    KvWeights kv_weights;
    torch::Tensor n1w, n1b, n2w, n2b;
    MatVec q, kv, out, linear1, linear2;
    double eps1, eps2;
  };
  int64_t dim, num_heads, past_context, n_q, card;
  int single_variant = -1;  // the key/value variant of a one-row product, when kv.exact()
  double eps_in;
  torch::Tensor norm_w, norm_b, divisor;  // divisor: max_period ** (arange(dim / 2) / (dim / 2 - 1))
  std::vector<torch::Tensor> emb;         // [card + 1, dim] each
  std::vector<torch::Tensor> head_w, head_b;
  MatVec heads;             // all output heads as one product (its first K * card outputs: the first K heads)
  bool heads_exact = false;  // heads reproduces every head's at::linear
  std::vector<Layer> layers;
  std::unique_ptr<KvPlan> plan;
  // The step's input for frame t (dim floats, into out): the sum of the embeddings of 1 + the previous frame's K
  // codes (previous[k * stride]; nullptr at the first frame), normed, plus the position.
  void Input(int64_t t, int64_t K, const int64_t* previous, int64_t stride, float* out) const;
  // The probabilities [1, card, K, 1] of the heads' logits [1, K, 1, card] (Meta: softmax over the codes).
  static torch::Tensor Probabilities(const torch::Tensor& logits);

  // Whether a layer's row-wise ATen ops on many rows at once give each row's bits (set by LmBlockStep::Supported);
  // else LmBlockStep calls them row by row.
  std::once_flag rows_once;
  bool rows_exact = false;
  // Whether ATen's GELU of each half of a hidden layer gives the whole layer's GELU bits (checked at Create), so
  // that each thread of a pair applies it to the half it computed.
  bool gelu_parts = false;
};

// One segment's state of the fast step.
class LmFastStep {
 public:
  // `rows`: the widest S the plan measured (KvPlan::Ensure) for this segment. `pair` (may be null): two threads
  // that share each frame's products and attention (the same values: the bytes do not depend on it).
  LmFastStep(std::shared_ptr<LmFastModel> model, int64_t K, int64_t rows, LmPair* pair = nullptr);
  // Probabilities [1, card, K, 1] of the next frame, given the previous frame's codes (nullptr at the first frame);
  // valid until the next Step.
  torch::Tensor Step(const int64_t* previous);

 private:
  struct Cache {  // one layer's rows: row r (frame r - 1; row 0 the zero past) in slot r % cap_
    std::unique_ptr<float[]> x, kv;
    std::vector<uint32_t> have;  // per slot: the variants computed (or queued) for its row
  };
  float* X(Cache& c, int64_t row) { return c.x.get() + (row % cap_) * model_->dim; }
  float* Kv(Cache& c, int64_t row, int v) {
    return c.kv.get() + ((row % cap_) * variants_ + v) * 2 * model_->dim;
  }
  // Layer i on the row xp (D floats) into out (D floats, not xp).
  void Layer(size_t i, const float* xp, float* out);
  // part(i) for i < n, on pair_ where there is one, else one after another here.
  template <class F>
  void Parts(int n, F&& part) {
    if (pair_) return pair_->Run(n, part);
    for (int i = 0; i < n; ++i) part(i);
  }

  std::shared_ptr<LmFastModel> model_;
  int64_t K_, limit_, cap_, t_ = 0;
  int variants_;
  std::vector<Cache> caches_;
  std::vector<KvWindow> windows_;  // per layer
  std::vector<std::vector<KvPlan::Pending>> pending_;
  std::vector<float> row_kv_;  // a row's key/value projection, before StoreKv
  // a layer's rows: query, attention, output and residual, first norm, feed-forward hidden, GELU
  std::vector<float> buffer_;
  std::vector<float> rows_;                 // the layers' outputs, two rows
  std::vector<float> logits_, transposed_;  // the heads' logits [K][card], and [card][K]
  torch::Tensor probas_;                    // Step's result, [1, card, K, 1]
  int64_t hidden_ = 0;         // the widest feed-forward hidden layer
  LmPair* pair_;
};

}  // namespace encodec
