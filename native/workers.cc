#include "workers.h"

#include "model.h"
#include "tensor_io.h"

namespace encodec {

PromiseWorker::PromiseWorker(Napi::Env env, const char* name)
    : Napi::AsyncWorker(env, name), deferred_(Napi::Promise::Deferred::New(env)) {}

void PromiseWorker::Execute() {
  try {
    Run();
  } catch (...) {
    failed_ = true;
    error_message_ = DescribeCurrentException(&error_kind_);
  }
}

void PromiseWorker::OnOK() {
  Napi::Env env = Env();
  Napi::HandleScope scope(env);
  if (failed_) {
    deferred_.Reject(MakeJsError(env, error_kind_, error_message_).Value());
    return;
  }
  try {
    deferred_.Resolve(Result(env));
  } catch (const Napi::Error& e) {
    deferred_.Reject(e.Value());
  } catch (...) {
    ErrorKind kind = ErrorKind::Generic;
    std::string message = DescribeCurrentException(&kind);
    deferred_.Reject(MakeJsError(env, kind, message).Value());
  }
}

void PromiseWorker::OnError(const Napi::Error& error) { deferred_.Reject(error.Value()); }

Napi::Array ReadInputArray(const Napi::Value& value, const std::string& what, uint32_t max_length) {
  if (!value.IsArray()) throw InputError(ErrorKind::Type, what + " must be an array");
  auto array = value.As<Napi::Array>();
  if (array.Length() == 0) throw InputError(ErrorKind::Range, what + " is empty; pass at least one item");
  if (array.Length() > max_length) {
    throw InputError(ErrorKind::Range, what + " has " + std::to_string(array.Length()) + " items; at most " +
                                           std::to_string(max_length) + " per call");
  }
  return array;
}

// ---- load ----

LoadWorker::LoadWorker(Napi::Env env, std::string path, std::string device, int threads)
    : PromiseWorker(env, "encodec-native:load"), path_(std::move(path)), device_(std::move(device)), threads_(threads) {}

void LoadWorker::Run() { session_ = std::make_shared<Session>(path_, device_, threads_); }

Napi::Value LoadWorker::Result(Napi::Env env) { return EncodecModel::NewInstance(env, session_); }

// ---- encode ----

EncodeWorker::EncodeWorker(Napi::Env env, std::shared_ptr<Session> session, const Napi::Array& clips, int64_t n_q)
    : PromiseWorker(env, "encodec-native:encode"), session_(std::move(session)), n_q_(n_q) {
  for (uint32_t i = 0; i < clips.Length(); ++i) {
    Napi::Value clip = clips.Get(i);
    clips_.push_back(ViewFloat32Array(clip, "clip " + std::to_string(i)));
    KeepAlive(clip);
  }
}

void EncodeWorker::Run() { codes_ = session_->Encode(clips_, n_q_); }

Napi::Value EncodeWorker::Result(Napi::Env env) {
  Napi::Array out = Napi::Array::New(env, codes_.size());
  for (size_t i = 0; i < codes_.size(); ++i) {
    Napi::Object block = Napi::Object::New(env);
    block.Set("data", TensorToTypedArray(env, codes_[i]));
    block.Set("nQ", Napi::Number::New(env, static_cast<double>(codes_[i].size(0))));
    block.Set("nFrames", Napi::Number::New(env, static_cast<double>(codes_[i].size(1))));
    out.Set(static_cast<uint32_t>(i), block);
  }
  codes_.clear();
  return out;
}

// ---- decode / dequantize ----

CodesWorker::CodesWorker(Napi::Env env, std::shared_ptr<Session> session, const Napi::Array& blocks, bool latents)
    : PromiseWorker(env, latents ? "encodec-native:dequantize" : "encodec-native:decode"),
      session_(std::move(session)),
      latents_(latents) {
  for (uint32_t i = 0; i < blocks.Length(); ++i) {
    Napi::Object data;
    codes_.push_back(ViewCodeBlock(blocks.Get(i), "codes block " + std::to_string(i), &data));
    KeepAlive(data);
  }
}

void CodesWorker::Run() { outputs_ = latents_ ? session_->Dequantize(codes_) : session_->Decode(codes_); }

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

}  // namespace encodec
