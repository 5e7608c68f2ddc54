#include "lm_model.h"

#include "addon.h"
#include "errors.h"
#include "lm_workers.h"
#include "tensor_io.h"
#include "workers.h"

namespace encodec {

namespace {
// Segments per call: a 48 kHz file has one per second (ten hours: 36,000).
constexpr uint32_t kMaxSegments = 1u << 22;
// Frames per segment (the 24 kHz model codes a whole file as one segment: ten hours at 75 frames/s).
constexpr int64_t kMaxSegmentFrames = int64_t{150} * 3600 * 10;
}  // namespace

Napi::Function EncodecLm::DefineClass(Napi::Env env) {
  return ObjectWrap<EncodecLm>::DefineClass(env, "EncodecLm",
                                            {
                                                InstanceMethod<&EncodecLm::Compress>("compress"),
                                                InstanceMethod<&EncodecLm::Decompress>("decompress"),
                                                InstanceMethod<&EncodecLm::Dispose>("dispose"),
                                                InstanceAccessor<&EncodecLm::Metadata>("metadata"),
                                                InstanceAccessor<&EncodecLm::NQ>("nQ"),
                                                InstanceAccessor<&EncodecLm::Threads>("threads"),
                                                InstanceAccessor<&EncodecLm::FastStep>("fastStep"),
                                                InstanceAccessor<&EncodecLm::Disposed>("disposed"),
                                            });
}

Napi::Object EncodecLm::NewInstance(Napi::Env env, std::shared_ptr<LmSession> session) {
  Napi::FunctionReference& constructor = env.GetInstanceData<Addon>()->lm_constructor;
  return constructor.New({Napi::External<std::shared_ptr<LmSession>>::New(env, &session)});
}

EncodecLm::EncodecLm(const Napi::CallbackInfo& info) : Napi::ObjectWrap<EncodecLm>(info) {
  if (info.Length() != 1 || !info[0].IsExternal()) {
    MakeJsError(info.Env(), {ErrorKind::Type, ErrorCode::BadInput,
                             "EncodecLm cannot be constructed directly; use loadLm(path, options)"})
        .ThrowAsJavaScriptException();
    return;
  }
  session_ = *info[0].As<Napi::External<std::shared_ptr<LmSession>>>().Data();
}

std::shared_ptr<LmSession> EncodecLm::Live(const char* method) const {
  if (!session_) {
    throw NativeError(ErrorKind::Generic, std::string("cannot call ") + method +
                                             "(): the LM was disposed; load it again with loadLm()", ErrorCode::Disposed);
  }
  return session_;
}

// compress(blocks: { data: Int16Array | Int32Array, nQ, nFrames }[]): Promise<Uint8Array[]>
Napi::Value EncodecLm::Compress(const Napi::CallbackInfo& info) {
  return Guard(info.Env(), [&]() -> Napi::Value {
    auto session = Live("compress");
    auto* worker = new LmCompressWorker(info.Env(), session, ReadInputArray(info[0], "codes", kMaxSegments));
    Napi::Promise promise = worker->Promise();
    worker->Queue();
    return promise;
  });
}

// decompress(data: Uint8Array, nQ: number, frames: number[], prefixBytes: number)
//   : Promise<{ codes: { data: Int16Array, nQ, nFrames }[], offsets: number[], end: number }>
Napi::Value EncodecLm::Decompress(const Napi::CallbackInfo& info) {
  return Guard(info.Env(), [&]() -> Napi::Value {
    auto session = Live("decompress");
    if (!info[0].IsTypedArray() || info[0].As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array) {
      throw NativeError(ErrorKind::Type, "data must be a Uint8Array (or Buffer) of coded bytes");
    }
    auto array = info[0].As<Napi::Uint8Array>();
    if (array.ArrayBuffer().IsDetached()) {
      throw NativeError(ErrorKind::Type, "data's ArrayBuffer is detached (transferred or freed); pass a live array");
    }
    const int64_t n_q = ReadInteger(info[1], "nQ (number of codebooks)", 1, session->n_q());
    std::vector<int64_t> frames;
    for (const Napi::Value& f : ReadInputArray(info[2], "frames", kMaxSegments)) {
      frames.push_back(ReadInteger(f, "frames per segment", 1, kMaxSegmentFrames));
    }
    const int64_t prefix = ReadInteger(info[3], "prefixBytes", 0, 64);
    // Copied: coded files are small (kilobytes per second of audio), and JS may detach the buffer meanwhile.
    std::vector<uint8_t> data(array.Data(), array.Data() + array.ElementLength());
    auto* worker = new LmDecompressWorker(info.Env(), session, std::move(data), n_q, std::move(frames),
                                          static_cast<size_t>(prefix));
    Napi::Promise promise = worker->Promise();
    worker->Queue();
    return promise;
  });
}

Napi::Value EncodecLm::Dispose(const Napi::CallbackInfo& info) {
  session_.reset();
  return info.Env().Undefined();
}

Napi::Value EncodecLm::Metadata(const Napi::CallbackInfo& info) {
  return Guard(info.Env(), [&]() -> Napi::Value { return Napi::String::New(info.Env(), Live("metadata")->metadata()); });
}

Napi::Value EncodecLm::NQ(const Napi::CallbackInfo& info) {
  return Guard(info.Env(), [&]() -> Napi::Value {
    return Napi::Number::New(info.Env(), static_cast<double>(Live("nQ")->n_q()));
  });
}

Napi::Value EncodecLm::Threads(const Napi::CallbackInfo& info) {
  return Guard(info.Env(), [&]() -> Napi::Value { return Napi::Number::New(info.Env(), Live("threads")->threads()); });
}

Napi::Value EncodecLm::FastStep(const Napi::CallbackInfo& info) {
  return Guard(info.Env(), [&]() -> Napi::Value { return Napi::Boolean::New(info.Env(), Live("fastStep")->fast_step()); });
}

Napi::Value EncodecLm::Disposed(const Napi::CallbackInfo& info) {
  return Napi::Boolean::New(info.Env(), !session_);
}

Napi::Value LoadLmJs(const Napi::CallbackInfo& info) {
  return Guard(info.Env(), [&]() -> Napi::Value {
    if (!info[0].IsString()) throw NativeError(ErrorKind::Type, "LM path must be a string");
    std::string path = info[0].As<Napi::String>().Utf8Value();
    if (path.empty()) throw NativeError(ErrorKind::Type, "LM path is empty");
    int threads = 1;
    if (!info[1].IsUndefined()) {
      if (!info[1].IsObject()) throw NativeError(ErrorKind::Type, "loadLm options must be an object");
      Napi::Value t = info[1].As<Napi::Object>().Get("threads");
      if (!t.IsUndefined()) threads = static_cast<int>(ReadInteger(t, "options.threads", 1, 1024));
    }
    auto* worker = new LmLoadWorker(info.Env(), path, threads);
    Napi::Promise promise = worker->Promise();
    worker->Queue();
    return promise;
  });
}

}  // namespace encodec
