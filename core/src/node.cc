#include "switchboard/node.h"

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <condition_variable>
#include <cstdlib>
#include <mutex>
#include <optional>
#include <unordered_map>

#include "absl/strings/match.h"
#include "switchboard/internal/envelope_pool.h"
#include "switchboard/internal/strings.h"
#include "google/protobuf/descriptor.h"
#include "builtin_middleware.h"
#include "call_mutex.h"
#include "middleware/dead_letter.h"
#include "middleware/metrics.h"
#include "middleware/tracing.h"
#include "middleware/policy_util.h"
#include "rollout.h"
#include "switchboard/config.h"
#include "switchboard/inproc_transport.h"
#include "switchboard/status.h"
#include "switchboard/trace_context.h"
#include "switchboard/transport_registry.h"
#include "switchboard/v1/options.pb.h"

namespace switchboard {
namespace {

constexpr absl::Duration kDefaultReplyTimeout = absl::Seconds(30);
constexpr int kDefaultMaxDeliveries = 5;
constexpr std::string_view kDeadLetterSuffix = ".dlq";

absl::Duration FromProtoDuration(const google::protobuf::Duration& d) {
  return absl::Seconds(d.seconds()) + absl::Nanoseconds(d.nanos());
}

bool IsEmptyType(const google::protobuf::Descriptor* d) {
  return d == nullptr || d->full_name() == "google.protobuf.Empty";
}

// "pkg.Service/Method" -> the method's descriptor, if linked in.
const google::protobuf::MethodDescriptor* FindMethod(std::string_view operation) {
  size_t slash = operation.rfind('/');
  if (slash == std::string_view::npos) return nullptr;
  std::string full = Cat(operation.substr(0, slash), ".", operation.substr(slash + 1));
  return google::protobuf::DescriptorPool::generated_pool()->FindMethodByName(full);
}

std::string DefaultSource() {
  char host[256] = {0};
  gethostname(host, sizeof host - 1);
  return Cat("//switchboard/", host, "/", getpid());
}

// Handlers of one registration that are running or posted. Entered and left
// once per delivery, so the count is an atomic and the lock (call_mutex.h) is
// taken only to wake a WaitIdle.
struct InFlight {
  // The subscriber group of the registration's deliveries (empty for
  // requests); its calls' contexts refer to it, and it outlives them.
  std::string group;
  std::atomic<int> count{0};
  internal::CallMutex mu;
  std::condition_variable idle;

  void Enter() { count.fetch_add(1, std::memory_order_relaxed); }
  void Leave() {
    if (count.fetch_sub(1, std::memory_order_acq_rel) != 1) return;
    internal::CallMutexLock lock(&mu);  // a WaitIdle between its check and its wait
    idle.notify_all();
  }
  void WaitIdle() {
    std::unique_lock<std::mutex> lock(mu.native());
    idle.wait(lock, [this] { return count.load(std::memory_order_acquire) == 0; });
  }
};

// A delivery whose envelope a call borrows: the call gives it back before
// `done` runs, and this restores the trace context the chain replaced with
// its own span, so the delivery is settled (redelivered, dead-lettered)
// holding the message as it arrived. Also when the call is dropped: the
// unsettled delivery is released, and redelivered, after this.
struct HeldDelivery {
  explicit HeldDelivery(std::unique_ptr<Delivery> d) : delivery(std::move(d)) {}
  ~HeldDelivery() {
    if (delivery != nullptr) Restore();
  }
  // Whether the envelope may be borrowed: its trace context is kept here.
  bool Borrow() {
    const Envelope& env = delivery->envelope();
    if (env.traceparent.size() > traceparent.size()) return false;
    std::copy(env.traceparent.begin(), env.traceparent.end(), traceparent.begin());
    traceparent_size = static_cast<uint8_t>(env.traceparent.size());
    if (!env.tracestate.empty()) tracestate = env.tracestate;
    borrowed = true;
    return true;
  }
  void Restore() {
    if (!borrowed) return;
    borrowed = false;
    Envelope& env = delivery->mutable_envelope();
    env.traceparent.assign(traceparent.data(), traceparent_size);
    if (tracestate.has_value()) env.tracestate = *std::move(tracestate);
  }

  std::unique_ptr<Delivery> delivery;
  // A version-00 traceparent is 55 characters; longer ones are copied.
  std::array<char, 64> traceparent;
  uint8_t traceparent_size = 0;
  bool borrowed = false;
  std::optional<std::string> tracestate;
};

}  // namespace

// The state of one operation as this node runs it: its binding, policy chain
// and transport. Built on first use and kept for the node's life.
struct OpRuntime {
  CallSite site;
  std::shared_ptr<Transport> transport;
  std::vector<std::unique_ptr<ClientMiddleware>> client_middleware;
  std::vector<std::unique_ptr<ServerMiddleware>> server_middleware;
  ClientNext client_chain;
  absl::Duration timeout = absl::ZeroDuration();  // zero: none
  absl::Duration deadline_margin = absl::ZeroDuration();
  int max_deliveries = kDefaultMaxDeliveries;
  bool dead_letter = true;
  bool is_dead_letter_queue = false;
  absl::Duration redelivery_initial = absl::Milliseconds(100);
  absl::Duration redelivery_max = absl::Seconds(10);
  double redelivery_multiplier = 2;
  uint64_t max_payload_bytes = 4 << 20;

