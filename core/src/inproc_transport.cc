// The inproc transport: buses, queues, servers and inboxes inside one process.
//
// Structure. A `Bus` (shared by every transport created with its name) holds
//   - the request servers, by operation, behind a shared_mutex so concurrent
//     requests only take it shared (the hot path: lookup, round-robin pick,
//     an atomic call count, then the handler; no allocation without a
//     deadline, one with);
//   - the reply inboxes, by address;
//   - the queues: one per command operation, one per (event type, group).
// A `Queue` holds its ready messages (FIFO), its consumers (round-robin,
// bounded by each consumer's max_in_flight) and, per consumer, the original
// of every unsettled delivery so it can be redelivered when the consumer
// goes away or the Delivery is dropped.
//
// Threads. Handlers run on the thread that sends, enqueues, publishes or
// settles, or on the clock's timer thread for a delayed redelivery, and never
// under a lock of ours. A handler that settles inline would recurse into the
// dispatcher; instead each thread dispatches through a trampoline
// (`Pump`): a queue that becomes dispatchable while this thread is
// already dispatching is handled by the outermost loop, so the stack depth
// stays constant however many messages settle inline.
//
// Shutdown. Servers, consumers and inboxes carry a `CallGate`: destroying the
// subscription closes the gate (no new calls) and waits for the calls in
// progress, except those on the destroying thread's own stack (a handler may
// drop its own subscription).
//
// Names. Queues are named by operation (and group, for events);
// Endpoint::address is not used, because Enqueue and Publish carry only the
// envelope's type and both sides must agree on the queue.
#include "switchboard/inproc_transport.h"

#include <algorithm>
#include <array>
#include <atomic>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "call_mutex.h"
#include "switchboard/clock.h"
#include "switchboard/internal/envelope_pool.h"
#include "switchboard/status.h"
#include "switchboard/v1/config.pb.h"

namespace switchboard {

Features InprocFeatures() {
  Features f;
  f.durable = false;
  f.fan_out_to_groups = true;
  f.native_request_reply = true;
  f.ordering_per_key = true;
  f.broker_dedup = false;
  f.redelivery_count = true;
  f.reply_routing = true;
  f.cross_process = false;
  f.delayed_redelivery = true;
  return f;
}

namespace {

constexpr uint64_t kDefaultMaxQueueDepth = 100000;

// This abseil build has its own string_view type; StrCat takes only that.
absl::string_view AV(std::string_view s) { return absl::string_view(s.data(), s.size()); }
constexpr std::string_view kInboxScheme = "inproc://";

// Heterogeneous lookup for string-keyed maps (no std::string built per
// request).
struct StringHash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const noexcept { return std::hash<std::string_view>{}(s); }
};
template <class V>
using StringMap = std::unordered_map<std::string, V, StringHash, std::equal_to<>>;

// ---------------------------------------------------------------------------
// CallGate: counts handler calls of one server/consumer/inbox so its
// destruction can wait for them.

// The gates whose handler this thread is running, innermost first.
struct GateFrame {
  const void* gate;
  GateFrame* prev;
};
thread_local GateFrame* tls_frames = nullptr;

class CallGate {
 public:
  // False once closed: the caller must not call the handler.
  bool Enter() {
    active_.fetch_add(1);
    if (closed_.load()) {
      Exit();
      return false;
    }
    return true;
  }
  void Exit() {
    active_.fetch_sub(1);
    if (closed_.load()) {
      absl::MutexLock lock(&mu_);
      cv_.SignalAll();
    }
  }
  // Stops new calls and waits for those in progress on other threads.
  void CloseAndWait() {
    closed_.store(true);
    int own = 0;
    for (GateFrame* f = tls_frames; f != nullptr; f = f->prev) {
      if (f->gate == this) ++own;
    }
    absl::MutexLock lock(&mu_);
    while (active_.load() > own) cv_.Wait(&mu_);
  }
  bool closed() const { return closed_.load(); }

 private:
  std::atomic<int> active_{0};
  std::atomic<bool> closed_{false};
  absl::Mutex mu_;
  absl::CondVar cv_;
};

// Marks this thread as inside a handler of `gate` (Enter() already passed).
class GateCall {
 public:
  explicit GateCall(CallGate* gate) : gate_(gate), frame_{gate, tls_frames} { tls_frames = &frame_; }
  ~GateCall() {
    tls_frames = frame_.prev;
    gate_->Exit();
  }
  GateCall(const GateCall&) = delete;
  GateCall& operator=(const GateCall&) = delete;

