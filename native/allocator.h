// The addon's CPU memory: a caching allocator for libtorch's large tensor blocks, glibc's malloc held to fixed
// thresholds, and a thread that frees models off the JavaScript threads. Pure C++ and libtorch.
#pragma once

#include <atomic>
#include <functional>

namespace encodec {

// Installs the caching allocator and the malloc settings (once per process, before any model is loaded).
void ConfigureCpuMemory();

// Frees every block the allocator caches and gives glibc's free pages back to the system: a freed model's weights
// must go back to the system, not into the cache.
void ReleaseCachedMemory();

// Runs `release` on the releaser thread, in order: freeing a model empties the cache and trims the heap, which
// must not stall a JavaScript thread (the last reference to a model may drop there, at dispose() or GC).
void ReleaseOffJsThread(std::function<void()> release);

// Marks a model call as running while it lives: ENCODEC_NATIVE_TEST_MAX_BLOCK_MB limits blocks only then.
class CallScope {
 public:
  CallScope();
  ~CallScope();
  CallScope(const CallScope&) = delete;
  CallScope& operator=(const CallScope&) = delete;
};

}  // namespace encodec
