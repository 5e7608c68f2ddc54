#include "session.h"

#include <ATen/Context.h>
#include <ATen/Parallel.h>
#include <c10/core/CPUAllocator.h>
#include <c10/core/impl/alloc_cpu.h>
#include <torch/csrc/jit/passes/tensorexpr_fuser.h>
#include <torch/cuda.h>
#include <torch/version.h>

#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iterator>
#include <list>
#include <map>
#include <unordered_map>
#ifdef __GLIBC__
#include <malloc.h>  // mallopt, malloc_trim
#endif

#include "errors.h"

namespace encodec {

namespace {

constexpr const char* kMetadataFile = "encodec.json";

torch::Device ParseDevice(const std::string& spec) {
  if (spec != "cpu" && spec != "cuda" && spec.rfind("cuda:", 0) != 0) {
    throw InputError(ErrorKind::Type, "device must be 'cpu', 'cuda' or 'cuda:N', got '" + spec + "'");
  }
  torch::Device device(torch::kCPU);
  try {
    device = torch::Device(spec);
  } catch (const c10::Error&) {
    throw InputError(ErrorKind::Type, "device must be 'cpu', 'cuda' or 'cuda:N', got '" + spec + "'");
  }
  if (device.is_cuda()) {
    if (!torch::cuda::is_available()) {
      throw InputError(ErrorKind::Generic,
                       "device '" + spec +
                           "' requested, but this build of libtorch has no CUDA support or no GPU is visible. "
                           "Use device 'cpu', or rebuild encodec-native against a CUDA libtorch "
                           "(LIBTORCH=/path/to/libtorch npm run build:native; see the README).");
    }
    const int64_t count = static_cast<int64_t>(torch::cuda::device_count());
    const int64_t index = device.has_index() ? device.index() : 0;
    if (index >= count) {
      throw InputError(ErrorKind::Range, "device '" + spec + "' requested, but only " + std::to_string(count) +
                                             " CUDA device(s) are visible");
    }
    device = torch::Device(torch::kCUDA, static_cast<c10::DeviceIndex>(index));
  }
  return device;
}

// Sets this thread's intra-op thread count: libtorch keeps it per thread, and each call may
// run on a different libuv pool thread.
void UseThreads(int threads) {
  if (threads > 0 && at::get_num_threads() != threads) at::set_num_threads(threads);
}

// libtorch 2.3 made Allocator::allocate non-const and added the pure virtual copy_data.
#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 3)
#define ENCODEC_TORCH_2_3 1
#define ENCODEC_ALLOCATE_CONST
#else
#define ENCODEC_TORCH_2_3 0
#define ENCODEC_ALLOCATE_CONST const
#endif

// A CPU allocator for libtorch's tensors that keeps freed large blocks (>= 1 MiB) for reuse, up to
// ENCODEC_NATIVE_CPU_CACHE_MB (default 256; 0 turns it off). Without it every layer's activation buffer of
// every call is a fresh mmap that the kernel zero-fills page by page, then unmaps: a third of the CPU time of
// an encode went to the kernel. Chunks of equal length allocate the same sizes call after call, so nearly
// every block is reused. A request takes the smallest cached block up to 1/4 larger, so the shorter first and
// last windows reuse a full window's blocks instead of caching a set of their own. When full, the cache drops
// its least recently released blocks (sizes no longer asked for). One 5 s window, encoding and decoding,
// needs about 240 MB of blocks (at most ~130 MB in use at once): 256 MB keeps it with no fresh allocation.
class CachingCpuAllocator final : public c10::Allocator {
 public:
  explicit CachingCpuAllocator(size_t max_cached) : max_cached_(max_cached) {}

#if ENCODEC_TORCH_2_3
  void copy_data(void* dest, const void* src, std::size_t count) const override { std::memcpy(dest, src, count); }
#endif

  c10::DataPtr allocate(size_t bytes) ENCODEC_ALLOCATE_CONST override {
    void* data = bytes >= kMinCached ? Self().Take(bytes) : nullptr;
    if (data == nullptr) {
      data = c10::alloc_cpu(bytes);
      if (bytes >= kMinCached) Self().Track(data, bytes);
    }
    return {data, data, &Release, c10::Device(c10::DeviceType::CPU)};
  }

