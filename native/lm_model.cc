// EncodecLm's members (model_objects.h) and loadLm().
#include "errors.h"
#include "lm_workers.h"
#include "model_objects.h"
#include "promise_worker.h"
#include "tensor_io.h"

namespace encodec {

namespace {
// Segments per call: a 48 kHz file has one per second (ten hours: 36,000).
constexpr uint32_t kMaxSegments = 1u << 22;
// Frames per segment (the 24 kHz model codes a whole file as one segment: ten hours at 75 frames/s).
constexpr int64_t kMaxSegmentFrames = int64_t{150} * 3600 * 10;

// compress(blocks: { data: Int16Array | Int32Array, nQ, nFrames }[]): Promise<Uint8Array[]>
Napi::Value Compress(const Napi::CallbackInfo& info, std::shared_ptr<LmSession> session) {
  return QueueWork<LmCompressWorker>(info.Env(), session, ReadInputArray(info[0], "codes", kMaxSegments));
}

// decompress(data: Uint8Array, nQ: number, frames: number[], prefixBytes: number)
//   : Promise<{ codes: { data: Int16Array, nQ, nFrames }[], offsets: number[], end: number }>
Napi::Value Decompress(const Napi::CallbackInfo& info, std::shared_ptr<LmSession> session) {
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
  return QueueWork<LmDecompressWorker>(info.Env(), session, std::move(data), n_q, std::move(frames),
                                       static_cast<size_t>(prefix));
}

}  // namespace

template <>
const EncodecLm::Traits EncodecLm::kTraits = {"EncodecLm", "LM", "loadLm", &Addon::lm_constructor,
                                              {{"compress", Compress, false},
                                               {"decompress", Decompress, false},
                                               Getter<&LmSession::n_q>("nQ"),
                                               Getter<&LmSession::fast_step>("fastStep"),
                                               Getter<&LmSession::block_step>("blockStep"),
                                               Getter<&LmSession::kv_sums>("kvSums"),
                                               Getter<&LmSession::paired_decode>("pairedDecode"),
                                               Getter<&LmSession::jobs>("jobs")}};

Napi::Value LoadLmJs(const Napi::CallbackInfo& info) {
  return Guard(info.Env(), [&]() -> Napi::Value {
    const std::string path = ReadPath(info[0], "LM path");
    const Napi::Object options = ReadOptions(info[1], "loadLm options");
    Napi::Value t = options.Get("threads"), j = options.Get("jobs");
    const int threads = t.IsUndefined() ? 1 : static_cast<int>(ReadInteger(t, "options.threads", 1, 1024));
    const int jobs = j.IsUndefined() ? 1 : static_cast<int>(ReadInteger(j, "options.jobs", 1, 1024));
    return QueueWork<LoadWorker<EncodecLm>>(info.Env(), "encodec-native:load-lm",
                                            [=] { return std::make_shared<LmSession>(path, threads, jobs); });
  });
}

}  // namespace encodec
