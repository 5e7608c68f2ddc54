#include "workers.h"

#include "call_threads.h"
#include "model.h"
#include "tensor_io.h"

namespace encodec {

PromiseWorker::PromiseWorker(Napi::Env env, const char* name)
    : Napi::AsyncWorker(env, name), deferred_(Napi::Promise::Deferred::New(env)) {}

void PromiseWorker::Execute() {
  try {
    RunOnCallThread([this] { Run(); });
  } catch (...) {
    failed_ = true;
    error_ = DescribeCurrentException();
  }
}

void PromiseWorker::OnOK() {
  Napi::Env env = Env();
  Napi::HandleScope scope(env);
  if (failed_) {
    deferred_.Reject(MakeJsError(env, error_).Value());
    return;
  }
  try {
    deferred_.Resolve(Result(env));
  } catch (const Napi::Error& e) {
    deferred_.Reject(e.Value());
  } catch (...) {
    deferred_.Reject(MakeJsError(env, DescribeCurrentException()).Value());
  }
}

void PromiseWorker::OnError(const Napi::Error& error) { deferred_.Reject(error.Value()); }

std::vector<Napi::Value> ReadInputArray(const Napi::Value& value, const std::string& what, uint32_t max_length) {
  if (!value.IsArray()) throw NativeError(ErrorKind::Type, what + " must be an array");
  auto array = value.As<Napi::Array>();
  const uint32_t length = array.Length();
  if (length == 0) throw NativeError(ErrorKind::Range, what + " is empty; pass at least one item");
  if (length > max_length) {
    throw NativeError(ErrorKind::Range, what + " has " + std::to_string(length) + " items; at most " +
                                           std::to_string(max_length) + " per call");
  }
  std::vector<Napi::Value> items;
  items.reserve(length);
  for (uint32_t i = 0; i < length; ++i) items.push_back(array.Get(i));
  return items;
}

// ---- load ----

LoadWorker::LoadWorker(Napi::Env env, std::string path, std::string device, int threads)
    : PromiseWorker(env, "encodec-native:load"), path_(std::move(path)), device_(std::move(device)), threads_(threads) {}

void LoadWorker::Run() { session_ = Session::Load(path_, device_, threads_); }

Napi::Value LoadWorker::Result(Napi::Env env) { return EncodecModel::NewInstance(env, session_); }

// ---- encode ----

EncodeWorker::EncodeWorker(Napi::Env env, std::shared_ptr<Session> session, const std::vector<Napi::Value>& clips,
                           int64_t n_q, CallOptions options, bool latents)
    : PromiseWorker(env, latents ? "encodec-native:latents" : "encodec-native:encode"),
      session_(std::move(session)),
      n_q_(n_q),
      options_(options),
      latents_(latents) {
  for (size_t i = 0; i < clips.size(); ++i) {
    clips_.push_back(Borrow(clips[i], "clip " + std::to_string(i)));
  }
}

void EncodeWorker::Run() {
  if (latents_) {
    codes_ = options_.span ? std::vector<torch::Tensor>{session_->LatentsSpan(clips_[0], *options_.span, options_.threads)}
                           : session_->Latents(clips_, options_.threads);
    return;
  }
  if (!options_.spans.empty()) {
    codes_ = session_->EncodeSpans(clips_, n_q_, options_.spans, options_.threads);
    return;
  }
  codes_ = options_.span
               ? std::vector<torch::Tensor>{session_->EncodeSpan(clips_[0], n_q_, *options_.span, options_.threads)}
               : session_->Encode(clips_, n_q_, options_.threads, &scales_);
}

Napi::Value EncodeWorker::Result(Napi::Env env) {
  Napi::Array out = Napi::Array::New(env, codes_.size());
  for (size_t i = 0; i < codes_.size(); ++i) {
    Napi::Object block = Napi::Object::New(env);
    block.Set("data", TensorToTypedArray(env, codes_[i]));
    block.Set(latents_ ? "dim" : "nQ", Napi::Number::New(env, static_cast<double>(codes_[i].size(0))));
    block.Set("nFrames", Napi::Number::New(env, static_cast<double>(codes_[i].size(1))));
    if (i < scales_.size()) block.Set("scale", Napi::Number::New(env, static_cast<double>(scales_[i])));
    out.Set(static_cast<uint32_t>(i), block);
  }
  codes_.clear();
  return out;
}

// ---- decode / dequantize ----

CodesWorker::CodesWorker(Napi::Env env, std::shared_ptr<Session> session, const std::vector<Napi::Value>& blocks,
                         bool latents, CallOptions options)
    : PromiseWorker(env, latents ? "encodec-native:dequantize" : "encodec-native:decode"),
      session_(std::move(session)),
      latents_(latents),
      options_(options) {
  for (size_t i = 0; i < blocks.size(); ++i) {
    codes_.push_back(ViewCodeBlock(blocks[i], "codes block " + std::to_string(i)));  // a copy
    if (!latents_ && session_->segmented()) scales_.push_back(ReadScale(blocks[i], "codes block " + std::to_string(i)));
  }
}

void CodesWorker::Run() {
  if (!options_.spans.empty()) {
    outputs_ = session_->DecodeSpans(codes_, options_.spans, options_.threads);
  } else if (options_.span) {
    outputs_ = {session_->DecodeSpan(codes_[0], *options_.span, options_.threads)};
  } else {
    outputs_ = latents_ ? session_->Dequantize(codes_) : session_->Decode(codes_, options_.threads, &scales_);
  }
}

Napi::Value CodesWorker::Result(Napi::Env env) {
  Napi::Array out = Napi::Array::New(env, outputs_.size());
  for (size_t i = 0; i < outputs_.size(); ++i) {
    if (latents_) {
      Napi::Object block = Napi::Object::New(env);
      block.Set("data", TensorToTypedArray(env, outputs_[i]));
      block.Set("dim", Napi::Number::New(env, static_cast<double>(outputs_[i].size(0))));
      block.Set("nFrames", Napi::Number::New(env, static_cast<double>(outputs_[i].size(1))));
      out.Set(static_cast<uint32_t>(i), block);
    } else {
      out.Set(static_cast<uint32_t>(i), TensorToTypedArray(env, outputs_[i]));
    }
  }
  outputs_.clear();
  return out;
}

// ---- codebooks ----

CodebooksWorker::CodebooksWorker(Napi::Env env, std::shared_ptr<Session> session)
    : PromiseWorker(env, "encodec-native:codebooks"), session_(std::move(session)) {}

void CodebooksWorker::Run() { codebooks_ = session_->Codebooks(); }

Napi::Value CodebooksWorker::Result(Napi::Env env) {
  Napi::Object out = Napi::Object::New(env);
  out.Set("data", TensorToTypedArray(env, codebooks_.reshape({-1})));
  out.Set("count", Napi::Number::New(env, static_cast<double>(codebooks_.size(0))));
  out.Set("bins", Napi::Number::New(env, static_cast<double>(codebooks_.size(1))));
  out.Set("dim", Napi::Number::New(env, static_cast<double>(codebooks_.size(2))));
  codebooks_ = torch::Tensor();
  return out;
}

}  // namespace encodec
