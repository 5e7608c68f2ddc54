// The addon instance: per-environment state (worker threads each get their own).
#pragma once

#include <napi.h>

namespace encodec {

class Addon : public Napi::Addon<Addon> {
 public:
  Addon(Napi::Env env, Napi::Object exports);
  Napi::FunctionReference model_constructor;

 private:
  Napi::Value Load(const Napi::CallbackInfo& info);
  Napi::Value RuntimeInfo(const Napi::CallbackInfo& info);
};

}  // namespace encodec
