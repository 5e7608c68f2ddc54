#include "lm_pair.h"

#include <ATen/Parallel.h>
#include <c10/core/InferenceMode.h>

#include <chrono>
#include <system_error>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define ENCODEC_PAUSE() _mm_pause()
#else
#define ENCODEC_PAUSE() std::this_thread::yield()
#endif

namespace encodec {

namespace {
// How long the helper spins for the next part before it sleeps: longer than a frame's gaps between phases (the
// coder's tens of microseconds), short enough not to hold a core for long once decoding stops.
constexpr auto kSpin = std::chrono::microseconds(300);
}  // namespace

LmPair::LmPair() {
  try {
    helper_ = std::thread([this] { Helper(); });
    started_ = true;
  } catch (const std::system_error&) {
    // no thread: Run runs every part here
  }
}

LmPair::~LmPair() {
  if (!started_) return;
  {
    std::lock_guard<std::mutex> lock(sleep_mutex_);
    stop_.store(true);
  }
  wake_.notify_one();
  helper_.join();
}

void LmPair::Claim(uint32_t epoch, bool helper) {
  // Read after the epoch was seen (Helper's acquire load, or our own store): a claim that succeeds below proves
  // the job was still open, so the caller cannot have stored the next job's yet.
  const Fn fn = fn_.load(std::memory_order_relaxed);
  void* const context = context_.load(std::memory_order_relaxed);
  uint64_t s = state_.load(std::memory_order_acquire);
  for (;;) {
    const int parts = static_cast<int>((s >> 16) & 0xffff), next = static_cast<int>(s & 0xffff);
    if (static_cast<uint32_t>(s >> 32) != epoch || next >= parts) break;
    if (!state_.compare_exchange_weak(s, s + 1, std::memory_order_acq_rel, std::memory_order_acquire)) continue;
    try {
      fn(context, next);
    } catch (...) {
      std::lock_guard<std::mutex> lock(error_mutex_);
      if (!error_) error_ = std::current_exception();
    }
    if (helper) helper_parts_.fetch_add(1, std::memory_order_relaxed);
    done_.fetch_add(1, std::memory_order_release);
    s = state_.load(std::memory_order_acquire);
  }
}

void LmPair::Helper() {
  at::get_num_threads();  // libtorch's per-thread setup first, so that it cannot override ours later
  at::set_num_threads(1);
  c10::InferenceMode inference;
  uint32_t seen = 0;
  for (;;) {
    auto since = std::chrono::steady_clock::now();
    uint32_t epoch = seen;
    for (int spins = 0;; ++spins) {
      epoch = static_cast<uint32_t>(state_.load(std::memory_order_acquire) >> 32);
      if (epoch != seen || stop_.load(std::memory_order_relaxed)) break;
      ENCODEC_PAUSE();
      if ((spins & 255) == 255 && std::chrono::steady_clock::now() - since > kSpin) {
        // sleep until the next job: sleeping_ and state_ are both seq_cst, so either Run sees sleeping_ and
        // wakes us, or we see its new epoch here
        std::unique_lock<std::mutex> lock(sleep_mutex_);
        sleeping_.store(true);
        wake_.wait(lock, [&] {
          return stop_.load() || static_cast<uint32_t>(state_.load() >> 32) != seen;
        });
        sleeping_.store(false);
        since = std::chrono::steady_clock::now();
      }
    }
    if (stop_.load()) return;
    seen = epoch;
    Claim(epoch, true);
  }
}

void LmPair::RunParts(int n, Fn fn, void* context) {
  if (!started_ || n <= 1 || n > 0xffff) {
    for (int i = 0; i < n; ++i) fn(context, i);
    return;
  }
  fn_.store(fn, std::memory_order_relaxed);
  context_.store(context, std::memory_order_relaxed);
  done_.store(0, std::memory_order_relaxed);
  const uint32_t epoch = static_cast<uint32_t>(state_.load(std::memory_order_relaxed) >> 32) + 1;
  // seq_cst: publishes fn_ and context_, and is ordered before the load of sleeping_ (Helper)
  state_.store(static_cast<uint64_t>(epoch) << 32 | static_cast<uint64_t>(n) << 16);
  if (sleeping_.load()) {
    std::lock_guard<std::mutex> lock(sleep_mutex_);
    wake_.notify_one();
  }
  Claim(epoch, false);
  while (done_.load(std::memory_order_acquire) < n) ENCODEC_PAUSE();
  if (error_) {
    std::exception_ptr error;
    {
      std::lock_guard<std::mutex> lock(error_mutex_);
      std::swap(error, error_);
    }
    std::rethrow_exception(error);
  }
}

}  // namespace encodec
