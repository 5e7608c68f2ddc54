// Two threads sharing one decoded frame's work (lm_step.h), part by part. Decoding is serial from frame to frame
// (a frame's codes come out of the frame before), so the only parallelism is inside a frame: about thirty short
// phases (the products of each layer, the attention, the heads), each split into a few parts. A condition variable
// costs more than a part, so the helper spins between parts and sleeps only after a pause. Parts are claimed, not
// assigned: where the helper is not running (asleep, or its core taken by another process) the caller does every
// part itself, so the frame takes at most about its one-thread time. Which thread runs a part never changes what it
// computes, so the bytes do not depend on the helper. Pure C++ and libtorch's thread settings: no Node-API here.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <exception>
#include <mutex>
#include <thread>
#include <type_traits>

namespace encodec {

// Where a pair's two parts of n items meet: near the middle, on a multiple of 8 (the products' panels, the
// attention's blocks of rows).
inline int64_t HalfOf(int64_t n) { return (n / 2 + 4) / 8 * 8; }

class LmPair {
 public:
  // Starts the helper (with one intra-op thread and inference mode); without it (no thread could start) Run runs
  // every part on the calling thread.
  LmPair();
  ~LmPair();
  LmPair(const LmPair&) = delete;
  LmPair& operator=(const LmPair&) = delete;

  // Runs part(i) for each i in [0, n) once, on this thread and the helper; returns when every part has run,
  // rethrowing the first exception a part threw.
  template <class F>
  void Run(int n, F&& part) {
    RunParts(n, [](void* f, int i) { (*static_cast<std::remove_reference_t<F>*>(f))(i); }, &part);
  }

  // How many parts the helper ran since the last call (diagnostics and tests).
  int64_t TakeHelperParts() { return helper_parts_.exchange(0, std::memory_order_relaxed); }

 private:
  using Fn = void (*)(void*, int);
  void RunParts(int n, Fn fn, void* context);
  // Claims and runs parts of job `epoch` until none is left (or the job changed).
  void Claim(uint32_t epoch, bool helper);
  void Helper();

  // epoch << 32 | parts << 16 | the next part to claim: one word, so that a claim succeeds only while its own job
  // is open, and counts against that job's number of parts (a count stored apart could be the next job's).
  std::atomic<uint64_t> state_{0};
  std::atomic<Fn> fn_{nullptr};
  std::atomic<void*> context_{nullptr};
  std::atomic<int> done_{0};
  std::atomic<bool> sleeping_{false};
  std::atomic<bool> stop_{false};
  std::atomic<int64_t> helper_parts_{0};
  std::exception_ptr error_;  // the first part's exception of the current job (under error_mutex_)
  std::mutex error_mutex_, sleep_mutex_;
  std::condition_variable wake_;
  std::thread helper_;
  bool started_ = false;
};

}  // namespace encodec
