// clock.h: the time seam.
//
// Everything in Switchboard that reads the time or waits for it goes through
// a `Clock`, so tests can inject a `FakeClock` and never sleep:
//
//   switchboard::FakeClock clock;
//   auto node = Node::Create(config, {.clock = &clock});
//   clock.Advance(absl::Milliseconds(250));   // fires due timers inline
//
// Thread safety: every method of every class here may be called from any
// thread.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace switchboard {

// A cancellable timer registration. Destroying the handle does not cancel it;
// call Cancel().
class TimerHandle {
 public:
  // What a clock may implement to cancel its timers without allocating a
  // callback per timer (the built-in clocks do).
  class Owner {
   public:
    virtual ~Owner() = default;
    // True if timer `id`, due at `when`, had not fired and now never will.
    virtual bool CancelTimer(absl::Time when, uint64_t id) = 0;
  };

  TimerHandle() = default;
  explicit TimerHandle(std::function<bool()> cancel) : cancel_(std::move(cancel)) {}
  // Cancels through `owner` while it lives.
  TimerHandle(std::weak_ptr<Owner> owner, absl::Time when, uint64_t id)
      : owner_(std::move(owner)), when_(when), id_(id) {}

  // Returns true if the timer had not fired yet and now never will.
  bool Cancel() {
    if (cancel_) return cancel_();
    if (std::shared_ptr<Owner> owner = owner_.lock()) return owner->CancelTimer(when_, id_);
    return false;
  }

 private:
  std::function<bool()> cancel_;
  std::weak_ptr<Owner> owner_;
  absl::Time when_;
  uint64_t id_ = 0;
};

class Clock {
 public:
  virtual ~Clock() = default;
  virtual absl::Time Now() const = 0;
  // Runs `fn` once, at or after `when`, on a thread owned by the clock (the
  // timer thread for RealClock; the thread that calls Advance() for
  // FakeClock). `fn` MUST be short and MUST NOT block: hand longer work to
  // an executor.
  virtual TimerHandle RunAt(absl::Time when, std::function<void()> fn) = 0;
  TimerHandle RunAfter(absl::Duration d, std::function<void()> fn) {
    return RunAt(Now() + d, std::move(fn));
  }

  // The process-wide real clock (absl::Now and one timer thread).
  static Clock& Real();
};

// A clock whose time only moves when Advance() or SetTime() is called.
class FakeClock final : public Clock {
 public:
  explicit FakeClock(absl::Time start = absl::FromUnixSeconds(1'800'000'000));
  ~FakeClock() override;

  absl::Time Now() const override;
  TimerHandle RunAt(absl::Time when, std::function<void()> fn) override;

  // Moves time forward and runs every timer that became due, in due order,
  // on the calling thread.
  void Advance(absl::Duration d);
  void SetTime(absl::Time t);
  // Timers registered and not yet fired or cancelled.
  size_t PendingTimers() const;

 private:
  struct State;
  std::shared_ptr<State> state_;
};

}  // namespace switchboard
