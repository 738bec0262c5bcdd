#include "middleware/idempotency.h"

#include <algorithm>
#include <atomic>
#include <string>
#include <string_view>

#include "switchboard/clock.h"
#include "switchboard/context.h"
#include "switchboard/executor.h"
#include "switchboard/idempotency.h"
#include "switchboard/internal/strings.h"
#include "switchboard/node.h"
#include "switchboard/status.h"

namespace switchboard {
namespace {

constexpr absl::Duration kDefaultLease = absl::Seconds(60);
constexpr size_t kMaxKeyBytes = 1024;
// Waiters re-read the store at least this often: a holder in another
// process completes without telling this one.
constexpr absl::Duration kFirstPoll = absl::Milliseconds(5);
constexpr absl::Duration kMaxPoll = absl::Milliseconds(200);

absl::Duration FromProto(const google::protobuf::Duration& d) {
  return absl::Seconds(d.seconds()) + absl::Nanoseconds(d.nanos());
}

// What every call of one operation shares. Held by shared_ptr so a wait that
// outlives the Invoke() that started it keeps it alive.
struct State {
  std::string operation;
  absl::StatusOr<std::unique_ptr<IdempotencyStore>> store;
  std::shared_ptr<IdempotencyCounters> counters;
  Clock* clock = nullptr;
  std::string source;
  absl::Duration lease = kDefaultLease;
  bool abort_in_progress = false;
};

Envelope ReplyFrom(const State& state, const Envelope& request, const IdempotencyOutcome& outcome) {
  Envelope reply;
  reply.id = NewMessageId();
  reply.source = state.source;
  reply.type = request.type;
  reply.time = state.clock->Now();
  reply.data_content_type =
      outcome.content_type.empty() ? request.data_content_type : outcome.content_type;
  reply.correlation_id = request.correlation_id.empty() ? request.id : request.correlation_id;
  reply.idempotency_key = request.idempotency_key;
  reply.traceparent = request.traceparent;
  reply.tracestate = request.tracestate;
  reply.attempt = request.attempt;
  reply.style = request.style;
  reply.status = outcome.status;
  reply.data = outcome.data;
  return reply;
}

// One call through the middleware, from Begin until `done`.
class Call : public std::enable_shared_from_this<Call> {
 public:
  // `ctx` (with the request) and `next` live until `done` has been called,
  // and so does `key` unless `owned_key` holds it.
  Call(std::shared_ptr<State> state, Context& ctx, std::string_view key, std::string owned_key,
       ReplyCallback done, const ServerNext& next)
      : state_(std::move(state)),
        ctx_(ctx),
        owned_key_(std::move(owned_key)),
        key_(owned_key_.empty() ? key : std::string_view(owned_key_)),
        done_(std::move(done)),
        next_(next) {}

  // Asks the store and acts on the answer.
  void Start() {
    IdempotencyStore& store = **state_->store;
    absl::Time now = state_->clock->Now();
    absl::StatusOr<IdempotencyBegin> begin = store.Begin(key_, now + state_->lease);
    if (!begin.ok()) {
      state_->counters->store_errors.fetch_add(1, std::memory_order_relaxed);
      Finish(absl::UnavailableError(Cat("operation ", state_->operation,
                                        ": idempotency store failed, so the handler was not run "
                                        "(a retry may run it): ",
                                        begin.status().message())));
      return;
    }
    switch (begin->state) {
      case IdempotencyState::kCompleted:
        state_->counters->dedup_hits.fetch_add(1, std::memory_order_relaxed);
        Finish(ReplyFrom(*state_, ctx_.envelope(), begin->outcome));
        return;
      case IdempotencyState::kNew:
        RunHandler(begin->claim);
        return;
      case IdempotencyState::kInProgress:
        OnInProgress(begin->lease_until);
        return;
    }
  }

