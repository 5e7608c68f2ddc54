// Entry point of the encodec-native addon.
//   load(path, { device, threads }) -> Promise<EncodecModel>
//   loadLm(path, { threads }) -> Promise<EncodecLm> (entropy-coding LM, see lm_model.h)
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
#include "lm_model.h"
#include "model.h"
#include "session.h"
#include "spectral.h"
#include "tensor_io.h"
#include "workers.h"

namespace encodec {

Addon::Addon(Napi::Env env, Napi::Object exports) {
  RegisterJsThread();
  Napi::Function model_class = EncodecModel::DefineClass(env);
  model_constructor = Napi::Persistent(model_class);
  Napi::Function lm_class = EncodecLm::DefineClass(env);
  lm_constructor = Napi::Persistent(lm_class);
  DefineAddon(exports, {
                           InstanceMethod<&Addon::Load>("load"),
                           InstanceMethod<&Addon::RuntimeInfo>("runtimeInfo"),
                           InstanceMethod<&Addon::SetBufferPinner>("setBufferPinner"),
                           InstanceValue("EncodecModel", model_class),
                           InstanceValue("EncodecLm", lm_class),
                           InstanceValue("loadLm", Napi::Function::New(env, LoadLmJs, "loadLm")),
                           InstanceValue("melSpectrogram", Napi::Function::New(env, MelSpectrogramJs, "melSpectrogram")),
                           InstanceValue("melToAudio", Napi::Function::New(env, MelToAudioJs, "melToAudio")),
                       });
}

Napi::Value Addon::Load(const Napi::CallbackInfo& info) {
  return Guard(info.Env(), [&]() -> Napi::Value {
    if (!info[0].IsString()) throw NativeError(ErrorKind::Type, "model path must be a string");
    std::string path = info[0].As<Napi::String>().Utf8Value();
    if (path.empty()) throw NativeError(ErrorKind::Type, "model path is empty");
    std::string device = "cpu";
    int threads = 0;
    if (!info[1].IsUndefined()) {
      if (!info[1].IsObject()) throw NativeError(ErrorKind::Type, "load options must be an object");
      auto options = info[1].As<Napi::Object>();
      Napi::Value d = options.Get("device");
      if (!d.IsUndefined()) {
        if (!d.IsString()) throw NativeError(ErrorKind::Type, "options.device must be 'cpu', 'cuda' or 'cuda:N'");
        device = d.As<Napi::String>().Utf8Value();
      }
      Napi::Value t = options.Get("threads");
      if (!t.IsUndefined()) threads = static_cast<int>(ReadInteger(t, "options.threads", 0, 1024));
    }
    auto* worker = new LoadWorker(info.Env(), path, device, threads);
    Napi::Promise promise = worker->Promise();
    worker->Queue();
    return promise;
  });
}

Napi::Value Addon::SetBufferPinner(const Napi::CallbackInfo& info) {
  return Guard(info.Env(), [&]() -> Napi::Value {
    if (!info[0].IsFunction()) {
      throw NativeError(ErrorKind::Type, "setBufferPinner needs a function (worker_threads.markAsUntransferable)");
    }
    // Set once per addon instance: a later, different function could only weaken the pinning (a no-op, say).
    // The same function again (a second copy of lib/codec/native.ts loading this addon) is fine.
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
