// Entry point of the encodec-native addon.
//   load(path, { device, threads }) -> Promise<EncodecModel>
//   loadLm(path, { threads, jobs }) -> Promise<EncodecLm> (entropy-coding LM, see model_objects.h)
//   melSpectrogram(...), melToAudio(...) -> Promise (see spectral.h)
//   setBufferPinner(fn) -> undefined (fn: worker_threads.markAsUntransferable; enables zero-copy inputs)
//   runtimeInfo() -> { torchVersion, cudaAvailable, cudaDeviceCount, parallelInfo, buildConfig, ... }
#include "addon.h"

#include <ATen/Parallel.h>
#include <ATen/Version.h>
#include <torch/cuda.h>
#include <torch/version.h>

#include "call_threads.h"
#include "errors.h"
#include "model_objects.h"
#include "session.h"
#include "spectral.h"
#include "tensor_io.h"

namespace encodec {

Addon::Addon(Napi::Env env, Napi::Object exports) {
  RegisterJsThread();
  Napi::Function model_class = EncodecModel::DefineClass(env);
  model_constructor = Napi::Persistent(model_class);
  Napi::Function lm_class = EncodecLm::DefineClass(env);
  lm_constructor = Napi::Persistent(lm_class);
  DefineAddon(exports, {
                           InstanceValue("load", Napi::Function::New(env, LoadModelJs, "load")),
                           InstanceMethod<&Addon::RuntimeInfo>("runtimeInfo"),
                           InstanceMethod<&Addon::SetBufferPinner>("setBufferPinner"),
                           InstanceValue("EncodecModel", model_class),
                           InstanceValue("EncodecLm", lm_class),
                           InstanceValue("loadLm", Napi::Function::New(env, LoadLmJs, "loadLm")),
                           InstanceValue("melSpectrogram", Napi::Function::New(env, MelSpectrogramJs, "melSpectrogram")),
                           InstanceValue("melToAudio", Napi::Function::New(env, MelToAudioJs, "melToAudio")),
                       });
}

Napi::Value Addon::SetBufferPinner(const Napi::CallbackInfo& info) {
  return Guard(info.Env(), [&]() -> Napi::Value {
    if (!info[0].IsFunction()) {
      throw NativeError(ErrorKind::Type, "setBufferPinner needs a function (worker_threads.markAsUntransferable)");
    }
    // Set once per addon instance: a later, different function could only weaken the pinning (a no-op, say).
    // The same function again (a second copy of lib/addon/native.ts loading this addon) is fine.
    if (!buffer_pinner.IsEmpty()) {
      if (buffer_pinner.Value().StrictEquals(info[0])) return info.Env().Undefined();
      throw NativeError(ErrorKind::Generic, "the buffer pinner is already set");
    }
    buffer_pinner = Napi::Persistent(info[0].As<Napi::Function>());
    return info.Env().Undefined();
  });
}

bool PinArrayBuffer(Napi::Env env, const Napi::Value& buffer) {
  Addon* addon = env.GetInstanceData<Addon>();
  if (addon == nullptr || addon->buffer_pinner.IsEmpty()) return false;
  addon->buffer_pinner.Call({buffer});  // a JS exception propagates as Napi::Error
  return true;
}

Napi::Value Addon::RuntimeInfo(const Napi::CallbackInfo& info) {
  return Guard(info.Env(), [&]() -> Napi::Value {
    Napi::Env env = info.Env();
    Napi::Object out = Napi::Object::New(env);
    out.Set("torchVersion", Napi::String::New(env, TORCH_VERSION));
    const bool cuda = torch::cuda::is_available();
    out.Set("cudaAvailable", Napi::Boolean::New(env, cuda));
    out.Set("cudaDeviceCount", Napi::Number::New(env, cuda ? static_cast<double>(torch::cuda::device_count()) : 0));
    out.Set("defaultThreads", Napi::Number::New(env, at::get_num_threads()));
    out.Set("parallelInfo", Napi::String::New(env, at::get_parallel_info()));
    out.Set("buildConfig", Napi::String::New(env, at::show_config()));
    out.Set("outputsCopied", Napi::Boolean::New(env, OutputsAreCopied()));
    out.Set("inputsCopied", Napi::Boolean::New(env, buffer_pinner.IsEmpty()));
    out.Set("modelsFreedOnJsThread", Napi::Number::New(env, static_cast<double>(SessionsFreedOnJsThread())));
    out.Set("callThreads", Napi::Number::New(env, CallThreadCount()));
    return out;
  });
}

}  // namespace encodec

using EncodecAddon = encodec::Addon;
NODE_API_ADDON(EncodecAddon)
