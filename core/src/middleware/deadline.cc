#include "middleware/deadline.h"

#include "builtin_middleware.h"

#include "switchboard/clock.h"
#include "switchboard/internal/strings.h"

namespace switchboard::policy {

void DeadlineMiddleware::Invoke(const CallSite& site, Envelope&& envelope, ReplyCallback done,
                                const ClientNext& next) {
  if (envelope.has_deadline() && site.clock != nullptr && site.clock->Now() >= envelope.deadline) {
    counters_->deadline_exceeded.fetch_add(1, std::memory_order_relaxed);
    std::move(done)(absl::DeadlineExceededError(
        Cat("operation ", site.operation, ": deadline passed before the call was sent")));
    return;
  }
  next(std::move(envelope), [counters = counters_, done = std::move(done)](
                                absl::StatusOr<Envelope>&& result) mutable {
    const absl::Status& status = result.ok() ? result->status : result.status();
    if (status.code() == absl::StatusCode::kDeadlineExceeded) {
      counters->deadline_exceeded.fetch_add(1, std::memory_order_relaxed);
    }
    std::move(done)(std::move(result));
  });
}

std::unique_ptr<ClientMiddleware> MakeDeadlineMiddleware(const CallSite& site, NodeServices* services) {
  return std::make_unique<DeadlineMiddleware>(&services->policy_stats->For(site.operation));
}

}  // namespace switchboard::policy