  bool fire_and_forget() const {
    return site.style == Style::kEvent || (site.style == Style::kCommand && !site.reply);
  }
  absl::Duration RedeliveryDelay(int attempt) const {
    double factor = std::pow(redelivery_multiplier, std::max(0, attempt - 1));
    absl::Duration d = redelivery_initial * factor;
    return std::min(d, redelivery_max);
  }
};

class Node::Impl {
 public:
  struct PendingReply {
    ReplyCallback done;
    TimerHandle timer;
  };
  struct Inbox {
    std::unique_ptr<ReplyInbox> inbox;
    std::string address;
  };
  // Shared with registrations so a HandlerRegistration may outlive the node.
  struct Registrations {
    absl::Mutex mu;
    uint64_t next_id ABSL_GUARDED_BY(mu) = 1;
    std::map<uint64_t, std::function<void()>> stops ABSL_GUARDED_BY(mu);
    bool closed ABSL_GUARDED_BY(mu) = false;

    void Stop(uint64_t id) {
      std::function<void()> stop;
      {
        absl::MutexLock lock(&mu);
        auto it = stops.find(id);
        if (it == stops.end()) return;
        stop = std::move(it->second);
        stops.erase(it);
      }
      stop();
    }
  };

  v1::Config config;
  Clock* clock = nullptr;
  std::shared_ptr<Executor> executor;
  const TransportRegistry* registry = nullptr;
  MiddlewareFactories middleware;
  std::string source;
  std::string default_transport;
  Node* node = nullptr;
  std::shared_ptr<NodeServices> services;

  absl::Mutex transports_mu;
  std::map<std::string, std::shared_ptr<Transport>, std::less<>> transports
      ABSL_GUARDED_BY(transports_mu);

  // Looked up on every call (call_mutex.h).
  internal::CallMutex ops_mu;
  std::map<std::string, std::shared_ptr<OpRuntime>, std::less<>> ops ABSL_GUARDED_BY(ops_mu);

  absl::Mutex replies_mu;
  std::map<std::string, Inbox, std::less<>> inboxes ABSL_GUARDED_BY(replies_mu);
  std::unordered_map<std::string, PendingReply> pending ABSL_GUARDED_BY(replies_mu);

  std::shared_ptr<Registrations> registrations = std::make_shared<Registrations>();
  std::atomic<bool> closed{false};

  // Counters for what the node refused or replaced (exported by telemetry).
  std::atomic<uint64_t> invalid_traceparent{0};
  std::atomic<uint64_t> late_replies{0};
  std::atomic<uint64_t> expired_before_start{0};

  absl::StatusOr<std::shared_ptr<OpRuntime>> Runtime(std::string_view operation);
  absl::StatusOr<v1::OperationBinding> BindingFor(std::string_view operation) const;
  absl::StatusOr<std::shared_ptr<OpRuntime>> BuildRuntime(std::string_view operation);

  void Dispatch(const std::shared_ptr<OpRuntime>& rt, Envelope&& env, ReplyCallback done);
  void DispatchCommandWithReply(const std::shared_ptr<OpRuntime>& rt, Envelope env,
                                ReplyCallback done);
  absl::StatusOr<std::string> InboxAddress(const std::shared_ptr<Transport>& transport);
  void OnReply(Envelope reply);

  ServerNext BuildServerChain(const std::shared_ptr<OpRuntime>& rt,
                              std::shared_ptr<RawHandler> handler);
  // `group` must outlive the call. With `give_back`, the request is moved
  // back there before `done` runs (with this hop's span in its traceparent).
  void Serve(const std::shared_ptr<OpRuntime>& rt, const ServerNext& chain, Envelope&& request,
             ReplyCallback done, std::string_view group = {}, Envelope* give_back = nullptr);
  void Settle(const std::shared_ptr<OpRuntime>& rt, std::unique_ptr<Delivery> delivery,
              absl::StatusOr<Envelope> outcome);
  Envelope MakeReply(const Envelope& request, absl::Status status, std::string data) const;

