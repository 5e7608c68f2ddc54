// EncodecModel's members (model_objects.h) and load().
#include "errors.h"
#include "model_objects.h"
#include "promise_worker.h"
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


// encode(clips: Float32Array[], nQ: number, options?: { span?, threads? }): Promise<{ data: Int16Array, nQ, nFrames }[]>
Napi::Value Encode(const Napi::CallbackInfo& info, std::shared_ptr<Session> session) {
  std::vector<Napi::Value> clips = ReadInputArray(info[0], "clips", kMaxBatch);
  const int64_t n_q = ReadInteger(info[1], "nQ (number of codebooks)", 1, Session::kMaxCodebooks);
  return QueueWork<CodecWorker>(info.Env(), session, CodecCall::Encode, clips, n_q, ReadCallOptions(info[2], clips.size()));
}

// latents(clips: Float32Array[], options?: { span?, threads? }): Promise<{ data: Float32Array, dim, nFrames }[]>
Napi::Value Latents(const Napi::CallbackInfo& info, std::shared_ptr<Session> session) {
  std::vector<Napi::Value> clips = ReadInputArray(info[0], "clips", kMaxBatch);
  return QueueWork<CodecWorker>(info.Env(), session, CodecCall::Latents, clips, 0, ReadCallOptions(info[1], clips.size()));
}

// decode(codes: { data, nQ, nFrames, scale? }[], options?: { span?, spans?, threads? }): Promise<Float32Array[]>
Napi::Value Decode(const Napi::CallbackInfo& info, std::shared_ptr<Session> session) {
  std::vector<Napi::Value> blocks = ReadInputArray(info[0], "codes", kMaxBatch);
  return QueueWork<CodecWorker>(info.Env(), session, CodecCall::Decode, blocks, 0, ReadCallOptions(info[1], blocks.size()));
}

// dequantize(codes: { data, nQ, nFrames }[]): Promise<{ data: Float32Array, dim, nFrames }[]>
Napi::Value Dequantize(const Napi::CallbackInfo& info, std::shared_ptr<Session> session) {
  return QueueWork<CodecWorker>(info.Env(), session, CodecCall::Dequantize, ReadInputArray(info[0], "codes", kMaxBatch));
}

// codebooks(): Promise<{ data: Float32Array, count, bins, dim }>, data laid out [count, bins, dim]
Napi::Value Codebooks(const Napi::CallbackInfo& info, std::shared_ptr<Session> session) {
  return QueueWork<CodebooksWorker>(info.Env(), session);
}
}  // namespace

template <>
const EncodecModel::Traits EncodecModel::kTraits = {"EncodecModel", "model", "load", &Addon::model_constructor,
                                                    {{"encode", Encode, false},
                                                     {"decode", Decode, false},
                                                     {"dequantize", Dequantize, false},
                                                     {"latents", Latents, false},
                                                     {"codebooks", Codebooks, false},
                                                     Getter<&Session::device>("device")}};

Napi::Value LoadModelJs(const Napi::CallbackInfo& info) {
  return Guard(info.Env(), [&]() -> Napi::Value {
    const std::string path = ReadPath(info[0], "model path");
    const Napi::Object options = ReadOptions(info[1], "load options");
    std::string device = "cpu";
    Napi::Value d = options.Get("device");
    if (!d.IsUndefined()) {
      if (!d.IsString()) throw NativeError(ErrorKind::Type, "options.device must be 'cpu', 'cuda' or 'cuda:N'");
      device = d.As<Napi::String>().Utf8Value();
    }
    Napi::Value t = options.Get("threads");
    const int threads = t.IsUndefined() ? 0 : static_cast<int>(ReadInteger(t, "options.threads", 0, 1024));
    return QueueWork<LoadWorker<EncodecModel>>(info.Env(), "encodec-native:load",
                                               [=] { return Session::Load(path, device, threads); });
  });
}

}  // namespace encodec
