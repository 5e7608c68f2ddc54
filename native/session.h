// A loaded EnCodec TorchScript model and the tensor work done with it. Pure libtorch: no Node-API here.
#pragma once

#include <torch/csrc/jit/api/module.h>  // not torch/script.h: the .cc files that load or run include it

#include "torch_names.h"

#include <algorithm>
#include <condition_variable>
#include <memory>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

namespace encodec {

// Chunked coding of one span of audio or codes (models exported by exporter 1.2+, methods encode_span /
// decode_span): the first `lead` frames are context only, the kept frames run through the LSTM in windows of
// `chunk` frames with `context` frames in front (exporter/encodec_ts.py).
struct SpanGeometry {
  int64_t lead = 0;
  int64_t chunk = 1;
  int64_t context = 0;
};

// Options of one encode/decode call.
struct CallOptions {
  // Set: the call is one span of a chunked encoding/decoding (exactly one input).
  std::optional<SpanGeometry> span;
  // Non-empty: each input is a span with this geometry (one per input, all with one chunk and context), run in
  // one pooled call (encode_spans / decode_spans, exporter 1.5).
  std::vector<SpanGeometry> spans;
  // Intra-op threads for this call, at most the model's; 0: all of them. Calls run concurrently while their
  // threads fit in the model's (the step-serial LSTM keeps only one core busy, so two one-thread calls on two
  // cores finish sooner than two two-thread calls one after the other).
  int threads = 0;
};

// The model's intra-op threads as a budget: a call takes its threads and waits until they are free.
class ThreadBudget {
 public:
  explicit ThreadBudget(int total) : free_(total) {}
  void Acquire(int n);
  void Release(int n);

 private:
  std::mutex mutex_;
  std::condition_variable released_;
  int free_;
};

class Session {
 public:
  // Loads and checks a model exported by exporter/export.py. Throws NativeError for a file that is
  // missing, corrupt or not this model; c10::Error for libtorch failures. `threads` 0: libtorch's default.
  // The session is freed on a thread of its own when the last reference drops (never on a JavaScript thread).
  static std::shared_ptr<Session> Load(const std::string& path, const std::string& device, int threads);
  // Releases the model and empties the addon's tensor-buffer cache, so its memory goes back to the system.
  ~Session();
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  const std::string& metadata() const { return metadata_; }
  std::string device() const { return device_.str(); }
  int threads() const { return threads_; }
  // Audio channels the model codes (1 for encodec_24khz, 2 for encodec_48khz).
  int64_t channels() const { return channels_; }
  // Whether the model codes normalised segments (encode_segments / decode_segments: encodec_48khz), each with
  // its scale; the caller cuts audio into segments and overlap-adds the decoded ones (lib/).
  bool segmented() const { return segmented_; }

  // Each clip is a CPU float32 1-D tensor of samples, planar for several channels (channel 0's samples, then
  // channel 1's); returns int16 [nQ, nFrames] CPU tensors. For a segmented model each clip is one segment and
  // `scales` (required) receives its scale.
  std::vector<torch::Tensor> Encode(const std::vector<torch::Tensor>& clips, int64_t n_q, int threads = 0,
                                    std::vector<float>* scales = nullptr);
  // One span (CPU float32 1-D samples) -> int16 [nQ, nFrames - lead] codes of its kept frames.
  torch::Tensor EncodeSpan(const torch::Tensor& clip, int64_t n_q, const SpanGeometry& span, int threads = 0);
  // Several spans (of one clip or many) in one call, their LSTM windows pooled: as EncodeSpan for each.
  std::vector<torch::Tensor> EncodeSpans(const std::vector<torch::Tensor>& clips, int64_t n_q,
                                         const std::vector<SpanGeometry>& spans, int threads = 0);
  // Each code block is a CPU int16/int32 [nQ, nFrames] tensor; returns float32 1-D CPU tensors (planar for
  // several channels). A segmented model needs each block's scale in `scales`.
  std::vector<torch::Tensor> Decode(const std::vector<torch::Tensor>& codes, int threads = 0,
                                    const std::vector<float>* scales = nullptr);
  // One span of codes [nQ, nFrames] -> float32 1-D audio of its kept frames ((nFrames - lead) * 320 samples).
  torch::Tensor DecodeSpan(const torch::Tensor& codes, const SpanGeometry& span, int threads = 0);
  // The encoder's output before quantization for clips (CPU float32 1-D samples, planar for several channels):
  // float32 [128, nFrames] each. A segmented model's clips are segments, each normalised by its own scale.
  std::vector<torch::Tensor> Latents(const std::vector<torch::Tensor>& clips, int threads = 0);
  // One span (CPU float32 1-D samples) -> float32 [128, nFrames - lead] latents of its kept frames (exporter 1.5+).
  torch::Tensor LatentsSpan(const torch::Tensor& clip, const SpanGeometry& span, int threads = 0);
  // Several spans of codes in one call, their LSTM windows pooled: as DecodeSpan for each.
  std::vector<torch::Tensor> DecodeSpans(const std::vector<torch::Tensor>& codes, const std::vector<SpanGeometry>& spans,
                                         int threads = 0);
  // Quantized latent vectors (sum of codebook entries) for code blocks: float32 [128, nFrames].
  std::vector<torch::Tensor> Dequantize(const std::vector<torch::Tensor>& codes);
  // The residual VQ's codebooks, float32 [codebooks, 1024, dimension] on the CPU (a copy): what Dequantize sums, so
  // that TypeScript can turn stored codes into embeddings at any depth without running the model.
  torch::Tensor Codebooks() const;

