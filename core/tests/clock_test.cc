#include "switchboard/clock.h"

#include <vector>

#include "gtest/gtest.h"

namespace switchboard {
namespace {

TEST(FakeClockTest, TimersFireInDueOrderOnAdvance) {
  FakeClock clock;
  std::vector<int> fired;
  clock.RunAfter(absl::Milliseconds(30), [&] { fired.push_back(3); });
  clock.RunAfter(absl::Milliseconds(10), [&] { fired.push_back(1); });
  clock.RunAfter(absl::Milliseconds(20), [&] { fired.push_back(2); });
  clock.Advance(absl::Milliseconds(15));
  EXPECT_EQ(fired, std::vector<int>({1}));
  clock.Advance(absl::Milliseconds(15));
  EXPECT_EQ(fired, std::vector<int>({1, 2, 3}));
  EXPECT_EQ(clock.PendingTimers(), 0u);
}

TEST(FakeClockTest, CancelledTimerNeverFires) {
  FakeClock clock;
  bool fired = false;
  TimerHandle h = clock.RunAfter(absl::Seconds(1), [&] { fired = true; });
  EXPECT_TRUE(h.Cancel());
  EXPECT_FALSE(h.Cancel());
  clock.Advance(absl::Seconds(2));
  EXPECT_FALSE(fired);
}

TEST(FakeClockTest, HandlesCancelTheirOwnTimerOnlyAndOutliveTheClock) {
  TimerHandle a;
  TimerHandle fired_one;
  int fired = 0;
  {
    FakeClock clock;
    // Same due time: the handles tell their timers apart by id.
    a = clock.RunAfter(absl::Seconds(1), [&] { ++fired; });
    TimerHandle b = clock.RunAfter(absl::Seconds(1), [&] { fired += 10; });
    fired_one = clock.RunAfter(absl::Milliseconds(500), [&] { fired += 100; });
    EXPECT_TRUE(b.Cancel());
    clock.Advance(absl::Milliseconds(600));
    EXPECT_EQ(fired, 100);
    EXPECT_FALSE(fired_one.Cancel());  // it has fired
    EXPECT_EQ(clock.PendingTimers(), 1u);
  }
  // The clock is gone: nothing to cancel, and no crash.
  EXPECT_FALSE(a.Cancel());
  EXPECT_FALSE(TimerHandle().Cancel());
  EXPECT_TRUE(TimerHandle([] { return true; }).Cancel());
}

TEST(FakeClockTest, TimerSeesItsDueTimeAndCanScheduleMore) {
  FakeClock clock;
  absl::Time start = clock.Now();
  std::vector<absl::Duration> seen;
  clock.RunAfter(absl::Seconds(1), [&] {
    seen.push_back(clock.Now() - start);
    clock.RunAfter(absl::Seconds(1), [&] { seen.push_back(clock.Now() - start); });
  });
  clock.Advance(absl::Seconds(5));
  ASSERT_EQ(seen.size(), 2u);
  EXPECT_EQ(seen[0], absl::Seconds(1));
  EXPECT_EQ(seen[1], absl::Seconds(2));
  EXPECT_EQ(clock.Now() - start, absl::Seconds(5));
}

TEST(RealClockTest, RunsATimer) {
  absl::Mutex mu;
  bool fired = false;
  Clock::Real().RunAfter(absl::Milliseconds(1), [&] {
    absl::MutexLock lock(&mu);
    fired = true;
  });
  absl::MutexLock lock(&mu);
  EXPECT_TRUE(mu.AwaitWithTimeout(absl::Condition(&fired), absl::Seconds(10)));
}

// The timer thread sleeps until its earliest timer (polling at most once a
// second); a timer earlier than that must wake it, not wait for the poll.
TEST(RealClockTest, AnEarlierTimerWakesTheTimerThread) {
  Clock& clock = Clock::Real();
  TimerHandle far = clock.RunAfter(absl::Seconds(30), [] {});
  // Let the timer thread go to sleep waiting for the far timer.
  absl::SleepFor(absl::Milliseconds(20));
  absl::Mutex mu;
  bool fired = false;
  const absl::Time start = absl::Now();
  clock.RunAfter(absl::Milliseconds(5), [&] {
    absl::MutexLock lock(&mu);
    fired = true;
  });
  {
    absl::MutexLock lock(&mu);
    ASSERT_TRUE(mu.AwaitWithTimeout(absl::Condition(&fired), absl::Seconds(10)));
  }
  // Well under the one-second poll, with room for a loaded machine.
  EXPECT_LT(absl::Now() - start, absl::Milliseconds(800));
  EXPECT_TRUE(far.Cancel());
}

}  // namespace
}  // namespace switchboard
