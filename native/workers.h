// Work that runs off the event loop (a libuv pool job that hands it to a call thread, call_threads.h), settling a
// promise when done.
#pragma once

#include <napi.h>
#include "torch_names.h"  // not torch/torch.h nor torch/types.h: see there

#include <memory>
#include <string>
#include <vector>

#include "errors.h"
#include "session.h"
#include "tensor_io.h"

namespace encodec {

// An AsyncWorker settling a promise. Run() executes on a call thread and may throw anything; the
// exception becomes a rejection of the right JS error class. Result() builds the value on the main thread.
class PromiseWorker : public Napi::AsyncWorker {
 public:
  PromiseWorker(Napi::Env env, const char* name);
  Napi::Promise Promise() { return deferred_.Promise(); }

 protected:
  virtual void Run() = 0;
  virtual Napi::Value Result(Napi::Env env) = 0;
  // Keeps a JS value (an input array) alive until the work has finished.
  void KeepAlive(const Napi::Value& value) { keep_alive_.push_back(Napi::Persistent(value.As<Napi::Object>())); }
  // Audio samples read in place (pinned, kept alive) where possible: see BorrowFloat32Array.
  torch::Tensor Borrow(const Napi::Value& value, const std::string& what) {
    return BorrowFloat32Array(value, what, &keep_alive_);
  }

 private:
  void Execute() override;
  void OnOK() override;
  void OnError(const Napi::Error& error) override;

  Napi::Promise::Deferred deferred_;
  std::vector<Napi::ObjectReference> keep_alive_;
  bool failed_ = false;
  ErrorInfo error_;
};

// Loads a model file; resolves with an EncodecModel object.
class LoadWorker : public PromiseWorker {
 public:
  LoadWorker(Napi::Env env, std::string path, std::string device, int threads);

 protected:
  void Run() override;
  Napi::Value Result(Napi::Env env) override;

 private:
  std::string path_, device_;
  int threads_;
  std::shared_ptr<Session> session_;
};

// Encodes clips of samples (or one span, with options.span); resolves with [{ data: Int16Array, nQ, nFrames }],
// or, with `latents`, the encoder's output before quantization: [{ data: Float32Array, dim, nFrames }]; codes come
// each with its `scale` for a segmented model (one clip = one segment).
class EncodeWorker : public PromiseWorker {
 public:
  EncodeWorker(Napi::Env env, std::shared_ptr<Session> session, const std::vector<Napi::Value>& clips, int64_t n_q,
               CallOptions options, bool latents = false);

 protected:
  void Run() override;
  Napi::Value Result(Napi::Env env) override;

 private:
  std::shared_ptr<Session> session_;
  std::vector<torch::Tensor> clips_, codes_;
  std::vector<float> scales_;
  int64_t n_q_;
  CallOptions options_;
  bool latents_;
};

// Decodes code blocks to samples (Float32Array each), or to quantized latents
// ({ data: Float32Array, dim, nFrames } each) when `latents` is set; one span of codes with options.span. For a
// segmented model each block to decode is one segment and carries its `scale`.
class CodesWorker : public PromiseWorker {
 public:
  CodesWorker(Napi::Env env, std::shared_ptr<Session> session, const std::vector<Napi::Value>& blocks, bool latents,
              CallOptions options = {});

 protected:
  void Run() override;
  Napi::Value Result(Napi::Env env) override;

 private:
  std::shared_ptr<Session> session_;
  std::vector<torch::Tensor> codes_, outputs_;
  std::vector<float> scales_;
  bool latents_;
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

// Reads the items of a non-empty JS array of at most `max_length` inputs, or throws a TypeError/RangeError naming
// `what`. Length and items are read once: a Proxy or getter cannot change them between check and use.
std::vector<Napi::Value> ReadInputArray(const Napi::Value& value, const std::string& what, uint32_t max_length);

}  // namespace encodec