 private:
  CallGate* gate_;
  GateFrame frame_;
};

// ---------------------------------------------------------------------------
// Queues.

class Queue;

struct Consumer {
  Consumer(DeliveryHandler h, int max_in_flight, Clock* c)
      : handler(std::move(h)), max_in_flight(std::max(1, max_in_flight)), clock(c) {}
  const DeliveryHandler handler;
  const size_t max_in_flight;
  Clock* const clock;
  CallGate gate;
  // Originals of the unsettled deliveries, by token (ascending = delivery
  // order). Guarded by the owning queue's mutex.
  std::map<uint64_t, Envelope> in_flight;
};

class Queue {
 public:
  Queue(std::string name, std::string dead_letter)
      : name_(std::move(name)), dlq_name_(std::move(dead_letter)) {}

  const std::string& name() const { return name_; }
  const std::string& dead_letter_name() const { return dlq_name_; }

  // Appends unless `max_depth` messages already wait (0 = unbounded).
  absl::Status Push(Envelope env, uint64_t max_depth, std::string_view bus) {
    {
      internal::CallMutexLock lock(&mu_);
      const uint64_t depth = ready_.size() + delayed_;
      if (max_depth > 0 && depth >= max_depth) {
        return absl::ResourceExhaustedError(absl::StrCat(
            "inproc queue '", name_, "' on bus '", AV(bus), "' holds ", depth,
            " messages (max_queue_depth ", max_depth,
            "); add consumers or raise the transport's max_queue_depth"));
      }
      if (env.attempt < 1) env.attempt = 1;
      ready_.push_back(std::move(env));
    }
    return absl::OkStatus();
  }

  void AddConsumer(const std::shared_ptr<Consumer>& c) {
    internal::CallMutexLock lock(&mu_);
    consumers_.push_back(c);
  }

  // Stops delivering to `c`, waits for its running handler calls, and puts
  // its unsettled messages back at the head of the queue (attempt + 1).
  void RemoveConsumer(const std::shared_ptr<Consumer>& c) {
    {
      internal::CallMutexLock lock(&mu_);
      auto it = std::find(consumers_.begin(), consumers_.end(), c);
      if (it != consumers_.end()) {
        const size_t index = static_cast<size_t>(it - consumers_.begin());
        consumers_.erase(it);
        if (next_ > index) --next_;
        if (next_ >= consumers_.size()) next_ = 0;
      }
    }
    c->gate.CloseAndWait();
    {
      internal::CallMutexLock lock(&mu_);
      for (auto it = c->in_flight.rbegin(); it != c->in_flight.rend(); ++it) {
        it->second.attempt += 1;
        ready_.push_front(std::move(it->second));
      }
      c->in_flight.clear();
    }
  }

  int64_t Depth() const {
    internal::CallMutexLock lock(&mu_);
    return static_cast<int64_t>(ready_.size() + delayed_);
  }

  // Holds nothing: no message ready or delayed, and no consumer (whose
  // unsettled messages would come back).
  bool Idle() const {
    internal::CallMutexLock lock(&mu_);
    return ready_.empty() && delayed_ == 0 && consumers_.empty();
  }

  struct Dispatch {
    std::shared_ptr<Consumer> consumer;
    uint64_t token;
    Envelope env;
  };

  // Moves ready messages to consumers with room; returns them for the caller
  // to hand over outside the lock.
  void TakeDispatchable(std::vector<Dispatch>* out) {
    internal::CallMutexLock lock(&mu_);
    while (!ready_.empty()) {
      Consumer* picked = nullptr;
      const size_t n = consumers_.size();
      for (size_t i = 0; i < n; ++i) {
        const size_t k = (next_ + i) % n;
        Consumer* c = consumers_[k].get();
        if (c->in_flight.size() < c->max_in_flight) {
          picked = c;
          next_ = (k + 1) % n;
          // The consumer's copy, in a spare envelope's buffers.
          out->push_back(Dispatch{consumers_[k], ++next_token_, internal::NewEnvelope()});
          break;
        }
      }
      if (picked == nullptr) break;
      Dispatch& d = out->back();
      d.env = ready_.front();
      picked->in_flight.emplace(d.token, std::move(ready_.front()));
      ready_.pop_front();
    }
  }

  enum class Outcome { kAck, kRetry, kDeadLetter };