  c10::DeleterFnPtr raw_deleter() const override { return &Release; }

  // Frees every cached block (a disposed model's weights must go back to the system, not into the cache).
  void EmptyCache() {
    std::lock_guard<std::mutex> lock(mutex_);
    for (const Block& block : lru_) c10::free_cpu(block.data);
    lru_.clear();
    by_size_.clear();
    cached_ = 0;
  }

  static CachingCpuAllocator*& Instance() {
    static CachingCpuAllocator* instance = nullptr;
    return instance;
  }

 private:
  static constexpr size_t kMinCached = 1 << 20;
  struct Block {
    void* data;
    size_t bytes;
  };
  using Lru = std::list<Block>;

  CachingCpuAllocator& Self() const { return const_cast<CachingCpuAllocator&>(*this); }

  // The smallest cached block of at least `bytes` and at most 1/4 more; nullptr if none.
  void* Take(size_t bytes) {
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = by_size_.lower_bound(bytes);
    if (it == by_size_.end() || it->first > bytes + bytes / 4) return nullptr;
    const Block block = *it->second;
    lru_.erase(it->second);
    by_size_.erase(it);
    cached_ -= block.bytes;
    live_[block.data] = block.bytes;
    return block.data;
  }

  void Track(void* data, size_t bytes) {
    std::lock_guard<std::mutex> lock(mutex_);
    live_[data] = bytes;
  }

  // Frees the least recently released cached block. Called with mutex_ held and the cache not empty.
  void EvictOldest() {
    const Block oldest = lru_.front();
    auto [first, last] = by_size_.equal_range(oldest.bytes);
    for (auto it = first; it != last; ++it) {
      if (it->second == lru_.begin()) {
        by_size_.erase(it);
        break;
      }
    }
    lru_.pop_front();
    cached_ -= oldest.bytes;
    c10::free_cpu(oldest.data);
  }

  static void Release(void* data) {
    CachingCpuAllocator* self = Instance();
    if (self != nullptr && data != nullptr) {
      std::lock_guard<std::mutex> lock(self->mutex_);
      auto it = self->live_.find(data);
      if (it != self->live_.end()) {
        const size_t bytes = it->second;
        self->live_.erase(it);
        if (bytes <= self->max_cached_) {
          while (self->cached_ + bytes > self->max_cached_) self->EvictOldest();
          self->lru_.push_back({data, bytes});
          self->by_size_.emplace(bytes, std::prev(self->lru_.end()));
          self->cached_ += bytes;
          return;
        }
      }
    }
    c10::free_cpu(data);
  }

  const size_t max_cached_;
  std::mutex mutex_;
  Lru lru_;                                       // cached blocks, least recently released first
  std::multimap<size_t, Lru::iterator> by_size_;  // the same blocks by size
  std::unordered_map<void*, size_t> live_;        // large blocks in use, by address
  size_t cached_ = 0;
};

// Installs the caching allocator as libtorch's CPU allocator (once, before any model is loaded).
void UseCachingAllocator() {
  size_t megabytes = 256;
  if (const char* setting = std::getenv("ENCODEC_NATIVE_CPU_CACHE_MB")) megabytes = std::strtoull(setting, nullptr, 10);
  if (megabytes == 0) return;
  CachingCpuAllocator::Instance() = new CachingCpuAllocator(megabytes << 20);  // lives as long as the process
  c10::SetCPUAllocator(CachingCpuAllocator::Instance(), /*priority=*/1);
}

// glibc returns freed blocks >= 1 MiB to the system at once. By default it raises its mmap threshold (up to 32
// MiB) after each large free, so that later blocks of that size come from its heaps, which keep their freed
// pages: blocks the cache drops (and every block with the cache off) stayed resident, 400 MB and more. A fixed
// mmap threshold also fixes the trim threshold, which decides how much free memory a heap keeps at its top:
// at glibc's own 2 MiB, the heaps of the worker threads shrank and regrew (page by page, through page faults)
// many times per call; 16 MiB halved a chunked encode's page faults (175k -> 80k per 300 s of audio), for 20 MiB
// more peak RSS streaming 20 minutes.
void UseBoundedMalloc() {
#ifdef __GLIBC__
  mallopt(M_MMAP_THRESHOLD, 1 << 20);
  mallopt(M_TRIM_THRESHOLD, 16 << 20);
#endif
}

// Process-wide settings that make results match the eager reference and repeat exactly: the tensor-expression
// fuser (which switches on after a few profiling runs and reorders float math), TF32 and cuDNN autotuning on
// CUDA change results at the 1e-3 level, enough to flip codes. None of them costs measurable speed here.
void ConfigureRuntime() {
  static std::once_flag once;
  std::call_once(once, [] {
    torch::jit::setTensorExprFuserEnabled(false);
    auto& context = at::globalContext();
    context.setAllowTF32CuBLAS(false);
    context.setAllowTF32CuDNN(false);
    context.setDeterministicCuDNN(true);
    context.setBenchmarkCuDNN(false);
    UseBoundedMalloc();
    UseCachingAllocator();
  });
}

}  // namespace

void ThreadBudget::Acquire(int n) {
  std::unique_lock<std::mutex> lock(mutex_);
  released_.wait(lock, [&] { return free_ >= n; });
  free_ -= n;
}

void ThreadBudget::Release(int n) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    free_ += n;
  }
  released_.notify_all();
}

