#include "lm_workers.h"

#include <cstring>

#include "arith_coder.h"
#include "tensor_io.h"

namespace encodec {

// ---- compress ----

LmCompressWorker::LmCompressWorker(Napi::Env env, std::shared_ptr<LmSession> session,
                                   const std::vector<Napi::Value>& blocks)
    : PromiseWorker(env, "encodec-native:lm-compress"), session_(std::move(session)) {
  for (size_t i = 0; i < blocks.size(); ++i) {
    blocks_.push_back(ViewCodeBlock(blocks[i], "codes block " + std::to_string(i)));  // a copy
  }
}

void LmCompressWorker::Run() { payloads_ = session_->Compress(blocks_); }

Napi::Value LmCompressWorker::Result(Napi::Env env) {
  Napi::Array out = Napi::Array::New(env, payloads_.size());
  for (size_t i = 0; i < payloads_.size(); ++i) {
    const std::vector<uint8_t>& bytes = payloads_[i];
    Napi::ArrayBuffer buffer = Napi::ArrayBuffer::New(env, bytes.size());
    if (!bytes.empty()) std::memcpy(buffer.Data(), bytes.data(), bytes.size());
    out.Set(static_cast<uint32_t>(i), Napi::Uint8Array::New(env, bytes.size(), buffer, 0));
  }
  payloads_.clear();
  return out;
}

// ---- decompress ----

LmDecompressWorker::LmDecompressWorker(Napi::Env env, std::shared_ptr<LmSession> session, std::vector<uint8_t> data,
                                       int64_t n_q, std::vector<int64_t> frames, size_t prefix_bytes)
    : PromiseWorker(env, "encodec-native:lm-decompress"),
      session_(std::move(session)),
      data_(std::move(data)),
      n_q_(n_q),
      frames_(std::move(frames)),
      prefix_bytes_(prefix_bytes) {}

void LmDecompressWorker::Run() {
  try {
    decoded_ = session_->Decompress(data_.data(), data_.size(), n_q_, frames_, prefix_bytes_);
  } catch (const StreamError& e) {
    stream_error_ = e.what();  // rejected with a code in Result(), where JS values can be made
  }
  data_.clear();
  data_.shrink_to_fit();
}

Napi::Value LmDecompressWorker::Result(Napi::Env env) {
  if (!stream_error_.empty()) {
    Napi::Error error = Napi::Error::New(env, "cannot decode the LM-coded stream: " + stream_error_);
    error.Set("code", Napi::String::New(env, "ECDC_DESYNC"));
    throw error;
  }
  Napi::Object out = Napi::Object::New(env);
  Napi::Array codes = Napi::Array::New(env, decoded_.codes.size());
  Napi::Array offsets = Napi::Array::New(env, decoded_.offsets.size());
  for (size_t i = 0; i < decoded_.codes.size(); ++i) {
    codes.Set(static_cast<uint32_t>(i), BlockToJs(env, decoded_.codes[i], "nQ"));
    offsets.Set(static_cast<uint32_t>(i), Napi::Number::New(env, static_cast<double>(decoded_.offsets[i])));
  }
  out.Set("codes", codes);
  out.Set("offsets", offsets);
  out.Set("end", Napi::Number::New(env, static_cast<double>(decoded_.end)));
  decoded_ = {};
  return out;
}

}  // namespace encodec