  // Applies a settlement. Returns false when the delivery is no longer ours
  // (already settled, or its consumer went away and it was requeued). On
  // kDeadLetter, `*dead` receives the message.
  bool Settle(Consumer* c, uint64_t token, Outcome outcome, absl::Duration delay,
              Envelope* dead, std::shared_ptr<Envelope>* delayed) {
    internal::CallMutexLock lock(&mu_);
    auto it = c->in_flight.find(token);
    if (it == c->in_flight.end()) return false;
    Envelope env = std::move(it->second);
    c->in_flight.erase(it);
    switch (outcome) {
      case Outcome::kAck:
        break;
      case Outcome::kRetry:
        env.attempt += 1;
        if (delay > absl::ZeroDuration()) {
          ++delayed_;
          *delayed = std::make_shared<Envelope>(std::move(env));
        } else {
          // Head of the queue: a retried message keeps its place in order.
          ready_.push_front(std::move(env));
        }
        break;
      case Outcome::kDeadLetter:
        *dead = std::move(env);
        break;
    }
    return true;
  }

  // A delayed redelivery became due.
  void Requeue(Envelope env) {
    internal::CallMutexLock lock(&mu_);
    --delayed_;
    ready_.push_front(std::move(env));
  }

 private:
  const std::string name_;
  const std::string dlq_name_;
  mutable internal::CallMutex mu_;
  std::deque<Envelope> ready_ ABSL_GUARDED_BY(mu_);
  uint64_t delayed_ ABSL_GUARDED_BY(mu_) = 0;
  std::vector<std::shared_ptr<Consumer>> consumers_ ABSL_GUARDED_BY(mu_);
  size_t next_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t next_token_ ABSL_GUARDED_BY(mu_) = 0;
};

// Dispatches ready messages of a queue on this thread, trampolined (see the
// file comment).
class Bus;
void PumpOnce(const std::shared_ptr<Queue>& q, const std::shared_ptr<Bus>& bus);

struct PumpItem {
  std::shared_ptr<Queue> queue;
  std::shared_ptr<Bus> bus;
};

struct PumpState {
  // This thread is inside Pump: further pumps are deferred to `pending`.
  bool active = false;
  std::deque<PumpItem> pending;
  // Reused between rounds to avoid an allocation per dispatch.
  std::vector<Queue::Dispatch> scratch;
};
thread_local PumpState tls_pump;

void Pump(std::shared_ptr<Queue> q, std::shared_ptr<Bus> bus) {
  PumpState& st = tls_pump;
  if (st.active) {
    for (const PumpItem& item : st.pending) {
      if (item.queue == q) return;
    }
    st.pending.push_back(PumpItem{std::move(q), std::move(bus)});
    return;
  }
  st.active = true;
  struct Reset {
    ~Reset() {
      tls_pump.active = false;
      tls_pump.pending.clear();
    }
  } reset;
  PumpOnce(q, bus);
  while (!st.pending.empty()) {
    PumpItem item = std::move(st.pending.front());
    st.pending.pop_front();
    PumpOnce(item.queue, item.bus);
  }
}

// ---------------------------------------------------------------------------
// Request servers and inboxes.

struct Server {
  explicit Server(RequestHandler h) : handler(std::move(h)) {}
  const RequestHandler handler;
  CallGate gate;
};

struct ServerGroup {
  std::vector<Server*> servers;
  std::atomic<uint32_t> next{0};
};

struct Inbox {
  explicit Inbox(ReplyHandler h) : handler(std::move(h)) {}
  const ReplyHandler handler;
  CallGate gate;
};

// ---------------------------------------------------------------------------
// The bus.

class Bus : public std::enable_shared_from_this<Bus> {
 public:
  explicit Bus(std::string name) : name_(std::move(name)) {}

  const std::string& name() const { return name_; }

  // ---- requests ----
  void AddServer(std::string_view op, Server* s) {
    std::unique_lock lock(servers_mu_);
    auto it = servers_.find(op);
    if (it == servers_.end()) {
      it = servers_.emplace(std::string(op), std::make_unique<ServerGroup>()).first;
    }
    it->second->servers.push_back(s);
  }
  void RemoveServer(std::string_view op, Server* s) {
    {
      std::unique_lock lock(servers_mu_);
      auto it = servers_.find(op);
      if (it != servers_.end()) {
        auto& v = it->second->servers;
        v.erase(std::remove(v.begin(), v.end(), s), v.end());
        if (v.empty()) servers_.erase(it);
      }
    }
    s->gate.CloseAndWait();
  }
  // A server of `op` with its gate entered, or null.
  Server* PickServer(std::string_view op) {
    std::shared_lock lock(servers_mu_);
    auto it = servers_.find(op);
    if (it == servers_.end()) return nullptr;
    ServerGroup& g = *it->second;
    const size_t n = g.servers.size();
    const size_t start = n == 1 ? 0 : g.next.fetch_add(1, std::memory_order_relaxed) % n;
    for (size_t i = 0; i < n; ++i) {
      Server* s = g.servers[(start + i) % n];
      if (s->gate.Enter()) return s;
    }
    return nullptr;
  }

