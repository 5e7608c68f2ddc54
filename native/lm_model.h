// The JavaScript-facing LM object: validates arguments and queues the LM workers (lm_workers.h).
#pragma once

#include <napi.h>

#include <memory>

#include "lm_session.h"

namespace encodec {

class EncodecLm : public Napi::ObjectWrap<EncodecLm> {
 public:
  static Napi::Function DefineClass(Napi::Env env);
  // Creates the JS object for a loaded LM (the only way to make one).
  static Napi::Object NewInstance(Napi::Env env, std::shared_ptr<LmSession> session);

  explicit EncodecLm(const Napi::CallbackInfo& info);

 private:
  std::shared_ptr<LmSession> Live(const char* method) const;

  Napi::Value Compress(const Napi::CallbackInfo& info);
  Napi::Value Decompress(const Napi::CallbackInfo& info);
  Napi::Value Dispose(const Napi::CallbackInfo& info);
  Napi::Value Metadata(const Napi::CallbackInfo& info);
  Napi::Value NQ(const Napi::CallbackInfo& info);
  Napi::Value Threads(const Napi::CallbackInfo& info);
  Napi::Value FastStep(const Napi::CallbackInfo& info);
  Napi::Value Disposed(const Napi::CallbackInfo& info);

  // Shared with in-flight workers, so dispose() during a call frees the LM once that call ends.
  std::shared_ptr<LmSession> session_;
};

// loadLm(path, { threads? }) -> Promise<EncodecLm>; threads: intra-op threads of the LM's steps (default 1)
Napi::Value LoadLmJs(const Napi::CallbackInfo& info);

}  // namespace encodec