  static std::shared_ptr<NodeServices> ServicesOf(const Node& n) { return n.impl_->services; }
};

absl::StatusOr<v1::OperationBinding> Node::Impl::BindingFor(std::string_view operation) const {
  // ---- rollout (rollout.h): the second binding of a split operation ----
  if (std::optional<std::string_view> base = rollout::OperationOf(operation)) {
    absl::StatusOr<v1::OperationBinding> b = BindingFor(*base);
    if (!b.ok()) return b.status();
    return rollout::DerivedBinding(*b);
  }
  // ---- rollout end ----
  auto it = config.operations().find(std::string(operation));
  if (it != config.operations().end()) {
    v1::OperationBinding b = it->second;
    if (b.transport().empty()) b.set_transport(default_transport);
    if (b.policy().empty()) b.set_policy(config.node().default_policy());
    if (b.style() == v1::STYLE_UNSPECIFIED) b.set_style(v1::STYLE_REQUEST);
    return b;
  }
  if (operation.ends_with(kDeadLetterSuffix)) {
    std::string_view base = operation.substr(0, operation.size() - kDeadLetterSuffix.size());
    absl::StatusOr<v1::OperationBinding> b = BindingFor(base);
    if (!b.ok()) return b.status();
    v1::OperationBinding dlq;
    dlq.set_style(v1::STYLE_COMMAND);
    dlq.set_transport(b->transport());
    dlq.set_policy(b->policy());
    return dlq;
  }
  // Not configured: the style declared in the .proto, else request.
  v1::OperationBinding b;
  b.set_transport(default_transport);
  b.set_policy(config.node().default_policy());
  b.set_style(v1::STYLE_REQUEST);
  if (const auto* method = FindMethod(operation)) {
    const auto& opts = method->options().GetExtension(v1::operation);
    if (opts.style() != v1::STYLE_UNSPECIFIED) b.set_style(opts.style());
    b.set_reply(opts.reply());
  } else if (const auto* message = google::protobuf::DescriptorPool::generated_pool()
                                       ->FindMessageTypeByName(std::string(operation))) {
    if (message->options().HasExtension(v1::event)) b.set_style(v1::STYLE_EVENT);
  }
  return b;
}

absl::StatusOr<std::shared_ptr<OpRuntime>> Node::Impl::Runtime(std::string_view operation) {
  {
    internal::CallMutexLock lock(&ops_mu);
    auto it = ops.find(operation);
    if (it != ops.end()) return it->second;
  }
  absl::StatusOr<std::shared_ptr<OpRuntime>> built = BuildRuntime(operation);
  if (!built.ok()) return built.status();
  internal::CallMutexLock lock(&ops_mu);
  auto [it, inserted] = ops.emplace(std::string(operation), *std::move(built));
  return it->second;
}

absl::StatusOr<std::shared_ptr<OpRuntime>> Node::Impl::BuildRuntime(std::string_view operation) {
  if (operation.empty()) return absl::InvalidArgumentError("operation name is empty");
  absl::StatusOr<v1::OperationBinding> binding = BindingFor(operation);
  if (!binding.ok()) return binding.status();

  auto rt = std::make_shared<OpRuntime>();
  rt->site.operation = std::string(rollout::OperationOf(operation).value_or(operation));  // rollout
  rt->site.style = static_cast<Style>(binding->style());
  rt->site.reply = binding->reply();
  rt->site.binding = *binding;
  rt->site.clock = clock;
  rt->is_dead_letter_queue = operation.ends_with(kDeadLetterSuffix) &&
                             !config.operations().contains(std::string(operation));

  if (!binding->policy().empty()) {
    auto it = config.policies().find(binding->policy());
    if (it == config.policies().end()) {
      return absl::InvalidArgumentError(Cat("operation ", operation, ": policy \"",
                                                     binding->policy(),
                                                     "\" is not defined under `policies`"));
    }
    rt->site.policy = it->second;
  }
  const v1::Policy& policy = rt->site.policy;
  if (policy.has_timeout()) rt->timeout = FromProtoDuration(policy.timeout());
  if (rt->timeout <= absl::ZeroDuration() && !rt->fire_and_forget()) {
    rt->timeout = kDefaultReplyTimeout;
  }
  if (policy.deadline().has_margin()) rt->deadline_margin = FromProtoDuration(policy.deadline().margin());
  if (policy.max_deliveries() > 0) rt->max_deliveries = policy.max_deliveries();
  if (policy.has_dead_letter()) rt->dead_letter = policy.dead_letter();
  if (policy.max_payload_bytes() > 0) rt->max_payload_bytes = policy.max_payload_bytes();
  const v1::Backoff* backoff = policy.has_redelivery() ? &policy.redelivery()
                               : policy.retry().has_backoff() ? &policy.retry().backoff()
                                                              : nullptr;
  if (backoff != nullptr) {
    if (backoff->has_initial()) rt->redelivery_initial = FromProtoDuration(backoff->initial());
    if (backoff->has_max()) rt->redelivery_max = FromProtoDuration(backoff->max());
    if (backoff->multiplier() > 0) rt->redelivery_multiplier = backoff->multiplier();
  }

  {
    absl::ReaderMutexLock lock(&transports_mu);
    auto it = transports.find(binding->transport());
    if (it == transports.end()) {
      return absl::InvalidArgumentError(Cat("operation ", operation, ": transport \"",
                                                     binding->transport(),
                                                     "\" is not defined under `transports`"));
    }
    rt->transport = it->second;
  }
  rt->site.transport_name = std::string(rt->transport->name());
  rt->site.transport_type = std::string(rt->transport->type());
  if (rt->site.style == Style::kCommand && rt->site.reply && !rt->transport->features().reply_routing) {
    return absl::FailedPreconditionError(Cat(
        "operation ", operation, ": `reply: true` needs a transport that routes replies; ",
        rt->site.transport_name, " (", rt->site.transport_type, ") does not"));
  }

  for (const auto& make : middleware.client) {
    if (auto mw = make(rt->site)) rt->client_middleware.push_back(std::move(mw));
  }
  for (const auto& make : middleware.server) {
    if (auto mw = make(rt->site)) rt->server_middleware.push_back(std::move(mw));
  }

  // The client chain: each middleware wraps the next; the innermost step hands
  // the envelope to the transport in the operation's style.
  std::weak_ptr<OpRuntime> weak = rt;
  ClientNext next = [this, weak](Envelope&& env, ReplyCallback done) {
    auto self = weak.lock();
    if (!self) {
      std::move(done)(absl::CancelledError("node closed"));
      return;
    }
    Dispatch(self, std::move(env), std::move(done));
  };
  for (auto it = rt->client_middleware.rbegin(); it != rt->client_middleware.rend(); ++it) {
    ClientMiddleware* mw = it->get();
    const CallSite* site = &rt->site;
    next = [mw, site, inner = std::move(next)](Envelope&& env, ReplyCallback done) {
      mw->Invoke(*site, std::move(env), std::move(done), inner);
    };
  }
  rt->client_chain = std::move(next);
  return rt;
}

void Node::Impl::Dispatch(const std::shared_ptr<OpRuntime>& rt, Envelope&& env, ReplyCallback done) {
  if (env.data.size() > rt->max_payload_bytes) {
    std::move(done)(absl::ResourceExhaustedError(Cat(
        "payload of ", env.data.size(), " bytes exceeds max_payload_bytes (", rt->max_payload_bytes,
        ") of operation ", rt->site.operation, "; raise the policy's max_payload_bytes")));
    return;
  }
  switch (rt->site.style) {
    case Style::kRequest:
      rt->transport->Request(std::move(env), std::move(done));
      return;
    case Style::kCommand:
      if (rt->site.reply) {
        DispatchCommandWithReply(rt, std::move(env), std::move(done));
        return;
      }
      rt->transport->Enqueue(std::move(env), [done = std::move(done)](absl::Status s) mutable {
        if (!s.ok()) {
          std::move(done)(s);
          return;
        }
        std::move(done)(Envelope{});
      });
      return;
    case Style::kEvent:
      rt->transport->Publish(std::move(env), [done = std::move(done)](absl::Status s) mutable {
        if (!s.ok()) {
          std::move(done)(s);
          return;
        }
        std::move(done)(Envelope{});
      });
      return;
    default:
      std::move(done)(absl::InvalidArgumentError(
          Cat("operation ", rt->site.operation, " has no style")));
  }
}

absl::StatusOr<std::string> Node::Impl::InboxAddress(const std::shared_ptr<Transport>& transport) {
  std::string name(transport->name());
  {
    absl::MutexLock lock(&replies_mu);
    auto it = inboxes.find(name);
    if (it != inboxes.end()) return it->second.address;
  }
  absl::StatusOr<std::unique_ptr<ReplyInbox>> inbox =
      transport->OpenInbox([this](Envelope reply) { OnReply(std::move(reply)); });
  if (!inbox.ok()) return inbox.status();
  absl::MutexLock lock(&replies_mu);
  auto [it, inserted] = inboxes.emplace(name, Inbox{});
  if (inserted) {
    it->second.address = (*inbox)->address();
    it->second.inbox = *std::move(inbox);
  }
  return it->second.address;
}

void Node::Impl::DispatchCommandWithReply(const std::shared_ptr<OpRuntime>& rt, Envelope env,
                                          ReplyCallback done) {
  absl::StatusOr<std::string> address = InboxAddress(rt->transport);
  if (!address.ok()) {
    std::move(done)(address.status());
    return;
  }
  env.reply_to = *address;
  if (env.correlation_id.empty()) env.correlation_id = env.id;
  std::string correlation = env.correlation_id;
  {
    absl::MutexLock lock(&replies_mu);
    PendingReply& p = pending[correlation];
    p.done = std::move(done);
    if (env.has_deadline()) {
      p.timer = clock->RunAt(env.deadline, [this, correlation, op = rt->site.operation] {
        ReplyCallback expired;
        {
          absl::MutexLock lock(&replies_mu);
          auto it = pending.find(correlation);
          if (it == pending.end()) return;
          expired = std::move(it->second.done);
          pending.erase(it);
        }
        std::move(expired)(absl::DeadlineExceededError(
            Cat("no reply to command ", op, " before its deadline")));
      });
    }
  }
  rt->transport->Enqueue(std::move(env), [this, correlation](absl::Status s) {
    if (s.ok()) return;
    ReplyCallback failed;
    {
      absl::MutexLock lock(&replies_mu);
      auto it = pending.find(correlation);
      if (it == pending.end()) return;
      failed = std::move(it->second.done);
      it->second.timer.Cancel();
      pending.erase(it);
    }
    std::move(failed)(s);
  });
}

void Node::Impl::OnReply(Envelope reply) {
  ReplyCallback done;
  {
    absl::MutexLock lock(&replies_mu);
    auto it = pending.find(reply.correlation_id);
    if (it == pending.end()) {
      late_replies.fetch_add(1, std::memory_order_relaxed);
      return;
    }
    done = std::move(it->second.done);
    it->second.timer.Cancel();
    pending.erase(it);
  }
  std::move(done)(std::move(reply));
}

Envelope Node::Impl::MakeReply(const Envelope& request, absl::Status status, std::string data) const {
  Envelope reply = internal::NewEnvelope();
  internal::AssignNewMessageId(&reply.id);
  reply.source = source;
  reply.type = request.type;
  reply.time = clock->Now();
  reply.data_content_type = request.data_content_type;
  reply.correlation_id = request.correlation_id.empty() ? request.id : request.correlation_id;
  reply.idempotency_key = request.idempotency_key;
  reply.traceparent = request.traceparent;
  reply.tracestate = request.tracestate;
  reply.attempt = request.attempt;
  reply.style = request.style;
  reply.status = std::move(status);
  reply.data = std::move(data);
  return reply;
}

namespace {

// The `done` a raw handler gets. A handler that drops it unanswered has its
// call answered Cancelled through the chain (traced and counted), as a
// dropped Promise answers a typed one.
class HandlerDone {
 public:
  HandlerDone(const Node::Impl* impl, const Context* ctx, ReplyCallback reply_done)
      : impl_(impl), ctx_(ctx), reply_done_(std::move(reply_done)) {}
  HandlerDone(HandlerDone&& other) noexcept
      : impl_(other.impl_), ctx_(other.ctx_), reply_done_(std::move(other.reply_done_)),
        armed_(std::exchange(other.armed_, false)) {}
  HandlerDone& operator=(HandlerDone&&) = delete;
  ~HandlerDone() {
    if (armed_) {
      Answer(absl::CancelledError("the handler dropped the call without an answer"), "");
    }
  }