  // ---- inboxes ----
  std::string AddInbox(const std::shared_ptr<Inbox>& inbox) {
    std::string address =
        absl::StrCat(AV(kInboxScheme), name_, "/inbox/", next_inbox_.fetch_add(1) + 1);
    internal::CallMutexLock lock(&inbox_mu_);
    inboxes_.emplace(address, inbox);
    return address;
  }
  void RemoveInbox(const std::string& address) {
    std::shared_ptr<Inbox> inbox;
    {
      internal::CallMutexLock lock(&inbox_mu_);
      auto it = inboxes_.find(address);
      if (it == inboxes_.end()) return;
      inbox = std::move(it->second);
      inboxes_.erase(it);
    }
    inbox->gate.CloseAndWait();
  }
  std::shared_ptr<Inbox> FindInbox(std::string_view address) {
    internal::CallMutexLock lock(&inbox_mu_);
    auto it = inboxes_.find(address);
    if (it == inboxes_.end()) return nullptr;
    return it->second;
  }

  // ---- queues ----
  std::shared_ptr<Queue> CommandQueue(std::string_view op) {
    internal::CallMutexLock lock(&queues_mu_);
    auto it = commands_.find(op);
    if (it != commands_.end()) return it->second;
    auto q = std::make_shared<Queue>(std::string(op), DeadLetterAddress(op));
    commands_.emplace(std::string(op), q);
    return q;
  }
  std::shared_ptr<Queue> FindCommandQueue(std::string_view op) {
    internal::CallMutexLock lock(&queues_mu_);
    auto it = commands_.find(op);
    return it == commands_.end() ? nullptr : it->second;
  }
  std::shared_ptr<Queue> EventQueue(std::string_view type, std::string_view group) {
    internal::CallMutexLock lock(&queues_mu_);
    auto& groups = events_[std::string(type)];
    auto it = groups.find(group);
    if (it != groups.end()) return it->second;
    auto q = std::make_shared<Queue>(absl::StrCat(AV(type), "#", AV(group)), DeadLetterAddress(type));
    groups.emplace(std::string(group), q);
    return q;
  }
  std::shared_ptr<Queue> FindEventQueue(std::string_view type, std::string_view group) {
    internal::CallMutexLock lock(&queues_mu_);
    auto t = events_.find(type);
    if (t == events_.end()) return nullptr;
    auto g = t->second.find(group);
    return g == t->second.end() ? nullptr : g->second;
  }
  std::vector<std::shared_ptr<Queue>> EventGroups(std::string_view type) {
    std::vector<std::shared_ptr<Queue>> out;
    internal::CallMutexLock lock(&queues_mu_);
    auto t = events_.find(type);
    if (t == events_.end()) return out;
    out.reserve(t->second.size());
    for (const auto& [group, q] : t->second) out.push_back(q);
    return out;
  }

  // Nothing queued, nothing served: the bus may be forgotten.
  bool Idle() {
    {
      std::shared_lock lock(servers_mu_);
      if (!servers_.empty()) return false;
    }
    {
      internal::CallMutexLock lock(&inbox_mu_);
      if (!inboxes_.empty()) return false;
    }
    internal::CallMutexLock lock(&queues_mu_);
    for (const auto& [op, q] : commands_) {
      if (!q->Idle()) return false;
    }
    for (const auto& [type, groups] : events_) {
      for (const auto& [group, q] : groups) {
        if (!q->Idle()) return false;
      }
    }
    return true;
  }

  // Transports attached; guarded by the registry's mutex.
  int transports = 0;

 private:
  const std::string name_;

  std::shared_mutex servers_mu_;
  StringMap<std::unique_ptr<ServerGroup>> servers_;  // guarded by servers_mu_

  std::atomic<uint64_t> next_inbox_{0};
  internal::CallMutex inbox_mu_;
  StringMap<std::shared_ptr<Inbox>> inboxes_ ABSL_GUARDED_BY(inbox_mu_);

  internal::CallMutex queues_mu_;
  StringMap<std::shared_ptr<Queue>> commands_ ABSL_GUARDED_BY(queues_mu_);
  StringMap<std::map<std::string, std::shared_ptr<Queue>, std::less<>>> events_
      ABSL_GUARDED_BY(queues_mu_);
};

// ---------------------------------------------------------------------------
// The process-wide registry of buses.

class BusRegistry {
 public:
  static BusRegistry& Get() {
    static auto* registry = new BusRegistry();  // never destroyed: used at exit
    return *registry;
  }

  std::shared_ptr<Bus> Attach(const std::string& name) {
    absl::MutexLock lock(&mu_);
    auto& bus = buses_[name];
    if (!bus) bus = std::make_shared<Bus>(name);
    ++bus->transports;
    return bus;
  }