class Session::Lease {
 public:
  Lease(Session& session, int threads)
      : budget_(session.budget_),
        share_(threads > 0 && session.threads_ > 0),
        held_(share_ ? std::min(threads, session.threads_) : std::max(session.threads_, 1)) {
    budget_.Acquire(held_);
    UseThreads(share_ ? held_ : session.threads_);
  }
  ~Lease() { budget_.Release(held_); }
  Lease(const Lease&) = delete;
  Lease& operator=(const Lease&) = delete;

 private:
  ThreadBudget& budget_;
  // a call on a share of the model's threads (else on all of them, or libtorch's default when the model sets none)
  const bool share_;
  const int held_;
};

Session::Session(const std::string& path, const std::string& device, int threads)
    : device_(ParseDevice(device)), threads_(threads), budget_(std::max(threads, 1)) {
  ConfigureRuntime();
  {
    std::ifstream probe(path, std::ios::binary);
    if (!probe) {
      throw InputError(ErrorKind::Generic, "cannot open model file '" + path +
                                               "': it does not exist or is not readable. Create one with "
                                               "`encodec-native model export` or `encodec-native model random`.");
    }
    char magic[2] = {0, 0};
    probe.read(magic, 2);
    if (magic[0] != 'P' || magic[1] != 'K') {
      throw InputError(ErrorKind::Generic, "'" + path +
                                               "' is not a TorchScript model file (not a zip archive). Export one "
                                               "with `encodec-native model export --checkpoint FILE --out MODEL.pt`.");
    }
  }
  UseThreads(threads_);
  torch::jit::ExtraFilesMap extra{{kMetadataFile, ""}};
  try {
    module_ = torch::jit::load(path, device_, extra);
  } catch (const c10::Error& e) {
    throw InputError(ErrorKind::Generic, "cannot load model file '" + path +
                                             "': it is corrupt or truncated, or was saved by a newer PyTorch (" +
                                             e.what_without_backtrace() + "). Export it again.");
  }
  metadata_ = extra[kMetadataFile];
  if (module_.find_method("step") && metadata_.find("\"kind\": \"lm\"") != std::string::npos) {
    throw InputError(ErrorKind::Generic, "'" + path +
                                             "' is an EnCodec entropy-coding LM (for compress --lm), not a codec "
                                             "model: pass the codec model (e.g. encodec24.pt) as the model and this "
                                             "file as the LM (--lm-model)");
  }
  if (metadata_.empty() || !module_.find_method("encode") || !module_.find_method("decode") ||
      !module_.find_method("dequantize")) {
    throw InputError(ErrorKind::Generic, "'" + path +
                                             "' is a TorchScript file but not an encodec-native EnCodec model "
                                             "(no encodec.json metadata or no encode/decode methods). Export one "
                                             "with `encodec-native model export`.");
  }
  module_.eval();
  // Model geometry from the module's attributes (encodec_ts.py / encodec48_ts.py); older exports are 24 kHz mono.
  if (module_.hasattr("channels")) channels_ = module_.attr("channels").toInt();
  if (module_.hasattr("max_codebooks")) max_codebooks_ = module_.attr("max_codebooks").toInt();
  segmented_ = module_.find_method("encode_segments").has_value() && module_.find_method("decode_segments").has_value();
  if (segmented_ && module_.hasattr("segment_samples")) segment_samples_ = module_.attr("segment_samples").toInt();
  if (channels_ < 1 || channels_ > 2 || max_codebooks_ < 1 || max_codebooks_ > kMaxCodebooks ||
      (segmented_ && segment_samples_ < 1)) {
    throw InputError(ErrorKind::Generic, "'" + path + "' has an unexpected model geometry (" +
                                             std::to_string(channels_) + " channels, " +
                                             std::to_string(max_codebooks_) + " codebooks); export it again");
  }
}

