#include "middleware/rate_limit.h"

#include "builtin_middleware.h"

#include <algorithm>
#include <cmath>

#include "middleware/policy_util.h"
#include "switchboard/internal/strings.h"

namespace switchboard::policy {

TokenBucket::TokenBucket(double rate, double burst, Clock* clock)
    : rate_(rate), burst_(std::max(1.0, burst)), clock_(clock), tokens_(burst_), last_(clock->Now()) {}

void TokenBucket::Refill() {
  absl::Time now = clock_->Now();
  if (now > last_) {
    tokens_ = std::min(burst_, tokens_ + absl::ToDoubleSeconds(now - last_) * rate_);
    last_ = now;
  }
}

bool TokenBucket::TryTake() {
  absl::MutexLock lock(&mu_);
  Refill();
  if (tokens_ < 1) return false;
  tokens_ -= 1;
  return true;
}

absl::Duration TokenBucket::TimeToNextToken() {
  absl::MutexLock lock(&mu_);
  Refill();
  if (tokens_ >= 1) return absl::ZeroDuration();
  if (rate_ <= 0) return absl::InfiniteDuration();
  return absl::Seconds((1 - tokens_) / rate_);
}

double TokenBucket::tokens() {
  absl::MutexLock lock(&mu_);
  Refill();
  return tokens_;
}

RateLimitOptions RateLimitOptionsFrom(const v1::Policy& policy) {
  RateLimitOptions o;
  const v1::RateLimitPolicy& r = policy.rate_limit();
  o.rate = std::max(0.0, r.rate());
  // Default burst: one second's worth of calls.
  o.burst = r.burst() > 0 ? r.burst() : std::max(1.0, std::ceil(o.rate));
  const std::string& side = r.side();
  o.caller = side.empty() || side == "both" || side == "caller";
  o.handler = side.empty() || side == "both" || side == "handler";
  return o;
}

namespace {

std::string LimitText(std::string_view operation, const RateLimitOptions& o, std::string_view side) {
  return Cat("rate limit of operation ", operation, " (", side, " side: ", o.rate, "/s, burst ",
             o.burst, ") exceeded; retry later, or raise rate_limit.rate / rate_limit.burst");
}

}  // namespace

CallerRateLimitMiddleware::CallerRateLimitMiddleware(RateLimitOptions options, Clock* clock,
                                                     PolicyCounters* counters)
    : options_(options), bucket_(options.rate, options.burst, clock), counters_(counters) {}

void CallerRateLimitMiddleware::Invoke(const CallSite& site, Envelope&& envelope, ReplyCallback done,
                                       const ClientNext& next) {
  if (!bucket_.TryTake()) {
    if (counters_ != nullptr) counters_->rate_limited_caller.fetch_add(1, std::memory_order_relaxed);
    std::move(done)(absl::ResourceExhaustedError(LimitText(site.operation, options_, "caller")));
    return;
  }
  next(std::move(envelope), std::move(done));
}

HandlerRateLimitMiddleware::HandlerRateLimitMiddleware(RateLimitOptions options, Clock* clock,
                                                       PolicyCounters* counters)
    : options_(options), bucket_(options.rate, options.burst, clock), counters_(counters) {}

void HandlerRateLimitMiddleware::Invoke(const CallSite& site, Context& ctx, const Envelope& request,
                                        ReplyCallback done, const ServerNext& next) {
  if (!bucket_.TryTake()) {
    if (counters_ != nullptr) counters_->rate_limited_handler.fetch_add(1, std::memory_order_relaxed);
    // A command or event comes back when a token is due (plus jitter so a
    // backlog does not return at once).
    absl::Duration wait = std::min(bucket_.TimeToNextToken(), absl::Seconds(60));
    absl::Duration retry_after = wait + wait * UniformUnit();
    std::move(done)(ShedStatus(absl::StatusCode::kResourceExhausted,
                               LimitText(site.operation, options_, "handler"), retry_after));
    return;
  }
  next(ctx, request, std::move(done));
}

std::unique_ptr<ClientMiddleware> MakeCallerRateLimitMiddleware(const CallSite& site,
                                                                NodeServices* services) {
  if (!site.policy.has_rate_limit()) return nullptr;
  RateLimitOptions o = RateLimitOptionsFrom(site.policy);
  if (o.rate <= 0 || !o.caller) return nullptr;
  return std::make_unique<CallerRateLimitMiddleware>(
      o, site.clock, &services->policy_stats->For(site.operation));
}

std::unique_ptr<ServerMiddleware> MakeHandlerRateLimitMiddleware(const CallSite& site,
                                                                 NodeServices* services) {
  if (!site.policy.has_rate_limit()) return nullptr;
  RateLimitOptions o = RateLimitOptionsFrom(site.policy);
  if (o.rate <= 0 || !o.handler) return nullptr;
  return std::make_unique<HandlerRateLimitMiddleware>(
      o, site.clock, &services->policy_stats->For(site.operation));
}

}  // namespace switchboard::policy
