#include "middleware/retry.h"

#include "builtin_middleware.h"

#include <algorithm>
#include <cmath>
#include <condition_variable>
#include <map>
#include <mutex>

#include "middleware/policy_util.h"
#include "switchboard/internal/envelope_pool.h"
#include "switchboard/internal/strings.h"
#include "switchboard/status.h"
#include "switchboard/telemetry.h"
#include "switchboard/trace_context.h"

namespace switchboard::policy {

RetryOptions RetryOptionsFrom(const v1::Policy& policy) {
  RetryOptions o;
  const v1::RetryPolicy& r = policy.retry();
  if (r.attempts() > 0) o.attempts = r.attempts();
  o.initial_backoff = DurationOr(r.backoff().has_initial(), r.backoff().initial(), o.initial_backoff);
  o.max_backoff = DurationOr(r.backoff().has_max(), r.backoff().max(), o.max_backoff);
  if (o.max_backoff < o.initial_backoff) o.max_backoff = o.initial_backoff;
  if (r.backoff().multiplier() >= 1) o.multiplier = r.backoff().multiplier();
  if (r.budget() > 0) o.budget = r.budget();
  if (r.min_retries_per_second() > 0) o.min_retries_per_second = r.min_retries_per_second();
  return o;
}

absl::Duration BackoffCap(const RetryOptions& options, int attempt) {
  double factor = std::pow(options.multiplier, std::max(0, attempt - 1));
  // Compare in seconds first: a large factor must not overflow the Duration.
  double seconds = absl::ToDoubleSeconds(options.initial_backoff) * factor;
  if (!std::isfinite(seconds) || seconds >= absl::ToDoubleSeconds(options.max_backoff)) {
    return options.max_backoff;
  }
  return absl::Seconds(seconds);
}

absl::Duration FullJitterBackoff(const RetryOptions& options, int attempt, double unit) {
  unit = std::clamp(unit, 0.0, 1.0);
  return BackoffCap(options, attempt) * unit;
}

// ---------------------------------------------------------------------------

RetryBudget::RetryBudget(double budget, double min_retries_per_second, absl::Duration window,
                         Clock* clock)
    : budget_(budget),
      reserve_(min_retries_per_second * absl::ToDoubleSeconds(window)),
      bucket_width_(std::max(window / kBuckets, absl::Milliseconds(1))),
      clock_(clock) {}

RetryBudget::Bucket& RetryBudget::Current() {
  absl::Duration rem;  // this abseil writes the remainder unconditionally
  int64_t epoch = absl::IDivDuration(clock_->Now() - absl::UnixEpoch(), bucket_width_, &rem);
  Bucket& b = buckets_[epoch % kBuckets];
  if (b.epoch != epoch) b = Bucket{epoch, 0, 0};
  return b;
}

void RetryBudget::Sum(int64_t* calls, int64_t* retries) {
  int64_t now = Current().epoch;
  *calls = 0;
  *retries = 0;
  for (const Bucket& b : buckets_) {
    if (b.epoch > now - kBuckets && b.epoch <= now) {
      *calls += b.calls;
      *retries += b.retries;
    }
  }
}

void RetryBudget::RecordCall() {
  internal::CallMutexLock lock(&mu_);
  ++Current().calls;
}

bool RetryBudget::TryWithdraw() {
  internal::CallMutexLock lock(&mu_);
  int64_t calls, retries;
  Sum(&calls, &retries);
  double allowed = budget_ * static_cast<double>(calls) + reserve_;
  if (static_cast<double>(retries + 1) > allowed) return false;
  ++Current().retries;
  return true;
}

int64_t RetryBudget::calls_in_window() {
  internal::CallMutexLock lock(&mu_);
  int64_t calls, retries;
  Sum(&calls, &retries);
  return calls;
}

int64_t RetryBudget::retries_in_window() {
  internal::CallMutexLock lock(&mu_);
  int64_t calls, retries;
  Sum(&calls, &retries);
  return retries;
}

// ---------------------------------------------------------------------------

struct RetryMiddleware::Call {
  explicit Call(Envelope&& e) : envelope(std::move(e)) {}
  ~Call() { internal::RecycleEnvelope(std::move(envelope)); }

