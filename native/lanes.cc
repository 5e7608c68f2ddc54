#include "lanes.h"

#include <ATen/Parallel.h>
#include <c10/core/InferenceMode.h>

#include <system_error>

namespace encodec {

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
    stop_ = true;
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
    const std::function<void(int)>* work;
    {
      std::unique_lock<std::mutex> lock(mutex_);
      wake_.wait(lock, [&] { return stop_ || generation_ != seen; });
      if (stop_) return;
      seen = generation_;
      work = work_;
    }
    std::exception_ptr error;
    try {
      (*work)(lane);
    } catch (...) {
      error = std::current_exception();
    }
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (error && !error_) error_ = error;
      if (--pending_ == 0) done_.notify_one();
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
    pending_ = static_cast<int>(helpers_.size());
    error_ = nullptr;
    ++generation_;
  }
  wake_.notify_all();
  std::exception_ptr error;
  try {
    work(0);
  } catch (...) {
    error = std::current_exception();
  }
  std::unique_lock<std::mutex> lock(mutex_);
  done_.wait(lock, [&] { return pending_ == 0; });
  if (!error) error = error_;
  if (error) std::rethrow_exception(error);
}

}  // namespace encodec
