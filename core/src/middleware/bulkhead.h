// bulkhead.h: a limit on concurrent handler executions per operation, with a
// bounded wait queue.
//
// Up to `max_concurrent` executions run at once; up to `max_queue` more wait
// (in arrival order) for a slot; beyond that the work is shed: a request gets
// ResourceExhausted, a command or event is left for redelivery after a short,
// jittered delay (without counting as a failed delivery). Queued work whose
// deadline passes while it waits is not started.
//
// Thread safety: Bulkhead and BulkheadMiddleware are thread-safe. Queued work
// starts on the node's executor.
#pragma once

#include <deque>
#include <functional>
#include <memory>

#include "absl/base/thread_annotations.h"
#include "absl/functional/function_ref.h"
#include "absl/synchronization/mutex.h"
#include "switchboard/middleware.h"
#include "switchboard/policies.h"

namespace switchboard {
struct NodeServices;
}

namespace switchboard::policy {

class Bulkhead {
 public:
  enum class Admission { kRun, kQueued, kRejected };

  Bulkhead(int max_concurrent, int max_queue, PolicyCounters* counters = nullptr);

  // kRun: the caller runs the work now and calls Release() when it ends.
  // kQueued: `make_start` was called (only then) and the function it made
  // runs later, from the Release() that frees a slot (and then owns that
  // slot). kRejected: nothing runs.
  Admission Acquire(absl::FunctionRef<std::function<void()>()> make_start);
  void Release();

  int active();
  int queued();
  int max_concurrent() const { return max_concurrent_; }
  int max_queue() const { return max_queue_; }

 private:
  const int max_concurrent_;
  const int max_queue_;
  PolicyCounters own_counters_;
  PolicyCounters* const counters_;
  absl::Mutex mu_;
  int active_ ABSL_GUARDED_BY(mu_) = 0;
  std::deque<std::function<void()>> waiting_ ABSL_GUARDED_BY(mu_);
};

class BulkheadMiddleware final : public ServerMiddleware {
 public:
  BulkheadMiddleware(int max_concurrent, int max_queue, absl::Duration shed_delay,
                     PolicyCounters* counters);
  void Invoke(const CallSite& site, Context& ctx, const Envelope& request, ReplyCallback done,
              const ServerNext& next) override;
  Bulkhead& bulkhead() { return *bulkhead_; }

 private:
  std::shared_ptr<Bulkhead> bulkhead_;
  const absl::Duration shed_delay_;
  PolicyCounters* counters_;
};

// Factory for the node's chain: nullptr unless the policy has a bulkhead.
std::unique_ptr<ServerMiddleware> MakeBulkheadMiddleware(const CallSite& site, NodeServices* services);

}  // namespace switchboard::policy