  std::shared_ptr<Shared> shared;
  const CallSite* site = nullptr;  // lives as long as `next`
  Envelope envelope;
  ReplyCallback done;
  const ClientNext* next = nullptr;
  TimerHandle timer;
};

// Outlives the middleware while calls are in flight: results arriving after
// the node dropped its chain only touch this.
struct RetryMiddleware::Shared {
  Shared(RetryOptions o, Clock* c, PolicyCounters* k, std::function<double()> u,
         std::shared_ptr<Telemetry> t)
      : telemetry(std::move(t)),
        options(o),
        clock(c),
        counters(k != nullptr ? k : &own_counters),
        unit(u ? std::move(u) : std::function<double()>(&UniformUnit)),
        budget(o.budget, o.min_retries_per_second, o.budget_window, c) {}

  PolicyCounters own_counters;
  const std::shared_ptr<Telemetry> telemetry;
  const RetryOptions options;
  Clock* const clock;
  PolicyCounters* const counters;
  const std::function<double()> unit;
  RetryBudget budget;

  // Taken twice per attempt: a CallMutex (call_mutex.h). `idle` is notified
  // when the last attempt being started is out while the middleware closes.
  internal::CallMutex mu;
  std::condition_variable idle;
  bool closed ABSL_GUARDED_BY(mu) = false;
  int starting ABSL_GUARDED_BY(mu) = 0;
  uint64_t next_id ABSL_GUARDED_BY(mu) = 0;
  std::map<uint64_t, std::shared_ptr<Call>> waiting ABSL_GUARDED_BY(mu);
};

RetryMiddleware::RetryMiddleware(RetryOptions options, Clock* clock, PolicyCounters* counters,
                                 std::function<double()> unit,
                                 std::shared_ptr<Telemetry> telemetry)
    : shared_(std::make_shared<Shared>(options, clock, counters, std::move(unit),
                                       std::move(telemetry))) {}

RetryMiddleware::~RetryMiddleware() {
  std::map<uint64_t, std::shared_ptr<Call>> waiting;
  {
    internal::CallMutexLock lock(&shared_->mu);
    shared_->closed = true;
    waiting.swap(shared_->waiting);
  }
  for (auto& [id, call] : waiting) {
    call->timer.Cancel();
    std::move(call->done)(absl::CancelledError(
        Cat("retry of ", call->envelope.type, " stopped: the node closed during the backoff")));
  }
  // `next` belongs to the chain being destroyed: wait for an attempt that is
  // being handed to it right now.
  std::unique_lock<std::mutex> lock(shared_->mu.native());
  shared_->idle.wait(lock, [s = shared_.get()]() ABSL_NO_THREAD_SAFETY_ANALYSIS {
    return s->starting == 0;
  });
}

RetryBudget& RetryMiddleware::budget() { return shared_->budget; }

void RetryMiddleware::Invoke(const CallSite& site, Envelope&& envelope, ReplyCallback done,
                             const ClientNext& next) {
  shared_->budget.RecordCall();
  auto call = std::make_shared<Call>(std::move(envelope));
  call->shared = shared_;
  call->site = &site;
  call->done = std::move(done);
  call->next = &next;
  Start(shared_, call);
}

void RetryMiddleware::Start(const std::shared_ptr<Shared>& shared,
                            const std::shared_ptr<Call>& call) {
  bool closed;
  {
    internal::CallMutexLock lock(&shared->mu);
    closed = shared->closed;
    if (!closed) ++shared->starting;
  }
  if (closed) {
    std::move(call->done)(absl::CancelledError(
        Cat("retry of ", call->envelope.type, " stopped: the node closed")));
    return;
  }
  // The transport takes this copy over; the call keeps the original for
  // the next attempt. A spare envelope's buffers take the copy.
  Envelope env = internal::NewEnvelope();
  env = call->envelope;
  // Only `call` is captured: one shared_ptr fits the callback's inline
  // storage, two would be a heap allocation per attempt.
  ReplyCallback done = [call](absl::StatusOr<Envelope>&& result) {
    OnResult(call->shared, call, std::move(result));
  };
  if (env.attempt > 1) {
    // A new span per attempt, in the call's trace (recorded when telemetry
    // samples it); the next attempt's span is a child of this one.
    if (shared->telemetry) {
      done = TraceAttempt(*shared->telemetry, *call->site, env, std::move(done));
    } else if (TraceParent parent; TraceParent::Parse(env.traceparent, &parent)) {
      env.traceparent = parent.Child().ToString();
    }
    call->envelope.traceparent = env.traceparent;
  }
  (*call->next)(std::move(env), std::move(done));
  internal::CallMutexLock lock(&shared->mu);
  if (--shared->starting == 0 && shared->closed) shared->idle.notify_all();
}

void RetryMiddleware::OnResult(const std::shared_ptr<Shared>& shared,
                               const std::shared_ptr<Call>& call,
                               absl::StatusOr<Envelope>&& result) {
  const absl::Status& status = result.ok() ? result->status : result.status();
  Envelope& env = call->envelope;
  auto finish = [&] { std::move(call->done)(std::move(result)); };
  if (status.ok() || !IsRetryable(status)) return finish();
  if (env.attempt >= shared->options.attempts) {
    shared->counters->retries_exhausted.fetch_add(1, std::memory_order_relaxed);
    return finish();
  }
  absl::Duration backoff = FullJitterBackoff(shared->options, env.attempt, shared->unit());
  if (env.has_deadline() && shared->clock->Now() + backoff >= env.deadline) {
    shared->counters->retry_deadline_cutoff.fetch_add(1, std::memory_order_relaxed);
    return finish();
  }
  if (!shared->budget.TryWithdraw()) {
    shared->counters->retry_budget_exhausted.fetch_add(1, std::memory_order_relaxed);
    return finish();
  }
  shared->counters->retries.fetch_add(1, std::memory_order_relaxed);

  ++env.attempt;

  if (backoff <= absl::ZeroDuration()) {
    Start(shared, call);
    return;
  }
  shared->mu.Lock();
  if (shared->closed) {
    shared->mu.Unlock();
    std::move(call->done)(absl::CancelledError(
        Cat("retry of ", env.type, " stopped: the node closed")));
    return;
  }
  uint64_t id = shared->next_id++;
  shared->waiting[id] = call;
  // The timer thread only hands the attempt to the transport, which does not
  // block (the transport SPI sends asynchronously).
  call->timer = shared->clock->RunAfter(backoff, [weak = std::weak_ptr<Shared>(shared), id] {
    std::shared_ptr<Shared> s = weak.lock();
    if (!s) return;
    std::shared_ptr<Call> c;
    {
      internal::CallMutexLock lock(&s->mu);
      auto it = s->waiting.find(id);
      if (it == s->waiting.end()) return;  // the middleware closed and answered it
      c = std::move(it->second);
      s->waiting.erase(it);
    }
    Start(s, c);
  });
  shared->mu.Unlock();
}

std::unique_ptr<ClientMiddleware> MakeRetryMiddleware(const CallSite& site, NodeServices* services) {
  if (!site.policy.has_retry()) return nullptr;
  RetryOptions options = RetryOptionsFrom(site.policy);
  if (options.attempts <= 1) return nullptr;
  return std::make_unique<RetryMiddleware>(options, site.clock,
                                           &services->policy_stats->For(site.operation), nullptr,
                                           services->telemetry);
}

}  // namespace switchboard::policy
