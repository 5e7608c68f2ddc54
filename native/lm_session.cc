#include "lm_session.h"

#include <torch/script.h>  // jit::load and the operators (lm_session.h has only the module)
#include <ATen/Parallel.h>  // at::get_num_threads / set_num_threads
#include <torch/csrc/jit/passes/tensorexpr_fuser.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <fstream>

#include "arith_coder.h"
#include "errors.h"
#include "lanes.h"
#include "lm_block.h"
#include "lm_pair.h"
#include "lm_step.h"
#include "quantized_cdf.h"

namespace encodec {

// What a segment's coding loop asks of the LM: the probabilities of the next frame, then that frame's codes.
class FrameModel {
 public:
  virtual ~FrameModel() = default;
  virtual torch::Tensor Probabilities() = 0;      // [1, card, K, 1]
  virtual void Advance(const int64_t* codes) = 0;  // the K codes of the frame just coded
};

namespace {

constexpr const char* kMetadataFile = "encodec.json";

// Holds `n` threads of the budget and sets this thread's intra-op threads, restoring them afterwards: libtorch
// keeps the setting per call thread, and a codec call that runs on this thread later must not inherit ours.
class ThreadsGuard {
 public:
  ThreadsGuard(ThreadBudget& budget, int held, int intra_op) : budget_(budget), held_(held), saved_(at::get_num_threads()) {
    budget_.Acquire(held_);
    if (saved_ != intra_op) at::set_num_threads(intra_op);
  }
  ~ThreadsGuard() {
    if (at::get_num_threads() != saved_) at::set_num_threads(saved_);
    budget_.Release(held_);
  }
  ThreadsGuard(const ThreadsGuard&) = delete;
  ThreadsGuard& operator=(const ThreadsGuard&) = delete;

 private:
  ThreadBudget& budget_;
  const int held_;
  const int saved_;
};

// One streaming step of the LM: (indices [1, K, 1], states, offset) -> probabilities [1, card, K, 1].
class ScriptFrames : public FrameModel {
 public:
  ScriptFrames(torch::jit::Module& module, int64_t K, int64_t card)
      : step_(module.get_method("step")), K_(K), card_(card), input_(torch::zeros({1, K, 1}, torch::kLong)) {}

  torch::Tensor Probabilities() override {
    auto out = step_({input_, states_, offset_}).toTuple();
    torch::Tensor probas = out->elements()[0].toTensor();
    states_ = out->elements()[1];
    offset_ = out->elements()[2].toInt();
    if (probas.dim() != 4 || probas.size(0) != 1 || probas.size(1) != card_ || probas.size(2) != K_ ||
        probas.size(3) != 1 || probas.scalar_type() != torch::kFloat32) {
      throw std::runtime_error("the LM returned probabilities of shape " + ShapeOf(probas) + ", expected [1, " +
                               std::to_string(card_) + ", " + std::to_string(K_) + ", 1]");
    }
    return probas;
  }

  // Meta: input_ = 1 + frame[:, :, t: t + 1]
  void Advance(const int64_t* codes) override {
    input_ = torch::empty({1, K_, 1}, torch::kLong);
    int64_t* p = input_.data_ptr<int64_t>();
    for (int64_t k = 0; k < K_; ++k) p[k] = codes[k] + 1;
  }

 private:
  static std::string ShapeOf(const torch::Tensor& t) {
    std::string s = "[";
    for (int64_t i = 0; i < t.dim(); ++i) s += (i ? ", " : "") + std::to_string(t.size(i));
    return s + "]";
  }

  torch::jit::Method step_;
  const int64_t K_, card_;
  torch::Tensor input_;
  c10::IValue states_;  // None: a fresh segment
  int64_t offset_ = 0;
};

class FastFrames : public FrameModel {
 public:
  FastFrames(std::shared_ptr<LmFastModel> model, int64_t K, int64_t rows, LmPair* pair)
      : step_(std::move(model), K, rows, pair), previous_(K) {}
  torch::Tensor Probabilities() override { return step_.Step(started_ ? previous_.data() : nullptr); }
  void Advance(const int64_t* codes) override {
    std::copy(codes, codes + previous_.size(), previous_.begin());
    started_ = true;
  }