  void Detach(const std::shared_ptr<Bus>& bus) {
    absl::MutexLock lock(&mu_);
    if (--bus->transports > 0) return;
    if (!bus->Idle()) return;  // queued messages wait for the next transport
    auto it = buses_.find(bus->name());
    if (it != buses_.end() && it->second == bus) buses_.erase(it);
  }

  std::shared_ptr<Bus> Find(std::string_view name) {
    absl::MutexLock lock(&mu_);
    auto it = buses_.find(name);
    return it == buses_.end() ? nullptr : it->second;
  }

 private:
  absl::Mutex mu_;
  StringMap<std::shared_ptr<Bus>> buses_ ABSL_GUARDED_BY(mu_);
};

// ---------------------------------------------------------------------------
// Deliveries.

void DeadLetterInto(const std::shared_ptr<Bus>& bus, const std::string& dlq, Envelope env,
                    const absl::Status& reason) {
  env.extensions[std::string(attr::kDeadLetterReason)] = std::string(reason.message());
  env.extensions[std::string(attr::kDeadLetterCode)] = std::string(CodeName(reason.code()));
  std::shared_ptr<Queue> q = bus->CommandQueue(dlq);
  // Never refused: a dead letter must not be lost to a depth bound.
  (void)q->Push(std::move(env), 0, bus->name());
  Pump(std::move(q), bus);
}

class InprocDelivery final : public Delivery {
 public:
  InprocDelivery(Envelope env, std::shared_ptr<Bus> bus, std::shared_ptr<Queue> queue,
                 std::shared_ptr<Consumer> consumer, uint64_t token)
      : Delivery(std::move(env)),
        bus_(std::move(bus)),
        queue_(std::move(queue)),
        consumer_(std::move(consumer)),
        token_(token) {}
  ~InprocDelivery() override {
    if (!settled_.load()) Settle(Queue::Outcome::kRetry, absl::ZeroDuration(), absl::OkStatus());
  }

  void Ack() override { Settle(Queue::Outcome::kAck, absl::ZeroDuration(), absl::OkStatus()); }
  void Retry(absl::Duration delay) override {
    Settle(Queue::Outcome::kRetry, delay, absl::OkStatus());
  }
  void DeadLetter(const absl::Status& reason) override {
    Settle(Queue::Outcome::kDeadLetter, absl::ZeroDuration(), reason);
  }

 private:
  void Settle(Queue::Outcome outcome, absl::Duration delay, const absl::Status& reason) {
    if (settled_.exchange(true)) return;  // exactly once
    Envelope dead;
    std::shared_ptr<Envelope> delayed;
    if (!queue_->Settle(consumer_.get(), token_, outcome, delay, &dead, &delayed)) return;
    if (outcome == Queue::Outcome::kDeadLetter) {
      // Attributes the receiver added before dead-lettering (attempts, time).
      for (const auto& [key, value] : envelope_.extensions) dead.extensions[key] = value;
      DeadLetterInto(bus_, queue_->dead_letter_name(), std::move(dead), reason);
    }
    if (delayed) {
      Clock* clock = consumer_->clock;
      clock->RunAfter(delay, [bus = bus_, queue = queue_, delayed = std::move(delayed)] {
        queue->Requeue(std::move(*delayed));
        Pump(queue, bus);
      });
    }
    // A slot was freed (or a message came back): dispatch what can go now.
    Pump(queue_, bus_);
  }

  std::shared_ptr<Bus> bus_;
  std::shared_ptr<Queue> queue_;
  std::shared_ptr<Consumer> consumer_;
  const uint64_t token_;
  std::atomic<bool> settled_{false};
};

void PumpOnce(const std::shared_ptr<Queue>& q, const std::shared_ptr<Bus>& bus) {
  // Nested pumps on this thread are deferred (Pump), so the scratch vector is
  // ours until we give it back.
  std::vector<Queue::Dispatch> work = std::move(tls_pump.scratch);
  for (;;) {
    work.clear();
    q->TakeDispatchable(&work);
    if (work.empty()) break;
    for (Queue::Dispatch& d : work) {
      Consumer* c = d.consumer.get();
      // A consumer closed since the message was handed to it: its
      // destruction puts the message back.
      if (!c->gate.Enter()) continue;
      GateCall call(&c->gate);
      c->handler(std::make_unique<InprocDelivery>(std::move(d.env), bus, q, d.consumer, d.token));
    }
  }
  tls_pump.scratch = std::move(work);
}

// ---------------------------------------------------------------------------
// Subscriptions.

class ServerSubscription final : public Subscription {
 public:
  ServerSubscription(std::shared_ptr<Bus> bus, std::string op, std::unique_ptr<Server> server)
      : bus_(std::move(bus)), op_(std::move(op)), server_(std::move(server)) {}
  ~ServerSubscription() override { bus_->RemoveServer(op_, server_.get()); }

