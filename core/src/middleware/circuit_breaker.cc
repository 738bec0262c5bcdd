#include "middleware/circuit_breaker.h"

#include "builtin_middleware.h"

#include <cmath>

#include "switchboard/internal/strings.h"
#include "switchboard/status.h"

namespace switchboard::policy {

CircuitBreakerOptions CircuitBreakerOptionsFrom(const v1::Policy& policy) {
  CircuitBreakerOptions o;
  const v1::CircuitBreakerPolicy& c = policy.circuit_breaker();
  if (c.failure_rate() > 0) o.failure_rate = std::min(c.failure_rate(), 1.0);
  o.window = DurationOr(c.has_window(), c.window(), o.window);
  if (c.min_calls() > 0) o.min_calls = c.min_calls();
  if (c.consecutive_failures() > 0) o.consecutive_failures = c.consecutive_failures();
  o.open_for = DurationOr(c.has_open_for(), c.open_for(), o.open_for);
  if (c.half_open_probes() > 0) o.half_open_probes = c.half_open_probes();
  return o;
}

CircuitBreaker::CircuitBreaker(CircuitBreakerOptions options, Clock* clock, std::string name,
                               PolicyCounters* counters)
    : options_(options),
      clock_(clock),
      name_(std::move(name)),
      counters_(counters != nullptr ? counters : &own_counters_),
      bucket_width_(std::max(options.window / kBuckets, absl::Milliseconds(1))) {
  counters_->breaker_state.store(static_cast<int>(BreakerState::kClosed));
}

CircuitBreaker::Bucket& CircuitBreaker::Current() {
  absl::Duration rem;  // this abseil writes the remainder unconditionally
  int64_t epoch = absl::IDivDuration(clock_->Now() - absl::UnixEpoch(), bucket_width_, &rem);
  Bucket& b = buckets_[epoch % kBuckets];
  if (b.epoch != epoch) b = Bucket{epoch, 0, 0};
  return b;
}

void CircuitBreaker::Sum(int64_t* calls, int64_t* failures) {
  int64_t now = Current().epoch;
  *calls = 0;
  *failures = 0;
  for (const Bucket& b : buckets_) {
    if (b.epoch > now - kBuckets && b.epoch <= now) {
      *calls += b.calls;
      *failures += b.failures;
    }
  }
}

void CircuitBreaker::Transition(BreakerState to) {
  state_ = to;
  ++generation_;
  counters_->breaker_state.store(static_cast<int>(to), std::memory_order_relaxed);
  switch (to) {
    case BreakerState::kOpen:
      opened_at_ = clock_->Now();
      counters_->breaker_opened.fetch_add(1, std::memory_order_relaxed);
      break;
    case BreakerState::kHalfOpen:
      probes_started_ = 0;
      probes_succeeded_ = 0;
      counters_->breaker_half_opened.fetch_add(1, std::memory_order_relaxed);
      break;
    case BreakerState::kClosed:
      for (Bucket& b : buckets_) b = Bucket{};
      consecutive_ = 0;
      counters_->breaker_closed.fetch_add(1, std::memory_order_relaxed);
      break;
  }
}

void CircuitBreaker::MaybeHalfOpen() {
  if (state_ == BreakerState::kOpen && clock_->Now() >= opened_at_ + options_.open_for) {
    Transition(BreakerState::kHalfOpen);
  }
}

absl::StatusOr<CircuitBreaker::Permit> CircuitBreaker::Acquire() {
  internal::CallMutexLock lock(&mu_);
  MaybeHalfOpen();
  switch (state_) {
    case BreakerState::kClosed:
      return Permit{generation_, false};
    case BreakerState::kHalfOpen:
      if (probes_started_ < options_.half_open_probes) {
        ++probes_started_;
        return Permit{generation_, true};
      }
      return absl::UnavailableError(Cat(
          "circuit breaker of ", name_, " is half-open and its ", options_.half_open_probes,
          " probe call(s) are in flight; failing fast (circuit_breaker.half_open_probes)"));
    case BreakerState::kOpen:
      break;
  }
  absl::Duration left = opened_at_ + options_.open_for - clock_->Now();
  return absl::UnavailableError(Cat("circuit breaker of ", name_, " is open (", open_reason_,
                                    "); failing fast for ", ShortDuration(left),
                                    " more (circuit_breaker.open_for = ",
                                    ShortDuration(options_.open_for), ")"));
}

void CircuitBreaker::Record(const Permit& permit, bool failure) {
  internal::CallMutexLock lock(&mu_);
  if (permit.generation != generation_) return;
  if (state_ == BreakerState::kHalfOpen) {
    if (failure) {
      open_reason_ = "a half-open probe failed";
      Transition(BreakerState::kOpen);
    } else if (++probes_succeeded_ >= options_.half_open_probes) {
      Transition(BreakerState::kClosed);
    }
    return;
  }
  if (state_ != BreakerState::kClosed) return;
  Bucket& b = Current();
  ++b.calls;
  if (!failure) {
    consecutive_ = 0;
    return;
  }
  ++b.failures;
  ++consecutive_;
  if (options_.consecutive_failures > 0 && consecutive_ >= options_.consecutive_failures) {
    open_reason_ = Cat(consecutive_, " consecutive failures (circuit_breaker.consecutive_failures = ",
                       options_.consecutive_failures, ")");
    Transition(BreakerState::kOpen);
    return;
  }
  int64_t calls, failures;
  Sum(&calls, &failures);
  if (calls >= options_.min_calls &&
      static_cast<double>(failures) >= options_.failure_rate * static_cast<double>(calls)) {
    open_reason_ = Cat(failures, " of ", calls, " calls failed in the last ",
                       ShortDuration(options_.window), "; circuit_breaker.failure_rate = ",
                       std::round(options_.failure_rate * 1000) / 10, "%, min_calls = ",
                       options_.min_calls);
    Transition(BreakerState::kOpen);
  }
}

BreakerState CircuitBreaker::state() {
  internal::CallMutexLock lock(&mu_);
  MaybeHalfOpen();
  return state_;
}

int64_t CircuitBreaker::window_calls() {
  internal::CallMutexLock lock(&mu_);
  int64_t calls, failures;
  Sum(&calls, &failures);
  return calls;
}

int64_t CircuitBreaker::window_failures() {
  internal::CallMutexLock lock(&mu_);
  int64_t calls, failures;
  Sum(&calls, &failures);
  return failures;
}

// ---------------------------------------------------------------------------

CircuitBreakerMiddleware::CircuitBreakerMiddleware(std::shared_ptr<CircuitBreaker> breaker,
                                                   PolicyCounters* counters,
                                                   std::shared_ptr<FallbackRegistry> fallbacks)
    : breaker_(std::move(breaker)), counters_(counters), fallbacks_(std::move(fallbacks)) {}

namespace {

// Answers `done` from the fallback if one is registered; false if none.
bool TryFallback(const std::shared_ptr<FallbackRegistry>& fallbacks, PolicyCounters* counters,
                 const Envelope& request, const absl::Status& error, ReplyCallback& done) {
  if (!fallbacks) return false;
  RawFallback fallback = fallbacks->Get(request.type);
  if (!fallback) return false;
  absl::StatusOr<std::string> data = fallback(request, error);
  if (counters != nullptr) counters->fallbacks.fetch_add(1, std::memory_order_relaxed);
  if (!data.ok()) {
    std::move(done)(data.status());
    return true;
  }
  Envelope reply;
  reply.id = NewMessageId();
  reply.type = request.type;
  reply.data_content_type = request.data_content_type;
  reply.correlation_id = request.id;
  reply.idempotency_key = request.idempotency_key;
  reply.traceparent = request.traceparent;
  reply.tracestate = request.tracestate;
  reply.attempt = request.attempt;
  reply.style = request.style;
  reply.data = *std::move(data);
  std::move(done)(std::move(reply));
  return true;
}

}  // namespace

void CircuitBreakerMiddleware::Invoke(const CallSite&, Envelope&& envelope, ReplyCallback done,
                                      const ClientNext& next) {
  absl::StatusOr<CircuitBreaker::Permit> permit = breaker_->Acquire();
  if (!permit.ok()) {
    if (counters_ != nullptr) counters_->breaker_rejections.fetch_add(1, std::memory_order_relaxed);
    if (TryFallback(fallbacks_, counters_, envelope, permit.status(), done)) return;
    std::move(done)(permit.status());
    return;
  }
  // The fallback needs the request; keep it only when one is registered.
  std::shared_ptr<Envelope> request;
  if (fallbacks_ && fallbacks_->Has(envelope.type)) request = std::make_shared<Envelope>(envelope);
  next(std::move(envelope),
       [breaker = breaker_, counters = counters_, fallbacks = fallbacks_, request, p = *permit,
        done = std::move(done)](absl::StatusOr<Envelope>&& result) mutable {
         const absl::Status& status = result.ok() ? result->status : result.status();
         bool failure = !status.ok() && CountsAsFailure(status);
         breaker->Record(p, failure);
         if (failure && request != nullptr &&
             TryFallback(fallbacks, counters, *request, status, done)) {
           return;
         }
         std::move(done)(std::move(result));
       });
}

std::unique_ptr<ClientMiddleware> MakeCircuitBreakerMiddleware(
    const CallSite& site, NodeServices* services) {
  if (!site.policy.has_circuit_breaker()) return nullptr;
  PolicyCounters* counters = &services->policy_stats->For(site.operation);
  auto breaker = std::make_shared<CircuitBreaker>(
      CircuitBreakerOptionsFrom(site.policy), site.clock,
      Cat("operation ", site.operation, " on transport ", site.transport_name), counters);
  return std::make_unique<CircuitBreakerMiddleware>(std::move(breaker), counters,
                                                    services->fallbacks);
}

}  // namespace switchboard::policy
