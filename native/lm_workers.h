// The LM's work off the event loop (promise_worker.h): coding/decoding segments of codes (lm_session.h).
#pragma once

#include <napi.h>
#include "torch_names.h"  // not torch/torch.h nor torch/types.h: see there

#include <memory>
#include <vector>

#include "lm_session.h"
#include "promise_worker.h"

namespace encodec {

// Codes blocks of codes, one segment each; resolves with one Uint8Array payload per block.
class LmCompressWorker : public PromiseWorker {
 public:
  LmCompressWorker(Napi::Env env, std::shared_ptr<LmSession> session, const std::vector<Napi::Value>& blocks);

 protected:
  void Run() override;
  Napi::Value Result(Napi::Env env) override;

 private:
  std::shared_ptr<LmSession> session_;
  std::vector<torch::Tensor> blocks_;
  std::vector<std::vector<uint8_t>> payloads_;
};

// Decodes consecutive segments; resolves with { codes: [{ data: Int16Array, nQ, nFrames }], offsets, end }, or
// rejects with an Error whose code is 'ECDC_DESYNC' when the stream cannot be decoded with this LM.
class LmDecompressWorker : public PromiseWorker {
 public:
  LmDecompressWorker(Napi::Env env, std::shared_ptr<LmSession> session, std::vector<uint8_t> data, int64_t n_q,
                     std::vector<int64_t> frames, size_t prefix_bytes);

 protected:
  void Run() override;
  Napi::Value Result(Napi::Env env) override;

 private:
  std::shared_ptr<LmSession> session_;
  std::vector<uint8_t> data_;
  int64_t n_q_;
  std::vector<int64_t> frames_;
  size_t prefix_bytes_;
  LmSession::Decoded decoded_;
  std::string stream_error_;
};

}  // namespace encodec
