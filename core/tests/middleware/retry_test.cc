#include "middleware/retry.h"

#include "middleware/policy_util.h"

#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "switchboard/clock.h"
#include "switchboard/trace_context.h"

namespace switchboard::policy {
namespace {

using ::testing::HasSubstr;

RetryOptions Options(int attempts = 4) {
  RetryOptions o;
  o.attempts = attempts;
  o.initial_backoff = absl::Milliseconds(100);
  o.max_backoff = absl::Seconds(1);
  o.multiplier = 2;
  o.budget = 1;
  o.min_retries_per_second = 100;
  return o;
}

TEST(RetryBackoffTest, CapGrowsExponentiallyUpToMax) {
  RetryOptions o = Options();
  EXPECT_EQ(BackoffCap(o, 1), absl::Milliseconds(100));
  EXPECT_EQ(BackoffCap(o, 2), absl::Milliseconds(200));
  EXPECT_EQ(BackoffCap(o, 3), absl::Milliseconds(400));
  EXPECT_EQ(BackoffCap(o, 4), absl::Milliseconds(800));
  EXPECT_EQ(BackoffCap(o, 5), absl::Seconds(1));
  EXPECT_EQ(BackoffCap(o, 500), absl::Seconds(1));  // no overflow
}

TEST(RetryBackoffTest, FullJitterCoversZeroToCap) {
  RetryOptions o = Options();
  EXPECT_EQ(FullJitterBackoff(o, 3, 0.0), absl::ZeroDuration());
  EXPECT_EQ(FullJitterBackoff(o, 3, 0.5), absl::Milliseconds(200));
  absl::Duration lo = absl::InfiniteDuration(), hi = absl::ZeroDuration();
  for (int i = 0; i < 2000; ++i) {
    absl::Duration d = FullJitterBackoff(o, 3, UniformUnit());
    ASSERT_GE(d, absl::ZeroDuration());
    ASSERT_LT(d, absl::Milliseconds(400));
    lo = std::min(lo, d);
    hi = std::max(hi, d);
  }
  // Spread over the whole range, not clustered near the cap.
  EXPECT_LT(lo, absl::Milliseconds(40));
  EXPECT_GT(hi, absl::Milliseconds(360));
}

TEST(RetryBudgetTest, RatioOfRecentCallsPlusReserve) {
  FakeClock clock;
  RetryBudget budget(0.1, /*min_retries_per_second=*/0.2, absl::Seconds(10), &clock);
  // Reserve: 0.2/s x 10 s = 2 retries with no calls at all.
  EXPECT_TRUE(budget.TryWithdraw());
  EXPECT_TRUE(budget.TryWithdraw());
  EXPECT_FALSE(budget.TryWithdraw());
  for (int i = 0; i < 100; ++i) budget.RecordCall();
  // 10% of 100 calls + 2 = 12 in the window, 2 already taken.
  int granted = 0;
  while (budget.TryWithdraw()) ++granted;
  EXPECT_EQ(granted, 10);
  EXPECT_EQ(budget.retries_in_window(), 12);
  // The window slides: after it passes, calls and retries are forgotten.
  clock.Advance(absl::Seconds(11));
  EXPECT_EQ(budget.calls_in_window(), 0);
  EXPECT_EQ(budget.retries_in_window(), 0);
  EXPECT_TRUE(budget.TryWithdraw());
  EXPECT_TRUE(budget.TryWithdraw());
  EXPECT_FALSE(budget.TryWithdraw());
}

// A fake transport step: answers each attempt with the next scripted result.
struct Script {
  std::vector<absl::Status> results;  // per attempt; OK -> a reply envelope
  std::vector<Envelope> seen;
  std::vector<absl::Time> at;
  Clock* clock = nullptr;
  ClientNext Next() {
    return [this](Envelope env, ReplyCallback done) {
      seen.push_back(env);
      at.push_back(clock->Now());
      absl::Status s = seen.size() <= results.size() ? results[seen.size() - 1] : absl::OkStatus();
      if (!s.ok()) {
        std::move(done)(s);
        return;
      }
      Envelope reply;
      reply.data = "ok";
      std::move(done)(std::move(reply));
    };
  }
};

Envelope Request(Clock& clock, absl::Duration timeout = absl::InfiniteDuration()) {
  Envelope env;
  env.id = "m1";
  env.type = "t.Svc/Op";
  env.idempotency_key = "k1";
  env.traceparent = TraceParent::NewRoot().ToString();
  if (timeout != absl::InfiniteDuration()) env.deadline = clock.Now() + timeout;
  return env;
}

TEST(RetryMiddlewareTest, RetriesRetryableWithBackoffSameIdsNewSpans) {
  FakeClock clock;
  PolicyCounters counters;
  RetryMiddleware mw(Options(4), &clock, &counters, [] { return 0.5; });
  Script script{{absl::UnavailableError("down"), absl::UnavailableError("down")}, {}, {}, &clock};
  ClientNext next = script.Next();
  CallSite site;
  site.clock = &clock;
  std::optional<absl::StatusOr<Envelope>> result;
  absl::Time start = clock.Now();
  mw.Invoke(site, Request(clock), [&](absl::StatusOr<Envelope> r) { result = std::move(r); }, next);
  ASSERT_EQ(script.seen.size(), 1u);
  EXPECT_FALSE(result.has_value());
  clock.Advance(absl::Milliseconds(49));  // half of the first cap (100ms) is 50ms
  EXPECT_EQ(script.seen.size(), 1u);
  clock.Advance(absl::Milliseconds(1));
  ASSERT_EQ(script.seen.size(), 2u);
  clock.Advance(absl::Milliseconds(100));  // half of 200ms
  ASSERT_EQ(script.seen.size(), 3u);
  ASSERT_TRUE(result.has_value());
  ASSERT_TRUE(result->ok()) << result->status();
  EXPECT_EQ((*result)->data, "ok");
  EXPECT_EQ(script.at[1] - start, absl::Milliseconds(50));
  EXPECT_EQ(script.at[2] - script.at[1], absl::Milliseconds(100));
  TraceParent first;
  ASSERT_TRUE(TraceParent::Parse(script.seen[0].traceparent, &first));
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(script.seen[i].attempt, i + 1);
    EXPECT_EQ(script.seen[i].id, "m1");
    EXPECT_EQ(script.seen[i].idempotency_key, "k1");
    TraceParent tp;
    ASSERT_TRUE(TraceParent::Parse(script.seen[i].traceparent, &tp));
    EXPECT_EQ(tp.TraceId(), first.TraceId());
    if (i > 0) {
      EXPECT_NE(script.seen[i].traceparent, script.seen[i - 1].traceparent);
    }
  }
  EXPECT_EQ(counters.retries.load(), 2u);
}

TEST(RetryMiddlewareTest, BusinessErrorsAreNotRetried) {
  FakeClock clock;
  PolicyCounters counters;
  RetryMiddleware mw(Options(4), &clock, &counters, [] { return 0.0; });
  Script script{{absl::InvalidArgumentError("bad")}, {}, {}, &clock};
  ClientNext next = script.Next();
  CallSite site;
  std::optional<absl::StatusOr<Envelope>> result;
  mw.Invoke(site, Request(clock), [&](absl::StatusOr<Envelope> r) { result = std::move(r); }, next);
  ASSERT_TRUE(result.has_value());
  EXPECT_EQ(result->status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(script.seen.size(), 1u);
  EXPECT_EQ(counters.retries.load(), 0u);
}

TEST(RetryMiddlewareTest, StopsAfterMaxAttempts) {
  FakeClock clock;
  PolicyCounters counters;
  RetryMiddleware mw(Options(3), &clock, &counters, [] { return 0.0; });  // no wait
  Script script{std::vector<absl::Status>(10, absl::UnavailableError("down")), {}, {}, &clock};
  ClientNext next = script.Next();
  CallSite site;
  std::optional<absl::StatusOr<Envelope>> result;
  mw.Invoke(site, Request(clock), [&](absl::StatusOr<Envelope> r) { result = std::move(r); }, next);
  ASSERT_TRUE(result.has_value());
  EXPECT_EQ(result->status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(script.seen.size(), 3u);
  EXPECT_EQ(counters.retries_exhausted.load(), 1u);
}

TEST(RetryMiddlewareTest, NeverStartsAnAttemptPastTheDeadline) {
  FakeClock clock;
  PolicyCounters counters;
  RetryMiddleware mw(Options(10), &clock, &counters, [] { return 0.9; });
  Script script{std::vector<absl::Status>(10, absl::UnavailableError("down")), {}, {}, &clock};
  ClientNext next = script.Next();
  CallSite site;
  std::optional<absl::StatusOr<Envelope>> result;
  // Backoffs: 90ms, then 180ms; the deadline at 200ms leaves room for the
  // first only.
  mw.Invoke(site, Request(clock, absl::Milliseconds(200)),
            [&](absl::StatusOr<Envelope> r) { result = std::move(r); }, next);
  clock.Advance(absl::Milliseconds(90));
  ASSERT_EQ(script.seen.size(), 2u);
  ASSERT_TRUE(result.has_value());
  EXPECT_EQ(result->status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(counters.retry_deadline_cutoff.load(), 1u);
  EXPECT_EQ(clock.PendingTimers(), 0u);
  for (absl::Time t : script.at) EXPECT_LT(t, clock.Now() + absl::Milliseconds(200));
}

TEST(RetryMiddlewareTest, BudgetLimitsRetriesAcrossCalls) {
  FakeClock clock;
  PolicyCounters counters;
  RetryOptions o = Options(5);
  o.budget = 0.2;
  o.min_retries_per_second = 0;
  RetryMiddleware mw(o, &clock, &counters, [] { return 0.0; });
  Script script{std::vector<absl::Status>(100000, absl::UnavailableError("down")), {}, {}, &clock};
  ClientNext next = script.Next();
  CallSite site;
  int failed = 0;
  for (int i = 0; i < 100; ++i) {
    mw.Invoke(site, Request(clock), [&](absl::StatusOr<Envelope> r) { failed += !r.ok(); }, next);
  }
  EXPECT_EQ(failed, 100);
  // 100 calls, 20% budget: at most 120 attempts in all.
  EXPECT_LE(script.seen.size(), 120u);
  EXPECT_GE(script.seen.size(), 110u);
  EXPECT_GT(counters.retry_budget_exhausted.load(), 0u);
}

TEST(RetryMiddlewareTest, DestroyingDuringBackoffCancelsTheCall) {
  FakeClock clock;
  std::optional<absl::StatusOr<Envelope>> result;
  Script script{{absl::UnavailableError("down")}, {}, {}, &clock};
  ClientNext next = script.Next();
  {
    RetryMiddleware mw(Options(3), &clock, nullptr, [] { return 0.5; });
    CallSite site;
    mw.Invoke(site, Request(clock), [&](absl::StatusOr<Envelope> r) { result = std::move(r); }, next);
    EXPECT_FALSE(result.has_value());
  }
  ASSERT_TRUE(result.has_value());
  EXPECT_EQ(result->status().code(), absl::StatusCode::kCancelled);
  EXPECT_THAT(std::string(result->status().message()), HasSubstr("closed"));
  clock.Advance(absl::Seconds(5));
  EXPECT_EQ(script.seen.size(), 1u);
}

TEST(RetryOptionsTest, DefaultsApplyToUnsetFields) {
  v1::Policy p;
  p.mutable_retry();
  RetryOptions o = RetryOptionsFrom(p);
  EXPECT_EQ(o.attempts, 3);
  EXPECT_EQ(o.initial_backoff, absl::Milliseconds(100));
  EXPECT_EQ(o.max_backoff, absl::Seconds(10));
  EXPECT_EQ(o.multiplier, 2);
  EXPECT_DOUBLE_EQ(o.budget, 0.2);
  EXPECT_DOUBLE_EQ(o.min_retries_per_second, 10);
}

}  // namespace
}  // namespace switchboard::policy
