// rate_limit.h: token-bucket rate limits on the caller side and the handler
// side of an operation.
//
// Caller side: a call without a token fails at once with ResourceExhausted
// (retryable by IsRetryable, but not retried by the retry policy, which runs
// inside the limiter: retrying would only spend more tokens). Handler side: a
// request without a token gets ResourceExhausted; a command or event is left
// for redelivery once a token is due. Rejections are counted.
//
// Thread safety: TokenBucket and the middleware are thread-safe.
#pragma once

#include <memory>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "switchboard/clock.h"
#include "switchboard/middleware.h"
#include "switchboard/policies.h"

namespace switchboard {
struct NodeServices;
}

namespace switchboard::policy {

class TokenBucket {
 public:
  // `rate` tokens per second, at most `burst` (>= 1) held; starts full.
  TokenBucket(double rate, double burst, Clock* clock);

  [[nodiscard]] bool TryTake();
  // Time until one token is available (zero if one is now).
  absl::Duration TimeToNextToken();
  double tokens();

 private:
  void Refill() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const double rate_;
  const double burst_;
  Clock* const clock_;
  absl::Mutex mu_;
  double tokens_ ABSL_GUARDED_BY(mu_);
  absl::Time last_ ABSL_GUARDED_BY(mu_);
};

struct RateLimitOptions {
  double rate = 0;  // 0: off
  double burst = 0;
  bool caller = true;
  bool handler = true;
};
RateLimitOptions RateLimitOptionsFrom(const v1::Policy& policy);

class CallerRateLimitMiddleware final : public ClientMiddleware {
 public:
  CallerRateLimitMiddleware(RateLimitOptions options, Clock* clock, PolicyCounters* counters);
  void Invoke(const CallSite& site, Envelope&& envelope, ReplyCallback done,
              const ClientNext& next) override;

 private:
  const RateLimitOptions options_;
  TokenBucket bucket_;
  PolicyCounters* counters_;
};

class HandlerRateLimitMiddleware final : public ServerMiddleware {
 public:
  HandlerRateLimitMiddleware(RateLimitOptions options, Clock* clock, PolicyCounters* counters);
  void Invoke(const CallSite& site, Context& ctx, const Envelope& request, ReplyCallback done,
              const ServerNext& next) override;

 private:
  const RateLimitOptions options_;
  TokenBucket bucket_;
  PolicyCounters* counters_;
};

std::unique_ptr<ClientMiddleware> MakeCallerRateLimitMiddleware(const CallSite& site,
                                                                NodeServices* services);
std::unique_ptr<ServerMiddleware> MakeHandlerRateLimitMiddleware(const CallSite& site,
                                                                 NodeServices* services);

}  // namespace switchboard::policy