  static constexpr int64_t kCodebookSize = 1024;
  // The most any model has (encodec_24khz); a model's own limit is max_codebooks_.
  static constexpr int64_t kMaxCodebooks = 32;
  static constexpr int64_t kHopLength = 320;

 private:
  // Runs `method` on batches of same-shaped inputs (one batch per distinct shape: each input is a row of it),
  // then `extra_args`, with `threads` of the model's (0: all); returns one output per input, in input order.
  std::vector<torch::Tensor> RunGrouped(const std::string& method, const std::vector<torch::Tensor>& inputs,
                                        const std::vector<c10::IValue>& extra_args, int threads);
  // The same for inputs of several tensors each (grouped by the shape of the first, stacked argument by
  // argument); returns, per input, its rows of the method's outputs (a tensor, or each tensor of a tuple).
  std::vector<std::vector<torch::Tensor>> RunBatched(const std::string& method,
                                                     const std::vector<std::vector<torch::Tensor>>& inputs,
                                                     const std::vector<c10::IValue>& extra_args, int threads);
  std::vector<std::vector<torch::Tensor>> RunBatchedUnchecked(const std::string& method,
                                                              const std::vector<std::vector<torch::Tensor>>& inputs,
                                                              const std::vector<c10::IValue>& extra_args, int threads);
  // Runs span method `method` on `input` (a [1, ...] batch) after checking the model has it and the geometry
  // fits its `frames` frames.
  torch::Tensor RunSpan(const std::string& method, const torch::Tensor& input, int64_t frames,
                        const SpanGeometry& span, const std::vector<c10::IValue>& extra_args, int threads);
  // Runs pooled span method `method` on `inputs` (each a [1, ...] batch) with one geometry per input.
  std::vector<torch::Tensor> RunSpans(const std::string& method, const std::vector<torch::Tensor>& inputs,
                                      const std::vector<int64_t>& frames, const std::vector<SpanGeometry>& spans,
                                      const std::vector<c10::IValue>& extra_args, int threads);
  Session(const std::string& path, const std::string& device, int threads);
  // Holds `threads` of the budget (all for 0) for one call and sets the calling thread's intra-op threads.
  class Lease;
  void CheckCodes(const std::vector<torch::Tensor>& codes) const;
  // Throws for span calls on a segmented model.
  void CheckSpanModel() const;
  // [channels, T] views of planar clips, checked against the model's channels (and segment length).
  std::vector<torch::Tensor> ChannelRows(const std::vector<torch::Tensor>& clips) const;

  torch::jit::Module module_;
  torch::Device device_;
  int threads_;
  std::string metadata_;
  int64_t channels_ = 1;
  bool segmented_ = false;
  int64_t max_codebooks_ = kMaxCodebooks;
  int64_t segment_samples_ = 0;  // longest segment of a segmented model
  // Concurrent calls share the model's threads (one call at a time for the default thread count).
  ThreadBudget budget_;
};

// Records the calling thread as a JavaScript thread (the addon's main or worker_threads thread).
void RegisterJsThread();
// Sessions whose destructor ran on a JavaScript thread (reported by runtimeInfo(); 0 unless a bug).
uint64_t SessionsFreedOnJsThread();

}  // namespace encodec
