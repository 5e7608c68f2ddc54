// The JavaScript-facing model object: a thin wrapper that validates arguments and queues workers.
#pragma once

#include <napi.h>

#include <memory>

#include "session.h"

namespace encodec {

class EncodecModel : public Napi::ObjectWrap<EncodecModel> {
 public:
  static Napi::Function DefineClass(Napi::Env env);
  // Creates the JS object for a loaded session (the only way to make one).
  static Napi::Object NewInstance(Napi::Env env, std::shared_ptr<Session> session);

  explicit EncodecModel(const Napi::CallbackInfo& info);

 private:
  // Returns the session, or throws if dispose() was called.
  std::shared_ptr<Session> Live(const char* method) const;

  Napi::Value Encode(const Napi::CallbackInfo& info);
  Napi::Value Decode(const Napi::CallbackInfo& info);
  Napi::Value Dequantize(const Napi::CallbackInfo& info);
  Napi::Value Codebooks(const Napi::CallbackInfo& info);
  Napi::Value Latents(const Napi::CallbackInfo& info);
  Napi::Value Dispose(const Napi::CallbackInfo& info);
  Napi::Value Metadata(const Napi::CallbackInfo& info);
  Napi::Value Device(const Napi::CallbackInfo& info);
  Napi::Value Threads(const Napi::CallbackInfo& info);
  Napi::Value Disposed(const Napi::CallbackInfo& info);

  // Shared with in-flight workers, so dispose() during a call frees the model once that call ends.
  std::shared_ptr<Session> session_;
};

}  // namespace encodec
