// idle_watch.h: watching for a condition briefly before going to sleep.
//
// Waking a sleeping thread costs a futex call and a context switch, and on a
// virtual machine whose idle CPU halts, tens of microseconds of CPU for the
// wake-up of that CPU. A thread that expects its condition soon watches it
// first, yielding its CPU to any other runnable thread between looks: the
// watch takes only CPU time that would otherwise be idle, and when the
// machine is busy it ends after one yield.
#pragma once

#include <sched.h>
#include <time.h>

#include <cstdint>

namespace switchboard::internal {

inline int64_t MonotonicNanos() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return int64_t{ts.tv_sec} * 1'000'000'000 + ts.tv_nsec;
}

// Yields and checks `ready()` until it is true (returns true) or `watch_ns`
// have passed (returns false). `ready` must be cheap and lock-free.
template <class Ready>
bool WatchBeforeSleeping(int64_t watch_ns, Ready&& ready) {
  if (watch_ns <= 0) return ready();
  const int64_t until = MonotonicNanos() + watch_ns;
  do {
    sched_yield();
    if (ready()) return true;
  } while (MonotonicNanos() < until);
  return false;
}

}  // namespace switchboard::internal
