// Stress check of the fork-join helpers the LM runs on (native/lm_pair.h, native/lanes.h), built by CMakeLists.txt
// as encodec_native_threads_check and run by test/native/threads.test.ts, two processes at once so that threads
// lose their cores mid-job. Jobs of 2, 3 and 4 parts alternate: every part must run exactly once, all must have
// finished when Run returns, and a part's exception must reach the caller. Prints one JSON line; exits 1 on a fault.
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <stdexcept>
#include <thread>

#include "lanes.h"
#include "lm_pair.h"

namespace {

struct Faults {
  long count = 0;
  void Add(const char* what, long job, int part, int value) {
    if (++count <= 5) std::fprintf(stderr, "job %ld part %d: %s (%d)\n", job, part, what, value);
  }
};

template <class RunFn>
void Check(const char* name, long jobs, RunFn run, Faults& faults) {
  std::atomic<int> runs[4];
  std::atomic<int> running{0};
  for (long job = 0; job < jobs; ++job) {
    const int n = 2 + static_cast<int>(job % 3);
    for (auto& r : runs) r.store(0);
    const bool throws = job % 1000 == 999;
    bool caught = false;
    try {
      run(n, [&](int part) {
        running.fetch_add(1);
        if (part < 0 || part >= n) {
          faults.Add("part out of range", job, part, n);
        } else {
          runs[part].fetch_add(1);
        }
        if (job % 512 == 0) std::this_thread::yield();  // a part that takes a while
        running.fetch_sub(1);
        if (throws && part == n - 1) throw std::runtime_error(name);
      });
    } catch (const std::runtime_error&) {
      caught = true;
    }
    if (caught != throws) faults.Add("exception not passed on", job, n - 1, caught);
    if (running.load() != 0) faults.Add("parts still running after Run", job, -1, running.load());
    for (int part = 0; part < 4; ++part) {
      const int expected = part < n ? 1 : 0;
      if (runs[part].load() != expected) faults.Add("runs of the part", job, part, runs[part].load());
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  const long jobs = argc > 1 ? std::atol(argv[1]) : 1000000;
  Faults pair_faults, lanes_faults;
  encodec::LmPair pair;
  Check("pair", jobs, [&](int n, auto&& part) { pair.Run(n, part); }, pair_faults);
  const long helper_parts = pair.TakeHelperParts();
  // Lanes: one lane a part, a team per size
  encodec::Lanes two(2), three(3), four(4);
  encodec::Lanes* teams[] = {&two, &three, &four};
  Check("lanes", jobs / 50, [&](int n, auto&& part) { teams[n - 2]->Run([&](int lane) { part(lane); }); }, lanes_faults);
  std::printf("{\"jobs\":%ld,\"pairFaults\":%ld,\"pairHelperParts\":%ld,\"lanesJobs\":%ld,\"lanesFaults\":%ld}\n", jobs,
              pair_faults.count, helper_parts, jobs / 50, lanes_faults.count);
  return pair_faults.count + lanes_faults.count == 0 ? 0 : 1;
}
