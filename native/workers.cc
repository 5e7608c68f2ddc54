#include "workers.h"

#include "tensor_io.h"

namespace encodec {

// ---- encode, latents, decode, dequantize ----

namespace {
const char* CallName(CodecCall call) {
  switch (call) {
    case CodecCall::Encode: return "encodec-native:encode";
    case CodecCall::Latents: return "encodec-native:latents";
    case CodecCall::Decode: return "encodec-native:decode";
    case CodecCall::Dequantize: return "encodec-native:dequantize";
  }
  return "encodec-native:call";
}
}  // namespace

CodecWorker::CodecWorker(Napi::Env env, std::shared_ptr<Session> session, CodecCall call,
                         const std::vector<Napi::Value>& inputs, int64_t n_q, CallOptions options)
    : PromiseWorker(env, CallName(call)), session_(std::move(session)), call_(call), n_q_(n_q), options_(options) {
  const bool audio = call == CodecCall::Encode || call == CodecCall::Latents;
  for (size_t i = 0; i < inputs.size(); ++i) {
    if (audio) {
      inputs_.push_back(Borrow(inputs[i], "clip " + std::to_string(i)));
      continue;
    }
    inputs_.push_back(ViewCodeBlock(inputs[i], "codes block " + std::to_string(i)));  // a copy
    if (call == CodecCall::Decode && session_->segmented()) {
      scales_.push_back(ReadScale(inputs[i], "codes block " + std::to_string(i)));
    }
  }
}

void CodecWorker::Run() {
  const int threads = options_.threads;
  switch (call_) {
    case CodecCall::Latents:
      outputs_ = options_.span ? std::vector<torch::Tensor>{session_->LatentsSpan(inputs_[0], *options_.span, threads)}
                               : session_->Latents(inputs_, threads);
      break;
    case CodecCall::Encode:
      if (!options_.spans.empty()) {
        outputs_ = session_->EncodeSpans(inputs_, n_q_, options_.spans, threads);
      } else if (options_.span) {
        outputs_ = {session_->EncodeSpan(inputs_[0], n_q_, *options_.span, threads)};
      } else {
        outputs_ = session_->Encode(inputs_, n_q_, threads, &scales_);
      }
      break;
    case CodecCall::Decode:
      if (!options_.spans.empty()) {
        outputs_ = session_->DecodeSpans(inputs_, options_.spans, threads);
      } else if (options_.span) {
        outputs_ = {session_->DecodeSpan(inputs_[0], *options_.span, threads)};
      } else {
        outputs_ = session_->Decode(inputs_, threads, &scales_);
      }
      break;
    case CodecCall::Dequantize:
      outputs_ = session_->Dequantize(inputs_);
      break;
  }
}

Napi::Value CodecWorker::Result(Napi::Env env) {
  Napi::Array out = Napi::Array::New(env, outputs_.size());
  for (size_t i = 0; i < outputs_.size(); ++i) {
    Napi::Value item;
    if (call_ == CodecCall::Decode) {
      item = TensorToTypedArray(env, outputs_[i]);
    } else {
      Napi::Object block = BlockToJs(env, outputs_[i], call_ == CodecCall::Encode ? "nQ" : "dim");
      if (call_ == CodecCall::Encode && i < scales_.size()) {
        block.Set("scale", Napi::Number::New(env, static_cast<double>(scales_[i])));
      }
      item = block;
    }
    out.Set(static_cast<uint32_t>(i), item);
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