  void operator()(absl::StatusOr<std::string> result) && {
    if (!armed_) return;
    if (!result.ok()) {
      Answer(result.status(), "");
    } else {
      Answer(absl::OkStatus(), *std::move(result));
    }
  }

 private:
  void Answer(absl::Status status, std::string data) {
    armed_ = false;
    std::move(reply_done_)(impl_->MakeReply(ctx_->envelope(), std::move(status), std::move(data)));
  }

  const Node::Impl* impl_;
  const Context* ctx_;
  ReplyCallback reply_done_;
  bool armed_ = true;
};

}  // namespace

// The server chain of one handler registration: the operation's server
// middleware around the handler, built once and shared by its calls.
ServerNext Node::Impl::BuildServerChain(const std::shared_ptr<OpRuntime>& rt,
                                        std::shared_ptr<RawHandler> handler) {
  ServerNext next = [this, handler = std::move(handler)](Context& ctx, const Envelope& request,
                                                         ReplyCallback reply_done) {
    (*handler)(ctx, request, HandlerDone(this, &ctx, std::move(reply_done)));
  };
  for (auto it = rt->server_middleware.rbegin(); it != rt->server_middleware.rend(); ++it) {
    ServerMiddleware* mw = it->get();
    const CallSite* site = &rt->site;
    next = [mw, site, inner = std::move(next)](Context& ctx, const Envelope& request,
                                               ReplyCallback done) {
      mw->Invoke(*site, ctx, request, std::move(done), inner);
    };
  }
  return next;
}

// Runs the server chain and the handler for one request/command/event.
// `done` gets the reply envelope (status inside) or an error.
void Node::Impl::Serve(const std::shared_ptr<OpRuntime>& rt, const ServerNext& chain,
                       Envelope&& request, ReplyCallback done, std::string_view group,
                       Envelope* give_back) {
  // The request, its context and `done` live in one block until the reply
  // is out; the chain's middleware refer to the request in place.
  struct CallState {
    CallState(Impl* i, Envelope&& r, Envelope* back)
        : impl(i), request(std::move(r)), give_back(back) {}
    ~CallState() {
      // Dropped without an answer by a middleware (a handler's dropped
      // `done` is answered inside the chain, by HandlerDone): answered
      // Cancelled, as a dropped Promise is, so the caller does not wait and
      // the delivery is settled.
      if (!answered && done) {
        Answer(impl->MakeReply(
            request, absl::CancelledError("the call was dropped without an answer"), ""));
      }
      if (give_back != nullptr) {
        GiveBack();
      } else {
        internal::RecycleEnvelope(std::move(request));
      }
    }
    void Answer(absl::StatusOr<Envelope>&& reply) {
      answered = true;
      GiveBack();
      std::move(done)(std::move(reply));
    }
    // Puts the request back where it came from (the caller restores the
    // trace context the chain replaced).
    void GiveBack() {
      if (give_back == nullptr) return;
      *give_back = std::move(request);
      give_back = nullptr;
    }
    Impl* impl;
    Envelope request;
    Envelope* give_back;
    bool answered = false;
    std::optional<Context> ctx;
    ReplyCallback done;
  };
  auto state = std::make_shared<CallState>(this, std::move(request), give_back);
  TraceParent incoming;
  TraceParent span;
  std::array<char, 16> parent_span_chars;
  std::string_view parent_span_id;  // for the tracing middleware
  if (TraceParent::Parse(state->request.traceparent, &incoming)) {
    span = incoming.Child();
    parent_span_chars = incoming.SpanIdChars();
    parent_span_id = std::string_view(parent_span_chars.data(), parent_span_chars.size());
  } else {
    if (!state->request.traceparent.empty()) {
      invalid_traceparent.fetch_add(1, std::memory_order_relaxed);
      services->telemetry->invalid_traceparent().Increment();
      state->request.tracestate.clear();
    }
    span = TraceParent::NewRoot();
  }
  span.AssignTo(&state->request.traceparent);
  Context& ctx =
      state->ctx.emplace(node, clock, rt->site.transport_name, &state->request, span);
  ctx.set_group(group);

  if (state->request.has_deadline() && clock->Now() >= state->request.deadline) {
    expired_before_start.fetch_add(1, std::memory_order_relaxed);
    services->policy_stats->For(rt->site.operation)
        .deadline_expired_before_start.fetch_add(1, std::memory_order_relaxed);
    Envelope reply =
        MakeReply(state->request, absl::DeadlineExceededError("deadline exceeded before start"), "");
    state->GiveBack();
    std::move(done)(std::move(reply));
    return;
  }
  state->done = std::move(done);
  HopParentScope hop(parent_span_id);
  // `state` (context and request) is released after the reply is out.
  chain(ctx, state->request,
        [state](absl::StatusOr<Envelope>&& reply) { state->Answer(std::move(reply)); });
}

void Node::Impl::Settle(const std::shared_ptr<OpRuntime>& rt, std::unique_ptr<Delivery> delivery,
                        absl::StatusOr<Envelope> outcome) {
  const Envelope& request = delivery->envelope();
  absl::Status status = outcome.ok() ? outcome->status : outcome.status();
  bool wants_reply = !request.reply_to.empty() && !rt->is_dead_letter_queue;

  auto send_reply = [&](Envelope reply) {
    rt->transport->SendReply(request.reply_to, std::move(reply), [](absl::Status) {});
  };

  if (status.ok()) {
    if (wants_reply) send_reply(*std::move(outcome));
    delivery->Ack();
    return;
  }
  // Shed for load (bulkhead full, handler rate limit): back later, and not
  // a failed attempt toward dead-lettering.
  if (std::optional<absl::Duration> after = policy::ShedRetryAfter(status); after && !rt->is_dead_letter_queue) {
    delivery->Retry(*after);
    return;
  }
  bool thrown = status.GetPayload("switchboard/handler-exception").has_value();
  bool expired = status.code() == absl::StatusCode::kDeadlineExceeded &&
                 status.message() == "deadline exceeded before start";
  bool retryable = !expired && (thrown || IsRetryable(status));
  if (rt->is_dead_letter_queue) {
    // A dead letter is never dropped: it waits for a handler that takes it.
    delivery->Retry(rt->redelivery_max);
    return;
  }
  if (retryable && request.attempt < rt->max_deliveries) {
    delivery->Retry(rt->RedeliveryDelay(request.attempt));
    return;
  }
  absl::Status reason = status;
  if (retryable) {
    reason = absl::Status(status.code(), Cat("gave up after ", request.attempt,
                                                      " deliveries: ", status.message()));
  }
  if (wants_reply) {
    send_reply(outcome.ok() ? *std::move(outcome) : MakeReply(request, reason, ""));
  }
  if (rt->dead_letter) {
    policy::StampDeadLetter(&delivery->mutable_envelope(), delivery->envelope().attempt, clock->Now());
    services->policy_stats->For(rt->site.operation).dead_lettered.fetch_add(1, std::memory_order_relaxed);
    delivery->DeadLetter(reason);
  } else {
    delivery->Ack();  // dead-lettering switched off by policy: dropped on purpose
  }
}

// ---------------------------------------------------------------------------

Node::Node(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) { impl_->node = this; }

std::shared_ptr<NodeServices> NodeServicesOf(const Node& node) { return Node::Impl::ServicesOf(node); }

Node::~Node() { Close(); }

absl::StatusOr<std::unique_ptr<Node>> Node::Create(v1::Config config) {
  return Create(std::move(config), Options{});
}

absl::StatusOr<std::unique_ptr<Node>> Node::Create(v1::Config config, Options options) {
  // Debian's abseil checks every absl::Mutex acquisition for deadlock cycles
  // (about 100 ns a lock, several locks a call). Off unless asked for.
  static const bool kDeadlockDetectionOff = [] {
    const char* keep = std::getenv("SWITCHBOARD_ABSL_DEADLOCK_DETECTION");
    if (keep == nullptr || std::string_view(keep) != "1") {
      absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
    }
    return true;
  }();
  (void)kDeadlockDetectionOff;
  auto impl = std::make_unique<Impl>();
  impl->registry = options.registry != nullptr ? options.registry : &TransportRegistry::Default();

  ConfigOptions config_options;
  config_options.registry = impl->registry;
  std::vector<ConfigWarning> warnings;
  // Transport instances passed in by name need no config entry.
  v1::Config checked = config;
  for (const auto& [name, transport] : options.transports) {
    // A ready instance is trusted: its type need not be registered.
    config_options.extra_types.emplace_back(transport->type());
    if (!checked.transports().contains(name)) {
      (*checked.mutable_transports())[name].set_type(std::string(transport->type()));
    }
  }
  if (absl::Status valid = ValidateConfig(checked, config_options, &warnings); !valid.ok()) {
    return valid;
  }

  impl->config = std::move(config);
  impl->clock = options.clock != nullptr ? options.clock : &Clock::Real();
  impl->executor = options.executor;
  if (!impl->executor) {
    const auto& node = impl->config.node();
    impl->executor = std::make_shared<ThreadPool>(
        node.handler_threads(), "sb-worker",
        node.has_handler_idle_spin() ? FromProtoDuration(node.handler_idle_spin())
                                     : ThreadPool::kDefaultIdleSpin);
  }
  impl->source = impl->config.node().source().empty() ? DefaultSource() : impl->config.node().source();
  impl->services = std::make_shared<NodeServices>();
  impl->services->clock = impl->clock;
  impl->services->source = impl->source;
  if (options.telemetry != nullptr) {
    impl->services->telemetry = std::move(options.telemetry);
  } else {
    absl::StatusOr<std::shared_ptr<Telemetry>> telemetry = Telemetry::Create(impl->config.telemetry());
    if (!telemetry.ok()) return telemetry.status();
    impl->services->telemetry = *std::move(telemetry);
  }
  // Built-in policies first (outermost), then the caller's own, innermost.
  impl->middleware = BuiltinMiddleware(impl->services);
  for (auto& f : options.middleware.client) impl->middleware.client.push_back(std::move(f));
  for (auto& f : options.middleware.server) impl->middleware.server.push_back(std::move(f));

  TransportEnv env;
  env.clock = impl->clock;
  env.executor = impl->executor.get();
  env.source = impl->source;
  {
    absl::MutexLock lock(&impl->transports_mu);
    for (auto& [name, transport] : options.transports) impl->transports[name] = std::move(transport);
    for (const auto& [name, tc] : impl->config.transports()) {
      if (impl->transports.contains(name)) continue;
      absl::StatusOr<std::unique_ptr<Transport>> t = impl->registry->Create(name, tc, env);
      if (!t.ok()) {
        return absl::Status(t.status().code(),
                            Cat("transport \"", name, "\": ", t.status().message()));
      }
      impl->transports[name] = std::shared_ptr<Transport>(*std::move(t));
    }
    if (!impl->config.node().default_transport().empty()) {
      impl->default_transport = impl->config.node().default_transport();
    } else if (impl->transports.size() == 1) {
      impl->default_transport = impl->transports.begin()->first;
    } else {
      // The embedded default: an inproc transport on the process-wide bus.
      impl->default_transport = "inproc";
      if (!impl->transports.contains("inproc")) {
        v1::TransportConfig tc;
        tc.set_type("inproc");
        absl::StatusOr<std::unique_ptr<Transport>> t = MakeInprocTransport("inproc", tc, env);
        if (!t.ok()) return t.status();
        impl->transports["inproc"] = std::shared_ptr<Transport>(*std::move(t));
      }
    }
  }
  return std::unique_ptr<Node>(new Node(std::move(impl)));
}

absl::StatusOr<HandlerRegistration> Node::HandleRaw(std::string_view operation, RawHandler handler,
                                                    HandlerOptions options) {
  if (impl_->closed.load()) return absl::FailedPreconditionError("node is closed");
  absl::StatusOr<std::shared_ptr<OpRuntime>> runtime = impl_->Runtime(operation);
  if (!runtime.ok()) return runtime.status();
  std::shared_ptr<OpRuntime> rt = *std::move(runtime);

  Endpoint endpoint;
  endpoint.operation = rt->site.operation;  // rollout: "op#rollout" serves "op"
  endpoint.address = rt->site.binding.address();
  endpoint.max_in_flight = options.max_in_flight;
  if (rt->site.style == Style::kEvent) {
    if (options.group.empty()) {
      return absl::InvalidArgumentError(Cat(
          "event ", operation, ": a subscriber needs a group; set HandlerOptions.group"));
    }
    endpoint.group = options.group;
  } else {
    endpoint.group = options.group.empty() ? rt->site.operation : options.group;
  }

  auto inflight = std::make_shared<InFlight>();
  if (rt->site.style != Style::kRequest) inflight->group = endpoint.group;
  auto shared_handler = std::make_shared<RawHandler>(std::move(handler));
  auto chain = std::make_shared<const ServerNext>(impl_->BuildServerChain(rt, shared_handler));
  Impl* impl = impl_.get();
  // Null: the handler runs on the delivering thread.
  Executor* executor = options.inline_execution ? nullptr : impl_->executor.get();

  absl::StatusOr<std::unique_ptr<Subscription>> sub;
  if (rt->site.style == Style::kRequest) {
    sub = rt->transport->Serve(endpoint, [impl, executor, rt, inflight, chain](
                                             Envelope request, ReplyCallback reply) {
      inflight->Enter();
      auto serve = [impl, rt, inflight, chain](Envelope&& request, ReplyCallback&& reply) {
        impl->Serve(rt, *chain, std::move(request),
                    [inflight, reply = std::move(reply)](absl::StatusOr<Envelope>&& out) mutable {
                      std::move(reply)(std::move(out));
                      inflight->Leave();
                    });
      };
      if (executor == nullptr) {
        serve(std::move(request), std::move(reply));
        return;
      }
      executor->Post([serve = std::move(serve), request = std::move(request),
                      reply = std::move(reply)]() mutable {
        serve(std::move(request), std::move(reply));
      });
    });
  } else {
    DeliveryHandler on_delivery = [impl, executor, rt, inflight,
                                   chain](std::unique_ptr<Delivery> delivery) {
      inflight->Enter();
      auto serve = [impl, rt, inflight, chain](std::unique_ptr<Delivery>&& delivery) {
        auto held = std::make_shared<HeldDelivery>(std::move(delivery));
        Envelope* envelope = &held->delivery->mutable_envelope();
        Envelope request;
        if (held->Borrow()) {
          request = std::move(*envelope);
        } else {
          // A spare envelope takes the copy without allocating.
          request = internal::NewEnvelope();
          request = *envelope;
          envelope = nullptr;
        }
        impl->Serve(rt, *chain, std::move(request),
                    [impl, rt, inflight, held](absl::StatusOr<Envelope>&& out) mutable {
                      held->Restore();
                      impl->Settle(rt, std::move(held->delivery), std::move(out));
                      inflight->Leave();
                    },
                    inflight->group, envelope);
      };
      if (executor == nullptr) {
        serve(std::move(delivery));
        return;
      }
      executor->Post([serve = std::move(serve), delivery = std::move(delivery)]() mutable {
        serve(std::move(delivery));
      });
    };
    sub = rt->site.style == Style::kCommand ? rt->transport->Consume(endpoint, on_delivery)
                                            : rt->transport->Subscribe(endpoint, on_delivery);
  }
  if (!sub.ok()) return sub.status();

  auto subscription = std::shared_ptr<Subscription>(*std::move(sub));
  std::shared_ptr<Telemetry> telemetry = impl_->services->telemetry;
  uint64_t depth_id = rt->site.style == Style::kRequest
                          ? 0
                          : RegisterQueueDepth(*telemetry, rt->site, rt->transport, endpoint);
  std::shared_ptr<Impl::Registrations> regs = impl_->registrations;
  uint64_t id;
  {
    absl::MutexLock lock(&regs->mu);
    id = regs->next_id++;
    regs->stops[id] = [subscription, inflight, telemetry, depth_id]() mutable {
      if (depth_id != 0) telemetry->metrics().RemoveGaugeCallback(depth_id);
      subscription.reset();  // no new deliveries; transport handler calls returned
      inflight->WaitIdle();  // handlers already posted have finished
    };
  }
  std::weak_ptr<Impl::Registrations> weak = regs;
  HandlerRegistration primary([weak, id] {
    if (auto r = weak.lock()) r->Stop(id);
  });
  // ---- rollout (rollout.h): the handler serves the rollout binding too ----
  if (rt->site.binding.has_rollout()) {
    absl::StatusOr<HandlerRegistration> second =
        HandleRaw(rollout::RuntimeKey(operation), *shared_handler, options);
    if (!second.ok()) return second.status();
    auto both = std::make_shared<std::pair<HandlerRegistration, HandlerRegistration>>(
        std::move(primary), *std::move(second));
    return HandlerRegistration([both] {
      both->first.Stop();
      both->second.Stop();
    });
  }
  // ---- rollout end ----
  return primary;
}

Future<std::string> Node::CallRaw(std::string_view operation, std::string payload,
                                  CallOptions options) {
  auto [promise, future] = MakePromise<std::string>();
  internal::CallIds& ids = promise.ids();
  StartCall(operation, std::move(payload), std::move(options), nullptr, ids,
            [promise = std::move(promise)](absl::StatusOr<Envelope>&& reply) mutable {
              internal::ResolveCall(promise, std::move(reply), [](Envelope& r) {
                return absl::StatusOr<std::string>(std::move(r.data));
              });
            });
  return std::move(future);
}

void Node::StartCall(std::string_view operation, std::string payload, CallOptions options,
                     const google::protobuf::Descriptor* reply_type, internal::CallIds& ids,
                     ReplyCallback done) {
  if (impl_->closed.load()) {
    std::move(done)(absl::FailedPreconditionError("node is closed"));
    return;
  }
  absl::StatusOr<std::shared_ptr<OpRuntime>> runtime = impl_->Runtime(operation);
  if (!runtime.ok()) {
    std::move(done)(runtime.status());
    return;
  }
  std::shared_ptr<OpRuntime> rt = *std::move(runtime);
  // A spare envelope: its strings have buffers already.
  Envelope env = internal::NewEnvelope();
  internal::AssignNewMessageId(&env.id);
  if (options.idempotency_key.empty()) {
    env.idempotency_key = env.id;
  } else {
    env.idempotency_key = std::move(options.idempotency_key);
  }
  // ---- rollout (rollout.h): a share of the calls, chosen by idempotency key ----
  if (rt->site.binding.has_rollout()) {
    bool second = rollout::TakesRollout(env.idempotency_key, rt->site.binding.rollout().percent());
    if (second) {
      absl::StatusOr<std::shared_ptr<OpRuntime>> r = impl_->Runtime(rollout::RuntimeKey(operation));
      if (!r.ok()) {
        std::move(done)(r.status());
        return;
      }
      rt = *std::move(r);
    }
    rollout::CountPath(*impl_->services->telemetry, rt->site, second);
  }
  // ---- rollout end ----
  if (rt->fire_and_forget() && !IsEmptyType(reply_type)) {
    std::move(done)(absl::FailedPreconditionError(Cat(
        "operation ", operation, " returns ", reply_type->full_name(),
        ", so its caller needs a reply, but it is bound as ", StyleName(rt->site.style),
        rt->site.style == Style::kCommand ? " without reply" : "",
        "; bind it as request or command with reply: true")));
    return;
  }

  Clock& clock = *impl_->clock;
  absl::Time now = clock.Now();
  env.source = impl_->source;
  env.type = operation;
  env.time = now;
  if (!options.content_type.empty()) env.data_content_type = options.content_type;
  env.subject = std::move(options.subject);
  env.style = rt->site.style;
  env.extensions = std::move(options.extensions);
  env.data = std::move(payload);

  TraceParent span;
  std::string parent_span_id;  // for the tracing middleware; "" for a new root
  if (options.parent != nullptr) {
    span = options.parent->span().Child();
    parent_span_id = options.parent->span().SpanId();
    env.tracestate = options.parent->tracestate();
  } else {
    TraceParent incoming;
    if (TraceParent::Parse(options.traceparent, &incoming)) {
      span = incoming.Child();
      parent_span_id = incoming.SpanId();
      env.tracestate = std::move(options.tracestate);
    } else {
      if (!options.traceparent.empty()) {
        impl_->invalid_traceparent.fetch_add(1);
        impl_->services->telemetry->invalid_traceparent().Increment();
      }
      span = TraceParent::NewRoot();
    }
  }
  span.AssignTo(&env.traceparent);

  absl::Time deadline = options.deadline;
  absl::Duration timeout = options.timeout > absl::ZeroDuration() ? options.timeout : rt->timeout;
  if (timeout > absl::ZeroDuration()) deadline = std::min(deadline, now + timeout);
  if (options.parent != nullptr && options.parent->deadline() != absl::InfiniteFuture()) {
    deadline = std::min(deadline, options.parent->deadline() - rt->deadline_margin);
  }
  env.deadline = deadline;
  if (env.has_deadline() && deadline <= now) {
    std::move(done)(absl::DeadlineExceededError(
        Cat("operation ", operation, ": no time left before the call started")));
    return;
  }

  ids.Set(env.id, env.traceparent, env.idempotency_key);

  HopParentScope hop(parent_span_id);
  rt->client_chain(std::move(env), std::move(done));
}

absl::StatusOr<v1::OperationBinding> Node::Binding(std::string_view operation) const {
  return impl_->BindingFor(operation);
}

Transport* Node::FindTransport(std::string_view name) const {
  absl::ReaderMutexLock lock(&impl_->transports_mu);
  auto it = impl_->transports.find(name);
  return it == impl_->transports.end() ? nullptr : it->second.get();
}

const v1::Config& Node::config() const { return impl_->config; }
Clock& Node::clock() const { return *impl_->clock; }
Executor& Node::executor() const { return *impl_->executor; }
const std::string& Node::source() const { return impl_->source; }
Telemetry& Node::telemetry() const { return *impl_->services->telemetry; }

void Node::Close() {
  if (impl_->closed.exchange(true)) return;
  // Stop every handler: no new deliveries, running ones finish.
  std::map<uint64_t, std::function<void()>> stops;
  {
    absl::MutexLock lock(&impl_->registrations->mu);
    stops.swap(impl_->registrations->stops);
    impl_->registrations->closed = true;
  }
  for (auto& [id, stop] : stops) stop();

  // Calls still waiting for a command reply will not get one from us.
  std::unordered_map<std::string, Impl::PendingReply> pending;
  std::map<std::string, Impl::Inbox, std::less<>> inboxes;
  {
    absl::MutexLock lock(&impl_->replies_mu);
    pending.swap(impl_->pending);
    inboxes.swap(impl_->inboxes);
  }
  for (auto& [id, p] : pending) {
    p.timer.Cancel();
    std::move(p.done)(absl::CancelledError("node closed before the reply arrived"));
  }
  inboxes.clear();
  if (auto* pool = dynamic_cast<ThreadPool*>(impl_->executor.get())) {
    if (impl_->executor.use_count() == 1) pool->Shutdown();
  }
  {
    internal::CallMutexLock lock(&impl_->ops_mu);
    impl_->ops.clear();
  }
  absl::MutexLock lock(&impl_->transports_mu);
  impl_->transports.clear();
}

}  // namespace switchboard
