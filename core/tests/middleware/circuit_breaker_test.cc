#include "middleware/circuit_breaker.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "switchboard/clock.h"

namespace switchboard::policy {
namespace {

using ::testing::HasSubstr;

CircuitBreakerOptions Options() {
  CircuitBreakerOptions o;
  o.failure_rate = 0.5;
  o.window = absl::Seconds(10);
  o.min_calls = 10;
  o.open_for = absl::Seconds(5);
  o.half_open_probes = 2;
  return o;
}

// Runs one call through the breaker with the given outcome.
bool Call(CircuitBreaker& b, bool failure) {
  absl::StatusOr<CircuitBreaker::Permit> p = b.Acquire();
  if (!p.ok()) return false;
  b.Record(*p, failure);
  return true;
}

TEST(CircuitBreakerTest, OpensAtFailureRateOnlyAfterMinCalls) {
  FakeClock clock;
  PolicyCounters counters;
  CircuitBreaker b(Options(), &clock, "operation t.Svc/Op on transport bus", &counters);
  for (int i = 0; i < 9; ++i) ASSERT_TRUE(Call(b, true));
  EXPECT_EQ(b.state(), BreakerState::kClosed) << "9 calls is below min_calls";
  ASSERT_TRUE(Call(b, true));
  EXPECT_EQ(b.state(), BreakerState::kOpen);
  EXPECT_EQ(counters.breaker_opened.load(), 1u);
  EXPECT_EQ(counters.breaker_state.load(), static_cast<int>(BreakerState::kOpen));
  absl::StatusOr<CircuitBreaker::Permit> p = b.Acquire();
  ASSERT_FALSE(p.ok());
  EXPECT_EQ(p.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(std::string(p.status().message()), HasSubstr("circuit breaker of operation t.Svc/Op on transport bus is open"));
  EXPECT_THAT(std::string(p.status().message()), HasSubstr("circuit_breaker.open_for"));
}

TEST(CircuitBreakerTest, StaysClosedBelowTheRate) {
  FakeClock clock;
  CircuitBreaker b(Options(), &clock, "b");
  for (int i = 0; i < 12; ++i) ASSERT_TRUE(Call(b, i % 3 == 0));  // 4 of 12 fail
  EXPECT_EQ(b.state(), BreakerState::kClosed);
  EXPECT_EQ(b.window_calls(), 12);
  EXPECT_EQ(b.window_failures(), 4);
}

TEST(CircuitBreakerTest, SlidingWindowForgetsOldCalls) {
  FakeClock clock;
  CircuitBreaker b(Options(), &clock, "b");
  for (int i = 0; i < 9; ++i) ASSERT_TRUE(Call(b, true));
  clock.Advance(absl::Seconds(6));
  for (int i = 0; i < 9; ++i) ASSERT_TRUE(Call(b, false));
  clock.Advance(absl::Seconds(5));  // the 9 failures left the window
  EXPECT_EQ(b.window_failures(), 0);
  EXPECT_EQ(b.window_calls(), 9);
  ASSERT_TRUE(Call(b, true));
  EXPECT_EQ(b.state(), BreakerState::kClosed) << "1 failure of 10 calls";
}

TEST(CircuitBreakerTest, ConsecutiveFailuresOpenBeforeMinCalls) {
  FakeClock clock;
  CircuitBreakerOptions o = Options();
  o.min_calls = 100;
  o.consecutive_failures = 3;
  CircuitBreaker b(o, &clock, "b");
  ASSERT_TRUE(Call(b, true));
  ASSERT_TRUE(Call(b, true));
  ASSERT_TRUE(Call(b, false));  // resets the run
  ASSERT_TRUE(Call(b, true));
  ASSERT_TRUE(Call(b, true));
  EXPECT_EQ(b.state(), BreakerState::kClosed);
  ASSERT_TRUE(Call(b, true));
  EXPECT_EQ(b.state(), BreakerState::kOpen);
  EXPECT_THAT(std::string(b.Acquire().status().message()), HasSubstr("consecutive_failures"));
}

TEST(CircuitBreakerTest, OpenHalfOpenClosed) {
  FakeClock clock;
  PolicyCounters counters;
  CircuitBreaker b(Options(), &clock, "b", &counters);
  for (int i = 0; i < 10; ++i) ASSERT_TRUE(Call(b, true));
  ASSERT_EQ(b.state(), BreakerState::kOpen);
  clock.Advance(absl::Seconds(4));
  EXPECT_FALSE(b.Acquire().ok());
  clock.Advance(absl::Seconds(1));
  EXPECT_EQ(b.state(), BreakerState::kHalfOpen);
  // Two probes pass; a third waits for their outcome.
  absl::StatusOr<CircuitBreaker::Permit> p1 = b.Acquire();
  absl::StatusOr<CircuitBreaker::Permit> p2 = b.Acquire();
  ASSERT_TRUE(p1.ok() && p2.ok());
  absl::StatusOr<CircuitBreaker::Permit> p3 = b.Acquire();
  ASSERT_FALSE(p3.ok());
  EXPECT_THAT(std::string(p3.status().message()), HasSubstr("half_open_probes"));
  b.Record(*p1, false);
  EXPECT_EQ(b.state(), BreakerState::kHalfOpen);
  b.Record(*p2, false);
  EXPECT_EQ(b.state(), BreakerState::kClosed);
  EXPECT_EQ(b.window_calls(), 0) << "closing starts a fresh window";
  EXPECT_EQ(counters.breaker_opened.load(), 1u);
  EXPECT_EQ(counters.breaker_half_opened.load(), 1u);
  EXPECT_EQ(counters.breaker_closed.load(), 1u);
  EXPECT_EQ(counters.breaker_state.load(), static_cast<int>(BreakerState::kClosed));
}

TEST(CircuitBreakerTest, FailedProbeReopens) {
  FakeClock clock;
  CircuitBreaker b(Options(), &clock, "b");
  for (int i = 0; i < 10; ++i) ASSERT_TRUE(Call(b, true));
  clock.Advance(absl::Seconds(5));
  ASSERT_TRUE(Call(b, true));
  EXPECT_EQ(b.state(), BreakerState::kOpen);
  clock.Advance(absl::Seconds(4));
  EXPECT_EQ(b.state(), BreakerState::kOpen) << "open_for counts from the reopening";
  clock.Advance(absl::Seconds(1));
  EXPECT_EQ(b.state(), BreakerState::kHalfOpen);
}

TEST(CircuitBreakerTest, OutcomesFromBeforeAStateChangeAreIgnored) {
  FakeClock clock;
  CircuitBreaker b(Options(), &clock, "b");
  absl::StatusOr<CircuitBreaker::Permit> early = b.Acquire();
  ASSERT_TRUE(early.ok());
  for (int i = 0; i < 10; ++i) ASSERT_TRUE(Call(b, true));
  clock.Advance(absl::Seconds(5));
  ASSERT_EQ(b.state(), BreakerState::kHalfOpen);
  b.Record(*early, false);  // a slow call from the closed period
  EXPECT_EQ(b.state(), BreakerState::kHalfOpen);
}

// Through the middleware: business errors count as answers, not failures.
struct Fixed {
  absl::Status status;
  int calls = 0;
  ClientNext Next() {
    return [this](Envelope, ReplyCallback done) {
      ++calls;
      if (!status.ok()) {
        std::move(done)(status);
        return;
      }
      std::move(done)(Envelope{});
    };
  }
};

std::unique_ptr<CircuitBreakerMiddleware> Middleware(Clock* clock, PolicyCounters* counters,
                                                     std::shared_ptr<FallbackRegistry> fallbacks = nullptr) {
  return std::make_unique<CircuitBreakerMiddleware>(
      std::make_shared<CircuitBreaker>(Options(), clock, "operation t.Svc/Op on transport bus", counters),
      counters, std::move(fallbacks));
}

absl::Status RunOnce(ClientMiddleware& mw, const ClientNext& next) {
  absl::Status out = absl::InternalError("not called");
  Envelope env;
  env.id = "m";
  env.type = "t.Svc/Op";
  CallSite site;
  mw.Invoke(site, std::move(env), [&](absl::StatusOr<Envelope> r) {
    out = r.ok() ? r->status : r.status();
  }, next);
  return out;
}

TEST(CircuitBreakerMiddlewareTest, BusinessErrorsDoNotCount) {
  FakeClock clock;
  PolicyCounters counters;
  auto mw = Middleware(&clock, &counters);
  Fixed business{absl::NotFoundError("no such order")};
  ClientNext next = business.Next();
  for (int i = 0; i < 30; ++i) EXPECT_EQ(RunOnce(*mw, next).code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(mw->breaker().state(), BreakerState::kClosed);
  EXPECT_EQ(business.calls, 30);
}

TEST(CircuitBreakerMiddlewareTest, FailsFastWhileOpenAndUsesTheFallback) {
  FakeClock clock;
  PolicyCounters counters;
  auto fallbacks = std::make_shared<FallbackRegistry>();
  auto mw = Middleware(&clock, &counters, fallbacks);
  Fixed down{absl::UnavailableError("no server")};
  ClientNext next = down.Next();
  for (int i = 0; i < 10; ++i) EXPECT_EQ(RunOnce(*mw, next).code(), absl::StatusCode::kUnavailable);
  ASSERT_EQ(mw->breaker().state(), BreakerState::kOpen);
  absl::Status fast = RunOnce(*mw, next);
  EXPECT_EQ(fast.code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(std::string(fast.message()), HasSubstr("circuit breaker"));
  EXPECT_EQ(down.calls, 10) << "an open breaker does not call the transport";
  EXPECT_EQ(counters.breaker_rejections.load(), 1u);

  absl::Status seen;
  fallbacks->Set("t.Svc/Op", [&](const Envelope&, const absl::Status& why) -> absl::StatusOr<std::string> {
    seen = why;
    return std::string("cached");
  });
  std::optional<absl::StatusOr<Envelope>> reply;
  CallSite site;
  Envelope env;
  env.type = "t.Svc/Op";
  mw->Invoke(site, std::move(env), [&](absl::StatusOr<Envelope> r) { reply = std::move(r); }, next);
  ASSERT_TRUE(reply.has_value() && reply->ok());
  EXPECT_EQ((*reply)->data, "cached");
  EXPECT_THAT(std::string(seen.message()), HasSubstr("circuit breaker"));
  EXPECT_EQ(counters.fallbacks.load(), 1u);
}

TEST(CircuitBreakerOptionsTest, Defaults) {
  v1::Policy p;
  p.mutable_circuit_breaker();
  CircuitBreakerOptions o = CircuitBreakerOptionsFrom(p);
  EXPECT_DOUBLE_EQ(o.failure_rate, 0.5);
  EXPECT_EQ(o.window, absl::Seconds(10));
  EXPECT_EQ(o.min_calls, 20);
  EXPECT_EQ(o.consecutive_failures, 0);
  EXPECT_EQ(o.open_for, absl::Seconds(5));
  EXPECT_EQ(o.half_open_probes, 1);
}

}  // namespace
}  // namespace switchboard::policy
