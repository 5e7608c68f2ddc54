// One layer's attention window as the LM's C++ steps keep it (lm_step.h frame by frame, lm_block.h in blocks of
// frames), and the attention over it, op for op as Meta's multi_head_attention_forward computes it for one query.
// Pure libtorch and C++: no Node-API here.
#pragma once

#include "torch_names.h"

#include "lm_pair.h"

#include <cstdint>
#include <vector>

namespace encodec {

// One-column products of the attention, as OpenBLAS's kernel computes them (FMA chains), for S rows:
// scores[h][j] = 0 + sum_i keys[j][i * heads + h] q[h * hd + i] (keys[j]: row j's D keys in head-minor order, see
// PermuteKeys), and out[h * hd + i] = 0 + sum_j values[j][h * hd + i] weights[h][j] (values[j]: row j's D values,
// wherever it lies). Each output's sum is one chain in the order given; the loops run many chains side by side
// (eight heads in one register, blocks of eight rows or outputs), which the chains' latency needs.
// Only on CPUs with AVX2 and FMA.
// AttentionScores of rows [begin, end) only (end -1: S) where AttentionSplits.
void AttentionScores(const float* q, const float* const* keys, int64_t S, int64_t heads, int64_t hd, float* scores,
                     int64_t begin = 0, int64_t end = -1);
void AttentionOutput(const float* weights, const float* const* values, int64_t S, int64_t heads, int64_t hd,
                     float* out);
// Whether the attention's chains can be split between threads (AttentionScores by rows, AttentionOutputRange by
// blocks of 8 outputs): 8 heads of at most 128.
bool AttentionSplits(int64_t heads, int64_t hd);
// AttentionOutput in parts: wt from OutputWeights (the weights of heads [h0, h1) row by row), then the blocks of 8
// outputs [begin, end) (end = heads * hd / 8 includes the outputs past the last block), whose heads wt holds.
void OutputWeights(const float* weights, int64_t S, int64_t heads, std::vector<float>* wt, int64_t h0, int64_t h1);
void AttentionOutputRange(const float* weights, const float* wt, const float* const* values, int64_t S,
                          int64_t heads, int64_t hd, float* out, int64_t begin, int64_t end);
// Meta's query scaling, q / sqrt(head_dim), as ATen divides a float tensor by that scalar (the scalar rounded to
// float, one IEEE division per element): D floats.
void ScaleQuery(const float* q, int64_t D, int64_t hd, float* out);
// A key row in the order AttentionScores reads: out[i * heads + h] = key[h * hd + i].
void PermuteKeys(const float* key, int64_t heads, int64_t hd, float* out);
// A row's key/value projection (2 dim floats: keys, then values) stored as KvWindow reads it: the keys permuted
// (PermuteKeys), the values as they are. Each row and variant is stored once and read by every window it falls in.
void StoreKv(const float* kv, int64_t dim, int64_t heads, float* out);
// StoreKv of the outputs [begin, end) of kv only.
void StoreKvRange(const float* kv, int64_t dim, int64_t heads, int64_t begin, int64_t end, float* out);

// The keys and values of the rows a frame attends to, each row in the key/value variant the eager model's S-row
// product gives it at its position (KvPlan in lm_kv_plan.h). The FMA chains read each row where the caller keeps it
// (StoreKv's layout), so placing a row is a pointer; ATen's products (where the chains do not give its bits) read
// copies of the rows in Meta's layout, made only for them.
class KvWindow {
 public:
  // `rows`: the widest window; `slots`: the rows' ring (row r in slot r % slots); `heads`: the attention's heads.
  KvWindow(int64_t rows, int64_t dim, int64_t slots, int64_t heads);

  // A new row took `slot`: what the window copied of the slot's old row is stale.
  void Forget(int64_t slot) { copied_[slot] = -1; }
  // Places rows [first, first + S), row first + j in variant cls[j], read from the caller's ring `kv`, where row r's
  // variant v lies at kv + ((r % slots) * variants + v) * 2 dim in StoreKv's layout (it must stay there until
  // Attend has run). `fma`: whether Attend will run the FMA chains (KvPlan::AttentionExact), else ATen's products,
  // which need copies of the rows.
  void Place(int64_t first, int64_t S, const uint8_t* cls, const float* kv, int variants, bool fma);
  // The attention of the query row `q` (its projection, before scaling) over the rows Place placed last ([first,
  // first + S)), into out (dim floats): ScaleQuery, AttentionScores and AttentionOutput where Place was told they
  // give ATen's bits, else ATen's division, baddbmm and bmm, as Meta's code calls them.
  // `pair` (may be null): the two threads that share the chains.
  void Attend(const float* q, int64_t first, int64_t S, float* out, LmPair* pair = nullptr);

 private:
  torch::Tensor keys_, values_;  // [2 rows, dim]: row r at index r - base_ (copies for ATen's products)
  std::vector<int> copied_;      // per slot: the variant its row holds in keys_ / values_ (-1: none)
  std::vector<const float*> keys_in_order_, values_in_order_;  // the placed rows', window position by position
  std::vector<float> query_;     // the scaled query
  std::vector<float> scores_;    // [heads][rows]
  std::vector<float> weights_;         // [2][heads][rows]: the softmax of the scores (one copy per part)
  std::vector<float> weights_t_[2];    // the same row by row (OutputWeights), per part
  int64_t dim_, slots_, heads_, base_ = 0;
  bool fma_ = true;  // what the last Place was told
};

}  // namespace encodec
