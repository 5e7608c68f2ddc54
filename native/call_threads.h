// The addon's own threads for native work: every promise worker runs its work on one of them, not on whichever
// libuv pool thread took the job.
#pragma once

#include <functional>

namespace encodec {

// Runs `work` on one of the addon's call threads, blocking the calling thread until it has finished, and
// rethrows what it threw. A thread is added only when every one is busy, up to the machine's core count (at
// least 2), so the library's concurrent calls (one per lane) never wait for each other, while the memory each
// thread keeps (its glibc heap once it has run a model, OpenMP's team for its intra-op threads; docs/performance.md)
// stays bounded by the calls that ran at once, not by UV_THREADPOOL_SIZE.
void RunOnCallThread(const std::function<void()>& work);

// How many call threads exist (for tests).
int CallThreadCount();

}  // namespace encodec
