#include "session.h"

#include <torch/script.h>  // jit::load and the operators (session.h has only the module)
#include <ATen/Context.h>
#include <ATen/Parallel.h>
#include <torch/csrc/jit/passes/tensorexpr_fuser.h>
#include <torch/csrc/jit/runtime/graph_executor.h>
#include <torch/cuda.h>

#include <atomic>
#include <fstream>
#include <map>
#include <set>
#include <thread>

#include "allocator.h"
#include "errors.h"

namespace encodec {

namespace {

constexpr const char* kMetadataFile = "encodec.json";

// 'cpu', 'cuda' or 'cuda:N' (the grammar of lib/codec/device.ts, which checks it first for JS callers).
torch::Device ParseDevice(const std::string& spec) {
  const std::string index = spec.rfind("cuda:", 0) == 0 ? spec.substr(5) : "";
  const bool digits = !index.empty() && index.size() <= 4 &&
                      std::all_of(index.begin(), index.end(), [](char c) { return c >= '0' && c <= '9'; });
  if (spec != "cpu" && spec != "cuda" && !digits) {
    throw NativeError(ErrorKind::Type, "device must be 'cpu', 'cuda' or 'cuda:N', got '" + spec + "'");
  }
  torch::Device device = spec == "cpu" ? torch::Device(torch::kCPU) : torch::Device(torch::kCUDA);
  if (device.is_cuda()) {
    if (!torch::cuda::is_available()) {
      throw NativeError(ErrorKind::Generic,
                       "device '" + spec +
                           "' requested, but this build of libtorch has no CUDA support or no GPU is visible. "
                           "Use device 'cpu', or rebuild encodec-native against a CUDA libtorch "
                           "(LIBTORCH=/path/to/libtorch npm run build:native; see the README).",
                       ErrorCode::CudaUnavailable);
    }
    const int64_t count = static_cast<int64_t>(torch::cuda::device_count());
    const int64_t ordinal = digits ? std::stoll(index) : 0;
    if (ordinal >= count) {
      throw NativeError(ErrorKind::Range, "device '" + spec + "' requested, but only " + std::to_string(count) +
                                             " CUDA device(s) are visible",
                        ErrorCode::CudaUnavailable);
    }
    device = torch::Device(torch::kCUDA, static_cast<c10::DeviceIndex>(ordinal));
  }
  return device;
}

// Sets this thread's intra-op thread count: libtorch keeps it per thread, and each call may
// run on a different call thread (which keeps the count the last call on it set, whichever model's).
void UseThreads(int threads) {
  if (at::get_num_threads() != threads) at::set_num_threads(threads);
}

// Process-wide settings that make results match the eager reference and repeat exactly, and keep memory flat:
// the tensor-expression fuser (which switches on after a few profiling runs and reorders float math), TF32 and
// cuDNN autotuning on CUDA change results at the 1e-3 level, enough to flip codes. None of them costs measurable
// speed here.
void ConfigureRuntime() {
  static std::once_flag once;
  std::call_once(once, [] {
    torch::jit::setTensorExprFuserEnabled(false);
    // The simple graph executor: the profiling one (libtorch's default) records each method's input shapes on
    // its first calls and keeps a specialised plan per method, which only the fuser switched off above could use,
    // at a cost in memory and warm-up and no gain in speed (docs/performance.md, "Inside the addon").
    torch::jit::getProfilingMode() = false;
    auto& context = at::globalContext();
    context.setAllowTF32CuBLAS(false);
    context.setAllowTF32CuDNN(false);
    context.setDeterministicCuDNN(true);
    context.setBenchmarkCuDNN(false);
    ConfigureCpuMemory();
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
        held_(threads > 0 ? std::min(threads, session.threads_) : session.threads_) {
    budget_.Acquire(held_);
    UseThreads(held_);
  }
  ~Lease() { budget_.Release(held_); }
  Lease(const Lease&) = delete;
  Lease& operator=(const Lease&) = delete;

 private:
  ThreadBudget& budget_;
  // the call's threads: its share of the model's, or all of them
  const int held_;
};

// A model's intra-op threads: 0 asks for libtorch's default (OMP_NUM_THREADS, else the cores), resolved here so
// that every call sets it rather than inheriting what another model's call left on its call thread.
static int ResolveThreads(int threads) { return threads > 0 ? threads : std::max(at::intraop_default_num_threads(), 1); }

Session::Session(const std::string& path, const std::string& device, int threads)
    : device_(ParseDevice(device)), threads_(ResolveThreads(threads)), budget_(threads_) {
  ConfigureRuntime();
  {
    std::ifstream probe(path, std::ios::binary);
    if (!probe) {
      throw NativeError(ErrorKind::Generic, "cannot open model file '" + path +
                                               "': it does not exist or is not readable. Create one with "
                                               "`encodec-native model export` or `encodec-native model random`.",
                        ErrorCode::ModelFile);
    }
    char magic[2] = {0, 0};
    probe.read(magic, 2);
    if (magic[0] != 'P' || magic[1] != 'K') {
      throw NativeError(ErrorKind::Generic, "'" + path +
                                               "' is not a TorchScript model file (not a zip archive). Export one "
                                               "with `encodec-native model export --checkpoint FILE --out MODEL.pt`.",
                        ErrorCode::ModelFile);
    }
  }
  UseThreads(threads_);
  torch::jit::ExtraFilesMap extra{{kMetadataFile, ""}};
  const uint64_t failures = AllocationFailures();
  try {
    module_ = torch::jit::load(path, device_, extra);
  } catch (const c10::OutOfMemoryError& e) {
    throw NativeError(ErrorKind::Generic, "out of memory loading '" + path + "': " + e.what_without_backtrace(),
                      ErrorCode::OutOfMemory);
  } catch (const c10::Error& e) {
    if (AllocationFailures() != failures) {
      throw NativeError(ErrorKind::Generic, "out of memory loading '" + path + "': " + e.what_without_backtrace(),
                        ErrorCode::OutOfMemory);
    }
    throw NativeError(ErrorKind::Generic, "cannot load model file '" + path +
                                             "': it is corrupt or truncated, or was saved by a newer PyTorch (" +
                                             e.what_without_backtrace() + "). Export it again.",
                      ErrorCode::ModelFile);
  }
  metadata_ = extra[kMetadataFile];
  if (module_.find_method("step") && metadata_.find("\"kind\": \"lm\"") != std::string::npos) {
    throw NativeError(ErrorKind::Generic, "'" + path +
                                             "' is an EnCodec entropy-coding LM (for compress --lm), not a codec "
                                             "model: pass the codec model (e.g. encodec24.pt) as the model and this "
                                             "file as the LM (--lm-model)",
                      ErrorCode::ModelFile);
  }
  if (metadata_.empty() || !module_.find_method("encode") || !module_.find_method("decode") ||
      !module_.find_method("dequantize")) {
    throw NativeError(ErrorKind::Generic, "'" + path +
                                             "' is a TorchScript file but not an encodec-native EnCodec model "
                                             "(no encodec.json metadata or no encode/decode methods). Export one "
                                             "with `encodec-native model export`.",
                      ErrorCode::ModelFile);
  }
  module_.eval();
  // Model geometry from the module's attributes (encodec_ts.py / encodec48_ts.py); older exports are 24 kHz mono.
  if (module_.hasattr("channels")) channels_ = module_.attr("channels").toInt();
  if (module_.hasattr("max_codebooks")) max_codebooks_ = module_.attr("max_codebooks").toInt();
  segmented_ = module_.find_method("encode_segments").has_value() && module_.find_method("decode_segments").has_value();
  if (segmented_ && module_.hasattr("segment_samples")) segment_samples_ = module_.attr("segment_samples").toInt();
  // Exporter 1.8+: the scales round as Meta's model rounds them with this model's threads (a call may run on fewer)
  if (segmented_ && module_.hasattr("scale_threads")) module_.setattr("scale_threads", static_cast<int64_t>(threads_));
  if (channels_ < 1 || channels_ > 2 || max_codebooks_ < 1 || max_codebooks_ > kMaxCodebooks ||
      (segmented_ && segment_samples_ < 1)) {
    throw NativeError(ErrorKind::Generic, "'" + path + "' has an unexpected model geometry (" +
                                             std::to_string(channels_) + " channels, " +
                                             std::to_string(max_codebooks_) + " codebooks); export it again",
                      ErrorCode::ModelFile);
  }
}

namespace {
std::mutex js_threads_mutex;
std::set<std::thread::id> js_threads;
std::atomic<uint64_t> js_thread_releases{0};
}  // namespace

void RegisterJsThread() {
  std::lock_guard<std::mutex> lock(js_threads_mutex);
  js_threads.insert(std::this_thread::get_id());
}

uint64_t SessionsFreedOnJsThread() { return js_thread_releases.load(); }

std::shared_ptr<Session> Session::Load(const std::string& path, const std::string& device, int threads) {
  return std::shared_ptr<Session>(new Session(path, device, threads),
                                  [](Session* session) { ReleaseOffJsThread([session] { delete session; }); });
}

Session::~Session() {
  {
    std::lock_guard<std::mutex> lock(js_threads_mutex);
    if (js_threads.count(std::this_thread::get_id()) > 0) js_thread_releases.fetch_add(1);
  }
  module_ = torch::jit::Module();  // frees the weights (into the cache) ...
  ReleaseCachedMemory();           // ... and gives them back to the system
}

namespace {
// Runs `work` (one model call). Running out of memory in it becomes ENCODEC_OOM, whatever exception arrives: the
// TorchScript interpreter rethrows an operator's exception as a std::runtime_error, so a failure counted by the
// allocator while the call ran also counts (lib/codec/span-runners.ts retries a span in halves on ENCODEC_OOM).
template <typename Work>
auto OomChecked(const std::string& method, Work&& work) -> decltype(work()) {
  CallScope running;
  const uint64_t failures = AllocationFailures();
  const std::string what = "out of memory in " + method;
  try {
    return work();
  } catch (const NativeError&) {
    throw;
  } catch (const c10::OutOfMemoryError& e) {
    throw NativeError(ErrorKind::Generic, what + ": " + e.what_without_backtrace(), ErrorCode::OutOfMemory);
  } catch (const std::bad_alloc&) {
    throw NativeError(ErrorKind::Generic, what + ": a C++ allocation failed", ErrorCode::OutOfMemory);
  } catch (const std::exception&) {
    if (AllocationFailures() == failures) throw;
    throw NativeError(ErrorKind::Generic, what + ": a tensor could not be allocated", ErrorCode::OutOfMemory);
  }
}
}  // namespace

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
  return OomChecked(method, [&] { return RunBatchedUnchecked(method, inputs, extra_args, threads); });
}

std::vector<std::vector<torch::Tensor>> Session::RunBatchedUnchecked(
    const std::string& method, const std::vector<std::vector<torch::Tensor>>& inputs,
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
    throw NativeError(ErrorKind::Generic, "span calls are for whole-file models; this model codes normalised 1 s "
                                         "segments (encodec_48khz): pass each segment as a clip");
  }
}

std::vector<torch::Tensor> Session::ChannelRows(const std::vector<torch::Tensor>& clips) const {
  std::vector<torch::Tensor> rows;
  rows.reserve(clips.size());
  for (size_t i = 0; i < clips.size(); ++i) {
    const int64_t n = clips[i].numel();
    if (n % channels_ != 0) {
      throw NativeError(ErrorKind::Range, "clip " + std::to_string(i) + " has " + std::to_string(n) +
                                             " samples, not a multiple of the model's " + std::to_string(channels_) +
                                             " channels (planar layout: channel 0's samples, then channel 1's)");
    }
    if (segmented_ && n / channels_ > segment_samples_) {
      throw NativeError(ErrorKind::Range, "clip " + std::to_string(i) + " has " + std::to_string(n / channels_) +
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
    throw NativeError(ErrorKind::Range, "span geometry does not fit the span's " + std::to_string(frames) +
                                           " frames: need chunk >= 1, context >= 0 and 0 <= lead < frames, got chunk " +
                                           std::to_string(span.chunk) + ", context " + std::to_string(span.context) +
                                           ", lead " + std::to_string(span.lead));
  }
  c10::optional<torch::jit::Method> run = module_.find_method(method);
  if (!run) {
    const bool latents = method == "latents_span";
    throw NativeError(ErrorKind::Generic, "this model file has no " + method + " method (it was exported before exporter " +
                                             (latents ? "1.5" : "1.2") + "); re-export it with `encodec-native model export`" +
                                             (latents ? " (or `model random`)" : ", or call without spans"),
                      ErrorCode::ModelFile);
  }
  return OomChecked(method, [&] {
    Lease lease(*this, threads);
    c10::InferenceMode inference;
    std::vector<c10::IValue> args{input.to(device_)};
    args.insert(args.end(), extra_args.begin(), extra_args.end());
    args.emplace_back(span.lead);
    args.emplace_back(span.chunk);
    args.emplace_back(span.context);
    return (*run)(args).toTensor().to(torch::kCPU)[0];
  });
}

namespace {
void CheckFinite(const torch::Tensor& clip, size_t i) {
  if (!torch::isfinite(clip).all().item<bool>()) {
    throw NativeError(ErrorKind::Range, "samples of clip " + std::to_string(i) +
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

std::vector<torch::Tensor> Session::RunSpans(const std::string& method, const std::vector<torch::Tensor>& inputs,
                                             const std::vector<int64_t>& frames,
                                             const std::vector<SpanGeometry>& spans,
                                             const std::vector<c10::IValue>& extra_args, int threads) {
  if (inputs.empty() || inputs.size() != spans.size()) {
    throw NativeError(ErrorKind::Range, "a pooled span call takes one geometry per input and at least one input, got " +
                                           std::to_string(inputs.size()) + " inputs and " +
                                           std::to_string(spans.size()) + " geometries");
  }
  c10::List<int64_t> leads;
  for (size_t i = 0; i < spans.size(); ++i) {
    const SpanGeometry& span = spans[i];
    if (span.chunk != spans[0].chunk || span.context != spans[0].context) {
      throw NativeError(ErrorKind::Range, "the spans of a pooled call must share chunk and context; span " +
                                             std::to_string(i) + " differs from span 0");
    }
    if (span.chunk < 1 || span.context < 0 || span.lead < 0 || span.lead >= frames[i]) {
      throw NativeError(ErrorKind::Range, "span " + std::to_string(i) + "'s geometry does not fit its " +
                                             std::to_string(frames[i]) +
                                             " frames: need chunk >= 1, context >= 0 and 0 <= lead < frames, got "
                                             "chunk " + std::to_string(span.chunk) + ", context " +
                                             std::to_string(span.context) + ", lead " + std::to_string(span.lead));
    }
    leads.push_back(span.lead);
  }
  c10::optional<torch::jit::Method> run = module_.find_method(method);
  if (!run) {
    throw NativeError(ErrorKind::Generic, "this model file has no " + method +
                                              " method (it was exported before exporter 1.6); re-export it with "
                                              "`encodec-native model export`, or call with one span",
                      ErrorCode::ModelFile);
  }
  // out of memory becomes ENCODEC_OOM, as for one span, so that the library retries the spans in halves
  return OomChecked(method, [&] {
    Lease lease(*this, threads);
    c10::InferenceMode inference;
    c10::List<torch::Tensor> list;
    for (const torch::Tensor& input : inputs) list.push_back(input.to(device_));
    std::vector<c10::IValue> args{list};
    args.insert(args.end(), extra_args.begin(), extra_args.end());
    args.emplace_back(leads);
    args.emplace_back(spans[0].chunk);
    args.emplace_back(spans[0].context);
    c10::List<torch::Tensor> results = (*run)(args).toTensorList();
    std::vector<torch::Tensor> outputs;
    outputs.reserve(results.size());
    for (size_t i = 0; i < results.size(); ++i) outputs.push_back(results.get(i).to(torch::kCPU)[0]);
    return outputs;
  });
}

std::vector<torch::Tensor> Session::EncodeSpans(const std::vector<torch::Tensor>& clips, int64_t n_q,
                                                const std::vector<SpanGeometry>& spans, int threads) {
  CheckSpanModel();
  std::vector<torch::Tensor> inputs;
  std::vector<int64_t> frames;
  for (size_t i = 0; i < clips.size(); ++i) {
    CheckFinite(clips[i], i);
    inputs.push_back(clips[i].view({1, 1, -1}));
    frames.push_back((clips[i].numel() + kHopLength - 1) / kHopLength);
  }
  std::vector<torch::Tensor> codes = RunSpans("encode_spans", inputs, frames, spans, {c10::IValue(n_q)}, threads);
  for (torch::Tensor& c : codes) c = c.to(torch::kInt16).contiguous();
  return codes;
}

std::vector<torch::Tensor> Session::DecodeSpans(const std::vector<torch::Tensor>& codes,
                                                const std::vector<SpanGeometry>& spans, int threads) {
  CheckSpanModel();
  CheckCodes(codes);
  std::vector<torch::Tensor> inputs;
  std::vector<int64_t> frames;
  for (const torch::Tensor& c : codes) {
    inputs.push_back(c.unsqueeze(0));
    frames.push_back(c.size(1));
  }
  std::vector<torch::Tensor> audio = RunSpans("decode_spans", inputs, frames, spans, {}, threads);
  for (torch::Tensor& a : audio) a = a.reshape({-1}).contiguous();
  return audio;
}

torch::Tensor Session::LatentsSpan(const torch::Tensor& clip, const SpanGeometry& span, int threads) {
  CheckSpanModel();
  CheckFinite(clip, 0);
  const int64_t frames = (clip.numel() + kHopLength - 1) / kHopLength;
  return RunSpan("latents_span", clip.view({1, 1, -1}), frames, span, {}, threads).to(torch::kFloat32).contiguous();
}

std::vector<torch::Tensor> Session::Latents(const std::vector<torch::Tensor>& clips, int threads) {
  // A segmented model's clips are its segments (ChannelRows checks their length): encode_latent normalises each
  // by its own scale, as encode_segments does before quantizing, so these are the latents its codes quantize.
  for (size_t i = 0; i < clips.size(); ++i) CheckFinite(clips[i], i);
  std::vector<torch::Tensor> latents = RunGrouped("encode_latent", ChannelRows(clips), {}, threads);
  for (auto& l : latents) l = l.to(torch::kFloat32).contiguous();
  return latents;
}

std::vector<torch::Tensor> Session::Encode(const std::vector<torch::Tensor>& clips, int64_t n_q, int threads,
                                           std::vector<float>* scales) {
  if (n_q > max_codebooks_) {
    throw NativeError(ErrorKind::Range, "nQ (number of codebooks) must be an integer in [1, " +
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
      throw NativeError(ErrorKind::Range, "codes of block " + std::to_string(i) + " have " + std::to_string(c.size(0)) +
                                             " codebooks; this model has " + std::to_string(max_codebooks_));
    }
    if (c.numel() == 0) continue;
    const int64_t lo = c.min().item<int64_t>();
    const int64_t hi = c.max().item<int64_t>();
    if (lo < 0 || hi >= kCodebookSize) {
      throw NativeError(ErrorKind::Range, "codes of block " + std::to_string(i) + " range over [" +
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
      throw NativeError(ErrorKind::Type, "codes of this model carry one scale per segment; pass each block's scale");
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

torch::Tensor Session::Codebooks() const {
  if (!module_.hasattr("quantizer") || !module_.attr("quantizer").isModule() ||
      !module_.attr("quantizer").toModule().hasattr("embed")) {
    throw NativeError(ErrorKind::Generic, "this model file has no quantizer codebooks (quantizer.embed); re-export it",
                      ErrorCode::ModelFile);
  }
  torch::Tensor embed = module_.attr("quantizer").toModule().attr("embed").toTensor();
  if (embed.dim() != 3 || embed.size(1) != kCodebookSize) {
    throw NativeError(ErrorKind::Generic, "this model file's codebooks have an unexpected shape; re-export it",
                      ErrorCode::ModelFile);
  }
  return embed.to(torch::kCPU, torch::kFloat32).clone().contiguous();
}

}  // namespace encodec
