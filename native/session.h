// A loaded EnCodec TorchScript model and the tensor work done with it. Pure libtorch: no Node-API here.
#pragma once

#include <torch/script.h>

#include <cstdint>
#include <mutex>
#include <string>
#include <vector>

namespace encodec {

class Session {
 public:
  // Loads and checks a model exported by models/export.py. Throws InputError for a file that is
  // missing, corrupt or not this model; c10::Error for libtorch failures.
  Session(const std::string& path, const std::string& device, int threads);
  // Releases the model and empties the addon's tensor-buffer cache, so its memory goes back to the system.
  ~Session();

  const std::string& metadata() const { return metadata_; }
  std::string device() const { return device_.str(); }
  int threads() const { return threads_; }

  // Each clip is a CPU float32 1-D tensor of samples; returns int16 [nQ, nFrames] CPU tensors.
  std::vector<torch::Tensor> Encode(const std::vector<torch::Tensor>& clips, int64_t n_q);
  // Each code block is a CPU int16/int32 [nQ, nFrames] tensor; returns float32 1-D CPU tensors.
  std::vector<torch::Tensor> Decode(const std::vector<torch::Tensor>& codes);
  // Quantized latent vectors (sum of codebook entries) for code blocks: float32 [128, nFrames].
  std::vector<torch::Tensor> Dequantize(const std::vector<torch::Tensor>& codes);

  static constexpr int64_t kCodebookSize = 1024;
  static constexpr int64_t kMaxCodebooks = 32;

 private:
  // Runs `method` on batches of same-shaped inputs (one batch per distinct shape), returning
  // one output per input in input order. `prepare` turns one input into its [1, ...] batch row.
  std::vector<torch::Tensor> RunGrouped(const std::string& method, const std::vector<torch::Tensor>& inputs,
                                        const std::vector<c10::IValue>& extra_args);
  void CheckCodes(const std::vector<torch::Tensor>& codes) const;

  torch::jit::Module module_;
  torch::Device device_;
  int threads_;
  std::string metadata_;
  // One computation per model at a time: concurrent calls would oversubscribe the cores.
  std::mutex mutex_;
};

}  // namespace encodec