 private:
  LmFastStep step_;
  std::vector<int64_t> previous_;
  bool started_ = false;
};

// The quantized CDFs [K, card] of a step's probabilities (Meta: build_stable_quantized_cdf(probas[0, :, k, 0])).
torch::Tensor Cdfs(FrameModel& lm) {
  return FrameCdfs(lm.Probabilities());
}

// Codebook k's CDF of a frame's [K, card] CDFs.
const int64_t* CheckedCdf(const int64_t* cdfs, int64_t k, int64_t card, int64_t t) {
  const int64_t* cdf = cdfs + k * card;
  if (!IsValidQuantizedCdf(cdf, card, kTotalRangeBits)) {
    throw std::runtime_error("the LM returned invalid probabilities (NaN, infinite or negative) at frame " +
                             std::to_string(t) + ", codebook " + std::to_string(k) + "; the LM file is broken");
  }
  return cdf;
}

std::string Where(size_t segment, int64_t t, int64_t k) {
  return "segment " + std::to_string(segment) + ", frame " + std::to_string(t) + ", codebook " + std::to_string(k);
}

}  // namespace

LmSession::LmSession(const std::string& path, int threads, int jobs)
    : threads_(std::max(threads, 1)), jobs_(std::max(jobs, 1)), budget_(std::max(threads, 1)) {
  torch::jit::setTensorExprFuserEnabled(false);  // as for the codec: no fused kernels that reorder float math
  {
    std::ifstream probe(path, std::ios::binary);
    if (!probe) {
      throw NativeError(ErrorKind::Generic, "cannot open LM file '" + path +
                                               "': it does not exist or is not readable. Export one with "
                                               "`encodec-native model export --lm` or get Meta's with "
                                               "`encodec-native model fetch`.", ErrorCode::ModelFile);
    }
    char magic[2] = {0, 0};
    probe.read(magic, 2);
    if (magic[0] != 'P' || magic[1] != 'K') {
      throw NativeError(ErrorKind::Generic, "'" + path +
                                               "' is not a TorchScript file (not a zip archive); a checkpoint "
                                               "(.th) must be exported first: `encodec-native model export --lm`.", ErrorCode::ModelFile);
    }
  }
  torch::jit::ExtraFilesMap extra{{kMetadataFile, ""}};
  try {
    module_ = torch::jit::load(path, torch::kCPU, extra);
  } catch (const c10::Error& e) {
    throw NativeError(ErrorKind::Generic, "cannot load LM file '" + path +
                                             "': it is corrupt or truncated, or was saved by a newer PyTorch (" +
                                             e.what_without_backtrace() + "). Export it again.", ErrorCode::ModelFile);
  }
  metadata_ = extra[kMetadataFile];
  if (module_.find_method("encode") && module_.find_method("decode")) {
    throw NativeError(ErrorKind::Generic, "'" + path +
                                             "' is an EnCodec codec model, not an entropy-coding LM: pass it as the "
                                             "model, and the LM file (encodec_lm_24khz.pt / encodec_lm_48khz.pt) "
                                             "as the LM", ErrorCode::ModelFile);
  }
  if (metadata_.find("\"kind\": \"lm\"") == std::string::npos || !module_.find_method("step") ||
      !module_.hasattr("n_q") || !module_.hasattr("card")) {
    throw NativeError(ErrorKind::Generic, "'" + path +
                                             "' is a TorchScript file but not an encodec-native LM (no kind \"lm\" "
                                             "metadata or no step method). Export one with "
                                             "`encodec-native model export --lm`.", ErrorCode::ModelFile);
  }
  n_q_ = module_.attr("n_q").toInt();
  card_ = module_.attr("card").toInt();
  if (n_q_ < 1 || n_q_ > 1024 || card_ < 2 || card_ > (int64_t{1} << 20)) {
    throw NativeError(ErrorKind::Generic, "'" + path + "' has an implausible LM geometry (n_q " +
                                             std::to_string(n_q_) + ", card " + std::to_string(card_) + ")", ErrorCode::ModelFile);
  }
  module_.eval();
}

LmSession::~LmSession() { module_ = torch::jit::Module(); }

bool LmSession::fast_step() const {
  std::lock_guard<std::mutex> lock(fast_mutex_);
  return fast_used_ && !fast_fallback_;
}

bool LmSession::kv_sums() const {
  std::lock_guard<std::mutex> lock(fast_mutex_);
  return fast_used_ && !fast_fallback_ && fast_ && fast_->plan->sums();
}

bool LmSession::paired_decode() const {
  std::lock_guard<std::mutex> lock(fast_mutex_);
  return paired_decode_;
}

bool LmSession::block_step() const {
  std::lock_guard<std::mutex> lock(fast_mutex_);
  return block_used_ && !block_fallback_;
}

std::shared_ptr<LmFastModel> LmSession::Fast(int64_t frames) {
  // The C++ step reproduces the one-thread products only (with more threads OpenBLAS splits them differently).
  if (threads_ == 1 && !std::getenv("ENCODEC_NATIVE_LM_TORCHSCRIPT")) {
    std::call_once(fast_once_, [this] { fast_ = LmFastModel::Create(module_, n_q_, card_); });
    if (fast_) {
      const bool ok = fast_->plan->Ensure(std::min(frames, fast_->past_context) + 1);
      {
        std::lock_guard<std::mutex> lock(fast_mutex_);
        (ok ? fast_used_ : fast_fallback_) = true;
      }
      if (ok) return fast_;
    }
  }
  std::lock_guard<std::mutex> lock(fast_mutex_);
  fast_fallback_ = true;
  return nullptr;
}

std::unique_ptr<FrameModel> LmSession::Frames(int64_t K, int64_t frames, const std::shared_ptr<LmFastModel>& fast,
                                              LmPair* pair) {
  if (fast) {
    return std::make_unique<FastFrames>(fast, K, std::min(frames, fast->past_context) + 1, pair);
  }
  return std::make_unique<ScriptFrames>(module_, K, card_);
}

std::vector<uint8_t> LmSession::CompressSegment(const torch::Tensor& block, size_t index, int lanes) {
  c10::InferenceMode inference;  // thread-local: set here, on the thread that runs the segment
  const torch::Tensor codes = block.to(torch::kLong).contiguous();
  const int64_t K = codes.size(0), T = codes.size(1);
  const int64_t* values = codes.data_ptr<int64_t>();
  std::vector<uint8_t> out;
  ArithmeticEncoder encoder(&out, kTotalRangeBits);
  const auto push = [&](int64_t t, const int64_t* cdfs) {
    for (int64_t k = 0; k < K; ++k) {
      try {
        encoder.Push(values[k * T + t], CheckedCdf(cdfs, k, card_, t), card_);
      } catch (const std::logic_error& e) {
        throw std::runtime_error(Where(index, t, k) + ": " + e.what());
      }
    }
  };
  std::shared_ptr<LmFastModel> fast = Fast(T);
  const bool blocks = fast && !std::getenv("ENCODEC_NATIVE_LM_FRAMEWISE") && LmBlockStep::Supported(*fast);
  {
    std::lock_guard<std::mutex> lock(fast_mutex_);
    (blocks ? block_used_ : block_fallback_) = true;
  }
  if (blocks) {
    // every frame's codes are known: the LM runs blocks of frames at once (lm_block.h)
    LmBlockStep step(fast, K, T, values, lanes);
    std::vector<int64_t> cdfs(LmBlockStep::kBlock * K * card_);
    for (int64_t t = 0, n; (n = step.Next(cdfs.data())) > 0; t += n) {
      for (int64_t i = 0; i < n; ++i) push(t + i, cdfs.data() + i * K * card_);
    }
  } else {
    std::unique_ptr<FrameModel> lm = Frames(K, T, fast);
    std::vector<int64_t> frame(K);
    for (int64_t t = 0; t < T; ++t) {
      torch::Tensor cdfs = Cdfs(*lm);
      for (int64_t k = 0; k < K; ++k) frame[k] = values[k * T + t];
      lm->Advance(frame.data());
      push(t, cdfs.data_ptr<int64_t>());
    }
  }
  encoder.Flush();
  return out;
}

std::vector<std::vector<uint8_t>> LmSession::Compress(const std::vector<torch::Tensor>& blocks) {
  for (size_t i = 0; i < blocks.size(); ++i) {
    const torch::Tensor& b = blocks[i];
    if (b.dim() != 2 || b.size(0) < 1 || b.size(0) > n_q_ || b.size(1) < 1) {
      throw NativeError(ErrorKind::Range, "codes block " + std::to_string(i) + " must be [K, T] with 1 <= K <= " +
                                             std::to_string(n_q_) + " (this LM's codebooks) and T >= 1");
    }
    const int64_t lo = b.min().item<int64_t>(), hi = b.max().item<int64_t>();
    if (lo < 0 || hi >= card_) {
      throw NativeError(ErrorKind::Range, "codes of block " + std::to_string(i) + " range over [" +
                                             std::to_string(lo) + ", " + std::to_string(hi) + "], outside [0, " +
                                             std::to_string(card_ - 1) + "]");
    }
  }
  std::vector<std::vector<uint8_t>> payloads(blocks.size());
  // Never inside at::parallel_for: the LM's probabilities depend on the intra-op thread count and on running inside
  // a parallel region (torch 1.13), and the decoder must compute exactly the probabilities the encoder used. Each
  // segment starts from a fresh state, so segments on threads of their own, each with one intra-op thread, compute
  // what they compute one after another. With more intra-op threads they run one after another: OpenBLAS's and
  // OpenMP's threads would be shared between the segments.
  ThreadsGuard threads(budget_, threads_, threads_);
  const size_t workers = threads_ == 1 ? std::min(blocks.size(), static_cast<size_t>(jobs_)) : 1;
  // the threads no segment takes share each segment's blocks of frames (a 24 kHz file is one segment)
  const int lanes = threads_ == 1 ? std::max(1, jobs_ / static_cast<int>(workers)) : 1;
  // each worker takes the next segment; after a failure no more start, and Run rethrows the first exception
  std::atomic<size_t> next{0};
  std::atomic<bool> failed{false};
  Lanes team(static_cast<int>(workers));  // helpers run with one intra-op thread, as workers > 1 needs
  team.Run([&](int) {
    try {
      for (size_t i = next++; i < blocks.size() && !failed.load(); i = next++) {
        payloads[i] = CompressSegment(blocks[i], i, lanes);
      }
    } catch (...) {
      failed = true;
      throw;
    }
  });
  return payloads;
}

torch::Tensor LmSession::DecompressSegment(const uint8_t* data, size_t size, int64_t K, int64_t T, size_t index,
                                           size_t* consumed, LmPair* pair) {
  torch::Tensor codes = torch::zeros({K, T}, torch::kInt16);
  int16_t* values = codes.data_ptr<int16_t>();
  ArithmeticDecoder decoder(data, size, kTotalRangeBits);
  std::unique_ptr<FrameModel> lm = Frames(K, T, Fast(T), pair);
  std::vector<int64_t> frame(K);
  for (int64_t t = 0; t < T; ++t) {
    torch::Tensor cdfs = Cdfs(*lm);
    for (int64_t k = 0; k < K; ++k) {
      int64_t symbol = 0;
      bool complete = false;
      try {
        complete = decoder.Pull(CheckedCdf(cdfs.data_ptr<int64_t>(), k, card_, t), card_, &symbol);
      } catch (const StreamError& e) {
        throw StreamError(Where(index, t, k) + ": " + e.what());
      }
      if (!complete) {
        throw StreamError(Where(index, t, k) + ": the coded stream ended before all codes were decoded (" +
                          std::to_string(T) + " frames of " + std::to_string(K) + " codes expected)");
      }
      if (symbol < 0 || symbol >= card_) throw StreamError(Where(index, t, k) + ": decoded code out of range");
      values[k * T + t] = static_cast<int16_t>(symbol);
      frame[k] = symbol;
    }
    lm->Advance(frame.data());
  }
  if (!decoder.EndsCleanly()) {
    throw StreamError("segment " + std::to_string(index) +
                      ": the coded stream does not end the way Meta's encoder ends one after these codes");
  }
  *consumed = decoder.bytes_read();
  return codes;
}

LmSession::Decoded LmSession::Decompress(const uint8_t* data, size_t size, int64_t K,
                                         const std::vector<int64_t>& frames, size_t prefix_bytes) {
  if (K < 1 || K > n_q_) {
    throw NativeError(ErrorKind::Range, "the stream has " + std::to_string(K) + " codebooks; this LM codes 1.." +
                                           std::to_string(n_q_));
  }
  for (int64_t f : frames) {
    if (f < 1) throw NativeError(ErrorKind::Range, "every segment needs at least one frame");
  }
  if (card_ > 32768) throw NativeError(ErrorKind::Range, "this LM's codes do not fit 16 bits");
  ThreadsGuard threads(budget_, threads_, threads_);  // sequential by nature: segment i + 1 starts where i ends
  c10::InferenceMode inference;
  // A frame's work shared with a helper thread, where the session may use two (jobs) and no other decompress of
  // this session holds its helper: the C++ step only (it computes the same values on either thread).
  std::unique_ptr<LmPair> pair;
  bool expected = false;
  const bool paired = threads_ == 1 && jobs_ >= 2 && !std::getenv("ENCODEC_NATIVE_LM_NO_PAIR") &&
                      pair_busy_.compare_exchange_strong(expected, true);
  struct Release {
    std::atomic<bool>* busy;
    ~Release() {
      if (busy) busy->store(false);
    }
  } release{paired ? &pair_busy_ : nullptr};
  if (paired) pair = std::make_unique<LmPair>();
  Decoded result;
  size_t pos = 0;
  for (size_t i = 0; i < frames.size(); ++i) {
    result.offsets.push_back(pos);
    if (size - pos < prefix_bytes) {
      throw StreamError("segment " + std::to_string(i) + ": the data ends before its " + std::to_string(prefix_bytes) +
                        "-byte header");
    }
    pos += prefix_bytes;
    size_t consumed = 0;
    result.codes.push_back(DecompressSegment(data + pos, size - pos, K, frames[i], i, &consumed, pair.get()));
    pos += consumed;
  }
  if (pair && pair->TakeHelperParts() > 0) {
    std::lock_guard<std::mutex> lock(fast_mutex_);
    paired_decode_ = true;
  }
  result.end = pos;
  return result;
}

}  // namespace encodec