Session::~Session() {
  module_ = torch::jit::Module();  // frees the weights (into the cache) ...
  if (CachingCpuAllocator* cache = CachingCpuAllocator::Instance()) cache->EmptyCache();  // ... and empties it
#ifdef __GLIBC__
  malloc_trim(0);  // the weights' small tensors leave free pages inside glibc's heaps: give them back too
#endif
}

std::vector<torch::Tensor> Session::RunGrouped(const std::string& method, const std::vector<torch::Tensor>& inputs,
                                               const std::vector<c10::IValue>& extra_args, int threads) {
  std::vector<std::vector<torch::Tensor>> rows;
  rows.reserve(inputs.size());
  for (const auto& input : inputs) rows.push_back({input});
  std::vector<std::vector<torch::Tensor>> results = RunBatched(method, rows, extra_args, threads);
  std::vector<torch::Tensor> outputs;
  outputs.reserve(results.size());
  for (auto& result : results) outputs.push_back(std::move(result[0]));
  return outputs;
}

std::vector<std::vector<torch::Tensor>> Session::RunBatched(const std::string& method,
                                                            const std::vector<std::vector<torch::Tensor>>& inputs,
                                                            const std::vector<c10::IValue>& extra_args, int threads) {
  Lease lease(*this, threads);
  c10::InferenceMode inference;
  torch::jit::Method run = module_.get_method(method);

  // Equal shapes run as one batch: batching speeds up the step-serial LSTM.
  std::map<std::vector<int64_t>, std::vector<size_t>> groups;
  for (size_t i = 0; i < inputs.size(); ++i) groups[inputs[i][0].sizes().vec()].push_back(i);

  std::vector<std::vector<torch::Tensor>> outputs(inputs.size());
  for (const auto& [shape, members] : groups) {
    std::vector<c10::IValue> args;
    for (size_t a = 0; a < inputs[members[0]].size(); ++a) {
      torch::Tensor batch;
      if (members.size() == 1) {
        batch = inputs[members[0]][a].unsqueeze(0);  // a view: no copy of the caller's buffer
      } else {
        std::vector<torch::Tensor> rows;
        rows.reserve(members.size());
        for (size_t i : members) rows.push_back(inputs[i][a]);
        batch = torch::stack(rows);
      }
      args.emplace_back(batch.to(device_));
    }
    args.insert(args.end(), extra_args.begin(), extra_args.end());
    c10::IValue result = run(args);
    std::vector<torch::Tensor> parts;
    if (result.isTuple()) {
      for (const auto& element : result.toTupleRef().elements()) parts.push_back(element.toTensor().to(torch::kCPU));
    } else {
      parts.push_back(result.toTensor().to(torch::kCPU));
    }
    for (size_t j = 0; j < members.size(); ++j) {
      for (const auto& part : parts) outputs[members[j]].push_back(part[static_cast<int64_t>(j)]);
    }
  }
  return outputs;
}

void Session::CheckSpanModel() const {
  if (segmented_) {
    throw InputError(ErrorKind::Generic, "span calls are for whole-file models; this model codes normalised 1 s "
                                         "segments (encodec_48khz): pass each segment as a clip");
  }
}

