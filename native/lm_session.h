// A loaded EnCodec entropy-coding LM (TorchScript file from exporter/export_lm.py) and the arithmetic coding of
// code segments with it, as Meta's compress_to_file / decompress_from_file do with use_lm=True. Pure libtorch and
// C++: no Node-API here.
#pragma once

#include <torch/csrc/jit/api/module.h>  // not torch/script.h: the .cc files that load or run include it

#include "torch_names.h"

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "session.h"  // ThreadBudget

namespace encodec {

class LmFastModel;
class LmPair;
class FrameModel;

class LmSession {
 public:
  // Loads and checks an LM file. Throws NativeError for a file that is missing, corrupt or not an LM (a codec
  // model file is named as such). `threads`: intra-op threads of the LM's steps. The probabilities (so the coded
  // bytes) depend on it: a stream decodes only with the thread count it was coded with (Meta's tool: torch's).
  // `jobs`: segments Compress codes at once (with 1 intra-op thread), each on a thread of its own; the bytes do not
  // depend on it.
  LmSession(const std::string& path, int threads, int jobs = 1);
  ~LmSession();

  const std::string& metadata() const { return metadata_; }
  int64_t n_q() const { return n_q_; }
  int64_t card() const { return card_; }
  int threads() const { return threads_; }
  int jobs() const { return jobs_; }
  // Whether segments so far ran the C++ step (lm_step.h) rather than the TorchScript one (false before any).
  bool fast_step() const;
  // Whether Compress so far ran every segment's LM on blocks of frames (lm_block.h) (false before any).
  bool block_step() const;
  // Whether the C++ step computes the key/value variants without BLAS (KvPlan::sums; false before any call).
  bool kv_sums() const;
  // Whether some Decompress shared its frames' work with a helper thread (lm_pair.h) that ran part of it.
  bool paired_decode() const;

  // Codes each block (a CPU int16/int32 [K, T] tensor, K <= n_q, values < card) as one segment: fresh LM state
  // and coder, for each frame t the LM step on 1 + codes[:, t - 1] (zeros at t = 0), then the K codes pushed with
  // the quantized CDFs of the step's probabilities. Up to `jobs` segments at once.
  std::vector<std::vector<uint8_t>> Compress(const std::vector<torch::Tensor>& blocks);

  struct Decoded {
    std::vector<torch::Tensor> codes;  // int16 [K, frames[i]] per segment
    std::vector<size_t> offsets;       // where segment i (its prefix) begins in the data
    size_t end = 0;                    // where the last segment ends
  };
  // Decodes consecutive segments from data[0, size): segment i is `prefix_bytes` bytes the caller reads itself
  // (Meta's 48 kHz scale), then the coded stream of frames[i] frames of K codes. Throws StreamError when the
  // stream ends early, holds a value no code's range covers, or does not end the way Meta's encoder ends one.
  // One segment after another: where segment i + 1 begins is known only once segment i is decoded (Meta's format
  // stores no segment lengths).
  Decoded Decompress(const uint8_t* data, size_t size, int64_t K, const std::vector<int64_t>& frames,
                     size_t prefix_bytes);

 private:
  // The step for a segment of `frames` frames of K codes: the C++ step (lm_step.h) on `fast` (from Fast), else the
  // TorchScript module's.
  std::unique_ptr<FrameModel> Frames(int64_t K, int64_t frames, const std::shared_ptr<LmFastModel>& fast,
                                     LmPair* pair = nullptr);
  // The C++ step's model for a segment of `frames` frames, or null where the TorchScript step must run.
  std::shared_ptr<LmFastModel> Fast(int64_t frames);
  // `lanes`: threads that share the segment's frames where the LM runs blocks of frames (lm_block.h).
  std::vector<uint8_t> CompressSegment(const torch::Tensor& codes, size_t index, int lanes);
  torch::Tensor DecompressSegment(const uint8_t* data, size_t size, int64_t K, int64_t frames, size_t index,
                                  size_t* consumed, LmPair* pair);

  torch::jit::Module module_;
  std::string metadata_;
  int64_t n_q_ = 0;
  int64_t card_ = 0;
  int threads_;
  int jobs_;
  ThreadBudget budget_;
  std::once_flag fast_once_;
  std::shared_ptr<LmFastModel> fast_;  // null: the TorchScript step for every segment
  mutable std::mutex fast_mutex_;
  bool fast_used_ = false, fast_fallback_ = false, block_used_ = false, block_fallback_ = false;
  bool paired_decode_ = false;
  std::atomic<bool> pair_busy_{false};  // a Decompress holds its helper thread
};

}  // namespace encodec