 private:
  void OnInProgress(absl::Time lease_until) {
    if (state_->abort_in_progress) {
      state_->counters->in_progress_aborts.fetch_add(1, std::memory_order_relaxed);
      Finish(absl::AbortedError(
          Cat("operation ", state_->operation, ": a call with idempotency key \"", key_,
              "\" is still in progress; try again later (policy idempotency.on_in_progress is "
              "`abort`; `wait` waits for its outcome)")));
      return;
    }
    absl::Time now = state_->clock->Now();
    if (!waiting_) {
      waiting_ = true;
      state_->counters->in_progress_waits.fetch_add(1, std::memory_order_relaxed);
    }
    absl::Time deadline = ctx_.deadline();
    if (now >= deadline) {
      state_->counters->wait_timeouts.fetch_add(1, std::memory_order_relaxed);
      Finish(absl::AbortedError(
          Cat("operation ", state_->operation, ": a call with idempotency key \"", key_,
              "\" was still in progress when this duplicate's deadline arrived")));
      return;
    }
    // Wake at the earliest of: the store's notice, the next poll, the
    // holder's lease end (to take over), the deadline (to give up).
    poll_ = poll_ == absl::ZeroDuration() ? kFirstPoll : std::min(poll_ * 2, kMaxPoll);
    absl::Time wake = std::min({now + poll_, std::max(lease_until, now), deadline});
    uint64_t generation;
    {
      absl::MutexLock lock(&mu_);
      armed_ = true;
      generation = ++generation_;
    }
    std::weak_ptr<Call> weak = weak_from_this();
    TimerHandle timer = state_->clock->RunAt(wake, [weak, generation] {
      if (auto self = weak.lock()) self->Wake(generation);
    });
    std::function<void()> unwatch = (*state_->store)->Watch(key_, [weak, generation] {
      if (auto self = weak.lock()) self->Wake(generation);
    });
    bool fired;
    {
      absl::MutexLock lock(&mu_);
      fired = !armed_ || generation_ != generation;
      if (!fired) {
        timer_ = timer;
        unwatch_ = unwatch;
        // Keep ourselves alive while armed: the timer and watch hold weak refs.
        self_ = shared_from_this();
      }
    }
    if (fired) {
      timer.Cancel();
      unwatch();
    }
  }

  void Wake(uint64_t generation) {
    TimerHandle timer;
    std::function<void()> unwatch;
    std::shared_ptr<Call> self;
    {
      absl::MutexLock lock(&mu_);
      if (!armed_ || generation != generation_) return;
      armed_ = false;
      timer = std::move(timer_);
      unwatch = std::move(unwatch_);
      self = std::move(self_);
    }
    timer.Cancel();
    if (unwatch) unwatch();
    if (!self) self = shared_from_this();
    // Called on the clock's timer thread or inside a store call: re-reading
    // the store is longer work.
    ctx_.node().executor().Post([self] { self->Start(); });
  }

  void RunHandler(uint64_t claim) {
    claim_ = claim;
    tx_ = (*state_->store)->NewTransaction(key_, claim);
    if (tx_) ctx_.set_attachment(kIdempotencyTransactionAttachment, tx_.get());
    auto self = shared_from_this();
    next_(ctx_, ctx_.envelope(),
          [self](absl::StatusOr<Envelope>&& out) { self->OnHandled(std::move(out)); });
  }

  void OnHandled(absl::StatusOr<Envelope>&& out) {
    ctx_.set_attachment(kIdempotencyTransactionAttachment, nullptr);
    IdempotencyStore& store = **state_->store;
    IdempotencyCounters& counters = *state_->counters;
    absl::Status status = out.ok() ? out->status : out.status();
    bool thrown = status.GetPayload("switchboard/handler-exception").has_value();
    if (thrown || IsRetryable(status)) {
      // Undo and forget, so the retry or redelivery runs the handler again.
      if (tx_) tx_->Rollback();
      if (absl::Status s = store.Release(key_, claim_); !s.ok()) {
        counters.store_errors.fetch_add(1, std::memory_order_relaxed);
      }
      Finish(std::move(out));
      return;
    }
    IdempotencyOutcome outcome;
    outcome.status = status;
    if (out.ok()) {
      outcome.data = out->data;
      outcome.content_type = out->data_content_type;
    }
    if (tx_ && tx_->open()) {
      absl::Status committed = tx_->CommitWith(outcome);
      if (!committed.ok()) {
        // The handler's side effects were rolled back with the record: the
        // call must run again, so fail it retryably.
        if (committed.code() == absl::StatusCode::kAborted) {
          counters.claims_lost.fetch_add(1, std::memory_order_relaxed);
        } else {
          counters.store_errors.fetch_add(1, std::memory_order_relaxed);
          (void)store.Release(key_, claim_);
        }
        Finish(absl::UnavailableError(Cat("operation ", state_->operation,
                                          ": the handler's transaction was rolled back (",
                                          committed.message(), "); it will run again")));
        return;
      }
      Finish(std::move(out));
      return;
    }
    if (tx_) tx_->Rollback();
    if (absl::Status s = store.Complete(key_, claim_, outcome); !s.ok()) {
      // The handler ran and its effects stay: answer with its outcome; a
      // duplicate may run it again, which the counter makes visible.
      if (s.code() != absl::StatusCode::kAborted) {
        counters.store_errors.fetch_add(1, std::memory_order_relaxed);
      }
    }
    Finish(std::move(out));
  }