std::vector<torch::Tensor> Session::ChannelRows(const std::vector<torch::Tensor>& clips) const {
  std::vector<torch::Tensor> rows;
  rows.reserve(clips.size());
  for (size_t i = 0; i < clips.size(); ++i) {
    const int64_t n = clips[i].numel();
    if (n % channels_ != 0) {
      throw InputError(ErrorKind::Range, "clip " + std::to_string(i) + " has " + std::to_string(n) +
                                             " samples, not a multiple of the model's " + std::to_string(channels_) +
                                             " channels (planar layout: channel 0's samples, then channel 1's)");
    }
    if (segmented_ && n / channels_ > segment_samples_) {
      throw InputError(ErrorKind::Range, "clip " + std::to_string(i) + " has " + std::to_string(n / channels_) +
                                             " samples per channel; a segment holds at most " +
                                             std::to_string(segment_samples_));
    }
    rows.push_back(clips[i].view({channels_, -1}));  // [C, T] channel rows
  }
  return rows;
}

torch::Tensor Session::RunSpan(const std::string& method, const torch::Tensor& input, int64_t frames,
                               const SpanGeometry& span, const std::vector<c10::IValue>& extra_args,
                               int threads) {
  if (span.chunk < 1 || span.context < 0 || span.lead < 0 || span.lead >= frames) {
    throw InputError(ErrorKind::Range, "span geometry does not fit the span's " + std::to_string(frames) +
                                           " frames: need chunk >= 1, context >= 0 and 0 <= lead < frames, got chunk " +
                                           std::to_string(span.chunk) + ", context " + std::to_string(span.context) +
                                           ", lead " + std::to_string(span.lead));
  }
  c10::optional<torch::jit::Method> run = module_.find_method(method);
  if (!run) {
    const bool latents = method == "latents_span";
    throw InputError(ErrorKind::Generic, "this model file has no " + method + " method (it was exported before exporter " +
                                             (latents ? "1.5" : "1.2") + "); re-export it with `encodec-native model export`" +
                                             (latents ? " (or `model random`)" : ", or call without spans"));
  }
  Lease lease(*this, threads);
  c10::InferenceMode inference;
  std::vector<c10::IValue> args{input.to(device_)};
  args.insert(args.end(), extra_args.begin(), extra_args.end());
  args.emplace_back(span.lead);
  args.emplace_back(span.chunk);
  args.emplace_back(span.context);
  return (*run)(args).toTensor().to(torch::kCPU)[0];
}

namespace {
void CheckFinite(const torch::Tensor& clip, size_t i) {
  if (!torch::isfinite(clip).all().item<bool>()) {
    throw InputError(ErrorKind::Range, "samples of clip " + std::to_string(i) +
                                           " contain NaN or Infinity; clean the audio before encoding");
  }
}
}  // namespace

torch::Tensor Session::EncodeSpan(const torch::Tensor& clip, int64_t n_q, const SpanGeometry& span, int threads) {
  CheckSpanModel();
  CheckFinite(clip, 0);
  const int64_t frames = (clip.numel() + kHopLength - 1) / kHopLength;
  return RunSpan("encode_span", clip.view({1, 1, -1}), frames, span, {c10::IValue(n_q)}, threads)
      .to(torch::kInt16)
      .contiguous();
}

torch::Tensor Session::DecodeSpan(const torch::Tensor& codes, const SpanGeometry& span, int threads) {
  CheckSpanModel();
  CheckCodes({codes});
  return RunSpan("decode_span", codes.unsqueeze(0), codes.size(1), span, {}, threads).reshape({-1}).contiguous();
}

torch::Tensor Session::LatentsSpan(const torch::Tensor& clip, const SpanGeometry& span, int threads) {
  CheckSpanModel();
  CheckFinite(clip, 0);
  const int64_t frames = (clip.numel() + kHopLength - 1) / kHopLength;
  return RunSpan("latents_span", clip.view({1, 1, -1}), frames, span, {}, threads).to(torch::kFloat32).contiguous();
}

