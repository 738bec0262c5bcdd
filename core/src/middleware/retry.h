// retry.h: client-side retry with exponential backoff, full jitter and a
// retry budget.
//
// A failed attempt is retried when IsRetryable() says so, attempts remain,
// the backoff ends before the call's deadline, and the operation's retry
// budget has a token. Every attempt carries the same message id and
// idempotency key, attempt + 1, and a new span of the call's trace.
//
// Thread safety: RetryBudget and RetryMiddleware are thread-safe; the budget
// is shared by every call of one operation.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "call_mutex.h"
#include "absl/time/time.h"
#include "switchboard/clock.h"
#include "switchboard/middleware.h"
#include "switchboard/policies.h"

namespace switchboard {
struct NodeServices;
class Telemetry;
}

namespace switchboard::policy {

struct RetryOptions {
  int attempts = 3;  // including the first
  absl::Duration initial_backoff = absl::Milliseconds(100);
  absl::Duration max_backoff = absl::Seconds(10);
  double multiplier = 2;
  double budget = 0.2;               // retries per recent call
  double min_retries_per_second = 10;
  absl::Duration budget_window = absl::Seconds(10);
};

// The policy's retry options with defaults applied (docs/policies.md).
RetryOptions RetryOptionsFrom(const v1::Policy& policy);

// The upper bound of the backoff before attempt `attempt + 1` (attempt >= 1):
// min(max, initial * multiplier^(attempt - 1)).
absl::Duration BackoffCap(const RetryOptions& options, int attempt);
// Full jitter: uniform in [0, BackoffCap) given `unit` in [0, 1).
absl::Duration FullJitterBackoff(const RetryOptions& options, int attempt, double unit);

// Retries allowed in the last `window`: budget x calls + min_per_second x
// window. Calls and retries are counted in ten buckets, so the window slides
// in steps of window / 10.
class RetryBudget {
 public:
  RetryBudget(double budget, double min_retries_per_second, absl::Duration window, Clock* clock);

  // A call (first attempt) started.
  void RecordCall();
  // Takes one retry from the budget; false when it is spent.
  [[nodiscard]] bool TryWithdraw();

  int64_t calls_in_window();
  int64_t retries_in_window();

 private:
  static constexpr int kBuckets = 10;
  struct Bucket {
    int64_t epoch = -1;
    int64_t calls = 0;
    int64_t retries = 0;
  };
  Bucket& Current() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Sum(int64_t* calls, int64_t* retries) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const double budget_;
  const double reserve_;  // min_retries_per_second x window
  const absl::Duration bucket_width_;
  Clock* const clock_;
  internal::CallMutex mu_;
  Bucket buckets_[kBuckets] ABSL_GUARDED_BY(mu_);
};

class RetryMiddleware final : public ClientMiddleware {
 public:
  // `unit` is the jitter source (uniform in [0, 1)); null: UniformUnit.
  // `telemetry` (may be null) records a span per retry attempt.
  RetryMiddleware(RetryOptions options, Clock* clock, PolicyCounters* counters,
                  std::function<double()> unit = nullptr,
                  std::shared_ptr<Telemetry> telemetry = nullptr);
  // Pending backoffs end with Cancelled; waits for an attempt being started.
  ~RetryMiddleware() override;

  void Invoke(const CallSite& site, Envelope&& envelope, ReplyCallback done,
              const ClientNext& next) override;

  RetryBudget& budget();

 private:
  struct Call;
  struct Shared;
  static void Start(const std::shared_ptr<Shared>& shared, const std::shared_ptr<Call>& call);
  static void OnResult(const std::shared_ptr<Shared>& shared, const std::shared_ptr<Call>& call,
                       absl::StatusOr<Envelope>&& result);

  std::shared_ptr<Shared> shared_;
};

// Factory for the node's chain: nullptr unless the policy retries.
std::unique_ptr<ClientMiddleware> MakeRetryMiddleware(const CallSite& site, NodeServices* services);

}  // namespace switchboard::policy
