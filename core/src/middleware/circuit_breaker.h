// circuit_breaker.h: a circuit breaker per operation and transport.
//
// Closed: calls pass; outcomes are counted in a sliding window. It opens when
// at least `min_calls` calls in the window failed at `failure_rate` or more,
// or after `consecutive_failures` failures in a row (when set). Open: calls
// fail fast with Unavailable naming the breaker, for `open_for`. Then
// half-open: `half_open_probes` calls pass; if all succeed it closes, a
// failure opens it again. Only failures that CountsAsFailure() says are
// infrastructure failures count; business errors count as successes (the
// dependency answered).
//
// Thread safety: CircuitBreaker and CircuitBreakerMiddleware are thread-safe.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/time/time.h"
#include "call_mutex.h"
#include "middleware/policy_util.h"
#include "switchboard/clock.h"
#include "switchboard/middleware.h"
#include "switchboard/policies.h"

namespace switchboard {
struct NodeServices;
}

namespace switchboard::policy {

struct CircuitBreakerOptions {
  double failure_rate = 0.5;
  absl::Duration window = absl::Seconds(10);
  int min_calls = 20;
  int consecutive_failures = 0;  // 0: off
  absl::Duration open_for = absl::Seconds(5);
  int half_open_probes = 1;
};

CircuitBreakerOptions CircuitBreakerOptionsFrom(const v1::Policy& policy);

class CircuitBreaker {
 public:
  // `name` names the breaker in errors ("operation X on transport Y").
  CircuitBreaker(CircuitBreakerOptions options, Clock* clock, std::string name,
                 PolicyCounters* counters = nullptr);

  // Lets a call through (a permit to report its outcome with) or refuses it
  // with Unavailable naming the breaker and the knob.
  struct Permit {
    uint64_t generation = 0;
    bool probe = false;
  };
  [[nodiscard]] absl::StatusOr<Permit> Acquire();
  // The outcome of a call let through. Outcomes of calls admitted before the
  // last state change are ignored.
  void Record(const Permit& permit, bool failure);

  BreakerState state();
  // Calls and failures in the window (closed state).
  int64_t window_calls();
  int64_t window_failures();

 private:
  static constexpr int kBuckets = 10;
  struct Bucket {
    int64_t epoch = -1;
    int64_t calls = 0;
    int64_t failures = 0;
  };
  void Sum(int64_t* calls, int64_t* failures) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  Bucket& Current() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void MaybeHalfOpen() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Transition(BreakerState to) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const CircuitBreakerOptions options_;
  Clock* const clock_;
  const std::string name_;
  PolicyCounters own_counters_;
  PolicyCounters* const counters_;
  const absl::Duration bucket_width_;

  internal::CallMutex mu_;
  BreakerState state_ ABSL_GUARDED_BY(mu_) = BreakerState::kClosed;
  uint64_t generation_ ABSL_GUARDED_BY(mu_) = 0;
  Bucket buckets_[kBuckets] ABSL_GUARDED_BY(mu_);
  int consecutive_ ABSL_GUARDED_BY(mu_) = 0;
  absl::Time opened_at_ ABSL_GUARDED_BY(mu_);
  std::string open_reason_ ABSL_GUARDED_BY(mu_);
  int probes_started_ ABSL_GUARDED_BY(mu_) = 0;
  int probes_succeeded_ ABSL_GUARDED_BY(mu_) = 0;
};

class CircuitBreakerMiddleware final : public ClientMiddleware {
 public:
  CircuitBreakerMiddleware(std::shared_ptr<CircuitBreaker> breaker, PolicyCounters* counters,
                           std::shared_ptr<FallbackRegistry> fallbacks);
  void Invoke(const CallSite& site, Envelope&& envelope, ReplyCallback done,
              const ClientNext& next) override;
  CircuitBreaker& breaker() { return *breaker_; }

 private:
  std::shared_ptr<CircuitBreaker> breaker_;
  PolicyCounters* counters_;
  std::shared_ptr<FallbackRegistry> fallbacks_;
};

// Factory for the node's chain: nullptr unless the policy has a breaker.
std::unique_ptr<ClientMiddleware> MakeCircuitBreakerMiddleware(
    const CallSite& site, NodeServices* services);

}  // namespace switchboard::policy
