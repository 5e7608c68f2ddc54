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

#include <cstdint>
#include <memory>
#include <mutex>
#include <vector>

#include "lm_kv_plan.h"
#include "lm_matvec.h"
#include "lm_pair.h"
#include "lm_window.h"

namespace encodec {

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