std::vector<torch::Tensor> Session::Latents(const std::vector<torch::Tensor>& clips, int threads) {
  if (segmented_) {
    throw InputError(ErrorKind::Generic, "latents are the 24 kHz model's (encodec_24khz); this model is segmented");
  }
  for (size_t i = 0; i < clips.size(); ++i) CheckFinite(clips[i], i);
  std::vector<torch::Tensor> latents = RunGrouped("encode_latent", ChannelRows(clips), {}, threads);
  for (auto& l : latents) l = l.to(torch::kFloat32).contiguous();
  return latents;
}

std::vector<torch::Tensor> Session::Encode(const std::vector<torch::Tensor>& clips, int64_t n_q, int threads,
                                           std::vector<float>* scales) {
  if (n_q > max_codebooks_) {
    throw InputError(ErrorKind::Range, "nQ (number of codebooks) must be an integer in [1, " +
                                           std::to_string(max_codebooks_) + "] for this model, got " +
                                           std::to_string(n_q));
  }
  for (size_t i = 0; i < clips.size(); ++i) CheckFinite(clips[i], i);
  std::vector<torch::Tensor> batch_rows = ChannelRows(clips);
  std::vector<torch::Tensor> codes;
  if (segmented_) {
    if (scales == nullptr) throw std::logic_error("internal error: a segmented encode needs its scales");
    std::vector<std::vector<torch::Tensor>> rows;
    rows.reserve(batch_rows.size());
    for (auto& row : batch_rows) rows.push_back({row});
    scales->clear();
    for (auto& result : RunBatched("encode_segments", rows, {c10::IValue(n_q)}, threads)) {
      codes.push_back(result[0]);
      scales->push_back(result[1].item<float>());
    }
  } else {
    codes = RunGrouped("encode", batch_rows, {c10::IValue(n_q)}, threads);
  }
  for (auto& c : codes) c = c.to(torch::kInt16).contiguous();  // codes are 0..1023
  return codes;
}

void Session::CheckCodes(const std::vector<torch::Tensor>& codes) const {
  for (size_t i = 0; i < codes.size(); ++i) {
    const auto& c = codes[i];
    if (c.size(0) > max_codebooks_) {
      throw InputError(ErrorKind::Range, "codes of block " + std::to_string(i) + " have " + std::to_string(c.size(0)) +
                                             " codebooks; this model has " + std::to_string(max_codebooks_));
    }
    if (c.numel() == 0) continue;
    const int64_t lo = c.min().item<int64_t>();
    const int64_t hi = c.max().item<int64_t>();
    if (lo < 0 || hi >= kCodebookSize) {
      throw InputError(ErrorKind::Range, "codes of block " + std::to_string(i) + " range over [" +
                                             std::to_string(lo) + ", " + std::to_string(hi) +
                                             "], outside [0, 1023]; pass codes produced by encode()");
    }
  }
}

std::vector<torch::Tensor> Session::Decode(const std::vector<torch::Tensor>& codes, int threads,
                                           const std::vector<float>* scales) {
  CheckCodes(codes);
  std::vector<torch::Tensor> audio;
  if (segmented_) {
    if (scales == nullptr || scales->size() != codes.size()) {
      throw InputError(ErrorKind::Type, "codes of this model carry one scale per segment; pass each block's scale");
    }
    std::vector<std::vector<torch::Tensor>> rows;
    rows.reserve(codes.size());
    for (size_t i = 0; i < codes.size(); ++i) rows.push_back({codes[i], torch::scalar_tensor((*scales)[i], torch::kFloat32)});
    for (auto& result : RunBatched("decode_segments", rows, {}, threads)) audio.push_back(result[0]);
  } else {
    audio = RunGrouped("decode", codes, {}, threads);
  }
  for (auto& a : audio) a = a.reshape({-1}).contiguous();  // [C, T] -> planar [C * T]
  return audio;
}

std::vector<torch::Tensor> Session::Dequantize(const std::vector<torch::Tensor>& codes) {
  CheckCodes(codes);
  std::vector<torch::Tensor> latents = RunGrouped("dequantize", codes, {}, 0);
  for (auto& l : latents) l = l.to(torch::kFloat32).contiguous();
  return latents;
}

}  // namespace encodec
