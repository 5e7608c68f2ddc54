#include "model.h"

#include "addon.h"
#include "errors.h"
#include "tensor_io.h"
#include "workers.h"

namespace encodec {

namespace {
// A batch is held in memory at once; this bounds a single call, not the audio length.
constexpr uint32_t kMaxBatch = 4096;
}  // namespace

Napi::Function EncodecModel::DefineClass(Napi::Env env) {
  return ObjectWrap<EncodecModel>::DefineClass(
      env, "EncodecModel",
      {
          InstanceMethod<&EncodecModel::Encode>("encode"),
          InstanceMethod<&EncodecModel::Decode>("decode"),
          InstanceMethod<&EncodecModel::Dequantize>("dequantize"),
          InstanceMethod<&EncodecModel::Dispose>("dispose"),
          InstanceAccessor<&EncodecModel::Metadata>("metadata"),
          InstanceAccessor<&EncodecModel::Device>("device"),
          InstanceAccessor<&EncodecModel::Threads>("threads"),
          InstanceAccessor<&EncodecModel::Disposed>("disposed"),
      });
}

Napi::Object EncodecModel::NewInstance(Napi::Env env, std::shared_ptr<Session> session) {
  Napi::FunctionReference& constructor = env.GetInstanceData<Addon>()->model_constructor;
  return constructor.New({Napi::External<std::shared_ptr<Session>>::New(env, &session)});
}

EncodecModel::EncodecModel(const Napi::CallbackInfo& info) : Napi::ObjectWrap<EncodecModel>(info) {
  if (info.Length() != 1 || !info[0].IsExternal()) {
    Napi::TypeError::New(info.Env(), "EncodecModel cannot be constructed directly; use load(path, options)")
        .ThrowAsJavaScriptException();
    return;
  }
  session_ = *info[0].As<Napi::External<std::shared_ptr<Session>>>().Data();
}

std::shared_ptr<Session> EncodecModel::Live(const char* method) const {
  if (!session_) {
    throw InputError(ErrorKind::Generic, std::string("cannot call ") + method +
                                             "(): the model was disposed; load it again with load()");
  }
  return session_;
}

// encode(clips: Float32Array[], nQ: number): Promise<{ data: Int16Array, nQ, nFrames }[]>
Napi::Value EncodecModel::Encode(const Napi::CallbackInfo& info) {
  return Guard(info.Env(), [&]() -> Napi::Value {
    auto session = Live("encode");
    std::vector<Napi::Value> clips = ReadInputArray(info[0], "clips", kMaxBatch);
    const int64_t n_q = ReadInteger(info[1], "nQ (number of codebooks)", 1, Session::kMaxCodebooks);
    auto* worker = new EncodeWorker(info.Env(), session, clips, n_q);
    Napi::Promise promise = worker->Promise();
    worker->Queue();
    return promise;
  });
}

Napi::Value EncodecModel::Decode(const Napi::CallbackInfo& info) {
  return Guard(info.Env(), [&]() -> Napi::Value {
    auto session = Live("decode");
    auto* worker = new CodesWorker(info.Env(), session, ReadInputArray(info[0], "codes", kMaxBatch), false);
    Napi::Promise promise = worker->Promise();
    worker->Queue();
    return promise;
  });
}

Napi::Value EncodecModel::Dequantize(const Napi::CallbackInfo& info) {
  return Guard(info.Env(), [&]() -> Napi::Value {
    auto session = Live("dequantize");
    auto* worker = new CodesWorker(info.Env(), session, ReadInputArray(info[0], "codes", kMaxBatch), true);
    Napi::Promise promise = worker->Promise();
    worker->Queue();
    return promise;
  });
}

Napi::Value EncodecModel::Dispose(const Napi::CallbackInfo& info) {
  session_.reset();
  return info.Env().Undefined();
}

Napi::Value EncodecModel::Metadata(const Napi::CallbackInfo& info) {
  return Guard(info.Env(), [&]() -> Napi::Value { return Napi::String::New(info.Env(), Live("metadata")->metadata()); });
}

Napi::Value EncodecModel::Device(const Napi::CallbackInfo& info) {
  return Guard(info.Env(), [&]() -> Napi::Value { return Napi::String::New(info.Env(), Live("device")->device()); });
}

Napi::Value EncodecModel::Threads(const Napi::CallbackInfo& info) {
  return Guard(info.Env(), [&]() -> Napi::Value { return Napi::Number::New(info.Env(), Live("threads")->threads()); });
}

Napi::Value EncodecModel::Disposed(const Napi::CallbackInfo& info) {
  return Napi::Boolean::New(info.Env(), !session_);
}

}  // namespace encodec
