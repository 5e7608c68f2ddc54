#include "lanes.h"

#include <ATen/Parallel.h>
#include <c10/core/InferenceMode.h>

#include <system_error>

namespace encodec {

namespace {

// About 0.3 ms of polling before sleeping (a pause takes about 20 ns on the 2-core VM): longer than the serial work
// between a decoded frame's products, short enough that an idle team costs nothing measurable.
constexpr int kSpins = 16384;

inline void Pause() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#endif
}

}  // namespace

Lanes::Lanes(int lanes) {
  for (int lane = 1; lane < lanes; ++lane) {
    try {
      helpers_.emplace_back([this, lane] { Helper(lane); });
    } catch (const std::system_error&) {
      break;  // no more threads: the lanes there do the work
    }
  }
}

Lanes::~Lanes() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stop_.store(true, std::memory_order_relaxed);
  }
  wake_.notify_all();
  for (std::thread& t : helpers_) t.join();
}

void Lanes::Split(int64_t n, int lane, int lanes, int64_t* begin, int64_t* end) {
  *begin = n * lane / lanes;
  *end = n * (lane + 1) / lanes;
}

void Lanes::Helper(int lane) {
  at::get_num_threads();  // libtorch's per-thread setup first, so that it cannot override ours later
  at::set_num_threads(1);
  c10::InferenceMode inference;
  uint64_t seen = 0;
  for (;;) {
    for (int i = 0; i < kSpins && generation_.load(std::memory_order_acquire) == seen &&
                    !stop_.load(std::memory_order_relaxed);
         ++i) {
      Pause();
    }
    const std::function<void(int)>* work;
    {
      std::unique_lock<std::mutex> lock(mutex_);
      wake_.wait(lock, [&] { return stop_.load(std::memory_order_relaxed) || generation_.load(std::memory_order_relaxed) != seen; });
      if (stop_.load(std::memory_order_relaxed)) return;
      seen = generation_.load(std::memory_order_relaxed);
      work = work_;
    }
    std::exception_ptr error;
    try {
      (*work)(lane);
    } catch (...) {
      error = std::current_exception();
    }
    if (error) {
      std::lock_guard<std::mutex> lock(mutex_);
      if (!error_) error_ = error;
    }
    if (pending_.fetch_sub(1, std::memory_order_acq_rel) == 1) {
      std::lock_guard<std::mutex> lock(mutex_);  // the caller checks pending_ under the mutex before it sleeps
      done_.notify_one();
    }
  }
}

void Lanes::Run(const std::function<void(int)>& work) {
  if (helpers_.empty()) {
    work(0);
    return;
  }
  {
    std::lock_guard<std::mutex> lock(mutex_);
    work_ = &work;
    error_ = nullptr;
    pending_.store(static_cast<int>(helpers_.size()), std::memory_order_relaxed);
    generation_.fetch_add(1, std::memory_order_release);
  }
  wake_.notify_all();  // no system call when every helper is still polling
  std::exception_ptr error;
  try {
    work(0);
  } catch (...) {
    error = std::current_exception();
  }
  for (int i = 0; i < kSpins && pending_.load(std::memory_order_acquire) != 0; ++i) Pause();
  std::unique_lock<std::mutex> lock(mutex_);
  done_.wait(lock, [&] { return pending_.load(std::memory_order_acquire) == 0; });
  if (!error) error = error_;
  if (error) std::rethrow_exception(error);
}

}  // namespace encodec
