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

#include <chrono>
#include <cstdint>

namespace switchboard::internal {

// Looks at `ready()` and, while it is false, yields (`yield()`) and looks
// again until `watch_ns` have passed. True as soon as `ready()` is; false
// when the watch ran out. `ready` must be cheap and lock-free. A condition
// already true costs one look and no system call.
template <class Ready, class Yield>
bool WatchBeforeSleeping(int64_t watch_ns, Ready&& ready, Yield&& yield) {
  if (ready()) return true;
  if (watch_ns <= 0) return false;
  const auto until = std::chrono::steady_clock::now() + std::chrono::nanoseconds(watch_ns);
  do {
    yield();
    if (ready()) return true;
  } while (std::chrono::steady_clock::now() < until);
  return false;
}

template <class Ready>
bool WatchBeforeSleeping(int64_t watch_ns, Ready&& ready) {
  return WatchBeforeSleeping(watch_ns, ready, [] { sched_yield(); });
}

}  // namespace switchboard::internal