 private:
  std::shared_ptr<Bus> bus_;
  std::string op_;
  std::unique_ptr<Server> server_;
};

class ConsumerSubscription final : public Subscription {
 public:
  ConsumerSubscription(std::shared_ptr<Bus> bus, std::shared_ptr<Queue> queue,
                       std::shared_ptr<Consumer> consumer)
      : bus_(std::move(bus)), queue_(std::move(queue)), consumer_(std::move(consumer)) {}
  ~ConsumerSubscription() override {
    queue_->RemoveConsumer(consumer_);
    // Its unsettled messages went back to the queue: hand them to others.
    Pump(queue_, bus_);
  }

 private:
  std::shared_ptr<Bus> bus_;
  std::shared_ptr<Queue> queue_;
  std::shared_ptr<Consumer> consumer_;
};

class InprocInbox final : public ReplyInbox {
 public:
  InprocInbox(std::shared_ptr<Bus> bus, std::string address)
      : bus_(std::move(bus)), address_(std::move(address)) {}
  ~InprocInbox() override { bus_->RemoveInbox(address_); }
  const std::string& address() const override { return address_; }

 private:
  std::shared_ptr<Bus> bus_;
  std::string address_;
};

// ---------------------------------------------------------------------------
// Requests with a deadline: the reply and the deadline race; the first one
// answers. Registering a clock timer per request would cost more than the
// request itself (a timer-table insert and a wake-up of the timer thread, then
// a cancel), so pending requests sit in one list per transport, ordered by
// deadline, behind a single clock timer armed for the earliest one. Deadlines
// mostly grow (now + the same timeout), so an insert is O(1) at the tail and
// the clock is only touched when the earliest deadline moves earlier. Each
// transport keeps a few lists and a thread sticks to one, so concurrent
// callers rarely share a mutex.

constexpr size_t kDeadlineShards = 8;

// This thread's shard, assigned round-robin on first use.
size_t DeadlineShard() {
  static std::atomic<size_t> next{0};
  thread_local const size_t shard = next.fetch_add(1, std::memory_order_relaxed) % kDeadlineShards;
  return shard;
}

class DeadlineList;

struct PendingRequest {
  PendingRequest(ReplyCallback cb, absl::Time when, std::shared_ptr<DeadlineList> l)
      : on_reply(std::move(cb)), deadline(when), list(std::move(l)) {}
  std::atomic<bool> done{false};
  ReplyCallback on_reply;
  const absl::Time deadline;
  const std::shared_ptr<DeadlineList> list;
  // Links, guarded by the list's mutex. `self` keeps the request alive while
  // it is linked, even if a handler dropped its reply callback.
  PendingRequest* prev = nullptr;
  PendingRequest* next = nullptr;
  std::shared_ptr<PendingRequest> self;
};

class DeadlineList : public std::enable_shared_from_this<DeadlineList> {
 public:
  DeadlineList(Clock* clock, std::string bus) : clock_(clock), bus_(std::move(bus)) {}

  void Add(const std::shared_ptr<PendingRequest>& p) {
    internal::CallMutexLock lock(&mu_);
    p->self = p;
    PendingRequest* after = tail_;
    while (after != nullptr && after->deadline > p->deadline) after = after->prev;
    p->prev = after;
    p->next = after != nullptr ? after->next : head_;
    if (p->next != nullptr) {
      p->next->prev = p.get();
    } else {
      tail_ = p.get();
    }
    if (after != nullptr) {
      after->next = p.get();
    } else {
      head_ = p.get();
    }
    if (p->deadline < armed_) Arm(p->deadline);
  }

  // Unlinks `p` if still linked (the reply won the race).
  void Remove(PendingRequest* p) {
    std::shared_ptr<PendingRequest> keep;
    internal::CallMutexLock lock(&mu_);
    if (p->self) keep = Unlink(p);
  }

 private:
  std::shared_ptr<PendingRequest> Unlink(PendingRequest* p) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (p->prev != nullptr) {
      p->prev->next = p->next;
    } else {
      head_ = p->next;
    }
    if (p->next != nullptr) {
      p->next->prev = p->prev;
    } else {
      tail_ = p->prev;
    }
    p->prev = p->next = nullptr;
    return std::move(p->self);
  }

