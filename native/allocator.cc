#include "allocator.h"

#include <c10/core/CPUAllocator.h>
#include <c10/core/impl/alloc_cpu.h>
#include <torch/version.h>

#include <condition_variable>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <iterator>
#include <list>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
#ifdef __GLIBC__
#include <malloc.h>  // mallopt, malloc_trim
#endif

#include "errors.h"

namespace encodec {

namespace {

// Model calls running now (for ENCODEC_NATIVE_TEST_MAX_BLOCK_MB).
std::atomic<int> calls_running{0};
int CallsRunning() { return calls_running.load(); }

// libtorch 2.3 made Allocator::allocate non-const and added the pure virtual copy_data.
#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 3)
#define ENCODEC_TORCH_2_3 1
#define ENCODEC_ALLOCATE_CONST
#else
#define ENCODEC_TORCH_2_3 0
#define ENCODEC_ALLOCATE_CONST const
#endif

// A CPU allocator for libtorch's tensors that keeps freed blocks of 64 KiB and more for reuse, up to
// ENCODEC_NATIVE_CPU_CACHE_MB (default 128; 0 turns it off). Without it every layer's activation buffer of
// every call is a fresh mmap that the kernel zero-fills page by page, then unmaps. Chunks of equal length
// allocate the same sizes call after call, so nearly every block is reused. A request takes the smallest cached
// block up to 1/4 larger, so the shorter first and last windows reuse a full window's blocks instead of caching a
// set of their own. When full, the cache drops its least recently released blocks (sizes no longer asked for).
// Blocks from 64 KiB (not only from 1 MiB) take the LSTM's per-step tensors out of glibc's per-thread heaps,
// whose freed pages stay resident. Why these sizes: docs/performance.md ("Inside the addon").
//
// ENCODEC_NATIVE_TEST_MAX_BLOCK_MB (tests only) makes it refuse, as out of memory, any block above that size
// while a model call runs (loading is not limited).
class CachingCpuAllocator final : public c10::Allocator {
 public:
  CachingCpuAllocator(size_t max_cached, size_t max_block) : max_cached_(max_cached), max_block_(max_block) {}

#if ENCODEC_TORCH_2_3
  void copy_data(void* dest, const void* src, std::size_t count) const override { std::memcpy(dest, src, count); }
#endif

  c10::DataPtr allocate(size_t bytes) ENCODEC_ALLOCATE_CONST override {
    void* data = bytes >= kMinCached ? Self().Take(bytes) : nullptr;
    if (data == nullptr) {
      data = Fresh(bytes);
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
  static constexpr size_t kMinCached = 64 << 10;
  struct Block {
    void* data;
    size_t bytes;
  };
  using Lru = std::list<Block>;

  CachingCpuAllocator& Self() const { return const_cast<CachingCpuAllocator&>(*this); }

  // A new block from the system. A failure is counted (see AllocationFailures) and thrown as
  // c10::OutOfMemoryError (alloc_cpu throws a plain c10::Error).
  void* Fresh(size_t bytes) const {
    std::string why;
    if (max_block_ > 0 && bytes > max_block_ && CallsRunning() > 0) {
      why = "refused by ENCODEC_NATIVE_TEST_MAX_BLOCK_MB";
    } else {
      try {
        return c10::alloc_cpu(bytes);
      } catch (const c10::Error& e) {
        why = e.what_without_backtrace();
      }
    }
    CountAllocationFailure();
    throw c10::OutOfMemoryError({__func__, __FILE__, static_cast<uint32_t>(__LINE__)},
                                "cannot allocate a CPU block of " + std::to_string(bytes) + " bytes (" + why + ")");
  }

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
  const size_t max_block_;  // 0: no limit
  std::mutex mutex_;
  Lru lru_;                                       // cached blocks, least recently released first
  std::multimap<size_t, Lru::iterator> by_size_;  // the same blocks by size
  std::unordered_map<void*, size_t> live_;        // large blocks in use, by address
  size_t cached_ = 0;
};

// Installs the caching allocator as libtorch's CPU allocator (once, before any model is loaded).
void UseCachingAllocator() {
  size_t megabytes = 128;
  if (const char* setting = std::getenv("ENCODEC_NATIVE_CPU_CACHE_MB")) megabytes = std::strtoull(setting, nullptr, 10);
  size_t max_block = 0;
  if (const char* setting = std::getenv("ENCODEC_NATIVE_TEST_MAX_BLOCK_MB")) max_block = std::strtoull(setting, nullptr, 10);
  if (megabytes == 0 && max_block == 0) return;
  // lives as long as the process
  CachingCpuAllocator::Instance() = new CachingCpuAllocator(megabytes << 20, max_block << 20);
  c10::SetCPUAllocator(CachingCpuAllocator::Instance(), /*priority=*/1);
}

// glibc returns freed blocks >= 1 MiB to the system at once. By default it raises its mmap threshold (up to 32
// MiB) after each large free, so that later blocks of that size come from its heaps, which keep their freed
// pages: blocks the cache drops (and every block with the cache off) would stay resident. A fixed mmap threshold
// also fixes the trim threshold, which decides how much free memory a heap keeps at its top: at glibc's own
// 2 MiB the worker threads' heaps shrink and regrow (page by page, through page faults) many times per call.
void UseBoundedMalloc() {
#ifdef __GLIBC__
  mallopt(M_MMAP_THRESHOLD, 1 << 20);
  mallopt(M_TRIM_THRESHOLD, 16 << 20);
#endif
}

// Runs releases on a thread of its own. At process exit it finishes the release in hand and runs no more (the
// system takes the memory back), so nothing is freed while libtorch's static objects are being destroyed.
class Releaser {
 public:
  static Releaser& Instance() {
    static Releaser* instance = new Releaser();  // never destroyed: its thread runs until the process ends
    return *instance;
  }
  void Release(std::function<void()> release) {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      pending_.push_back(std::move(release));
    }
    changed_.notify_all();
  }

 private:
  Releaser() {
    std::atexit([] { Instance().Stop(); });
    std::thread([this] { Loop(); }).detach();
  }
  void Loop() {
    std::unique_lock<std::mutex> lock(mutex_);
    for (;;) {
      changed_.wait(lock, [&] { return !pending_.empty() && !stopped_; });
      std::function<void()> release = std::move(pending_.front());
      pending_.pop_front();
      busy_ = true;
      lock.unlock();
      release();
      release = nullptr;  // what it captured goes before the next wait
      lock.lock();
      busy_ = false;
      changed_.notify_all();
    }
  }
  void Stop() {
    std::unique_lock<std::mutex> lock(mutex_);
    stopped_ = true;
    changed_.wait(lock, [&] { return !busy_; });
  }
  std::mutex mutex_;
  std::condition_variable changed_;
  std::deque<std::function<void()>> pending_;
  bool busy_ = false;
  bool stopped_ = false;
};

}  // namespace

CallScope::CallScope() { calls_running.fetch_add(1); }
CallScope::~CallScope() { calls_running.fetch_sub(1); }

void ConfigureCpuMemory() {
  static std::once_flag once;
  std::call_once(once, [] {
    UseBoundedMalloc();
    UseCachingAllocator();
  });
}

void ReleaseCachedMemory() {
  if (CachingCpuAllocator* cache = CachingCpuAllocator::Instance()) cache->EmptyCache();
#ifdef __GLIBC__
  malloc_trim(0);  // freed small tensors leave free pages inside glibc's heaps: give them back too
#endif
}

void ReleaseOffJsThread(std::function<void()> release) { Releaser::Instance().Release(std::move(release)); }

}  // namespace encodec
