// One layer's attention window as the LM's C++ steps keep it (lm_step.h frame by frame, lm_block.h in blocks of
// frames), and the attention over it, op for op as Meta's multi_head_attention_forward computes it for one query.
// Pure libtorch and C++: no Node-API here.
#pragma once

#include "torch_names.h"

#include <cstdint>
#include <functional>
#include <vector>

namespace encodec {

// One-column products of the attention, as OpenBLAS's kernel computes them (FMA chains), for S rows:
// scores[h][j] = 0 + sum_i keys_t[h * hd + i][j] q[h][i] (keys_t: [D][stride], the keys transposed), and
// out[h * hd + i] = 0 + sum_j values[j][h * hd + i] weights[h][j] (values[j]: row j's D values, wherever it lies).
// Only on CPUs with AVX2 and FMA.
void AttentionScores(const float* q, const float* keys_t, int64_t stride, int64_t S, int64_t heads, int64_t hd,
                     float* scores);
void AttentionOutput(const float* weights, const float* const* values, int64_t S, int64_t heads, int64_t hd,
                     float* out);

// The keys and values of the rows a frame attends to, each row in the key/value variant the eager model's S-row
// product gives it at its position (KvPlan in lm_step.h). The FMA chains read the values where the caller keeps
// them and the keys transposed here; consecutive frames' windows overlap, so rows stay in place from frame to frame
// and only those whose variant changed are written again. ATen's products (where the chains do not give its bits)
// read copies of the rows, made only for them.
class KvWindow {
 public:
  // `rows`: the widest window; `slots`: the rows' ring (row r in slot r % slots).
  KvWindow(int64_t rows, int64_t dim, int64_t slots);

  // A new row took `slot`: what the window held for the slot's old row is stale.
  void Forget(int64_t slot) { written_[slot] = copied_[slot] = -1; }
  // Places rows [first, first + S), row first + j in variant cls[j], read from kv(row, variant) (2 dim floats:
  // keys, then values; they must stay there until the row's slot is forgotten). `fma`: whether Attend will run the
  // FMA chains (KvPlan::AttentionExact), else ATen's products, which need copies of the rows.
  void Place(int64_t first, int64_t S, const uint8_t* cls, const std::function<const float*(int64_t, int)>& kv,
             bool fma);
  // The attention of the query row `q` (its projection, before scaling) over the rows Place placed last ([first,
  // first + S)), into out (dim floats): AttentionScores / AttentionOutput where Place was told they give ATen's
  // bits, else ATen's baddbmm / bmm, as Meta's code calls them.
  void Attend(const float* q, int64_t first, int64_t S, int64_t heads, float* out) const;

 private:
  torch::Tensor keys_, values_;       // [2 rows, dim]: row r at index r - base_ (copies for ATen's products)
  std::vector<float> keys_t_;         // [dim][2 rows]: the keys transposed, for AttentionScores
  std::vector<int> written_;          // per slot: the variant its row holds in keys_t_ (-1: not written)
  std::vector<int> copied_;           // per slot: the variant its row holds in keys_ / values_ (-1: none)
  std::vector<const float*> source_;  // per slot: where the row's keys and values of that variant lie
  std::vector<const float*> values_in_order_;  // the placed rows' values, window position by position
  int64_t dim_, slots_, base_ = 0;
  bool fma_ = true;  // what the last Place was told
};

}  // namespace encodec