  void Arm(absl::Time when) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    timer_.Cancel();  // superseded by an earlier deadline
    armed_ = when;
    const uint64_t generation = ++generation_;
    timer_ = clock_->RunAt(when, [self = shared_from_this(), generation] { self->Fire(generation); });
  }

  void Fire(uint64_t generation) {
    std::vector<std::shared_ptr<PendingRequest>> expired;
    {
      internal::CallMutexLock lock(&mu_);
      if (generation == generation_) armed_ = absl::InfiniteFuture();
      const absl::Time now = clock_->Now();
      while (head_ != nullptr && head_->deadline <= now) {
        std::shared_ptr<PendingRequest> p = Unlink(head_);
        if (!p->done.exchange(true)) expired.push_back(std::move(p));
      }
      if (head_ != nullptr && head_->deadline < armed_) Arm(head_->deadline);
    }
    for (auto& p : expired) {
      std::move(p->on_reply)(absl::DeadlineExceededError(absl::StrCat(
          "no reply within the deadline (inproc bus ", bus_,
          "); the handler is slower than the caller's timeout: raise the policy's timeout")));
    }
  }

  Clock* const clock_;
  const std::string bus_;
  internal::CallMutex mu_;
  PendingRequest* head_ ABSL_GUARDED_BY(mu_) = nullptr;
  PendingRequest* tail_ ABSL_GUARDED_BY(mu_) = nullptr;
  absl::Time armed_ ABSL_GUARDED_BY(mu_) = absl::InfiniteFuture();
  uint64_t generation_ ABSL_GUARDED_BY(mu_) = 0;
  TimerHandle timer_ ABSL_GUARDED_BY(mu_);
};

// ---------------------------------------------------------------------------
// The transport.

class InprocTransport final : public Transport {
 public:
  InprocTransport(std::string name, std::shared_ptr<Bus> bus, Clock* clock, uint64_t max_depth)
      : name_(std::move(name)),
        bus_(std::move(bus)),
        clock_(clock),
        max_depth_(max_depth),
        features_(InprocFeatures()) {
    for (auto& list : deadlines_) list = std::make_shared<DeadlineList>(clock, bus_->name());
  }
  ~InprocTransport() override { BusRegistry::Get().Detach(bus_); }

  std::string_view name() const override { return name_; }
  std::string_view type() const override { return "inproc"; }
  const Features& features() const override { return features_; }

  void Request(Envelope request, ReplyCallback on_reply) override {
    Server* server = bus_->PickServer(request.type);
    if (server == nullptr) {
      std::move(on_reply)(absl::UnavailableError(absl::StrCat(
          "no handler serves ", request.type, " on inproc bus ", bus_->name())));
      return;
    }
    GateCall call(&server->gate);
    if (!request.has_deadline()) {
      server->handler(std::move(request), std::move(on_reply));
      return;
    }
    if (request.deadline <= clock_->Now()) {
      std::move(on_reply)(absl::DeadlineExceededError(
          absl::StrCat("deadline of ", request.type, " passed before it was sent")));
      return;
    }
    const std::shared_ptr<DeadlineList>& list = deadlines_[DeadlineShard()];
    auto pending = std::make_shared<PendingRequest>(std::move(on_reply), request.deadline, list);
    list->Add(pending);
    server->handler(std::move(request),
                    [pending = std::move(pending)](absl::StatusOr<Envelope> reply) mutable {
                      if (pending->done.exchange(true)) return;
                      pending->list->Remove(pending.get());
                      std::move(pending->on_reply)(std::move(reply));
                    });
  }

  absl::StatusOr<std::unique_ptr<Subscription>> Serve(const Endpoint& endpoint,
                                                      RequestHandler handler) override {
    if (endpoint.operation.empty()) {
      return absl::InvalidArgumentError("inproc Serve: the endpoint names no operation");
    }
    auto server = std::make_unique<Server>(std::move(handler));
    bus_->AddServer(endpoint.operation, server.get());
    return std::make_unique<ServerSubscription>(bus_, endpoint.operation, std::move(server));
  }

  void Enqueue(Envelope command, DoneCallback on_accepted) override {
    std::shared_ptr<Queue> q = bus_->CommandQueue(command.type);
    absl::Status pushed = q->Push(std::move(command), max_depth_, bus_->name());
    std::move(on_accepted)(pushed);
    if (pushed.ok()) Pump(std::move(q), bus_);
  }

  absl::StatusOr<std::unique_ptr<Subscription>> Consume(const Endpoint& endpoint,
                                                        DeliveryHandler handler) override {
    if (endpoint.operation.empty()) {
      return absl::InvalidArgumentError("inproc Consume: the endpoint names no operation");
    }
    return Attach(bus_->CommandQueue(endpoint.operation), endpoint, std::move(handler));
  }

