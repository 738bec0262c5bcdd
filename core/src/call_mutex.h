// call_mutex.h: the lock taken on the way of every call.
//
// A lock and unlock of absl::Mutex take 11.7 ns on the benchmark machine
// with deadlock detection off (Node::Create turns it off; 38 ns with it on,
// as Debian 12 builds abseil) against 3.6 ns for std::mutex, and one inproc
// request took eleven such locks (breaker, retry, retry budget, idempotency
// store, in-flight count, ...). State touched once per call uses this
// std::mutex with absl's thread-safety annotations instead; state touched at
// setup or on errors keeps absl::Mutex, whose Await and conditions read
// better there.
#pragma once

#include <mutex>

#include "absl/base/thread_annotations.h"

namespace switchboard::internal {

class ABSL_LOCKABLE CallMutex {
 public:
  CallMutex() = default;
  CallMutex(const CallMutex&) = delete;
  CallMutex& operator=(const CallMutex&) = delete;

  void Lock() ABSL_EXCLUSIVE_LOCK_FUNCTION() { mu_.lock(); }
  void Unlock() ABSL_UNLOCK_FUNCTION() { mu_.unlock(); }

  // For a std::condition_variable waiting on this mutex.
  std::mutex& native() { return mu_; }

 private:
  std::mutex mu_;
};

class ABSL_SCOPED_LOCKABLE CallMutexLock {
 public:
  explicit CallMutexLock(CallMutex* mu) ABSL_EXCLUSIVE_LOCK_FUNCTION(mu) : mu_(mu) { mu_->Lock(); }
  ~CallMutexLock() ABSL_UNLOCK_FUNCTION() { mu_->Unlock(); }
  CallMutexLock(const CallMutexLock&) = delete;
  CallMutexLock& operator=(const CallMutexLock&) = delete;

 private:
  CallMutex* const mu_;
};

}  // namespace switchboard::internal
