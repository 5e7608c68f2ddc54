#include "model.h"

#include "addon.h"
#include "errors.h"
#include "tensor_io.h"
#include "workers.h"

namespace encodec {

namespace {
// A batch is held in memory at once; this bounds a single call, not the audio length.
constexpr uint32_t kMaxBatch = 4096;
// Longest span, in frames (10 hours): far beyond any useful call, but keeps the geometry in safe integer range.
constexpr int64_t kMaxSpanFrames = int64_t{75} * 3600 * 10;

// The optional call options { span?: { lead, chunk, context } (frames), threads? } of encode/decode; with a span
// the call takes exactly one input.
CallOptions ReadCallOptions(const Napi::Value& value, size_t inputs) {
  CallOptions options;
  if (value.IsUndefined()) return options;
  if (!value.IsObject() || value.IsArray()) {
    throw NativeError(ErrorKind::Type, "call options must be an object { span?, threads? }");
  }
  auto object = value.As<Napi::Object>();
  Napi::Value threads = object.Get("threads");
  if (!threads.IsUndefined()) options.threads = static_cast<int>(ReadInteger(threads, "options.threads", 0, 1024));
  Napi::Value spans = object.Get("spans");
  if (!spans.IsUndefined()) {
    if (!object.Get("span").IsUndefined()) {
      throw NativeError(ErrorKind::Type, "pass options.span (one span) or options.spans (pooled spans), not both");
    }
    if (!spans.IsArray() || spans.As<Napi::Array>().Length() != inputs) {
      throw NativeError(ErrorKind::Type, "options.spans must be an array of { lead, chunk, context }, one per input (" +
                                            std::to_string(inputs) + ")");
    }
    auto array = spans.As<Napi::Array>();
    for (uint32_t i = 0; i < array.Length(); ++i) {
      Napi::Value item = array.Get(i);
      const std::string what = "options.spans[" + std::to_string(i) + "]";
      if (!item.IsObject() || item.IsArray()) {
        throw NativeError(ErrorKind::Type, what + " must be an object { lead, chunk, context } of frame counts");
      }
      auto geometry = item.As<Napi::Object>();
      SpanGeometry g;
      g.lead = ReadInteger(geometry.Get("lead"), what + ".lead", 0, kMaxSpanFrames);
      g.chunk = ReadInteger(geometry.Get("chunk"), what + ".chunk", 1, kMaxSpanFrames);
      g.context = ReadInteger(geometry.Get("context"), what + ".context", 0, kMaxSpanFrames);
      options.spans.push_back(g);
    }
    return options;
  }
  Napi::Value span = object.Get("span");
  if (span.IsUndefined()) return options;
  if (!span.IsObject() || span.IsArray()) {
    throw NativeError(ErrorKind::Type, "options.span must be an object { lead, chunk, context } of frame counts");
  }
  if (inputs != 1) {
    throw NativeError(ErrorKind::Range, "a span call takes exactly one input, got " + std::to_string(inputs));
  }
  auto geometry = span.As<Napi::Object>();
  SpanGeometry g;
  g.lead = ReadInteger(geometry.Get("lead"), "options.span.lead", 0, kMaxSpanFrames);
  g.chunk = ReadInteger(geometry.Get("chunk"), "options.span.chunk", 1, kMaxSpanFrames);
  g.context = ReadInteger(geometry.Get("context"), "options.span.context", 0, kMaxSpanFrames);
  options.span = g;
  return options;
}
}  // namespace

Napi::Function EncodecModel::DefineClass(Napi::Env env) {
  return ObjectWrap<EncodecModel>::DefineClass(
      env, "EncodecModel",
      {
          InstanceMethod<&EncodecModel::Encode>("encode"),
          InstanceMethod<&EncodecModel::Decode>("decode"),
          InstanceMethod<&EncodecModel::Dequantize>("dequantize"),
          InstanceMethod<&EncodecModel::Latents>("latents"),
          InstanceMethod<&EncodecModel::Codebooks>("codebooks"),
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
    MakeJsError(info.Env(), {ErrorKind::Type, ErrorCode::BadInput,
                             "EncodecModel cannot be constructed directly; use load(path, options)"})
        .ThrowAsJavaScriptException();
    return;
  }
  session_ = *info[0].As<Napi::External<std::shared_ptr<Session>>>().Data();
}

std::shared_ptr<Session> EncodecModel::Live(const char* method) const {
  if (!session_) {
    throw NativeError(ErrorKind::Generic,
                      std::string("cannot call ") + method + "(): the model was disposed; load it again with load()",
                      ErrorCode::Disposed);
  }
  return session_;
}

// encode(clips: Float32Array[], nQ: number, options?: { span?, threads? }): Promise<{ data: Int16Array, nQ, nFrames }[]>
Napi::Value EncodecModel::Encode(const Napi::CallbackInfo& info) {
  return Guard(info.Env(), [&]() -> Napi::Value {
    auto session = Live("encode");
    std::vector<Napi::Value> clips = ReadInputArray(info[0], "clips", kMaxBatch);
    const int64_t n_q = ReadInteger(info[1], "nQ (number of codebooks)", 1, Session::kMaxCodebooks);
    auto* worker = new EncodeWorker(info.Env(), session, clips, n_q, ReadCallOptions(info[2], clips.size()));
    Napi::Promise promise = worker->Promise();
    worker->Queue();
    return promise;
  });
}

// latents(clips: Float32Array[], options?: { span?, threads? }): Promise<{ data: Float32Array, dim, nFrames }[]>
Napi::Value EncodecModel::Latents(const Napi::CallbackInfo& info) {
  return Guard(info.Env(), [&]() -> Napi::Value {
    auto session = Live("latents");
    std::vector<Napi::Value> clips = ReadInputArray(info[0], "clips", kMaxBatch);
    auto* worker = new EncodeWorker(info.Env(), session, clips, 0, ReadCallOptions(info[1], clips.size()), true);
    Napi::Promise promise = worker->Promise();
    worker->Queue();
    return promise;
  });
}

Napi::Value EncodecModel::Decode(const Napi::CallbackInfo& info) {
  return Guard(info.Env(), [&]() -> Napi::Value {
    auto session = Live("decode");
    std::vector<Napi::Value> blocks = ReadInputArray(info[0], "codes", kMaxBatch);
    auto* worker = new CodesWorker(info.Env(), session, blocks, false, ReadCallOptions(info[1], blocks.size()));
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

// codebooks(): Promise<{ data: Float32Array, count, bins, dim }>, data laid out [count, bins, dim]
Napi::Value EncodecModel::Codebooks(const Napi::CallbackInfo& info) {
  return Guard(info.Env(), [&]() -> Napi::Value {
    auto* worker = new CodebooksWorker(info.Env(), Live("codebooks"));
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
