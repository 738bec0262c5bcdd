#include "switchboard/clock.h"

#include <condition_variable>
#include <thread>
#include <vector>

#include "absl/container/btree_map.h"

namespace switchboard {
namespace {

// Timers ordered by due time, then registration order; shared by both clocks.
class TimerTable {
 public:
  struct Entry {
    absl::Time when;
    std::function<void()> fn;
  };

  uint64_t Add(absl::Time when, std::function<void()> fn) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    uint64_t id = next_id_++;
    timers_.emplace(Key{when, id}, std::move(fn));
    return id;
  }
  bool Cancel(absl::Time when, uint64_t id) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    return timers_.erase(Key{when, id}) > 0;
  }
  // Removes and returns the earliest timer due at or before `now`.
  bool PopDue(absl::Time now, std::function<void()>* fn) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    if (timers_.empty() || timers_.begin()->first.when > now) return false;
    *fn = std::move(timers_.begin()->second);
    timers_.erase(timers_.begin());
    return true;
  }
  absl::Time Earliest() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    return timers_.empty() ? absl::InfiniteFuture() : timers_.begin()->first.when;
  }
  size_t size() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) { return timers_.size(); }

  mutable absl::Mutex mu;

 private:
  struct Key {
    absl::Time when;
    uint64_t id;
    bool operator<(const Key& o) const { return when != o.when ? when < o.when : id < o.id; }
  };
  // A B-tree: a request's deadline timer is added and cancelled on every
  // call, and a std::map would allocate a node for each.
  absl::btree_map<Key, std::function<void()>> timers_ ABSL_GUARDED_BY(mu);
  uint64_t next_id_ ABSL_GUARDED_BY(mu) = 1;
};

// The timers of one clock; handles cancel through it while it lives.
struct ClockState : TimerHandle::Owner {
  bool CancelTimer(absl::Time when, uint64_t id) override {
    absl::MutexLock lock(&table.mu);
    return table.Cancel(when, id);
  }
  TimerTable table;
};

// Registers `fn` in `state->table`; the handle holds the state weakly, so
// a handle that outlives its clock cancels nothing.
TimerHandle AddTimer(const std::shared_ptr<ClockState>& state, absl::Time when,
                     std::function<void()> fn) {
  uint64_t id;
  {
    absl::MutexLock lock(&state->table.mu);
    id = state->table.Add(when, std::move(fn));
  }
  return TimerHandle(std::weak_ptr<TimerHandle::Owner>(state), when, id);
}

class RealClock final : public Clock {
 public:
  RealClock() : state_(std::make_shared<State>()) {
    thread_ = std::thread([state = state_] { Loop(*state); });
    thread_.detach();  // lives as long as the process
  }

  absl::Time Now() const override { return absl::Now(); }

  TimerHandle RunAt(absl::Time when, std::function<void()> fn) override {
    return AddTimer(state_, when, std::move(fn));
  }

 private:
  using State = ClockState;

  static void Loop(State& state) {
    for (;;) {
      std::function<void()> fn;
      {
        absl::MutexLock lock(&state.table.mu);
        for (;;) {
          absl::Time now = absl::Now();
          if (state.table.PopDue(now, &fn)) break;
          absl::Time next = state.table.Earliest();
          // Wakes when the earliest is due or an earlier timer arrives. Not
          // for a later timer or a cancellation: each would cost this thread
          // a wake-up per call (a request's deadline timer is added and
          // cancelled on every call), and neither changes when it must wake.
          auto earlier = [&state, next]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(state.table.mu) {
            return state.table.Earliest() < next;
          };
          state.table.mu.AwaitWithDeadline(absl::Condition(&earlier),
                                           std::min(next, now + absl::Seconds(1)));
        }
      }
      fn();
    }
  }

  std::shared_ptr<State> state_;
  std::thread thread_;
};

}  // namespace

Clock& Clock::Real() {
  static RealClock* clock = new RealClock();
  return *clock;
}

struct FakeClock::State : ClockState {
  absl::Time now ABSL_GUARDED_BY(table.mu);
};

FakeClock::FakeClock(absl::Time start) : state_(std::make_shared<State>()) {
  absl::MutexLock lock(&state_->table.mu);
  state_->now = start;
}

FakeClock::~FakeClock() = default;

absl::Time FakeClock::Now() const {
  absl::MutexLock lock(&state_->table.mu);
  return state_->now;
}

TimerHandle FakeClock::RunAt(absl::Time when, std::function<void()> fn) {
  return AddTimer(state_, when, std::move(fn));
}

void FakeClock::Advance(absl::Duration d) {
  absl::Time target;
  {
    absl::MutexLock lock(&state_->table.mu);
    target = state_->now + d;
  }
  SetTime(target);
}

void FakeClock::SetTime(absl::Time t) {
  // Timers fire in due order; time reads inside a timer see its due time, so
  // a timer that schedules another one relative to Now() behaves as in life.
  for (;;) {
    std::function<void()> fn;
    {
      absl::MutexLock lock(&state_->table.mu);
      absl::Time earliest = state_->table.Earliest();
      if (earliest > t) {
        if (t > state_->now) state_->now = t;
        return;
      }
      if (earliest > state_->now) state_->now = earliest;
      if (!state_->table.PopDue(state_->now, &fn)) return;
    }
    fn();
  }
}

size_t FakeClock::PendingTimers() const {
  absl::MutexLock lock(&state_->table.mu);
  return state_->table.size();
}

}  // namespace switchboard
