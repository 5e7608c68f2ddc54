// The LM's probabilities for compression, a block of frames at a time. Compression knows every frame's codes
// beforehand, so each layer runs for all the frames of a block at once (what training calls teacher forcing): its
// one-row products read the weights once per few rows instead of once per frame, and the frames of a block are
// shared between threads. Every frame's values are computed as LmFastStep computes them (the same FMA chains, the
// same ATen calls on the same shapes, or batched ones LmFastModel checked to give each row's bits), so the
// quantized CDFs, and the bytes, are the same. Pure libtorch and C++: no Node-API here.
#pragma once

#include "torch_names.h"

#include <cstdint>
#include <memory>
#include <vector>

#include "lanes.h"
#include "lm_step.h"
#include "lm_window.h"

namespace encodec {

class LmBlockStep {
 public:
  static constexpr int64_t kBlock = 64;  // frames per block

  // Whether the model's step is all exact products and the lanes' ATen ops give the eager model's bits (else
  // LmFastStep runs frame by frame). Checks the batched ATen ops once per model.
  static bool Supported(LmFastModel& model);

  // `codes`: the segment's int64 [K, T] codes (kept by the caller until the last block). `lanes`: threads that share
  // each block. The plan must have measured every S up to min(T, past_context) + 1 (KvPlan::Ensure).
  LmBlockStep(std::shared_ptr<LmFastModel> model, int64_t K, int64_t T, const int64_t* codes, int lanes);

  // The quantized CDFs of the next frames (up to kBlock; 0 at the end): int64 [n][K][card] into `cdfs`.
  int64_t Next(int64_t* cdfs);

 private:
  struct Ring {  // one layer's input rows and their key/value variants; row r (frame r - 1; row 0 the zero past)
    std::unique_ptr<float[]> x, kv;
    std::vector<uint32_t> have;
  };
  float* X(Ring& r, int64_t row) { return r.x.get() + (row % cap_) * dim_; }
  float* Kv(Ring& r, int64_t row, int v) { return r.kv.get() + ((row % cap_) * variants_ + v) * 2 * dim_; }

  void Input(int64_t t, float* x);
  void EnterRows(size_t layer, int64_t t0, int64_t a, int64_t b);
  void Collect(size_t layer, int64_t t0, int64_t n);
  void Attend(size_t layer, int lane, int64_t t, const float* q, float* out);
  void Feed(size_t layer, int64_t a, int64_t b);
  void Heads(int64_t a, int64_t b, int64_t* cdfs);

  std::shared_ptr<LmFastModel> model_;
  const int64_t K_, T_, dim_, cap_;
  const int64_t* codes_;
  const int variants_;
  int64_t t_ = 0;
  Lanes lanes_;
  std::vector<Ring> rings_;
  std::vector<std::vector<KvWindow>> windows_;  // [lane][layer]: each lane's own copy of the layer's window
  std::vector<float> cur_, q_, kv_, att_, proj_, hidden_, logits_;
  std::vector<std::vector<std::vector<KvPlan::Pending>>> pending_;  // [lane][variant]
};

}  // namespace encodec
