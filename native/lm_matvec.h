// One row through a linear layer as BLAS computes it (FMA chains over BLAS's blocks of the contraction), without
// BLAS's per-call packing of the weights: the LM's one-row products (lm_step.h, lm_block.h). Pure libtorch and C++:
// no Node-API here.
#pragma once

#include "torch_names.h"

#include <cstdint>
#include <vector>

namespace encodec {

// Whether this CPU has AVX2 and FMA, which the written-out products and sums need (else ATen and BLAS are called).
bool HasFma();

// Deterministic test inputs in [-2, 2) for the measurements that compare a computation with ATen's: `rows` x `dim`.
torch::Tensor TestRows(int64_t rows, int64_t dim, uint32_t seed = 12345);

// One row through a linear layer (at::linear of a [1, 1, K] input: a BLAS product with one column), computed here
// without BLAS's per-call packing of the weights: BLAS's kernel sums each output as FMA chains over blocks of the
// contraction, added to the bias block by block. The blocks are found at construction by comparison with
// at::linear; where no candidate reproduces it bit for bit (another BLAS or CPU), Into calls at::linear.
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

}  // namespace encodec
