#include <vector>

#include "gtest/gtest.h"
#include "middleware/bulkhead.h"
#include "middleware/policy_util.h"
#include "middleware/rate_limit.h"
#include "switchboard/clock.h"

namespace switchboard::policy {
namespace {

// A make_start for Bulkhead::Acquire that records `id` when the work starts.
std::function<std::function<void()>()> Start(std::vector<int>* started, int id) {
  return [started, id]() -> std::function<void()> {
    return [started, id] {
      if (started != nullptr) started->push_back(id);
    };
  };
}

TEST(BulkheadTest, RunsUpToMaxQueuesThenSheds) {
  PolicyCounters counters;
  Bulkhead b(2, 2, &counters);
  std::vector<int> started;
  EXPECT_EQ(b.Acquire(Start(&started, 0)), Bulkhead::Admission::kRun);
  EXPECT_EQ(b.Acquire(Start(&started, 1)), Bulkhead::Admission::kRun);
  EXPECT_EQ(b.Acquire(Start(&started, 2)), Bulkhead::Admission::kQueued);
  EXPECT_EQ(b.Acquire(Start(&started, 3)), Bulkhead::Admission::kQueued);
  EXPECT_EQ(b.Acquire(Start(&started, 4)), Bulkhead::Admission::kRejected);
  EXPECT_EQ(b.active(), 2);
  EXPECT_EQ(b.queued(), 2);
  EXPECT_TRUE(started.empty()) << "running work is the caller's; queued work waits";
  b.Release();  // the slot passes to the oldest waiter
  EXPECT_EQ(started, std::vector<int>({2}));
  EXPECT_EQ(b.active(), 2);
  b.Release();
  b.Release();
  b.Release();
  EXPECT_EQ(started, std::vector<int>({2, 3}));
  EXPECT_EQ(b.active(), 0);
  EXPECT_EQ(b.queued(), 0);
  EXPECT_EQ(counters.bulkhead_rejections.load(), 1u);
  EXPECT_EQ(counters.bulkhead_queued.load(), 2u);
  EXPECT_EQ(counters.bulkhead_active.load(), 0);
}

TEST(BulkheadTest, NoQueueShedsAtOnce) {
  Bulkhead b(1, 0);
  EXPECT_EQ(b.Acquire(Start(nullptr, 0)), Bulkhead::Admission::kRun);
  EXPECT_EQ(b.Acquire(Start(nullptr, 0)), Bulkhead::Admission::kRejected);
  b.Release();
  EXPECT_EQ(b.Acquire(Start(nullptr, 0)), Bulkhead::Admission::kRun);
}

TEST(TokenBucketTest, BurstThenRate) {
  FakeClock clock;
  TokenBucket bucket(10, 5, &clock);
  for (int i = 0; i < 5; ++i) EXPECT_TRUE(bucket.TryTake()) << i;
  EXPECT_FALSE(bucket.TryTake());
  EXPECT_EQ(bucket.TimeToNextToken(), absl::Milliseconds(100));
  clock.Advance(absl::Milliseconds(50));
  EXPECT_FALSE(bucket.TryTake());
  clock.Advance(absl::Milliseconds(50));
  EXPECT_TRUE(bucket.TryTake());
  EXPECT_FALSE(bucket.TryTake());
  clock.Advance(absl::Seconds(10));
  EXPECT_DOUBLE_EQ(bucket.tokens(), 5) << "capped at the burst";
}

TEST(RateLimitOptionsTest, DefaultsAndSides) {
  v1::Policy p;
  p.mutable_rate_limit()->set_rate(2.5);
  RateLimitOptions o = RateLimitOptionsFrom(p);
  EXPECT_DOUBLE_EQ(o.burst, 3);
  EXPECT_TRUE(o.caller && o.handler);
  p.mutable_rate_limit()->set_side("handler");
  o = RateLimitOptionsFrom(p);
  EXPECT_FALSE(o.caller);
  EXPECT_TRUE(o.handler);
}

TEST(ShedStatusTest, CarriesTheDelay) {
  absl::Status s = ShedStatus(absl::StatusCode::kResourceExhausted, "full", absl::Milliseconds(250));
  EXPECT_EQ(s.code(), absl::StatusCode::kResourceExhausted);
  ASSERT_TRUE(ShedRetryAfter(s).has_value());
  EXPECT_EQ(*ShedRetryAfter(s), absl::Milliseconds(250));
  EXPECT_FALSE(ShedRetryAfter(absl::ResourceExhaustedError("full")).has_value());
}

}  // namespace
}  // namespace switchboard::policy