  void Publish(Envelope event, DoneCallback on_published) override {
    std::vector<std::shared_ptr<Queue>> groups = bus_->EventGroups(event.type);
    absl::Status result;
    std::vector<std::shared_ptr<Queue>> filled;
    filled.reserve(groups.size());
    for (size_t i = 0; i < groups.size(); ++i) {
      Envelope copy = i + 1 == groups.size() ? std::move(event) : event;
      absl::Status pushed = groups[i]->Push(std::move(copy), max_depth_, bus_->name());
      if (pushed.ok()) {
        filled.push_back(groups[i]);
      } else if (result.ok()) {
        result = pushed;  // the first full group; the others got their copy
      }
    }
    std::move(on_published)(result);
    for (auto& q : filled) Pump(std::move(q), bus_);
  }

  absl::StatusOr<std::unique_ptr<Subscription>> Subscribe(const Endpoint& endpoint,
                                                          DeliveryHandler handler) override {
    if (endpoint.operation.empty()) {
      return absl::InvalidArgumentError("inproc Subscribe: the endpoint names no event type");
    }
    const std::string& group = endpoint.group.empty() ? endpoint.operation : endpoint.group;
    return Attach(bus_->EventQueue(endpoint.operation, group), endpoint, std::move(handler));
  }

  absl::StatusOr<std::unique_ptr<ReplyInbox>> OpenInbox(ReplyHandler on_reply) override {
    auto inbox = std::make_shared<Inbox>(std::move(on_reply));
    std::string address = bus_->AddInbox(inbox);
    return std::make_unique<InprocInbox>(bus_, std::move(address));
  }

  void SendReply(const std::string& reply_to, Envelope reply, DoneCallback on_sent) override {
    std::shared_ptr<Bus> bus = BusOfAddress(reply_to);
    std::shared_ptr<Inbox> inbox = bus ? bus->FindInbox(reply_to) : nullptr;
    if (!inbox || !inbox->gate.Enter()) {
      std::move(on_sent)(absl::NotFoundError(absl::StrCat(
          "no inproc inbox '", reply_to, "' (closed, or never opened in this process)")));
      return;
    }
    {
      GateCall call(&inbox->gate);
      inbox->handler(std::move(reply));
    }
    std::move(on_sent)(absl::OkStatus());
  }

  absl::StatusOr<int64_t> QueueDepth(const Endpoint& endpoint) override {
    if (!endpoint.group.empty()) {
      if (auto q = bus_->FindEventQueue(endpoint.operation, endpoint.group)) return q->Depth();
    }
    if (auto q = bus_->FindCommandQueue(endpoint.operation)) return q->Depth();
    return 0;
  }

 private:
  absl::StatusOr<std::unique_ptr<Subscription>> Attach(std::shared_ptr<Queue> q,
                                                       const Endpoint& endpoint,
                                                       DeliveryHandler handler) {
    auto consumer = std::make_shared<Consumer>(std::move(handler), endpoint.max_in_flight, clock_);
    q->AddConsumer(consumer);
    auto sub = std::make_unique<ConsumerSubscription>(bus_, q, consumer);
    // Messages that waited for a consumer go now, on this thread.
    Pump(std::move(q), bus_);
    return sub;
  }

  // The bus an inbox address belongs to: "inproc://<bus>/inbox/<n>".
  std::shared_ptr<Bus> BusOfAddress(std::string_view address) {
    if (address.substr(0, kInboxScheme.size()) != kInboxScheme) return nullptr;
    std::string_view rest = address.substr(kInboxScheme.size());
    const size_t slash = rest.rfind("/inbox/");
    if (slash == std::string_view::npos) return nullptr;
    std::string_view bus_name = rest.substr(0, slash);
    if (bus_name == bus_->name()) return bus_;
    return BusRegistry::Get().Find(bus_name);
  }

  const std::string name_;
  const std::shared_ptr<Bus> bus_;
  Clock* const clock_;
  const uint64_t max_depth_;
  const Features features_;
  std::array<std::shared_ptr<DeadlineList>, kDeadlineShards> deadlines_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<Transport>> MakeInprocTransport(std::string_view name,
                                                               const v1::TransportConfig& config,
                                                               const TransportEnv& env) {
  const v1::InprocOptions& options = config.inproc();
  std::string bus = options.bus().empty() ? "default" : options.bus();
  const uint64_t max_depth =
      options.max_queue_depth() == 0 ? kDefaultMaxQueueDepth : options.max_queue_depth();
  Clock* clock = env.clock != nullptr ? env.clock : &Clock::Real();
  return std::make_unique<InprocTransport>(std::string(name), BusRegistry::Get().Attach(bus),
                                           clock, max_depth);
}

}  // namespace switchboard
