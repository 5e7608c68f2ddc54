// The addon instance: per-environment state (worker threads each get their own).
#pragma once

#include <napi.h>

namespace encodec {

class Addon : public Napi::Addon<Addon> {
 public:
  Addon(Napi::Env env, Napi::Object exports);
  Napi::FunctionReference model_constructor;  // EncodecModel (model_objects.h)
  Napi::FunctionReference lm_constructor;  // EncodecLm (model_objects.h)
  // Node's worker_threads.markAsUntransferable, handed over by lib/addon/native.ts (setBufferPinner): a pinned
  // ArrayBuffer cannot be detached, so work off the event loop may read it in place. Empty until set.
  Napi::FunctionReference buffer_pinner;

 private:
  Napi::Value RuntimeInfo(const Napi::CallbackInfo& info);
  Napi::Value SetBufferPinner(const Napi::CallbackInfo& info);
};

// Pins `buffer` (an ArrayBuffer or SharedArrayBuffer) against detaching with the pinner set by
// setBufferPinner. Returns false, doing nothing, when no pinner was set.
bool PinArrayBuffer(Napi::Env env, const Napi::Value& buffer);

}  // namespace encodec
