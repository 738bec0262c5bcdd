#include "middleware/bulkhead.h"

#include "builtin_middleware.h"

#include "middleware/policy_util.h"
#include "switchboard/context.h"
#include "switchboard/internal/strings.h"
#include "switchboard/node.h"

namespace switchboard::policy {

Bulkhead::Bulkhead(int max_concurrent, int max_queue, PolicyCounters* counters)
    : max_concurrent_(std::max(1, max_concurrent)),
      max_queue_(std::max(0, max_queue)),
      counters_(counters != nullptr ? counters : &own_counters_) {}

Bulkhead::Admission Bulkhead::Acquire(absl::FunctionRef<std::function<void()>()> make_start) {
  absl::MutexLock lock(&mu_);
  if (active_ < max_concurrent_) {
    ++active_;
    counters_->bulkhead_active.fetch_add(1, std::memory_order_relaxed);
    return Admission::kRun;
  }
  if (static_cast<int>(waiting_.size()) < max_queue_) {
    waiting_.push_back(make_start());
    counters_->bulkhead_queued.fetch_add(1, std::memory_order_relaxed);
    return Admission::kQueued;
  }
  counters_->bulkhead_rejections.fetch_add(1, std::memory_order_relaxed);
  return Admission::kRejected;
}

void Bulkhead::Release() {
  std::function<void()> next;
  {
    absl::MutexLock lock(&mu_);
    if (waiting_.empty()) {
      --active_;
      counters_->bulkhead_active.fetch_sub(1, std::memory_order_relaxed);
      return;
    }
    // The slot passes to the oldest waiter: active_ stays the same.
    next = std::move(waiting_.front());
    waiting_.pop_front();
  }
  next();
}

int Bulkhead::active() {
  absl::MutexLock lock(&mu_);
  return active_;
}

int Bulkhead::queued() {
  absl::MutexLock lock(&mu_);
  return static_cast<int>(waiting_.size());
}

// ---------------------------------------------------------------------------

BulkheadMiddleware::BulkheadMiddleware(int max_concurrent, int max_queue,
                                       absl::Duration shed_delay, PolicyCounters* counters)
    : bulkhead_(std::make_shared<Bulkhead>(max_concurrent, max_queue, counters)),
      shed_delay_(shed_delay),
      counters_(counters) {}

namespace {

// Runs the rest of the chain in a slot and frees the slot when it answers.
void RunInSlot(const std::shared_ptr<Bulkhead>& bulkhead, Context& ctx, const Envelope& request,
               ReplyCallback done, const ServerNext& next) {
  next(ctx, request,
       [bulkhead, done = std::move(done)](absl::StatusOr<Envelope>&& reply) mutable {
         // Free the slot first: the reply may take a while to leave.
         bulkhead->Release();
         std::move(done)(std::move(reply));
       });
}

}  // namespace

void BulkheadMiddleware::Invoke(const CallSite& site, Context& ctx, const Envelope& request,
                                ReplyCallback done, const ServerNext& next) {
  std::shared_ptr<Bulkhead> bulkhead = bulkhead_;
  // Filled only when the work has to wait. The request (ctx.envelope()) and
  // `next` (the registration's chain) live until `done` is called.
  struct Pending {
    ReplyCallback done;
  };
  auto make_start = [&]() -> std::function<void()> {
    auto pending = std::make_shared<Pending>(Pending{std::move(done)});
    Context* context = &ctx;
    const ServerNext* rest = &next;
    return [bulkhead, pending, context, rest] {
      // Leave the releasing thread (it is finishing another handler).
      context->node().executor().Post([bulkhead, pending, context, rest] {
        const Clock& clock = context->clock();
        const Envelope& request = context->envelope();
        if (request.has_deadline() && clock.Now() >= request.deadline) {
          bulkhead->Release();
          // The same text as the node's check, so a command is dead-lettered
          // with the reason "deadline exceeded before start".
          std::move(pending->done)(absl::DeadlineExceededError("deadline exceeded before start"));
          return;
        }
        RunInSlot(bulkhead, *context, request, std::move(pending->done), *rest);
      });
    };
  };
  switch (bulkhead->Acquire(make_start)) {
    case Bulkhead::Admission::kRun:
      RunInSlot(bulkhead, ctx, request, std::move(done), next);
      return;
    case Bulkhead::Admission::kQueued:
      return;
    case Bulkhead::Admission::kRejected:
      break;
  }
  // Full jitter around the delay spreads the redeliveries of a burst.
  absl::Duration retry_after = shed_delay_ * (0.5 + UniformUnit());
  std::move(done)(ShedStatus(
      absl::StatusCode::kResourceExhausted,
      Cat("bulkhead of operation ", site.operation, " is full (", bulkhead->max_concurrent(),
          " running, ", bulkhead->max_queue(),
          " waiting); retry later, or raise bulkhead.max_concurrent / bulkhead.max_queue"),
      retry_after));
}

std::unique_ptr<ServerMiddleware> MakeBulkheadMiddleware(const CallSite& site, NodeServices* services) {
  if (!site.policy.has_bulkhead() || site.policy.bulkhead().max_concurrent() <= 0) return nullptr;
  const v1::Policy& p = site.policy;
  // A shed command comes back after about the first redelivery delay.
  const v1::Backoff* backoff = p.has_redelivery() ? &p.redelivery() : &p.retry().backoff();
  absl::Duration delay = DurationOr(backoff->has_initial(), backoff->initial(), absl::Milliseconds(100));
  return std::make_unique<BulkheadMiddleware>(p.bulkhead().max_concurrent(), p.bulkhead().max_queue(),
                                              delay,
                                              &services->policy_stats->For(site.operation));
}

}  // namespace switchboard::policy
