// A fork-join team for one computation split into parts ("lanes"): the calling thread is lane 0, helper threads
// started here are the others. Pure C++ and libtorch's thread settings: no Node-API here.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <exception>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace encodec {

class Lanes {
 public:
  // `lanes` parts (at least 1); helpers that cannot start leave fewer (lanes() says how many). Each helper runs
  // with one intra-op thread and inference mode, like the thread that calls Run is expected to.
  explicit Lanes(int lanes);
  ~Lanes();
  Lanes(const Lanes&) = delete;
  Lanes& operator=(const Lanes&) = delete;

  int lanes() const { return static_cast<int>(helpers_.size()) + 1; }
  // Runs work(0) here and work(1 .. lanes - 1) on the helpers; returns when all have finished, rethrowing the first
  // exception one of them threw.
  void Run(const std::function<void(int lane)>& work);

  // The part [begin, end) of n items that `lane` takes: contiguous, sizes differing by at most one.
  static void Split(int64_t n, int lane, int lanes, int64_t* begin, int64_t* end);

 private:
  void Helper(int lane);

  std::vector<std::thread> helpers_;
  std::mutex mutex_;
  std::condition_variable wake_, done_;
  const std::function<void(int)>* work_ = nullptr;
  uint64_t generation_ = 0;
  int pending_ = 0;
  bool stop_ = false;
  std::exception_ptr error_;
};

}  // namespace encodec