  void Finish(absl::StatusOr<Envelope>&& out) {
    tx_.reset();
    ReplyCallback done = std::move(done_);
    std::move(done)(std::move(out));
  }

  std::shared_ptr<State> state_;
  Context& ctx_;
  std::string owned_key_;  // group-prefixed event keys only
  std::string_view key_;   // used only before `done_` runs
  ReplyCallback done_;
  const ServerNext& next_;
  uint64_t claim_ = 0;
  std::unique_ptr<IdempotencyTransaction> tx_;
  bool waiting_ = false;
  absl::Duration poll_ = absl::ZeroDuration();

  absl::Mutex mu_;
  bool armed_ ABSL_GUARDED_BY(mu_) = false;
  uint64_t generation_ ABSL_GUARDED_BY(mu_) = 0;
  TimerHandle timer_ ABSL_GUARDED_BY(mu_);
  std::function<void()> unwatch_ ABSL_GUARDED_BY(mu_);
  std::shared_ptr<Call> self_ ABSL_GUARDED_BY(mu_);
};

class IdempotencyMiddleware final : public ServerMiddleware {
 public:
  explicit IdempotencyMiddleware(std::shared_ptr<State> state) : state_(std::move(state)) {}

  void Invoke(const CallSite& site, Context& ctx, const Envelope& request, ReplyCallback done,
              const ServerNext& next) override {
    (void)site;
    if (!state_->store.ok()) {
      state_->counters->store_errors.fetch_add(1, std::memory_order_relaxed);
      std::move(done)(absl::FailedPreconditionError(
          Cat("operation ", state_->operation, ": ", state_->store.status().message())));
      return;
    }
    std::string_view key = request.idempotency_key.empty() ? std::string_view(request.id)
                                                           : std::string_view(request.idempotency_key);
    // Each subscriber group handles an event once: groups on one node sharing
    // a store must not swallow each other's copies.
    std::string group_key;
    if (!key.empty() && ctx.style() == Style::kEvent && !ctx.group().empty()) {
      group_key = Cat(ctx.group(), "/", key);
      key = group_key;
    }
    if (key.empty()) {
      next(ctx, request, std::move(done));
      return;
    }
    if (key.size() > kMaxKeyBytes) {
      state_->counters->bad_keys.fetch_add(1, std::memory_order_relaxed);
      std::move(done)(absl::InvalidArgumentError(
          Cat("operation ", state_->operation, ": idempotency key of ", key.size(),
              " bytes is longer than ", kMaxKeyBytes, "; the sender should use a shorter key")));
      return;
    }
    auto call =
        std::make_shared<Call>(state_, ctx, key, std::move(group_key), std::move(done), next);
    call->Start();
  }

 private:
  std::shared_ptr<State> state_;
};

}  // namespace

std::unique_ptr<ServerMiddleware> MakeIdempotencyMiddleware(
    const CallSite& site, const std::shared_ptr<NodeServices>& services) {
  if (!site.policy.has_idempotency()) return nullptr;
  const v1::IdempotencyPolicy& policy = site.policy.idempotency();
  auto state = std::make_shared<State>();
  state->operation = site.operation;
  state->counters = IdempotencyCountersFor(site.operation);
  state->clock = site.clock != nullptr ? site.clock : services->clock;
  if (state->clock == nullptr) state->clock = &Clock::Real();
  state->source = services->source;
  if (policy.has_in_progress_lease() &&
      FromProto(policy.in_progress_lease()) > absl::ZeroDuration()) {
    state->lease = FromProto(policy.in_progress_lease());
  }
  state->abort_in_progress = policy.on_in_progress() == "abort";

  IdempotencyStoreOptions options;
  options.ns = site.operation;
  if (policy.has_ttl() && FromProto(policy.ttl()) > absl::ZeroDuration()) {
    options.ttl = FromProto(policy.ttl());
  }
  if (policy.max_entries() > 0) options.max_entries = policy.max_entries();
  options.clock = state->clock;
  options.counters = state->counters;
  absl::StatusOr<std::unique_ptr<IdempotencyStore>> store =
      IdempotencyStoreRegistry::Default().Create(policy.store(), options);
  if (!store.ok()) {
    store =
        absl::Status(store.status().code(), Cat("policy idempotency.store \"", policy.store(),
                                                "\" cannot be used: ", store.status().message()));
  }
  state->store = std::move(store);
  return std::make_unique<IdempotencyMiddleware>(std::move(state));
}

}  // namespace switchboard
