// How every JS call queues its work: a promise worker runs off the event loop (a libuv pool job that hands it to a
// call thread, call_threads.h) and settles a promise when done. Codec, LM and spectral calls all go through
// QueueWork; the load calls through LoadWorker.
#pragma once

#include <napi.h>
#include "torch_names.h"  // not torch/torch.h nor torch/types.h: see there

#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "errors.h"
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

// Makes a Worker (its constructor reads and checks the JS arguments, on this thread, throwing before anything is
// queued) and queues it; returns its promise.
template <typename Worker, typename... Args>
Napi::Promise QueueWork(Napi::Env env, Args&&... args) {
  auto* worker = new Worker(env, std::forward<Args>(args)...);
  Napi::Promise promise = worker->Promise();
  worker->Queue();
  return promise;
}

// Loads a session with `load` off the event loop; resolves with the JS object around it (Object::NewInstance,
// model_objects.h).
template <typename Object>
class LoadWorker : public PromiseWorker {
 public:
  using Loaded = typename Object::SessionType;
  LoadWorker(Napi::Env env, const char* name, std::function<std::shared_ptr<Loaded>()> load)
      : PromiseWorker(env, name), load_(std::move(load)) {}

 protected:
  void Run() override { session_ = load_(); }
  Napi::Value Result(Napi::Env env) override { return Object::NewInstance(env, std::move(session_)); }

 private:
  std::function<std::shared_ptr<Loaded>()> load_;
  std::shared_ptr<Loaded> session_;
};

}  // namespace encodec
