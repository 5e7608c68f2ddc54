// The codec model's work off the event loop (promise_worker.h): encoding, decoding, dequantizing, codebooks.
#pragma once

#include <napi.h>
#include "torch_names.h"  // not torch/torch.h nor torch/types.h: see there

#include <memory>
#include <vector>

#include "promise_worker.h"
#include "session.h"

namespace encodec {

// The four calls on batches of inputs.
enum class CodecCall {
  Encode,      // clips of samples (or one span, options.span; or pooled spans, options.spans) -> [{ data: Int16Array,
               // nQ, nFrames }], each with its `scale` for a segmented model (one clip = one segment)
  Latents,     // clips (or one span) -> the encoder's output before quantization, [{ data: Float32Array, dim, nFrames }]
  Decode,      // code blocks (or spans of codes) -> samples, Float32Array each; for a segmented model each block is one
               // segment and carries its `scale`
  Dequantize,  // code blocks -> quantized latents, [{ data: Float32Array, dim, nFrames }]
};

// Runs one CodecCall on the session; its inputs are read (and checked) by the constructor, on the JS thread.
class CodecWorker : public PromiseWorker {
 public:
  CodecWorker(Napi::Env env, std::shared_ptr<Session> session, CodecCall call, const std::vector<Napi::Value>& inputs,
              int64_t n_q = 0, CallOptions options = {});

 protected:
  void Run() override;
  Napi::Value Result(Napi::Env env) override;

 private:
  std::shared_ptr<Session> session_;
  CodecCall call_;
  std::vector<torch::Tensor> inputs_, outputs_;
  std::vector<float> scales_;  // the inputs' (Decode) or the outputs' (Encode) segment scales
  int64_t n_q_;
  CallOptions options_;
};

// Copies the model's codebooks (Session::Codebooks); resolves with { data: Float32Array, count, bins, dim }.
class CodebooksWorker : public PromiseWorker {
 public:
  CodebooksWorker(Napi::Env env, std::shared_ptr<Session> session);

 protected:
  void Run() override;
  Napi::Value Result(Napi::Env env) override;

 private:
  std::shared_ptr<Session> session_;
  torch::Tensor codebooks_;
};

}  // namespace encodec
