#include "call_threads.h"

#include <algorithm>
#include <condition_variable>
#include <deque>
#include <exception>
#include <mutex>
#include <thread>

namespace encodec {

namespace {

struct Task {
  const std::function<void()>* work = nullptr;
  std::exception_ptr error;
  bool done = false;
};

class CallThreads {
 public:
  static CallThreads& Instance() {
    // never destroyed: its threads wait on its members until the process ends
    static CallThreads* instance = new CallThreads();
    return *instance;
  }

  void Run(const std::function<void()>& work) {
    Task task;
    task.work = &work;
    std::unique_lock<std::mutex> lock(mutex_);
    queue_.push_back(&task);
    ++pending_;
    if (pending_ > threads_ && threads_ < max_threads_) {
      try {
        std::thread([this] { Loop(); }).detach();
        ++threads_;
      } catch (...) {
        if (threads_ == 0) {  // nothing would ever run the task: the caller gets the error instead
          queue_.pop_back();
          --pending_;
          throw;
        }
      }
    }
    queued_.notify_one();
    finished_.wait(lock, [&] { return task.done; });
    --pending_;
    lock.unlock();
    if (task.error) std::rethrow_exception(task.error);
  }

  int Count() {
    std::lock_guard<std::mutex> lock(mutex_);
    return threads_;
  }

 private:
  CallThreads() : max_threads_(std::max(2, static_cast<int>(std::thread::hardware_concurrency()))) {}

  void Loop() {
    std::unique_lock<std::mutex> lock(mutex_);
    for (;;) {
      queued_.wait(lock, [&] { return !queue_.empty(); });
      Task* task = queue_.front();
      queue_.pop_front();
      lock.unlock();
      try {
        (*task->work)();
      } catch (...) {
        task->error = std::current_exception();
      }
      lock.lock();
      task->done = true;
      finished_.notify_all();
    }
  }

  const int max_threads_;
  std::mutex mutex_;
  std::condition_variable queued_, finished_;
  std::deque<Task*> queue_;
  int pending_ = 0;  // tasks queued or running
  int threads_ = 0;
};

}  // namespace

void RunOnCallThread(const std::function<void()>& work) { CallThreads::Instance().Run(work); }

int CallThreadCount() { return CallThreads::Instance().Count(); }

}  // namespace encodec
