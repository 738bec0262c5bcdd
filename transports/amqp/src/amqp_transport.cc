#include "switchboard/amqp/amqp_transport.h"

#include <atomic>
#include <chrono>
#include <deque>
#include <exception>
#include <functional>
#include <future>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/functional/any_invocable.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/synchronization/mutex.h"
#include "address_scheme.h"
#include "amqp_wire.h"
#include "management_client.h"
#include "reconnect_backoff.h"
#include "sv.h"
#include "proton/connection.hpp"
#include "proton/connection_options.hpp"
#include "proton/container.hpp"
#include "proton/delivery.h"
#include "proton/delivery.hpp"
#include "proton/delivery_mode.hpp"
#include "proton/duration.hpp"
#include "proton/error_condition.hpp"
#include "proton/link.h"
#include "proton/message.hpp"
#include "proton/binary.hpp"
#include "proton/message_id.hpp"
#include "proton/messaging_handler.hpp"
#include "proton/receiver.hpp"
#include "proton/receiver_options.hpp"
#include "proton/sender.hpp"
#include "proton/sender_options.hpp"
#include "proton/session.hpp"
#include "proton/source_options.hpp"
#include "proton/ssl.hpp"
#include "proton/target_options.hpp"
#include "proton/tracker.hpp"
#include "proton/transport.hpp"
#include "proton/work_queue.hpp"
#include "switchboard/clock.h"
#include "switchboard/executor.h"
#include "switchboard/internal/envelope_pool.h"
#include "switchboard/status.h"
#include "switchboard/trace_context.h"
#include "switchboard/v1/config.pb.h"

namespace switchboard::amqp {
namespace {

using Done = std::function<void(absl::Status)>;

// The Proton C link under a sender, reached through a copy of the handle.
class SenderLink : public proton::sender {
 public:
  explicit SenderLink(const proton::sender& s) : proton::sender(s) {}
  pn_link_t* pn() const { return pn_object(); }
};

// The Proton C delivery under a tracker, the same way.
class TrackerDelivery : public proton::tracker {
 public:
  explicit TrackerDelivery(const proton::tracker& t) : proton::tracker(t) {}
  pn_delivery_t* pn() const { return pn_object(); }
};

absl::Duration FromProto(const google::protobuf::Duration& d, absl::Duration fallback) {
  if (d.seconds() == 0 && d.nanos() == 0) return fallback;
  return absl::Seconds(d.seconds()) + absl::Nanoseconds(d.nanos());
}

proton::duration ToProton(absl::Duration d) {
  return proton::duration(std::max<int64_t>(0, absl::ToInt64Milliseconds(d)));
}

// "amqp://user:secret@host:5672" -> "amqp://host:5672": never print secrets.
std::string Redact(std::string_view url) {
  size_t scheme = url.find("://");
  size_t start = scheme == std::string_view::npos ? 0 : scheme + 3;
  size_t at = url.find('@', start);
  if (at == std::string_view::npos) return std::string(url);
  return absl::StrCat(Sv(url.substr(0, start)), Sv(url.substr(at + 1)));
}

std::string UniqueToken() {
  return absl::StrCat(absl::Hex(RandomU64(), absl::kZeroPad16), absl::Hex(RandomU64() >> 32));
}

struct Options {
  std::vector<std::string> urls;
  std::string user;
  std::string password;
  std::string sasl_mechanisms;
  v1::TlsOptions tls;
  bool use_tls = false;
  absl::Duration reconnect_initial;
  absl::Duration reconnect_max;
  int credit_window = 0;
  std::string management_url;
  absl::Duration idle_timeout;
  absl::Duration close_timeout;
  absl::Duration connect_timeout;
  // Larger received messages (encoded size, counted from their parts) are rejected.
  uint64_t max_message_bytes = uint64_t{8} << 20;
  // How this transport sends envelopes (a reply follows its request's).
  ContentMode content_mode = ContentMode::kStructured;
};

absl::StatusOr<Options> ParseOptions(const v1::AmqpOptions& in) {
  Options o;
  if (!in.url().empty()) o.urls.push_back(in.url());
  for (const auto& u : in.urls()) o.urls.push_back(u);
  if (o.urls.empty()) {
    return absl::InvalidArgumentError(
        "amqp: no broker URL; set `url: amqp://user:password@host:5672`");
  }
  for (const auto& u : o.urls) {
    if (absl::StartsWith(u, "amqps://")) {
      o.use_tls = true;
    } else if (!absl::StartsWith(u, "amqp://")) {
      return absl::InvalidArgumentError(absl::StrCat(
          "amqp: URL \"", Redact(u), "\" must start with amqp:// or amqps://"));
    }
  }
  o.user = in.user();
  o.password = in.password();
  o.sasl_mechanisms = in.sasl_mechanisms();
  o.tls = in.tls();
  if (!o.tls.ca_file().empty() || !o.tls.cert_file().empty()) o.use_tls = true;
  o.reconnect_initial = FromProto(in.reconnect_initial(), absl::Milliseconds(100));
  // Unset, the bound is 5s, or the initial delay when that is longer.
  o.reconnect_max =
      FromProto(in.reconnect_max(), std::max(absl::Seconds(5), o.reconnect_initial));
  // The backoff counts milliseconds: a shorter delay would become none at all.
  for (const auto& [option, value] : {std::pair{"reconnect_initial", o.reconnect_initial},
                                      std::pair{"reconnect_max", o.reconnect_max}}) {
    if (value < absl::Milliseconds(1)) {
      return absl::InvalidArgumentError(absl::StrCat("amqp: `", option, "` of ",
                                                     absl::FormatDuration(value),
                                                     " must be at least 1ms (0 = the default)"));
    }
  }
  if (o.reconnect_max < o.reconnect_initial) {
    return absl::InvalidArgumentError(absl::StrCat(
        "amqp: `reconnect_max` (", absl::FormatDuration(o.reconnect_max),
        ") must not be below `reconnect_initial` (", absl::FormatDuration(o.reconnect_initial), ")"));
  }
  if (in.credit_window() < 0) {
    return absl::InvalidArgumentError("amqp: credit_window must be >= 0 (0 = per endpoint)");
  }
  o.credit_window = in.credit_window();
  o.management_url = in.management_url();
  o.idle_timeout = FromProto(in.idle_timeout(), absl::ZeroDuration());
  o.close_timeout = FromProto(in.close_timeout(), absl::Seconds(2));
  o.connect_timeout = FromProto(in.connect_timeout(), absl::Seconds(10));
  if (in.max_message_bytes() > 0) o.max_message_bytes = in.max_message_bytes();
  if (!internal::ParseContentMode(in.content_mode(), &o.content_mode)) {
    return absl::InvalidArgumentError(
        absl::StrCat("amqp: `content_mode` is \"", in.content_mode(),
                     "\"; must be structured (the default) or binary"));
  }
  return o;
}

// One thread for the blocking management-API calls of requests (never the
// container thread, never a thread per call). The thread owns its state, so
// the Core can go away while a call is still in flight.
class BlockingWorker {
 public:
  BlockingWorker() : state_(std::make_shared<State>()) {
    std::thread([state = state_] {
      for (;;) {
        std::function<void()> task;
        {
          absl::MutexLock l(&state->mu);
          auto ready = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(state->mu) {
            return state->stop || !state->tasks.empty();
          };
          state->mu.Await(absl::Condition(&ready));
          if (state->tasks.empty()) return;
          task = std::move(state->tasks.front());
          state->tasks.pop_front();
        }
        try {
          task();
        } catch (const std::exception&) {
        }
      }
    }).detach();
  }
  ~BlockingWorker() {
    absl::MutexLock l(&state_->mu);
    state_->stop = true;
  }
  void Post(std::function<void()> task) {
    absl::MutexLock l(&state_->mu);
    if (!state_->stop) state_->tasks.push_back(std::move(task));
  }

 private:
  struct State {
    absl::Mutex mu;
    std::deque<std::function<void()>> tasks ABSL_GUARDED_BY(mu);
    bool stop ABSL_GUARDED_BY(mu) = false;
  };
  std::shared_ptr<State> state_;
};

enum class Kind { kServe, kReplies, kInbox, kConsume };
enum class Action { kAck, kRetry, kDeadLetter };

class Core;

class AmqpDelivery final : public Delivery {
 public:
  AmqpDelivery(Envelope env, std::weak_ptr<Core> core, uint64_t id)
      : Delivery(std::move(env)), core_(std::move(core)), id_(id) {}
  ~AmqpDelivery() override {
    if (!settled_.exchange(true)) Settle(Action::kRetry, absl::ZeroDuration(), absl::OkStatus());
  }
  void Ack() override {
    if (!settled_.exchange(true)) Settle(Action::kAck, absl::ZeroDuration(), absl::OkStatus());
  }
  void Retry(absl::Duration delay) override {
    if (!settled_.exchange(true)) Settle(Action::kRetry, delay, absl::OkStatus());
  }
  void DeadLetter(const absl::Status& reason) override {
    if (!settled_.exchange(true)) Settle(Action::kDeadLetter, absl::ZeroDuration(), reason);
  }

 private:
  void Settle(Action action, absl::Duration delay, absl::Status reason);
  std::weak_ptr<Core> core_;
  uint64_t id_;
  std::atomic<bool> settled_{false};
};

// Everything Proton lives here, owned by one container thread. Public entry
// points post closures to the container's work queue; the fields marked
// "container thread" are touched only from there.
class Core final : public proton::messaging_handler, public std::enable_shared_from_this<Core> {
 public:
  Core(std::string name, Options opts, std::unique_ptr<AddressScheme> scheme,
       std::shared_ptr<ManagementClient> mgmt, const TransportEnv& env)
      : name_(std::move(name)),
        opts_(std::move(opts)),
        scheme_(std::move(scheme)),
        mgmt_(std::move(mgmt)),
        clock_(env.clock != nullptr ? env.clock : &Clock::Real()),
        executor_(env.executor),
        source_(env.source),
        container_(*this, absl::StrCat("switchboard-", name_, "-", UniqueToken())) {
    container_.auto_stop(false);
    spare_buffers_.reserve(kSpareBuffers);
  }

  ~Core() override {
    if (thread_.joinable()) thread_.detach();
  }

  // ---------------------------------------------------------------- start
  absl::Status Start() {
    auto self = shared_from_this();
    thread_ = std::thread([self] {
      self->container_thread_ = std::this_thread::get_id();
      try {
        self->container_.run();
      } catch (const std::exception&) {
        // A Proton exception ends the loop; Shutdown still completes.
      }
      absl::MutexLock l(&self->mu_);
      self->run_exited_ = true;
    });
    absl::MutexLock l(&mu_);
    auto done = [this]() ABSL_SHARED_LOCKS_REQUIRED(mu_) {
      return connected_ || run_exited_ || !refused_.ok();
    };
    mu_.AwaitWithTimeout(absl::Condition(&done), opts_.connect_timeout);
    if (!connected_ && !refused_.ok()) return refused_;
    if (!connected_) {
      return absl::UnavailableError(absl::StrCat(
          "amqp transport \"", name_, "\": could not connect to ", Redact(opts_.urls.front()),
          " within ", absl::FormatDuration(opts_.connect_timeout),
          last_error_.empty() ? "" : absl::StrCat(": ", last_error_),
          " (check `url`, the credentials and that the broker runs, or raise `connect_timeout`)"));
    }
    return absl::OkStatus();
  }

  // Opens the reply queue of this node's requests (bounded).
  absl::Status OpenReplyQueue() {
    auto address = DeclareReplyQueue();
    if (!address.ok()) return address.status();
    reply_address_ = *address;
    return OpenReceiverSync(Kind::kReplies, reply_address_, /*durable=*/false, "", "",
                            "", 256, nullptr, nullptr, nullptr, nullptr,
                            ReplyQueueProvision(reply_address_));
  }

  // Re-declares an auto-delete reply queue after a broker restart.
  std::function<absl::Status()> ReplyQueueProvision(const std::string& address) {
    if (!mgmt_) return {};
    const std::string existing_prefix = scheme_->ExistingQueueAddress("");
    if (!absl::StartsWith(address, existing_prefix)) return {};
    std::string queue = address.substr(existing_prefix.size());
    std::shared_ptr<ManagementClient> mgmt = mgmt_;
    return [mgmt, queue] { return mgmt->DeclareQueue(queue, false, true); };
  }

  // A reply queue of this node: auto-delete when the management API is
  // there (it disappears with the node's session); otherwise declared by
  // the attach and left to the broker (non-durable: gone at its restart).
  // The returned address is what repliers send to.
  absl::StatusOr<std::string> DeclareReplyQueue() {
    const std::string queue = scheme_->ReplyQueue(UniqueToken());
    if (!mgmt_) return scheme_->DeclaringQueueAddress(queue);
    if (auto s = mgmt_->DeclareQueue(queue, /*durable=*/false, /*auto_delete=*/true); !s.ok()) {
      return s;
    }
    return scheme_->ExistingQueueAddress(queue);
  }

  // Bounded shutdown: close the connection, stop the container, join the
  // thread; when the broker stalls the close (a known RabbitMQ behaviour)
  // the thread is detached and finishes on its own, holding the Core alive.
  void Shutdown() {
    stop_requested_.store(true);  // no new connection attempts from here on
    FailAllRequests(absl::CancelledError("amqp: transport closed"));
    if (std::this_thread::get_id() == container_thread_) {
      container_.stop();
      return;
    }
    Post([this] {
      closing_ = true;
      if (conn_) conn_.close();
    });
    {
      absl::MutexLock l(&mu_);
      auto done = [this]() ABSL_SHARED_LOCKS_REQUIRED(mu_) { return transport_closed_ || run_exited_; };
      mu_.AwaitWithTimeout(absl::Condition(&done), opts_.close_timeout);
    }
    container_.stop();
    bool exited = false;
    {
      absl::MutexLock l(&mu_);
      auto done = [this]() ABSL_SHARED_LOCKS_REQUIRED(mu_) { return run_exited_; };
      exited = mu_.AwaitWithTimeout(absl::Condition(&done), opts_.close_timeout);
    }
    if (thread_.joinable()) {
      if (exited) {
        thread_.join();
      } else {
        // The container did not stop in time (a stalled close); waiting
        // longer would hold the caller. The thread owns a reference to this
        // Core and releases it when run() returns.
        thread_.detach();
      }
    }
  }

  // ------------------------------------------------------------- requests
  void Request(Envelope request, ReplyCallback on_reply) {
    if (request.type.empty()) {
      std::move(on_reply)(absl::InvalidArgumentError("amqp: request has no type (operation)"));
      return;
    }
    if (request.has_deadline() && request.deadline <= clock_->Now()) {
      std::move(on_reply)(absl::DeadlineExceededError(
          absl::StrCat("amqp: deadline of ", request.type, " passed before sending")));
      return;
    }
    if (request.id.empty()) request.id = NewMessageId();
    const std::string key = request.id;
    request.reply_to = reply_address_;
    if (request.style == Style::kUnspecified) request.style = Style::kRequest;
    bool duplicate = false;
    {
      absl::MutexLock l(&req_mu_);
      duplicate = requests_.count(key) > 0;
      if (!duplicate) requests_[key].callback = std::move(on_reply);
    }
    if (duplicate) {
      std::move(on_reply)(absl::AlreadyExistsError(
          absl::StrCat("amqp: a request with id ", key, " is already waiting for its reply")));
      return;
    }
    if (request.has_deadline()) {
      std::weak_ptr<Core> weak = weak_from_this();
      std::string op = request.type;
      TimerHandle timer = clock_->RunAt(request.deadline, [weak, key, op] {
        if (auto core = weak.lock()) {
          core->CompleteRequest(key, absl::DeadlineExceededError(absl::StrCat(
                                         "amqp: no reply to ", op, " before its deadline")));
        }
      });
      absl::MutexLock l(&req_mu_);
      auto it = requests_.find(key);
      if (it != requests_.end()) it->second.timer = timer;
    }
    const std::string queue = scheme_->RequestQueue(request.type);
    const std::string address = mgmt_ ? scheme_->ExistingQueueAddress(queue)
                                      : scheme_->DeclaringQueueAddress(queue);
    if (mgmt_ && !KnownServed(queue)) {
      // RabbitMQ drops a message sent to a queue that does not exist without
      // telling the sender; the server's auto-delete queue exists exactly
      // while a server consumes, so its absence means "no server".
      std::weak_ptr<Core> weak = weak_from_this();
      worker_.Post([weak, request = std::move(request), key, queue, address]() mutable {
        auto core = weak.lock();
        if (!core) return;
        absl::StatusOr<bool> exists = core->mgmt_->QueueExists(queue);
        if (exists.ok() && !*exists) {
          core->CompleteRequest(key, absl::UnavailableError(absl::StrCat(
                                         "amqp: no server for ", request.type,
                                         " (no consumer on queue ", queue, ")")));
          return;
        }
        if (exists.ok()) core->MarkServed(queue);
        core->SendRequest(std::move(request), address, key);
      });
      return;
    }
    SendRequest(std::move(request), address, key);
  }

  bool KnownServed(const std::string& queue) {
    absl::MutexLock l(&served_mu_);
    auto it = served_until_.find(queue);
    return it != served_until_.end() && it->second > absl::Now();
  }

  void MarkServed(const std::string& queue) {
    absl::MutexLock l(&served_mu_);
    served_until_[queue] = absl::Now() + kServedCacheTtl;
  }

  void SendRequest(Envelope request, const std::string& address, const std::string& key) {
    const std::string op = request.type;
    bool posted = Post([this, request = std::move(request), address, key, op]() mutable {
      SendEnvelope(address, /*durable=*/false, request, /*durable_message=*/false, "",
                   [this, key, op](absl::Status s) {
                     if (s.ok()) return;
                     CompleteRequest(key, absl::UnavailableError(absl::StrCat(
                                              "amqp: no server for ", op, " (", s.message(), ")")));
                   });
      // Encoded: the envelope's buffers serve a later one.
      internal::RecycleEnvelope(std::move(request));
    });
    if (!posted) CompleteRequest(key, NotPosted());
  }

  void CompleteRequest(const std::string& key, absl::StatusOr<Envelope> result) {
    PendingRequest pending;
    {
      absl::MutexLock l(&req_mu_);
      auto it = requests_.find(key);
      if (it == requests_.end()) return;
      pending = std::move(it->second);
      requests_.erase(it);
    }
    pending.timer.Cancel();
    if (pending.callback) std::move(pending.callback)(std::move(result));
  }

  void FailAllRequests(const absl::Status& status) {
    std::map<std::string, PendingRequest> all;
    {
      absl::MutexLock l(&req_mu_);
      all.swap(requests_);
    }
    for (auto& [key, p] : all) {
      p.timer.Cancel();
      if (p.callback) std::move(p.callback)(status);
    }
  }

  // --------------------------------------------------------- subscriptions
  absl::StatusOr<std::string> Serve(const Endpoint& ep, RequestHandler handler) {
    const std::string queue = ep.address.empty() ? scheme_->RequestQueue(ep.operation) : ep.address;
    std::string address = scheme_->DeclaringQueueAddress(queue);
    if (mgmt_) {
      // An auto-delete queue exists exactly while a server consumes it, so a
      // client's attach to it fails at once when no server runs (fail fast).
      if (auto s = mgmt_->DeclareQueue(queue, /*durable=*/false, /*auto_delete=*/true); !s.ok()) {
        return s;
      }
      address = scheme_->ExistingQueueAddress(queue);
    }
    std::string link = NewLinkName("serve");
    std::function<absl::Status()> provision;
    if (mgmt_) {
      std::shared_ptr<ManagementClient> mgmt = mgmt_;
      provision = [mgmt, queue] { return mgmt->DeclareQueue(queue, false, true); };
    }
    auto s = OpenReceiverSync(Kind::kServe, address, false, ep.operation, "", "",
                              Window(ep), std::move(handler), nullptr, nullptr, &link,
                              std::move(provision));
    if (!s.ok()) return s;
    return link;
  }

  absl::StatusOr<std::string> Consume(const Endpoint& ep, DeliveryHandler handler) {
    const std::string queue = ep.address.empty() ? scheme_->CommandQueue(ep.operation) : ep.address;
    const std::string address = scheme_->DeclaringQueueAddress(queue);
    std::string link = NewLinkName("consume");
    auto s = OpenReceiverSync(Kind::kConsume, address, /*durable=*/true, ep.operation, address,
                              DeadLetterQueueAddress(ep.operation), Window(ep), nullptr,
                              std::move(handler), nullptr, &link);
    if (!s.ok()) return s;
    return link;
  }

  absl::StatusOr<std::string> Subscribe(const Endpoint& ep, DeliveryHandler handler) {
    if (!mgmt_) {
      return absl::FailedPreconditionError(
          "amqp: event subscriptions on RabbitMQ need its management API to provision the group "
          "queue; set `management_url: http://user:password@host:15672`");
    }
    if (ep.group.empty()) {
      return absl::InvalidArgumentError("amqp: Subscribe needs a group name");
    }
    const std::string queue = scheme_->GroupQueue(ep.operation, ep.group);
    if (auto s = mgmt_->DeclareQueue(queue, /*durable=*/true, /*auto_delete=*/false); !s.ok()) {
      return s;
    }
    const std::string key = ep.address.empty() ? scheme_->RoutingKey(ep.operation) : ep.address;
    if (auto s = mgmt_->Bind("amq.topic", queue, key); !s.ok()) return s;
    std::string link = NewLinkName("subscribe");
    auto s = OpenReceiverSync(Kind::kConsume, scheme_->ExistingQueueAddress(queue),
                              /*durable=*/false, ep.operation,
                              scheme_->DeclaringQueueAddress(queue),
                              DeadLetterQueueAddress(ep.operation), Window(ep), nullptr,
                              std::move(handler), nullptr, &link,
                              [mgmt = mgmt_, queue, key]() -> absl::Status {
                                if (auto s = mgmt->DeclareQueue(queue, true, false); !s.ok()) {
                                  return s;
                                }
                                return mgmt->Bind("amq.topic", queue, key);
                              });
    if (!s.ok()) return s;
    return link;
  }

  absl::StatusOr<std::pair<std::string, std::string>> OpenInbox(ReplyHandler on_reply) {
    auto declared = DeclareReplyQueue();
    if (!declared.ok()) return declared.status();
    const std::string address = *declared;
    std::string link = NewLinkName("inbox");
    auto s = OpenReceiverSync(Kind::kInbox, address, false, "", "", "", 256, nullptr, nullptr,
                              std::move(on_reply), &link, ReplyQueueProvision(address));
    if (!s.ok()) return s;
    return std::make_pair(link, address);
  }

  // Stops delivery on a receiver; waits (bounded) until the container has
  // processed the close, so no handler of it runs after this returns.
  void CloseReceiver(const std::string& link) {
    RunSync([this, link] {
      auto it = receivers_.find(link);
      if (it == receivers_.end()) return;
      it->second.closed = true;
      // RabbitMQ keeps the unsettled messages of a detached link with its
      // session (AMQP 0-9-1 channel semantics) and would redeliver a
      // released one to the same link before the detach. Each receiver has
      // a session of its own; ending it hands every unsettled message back
      // to the queue. Settlements arriving later are ignored.
      for (auto d = inflight_.begin(); d != inflight_.end();) {
        d = d->second.link == link ? inflight_.erase(d) : std::next(d);
      }
      if (it->second.link_generation == generation_) {
        try {
          it->second.session.close();
        } catch (const std::exception&) {
        }
      }
      receivers_.erase(it);
    });
  }

  // --------------------------------------------------------------- sending
  void Enqueue(Envelope command, DoneCallback done) {
    if (command.type.empty()) {
      std::move(done)(absl::InvalidArgumentError("amqp: command has no type (operation)"));
      return;
    }
    const std::string address = scheme_->DeclaringQueueAddress(scheme_->CommandQueue(command.type));
    SendFromAnyThread(address, /*durable=*/true, std::move(command), std::move(done));
  }

  void Publish(Envelope event, DoneCallback done) {
    if (event.type.empty()) {
      std::move(done)(absl::InvalidArgumentError("amqp: event has no type"));
      return;
    }
    const std::string address = scheme_->TopicAddress(scheme_->RoutingKey(event.type));
    SendFromAnyThread(address, /*durable=*/false, std::move(event), std::move(done),
                      /*durable_message=*/true);
  }

  void SendReply(const std::string& reply_to, Envelope reply, DoneCallback done) {
    if (reply_to.empty()) {
      std::move(done)(absl::InvalidArgumentError("amqp: empty reply address"));
      return;
    }
    SendFromAnyThread(ReplyAddress(reply_to), /*durable=*/false, std::move(reply), std::move(done));
  }

  absl::StatusOr<int64_t> QueueDepth(const Endpoint& ep) {
    if (!mgmt_) return absl::UnimplementedError("amqp: queue depth needs management_url");
    std::string queue;
    if (!ep.address.empty()) {
      queue = ep.address;
    } else if (!ep.group.empty() && ep.group != ep.operation) {
      queue = scheme_->GroupQueue(ep.operation, ep.group);
    } else {
      queue = scheme_->CommandQueue(ep.operation);
    }
    return mgmt_->QueueMessages(queue);
  }

  void SettleFromAnyThread(uint64_t id, Action action, absl::Duration delay, absl::Status reason,
                           Envelope env) {
    Post([this, id, action, delay, reason = std::move(reason), env = std::move(env)]() mutable {
      SettleOnContainer(id, action, delay, std::move(reason), std::move(env));
    });
  }

  int64_t invalid_messages() const { return invalid_messages_.load(); }

 private:
  struct PendingRequest {
    ReplyCallback callback;
    TimerHandle timer;
  };
  struct Outgoing {
    std::vector<char> bytes;  // the encoded message
    Done done;
  };
  struct SenderEntry {
    proton::sender sender;
    std::string address;
    std::deque<Outgoing> queue;
    int outstanding = 0;  // sent, outcome not known yet
    uint64_t last_used = 0;
    uint64_t last_tag = 0;  // delivery tags: a counter per link
  };
  // Cached senders at most; beyond it the least recently used idle one is
  // closed (a server answering many short-lived clients would otherwise
  // keep a link per reply queue forever).
  static constexpr size_t kMaxSenders = 256;
  // Reopen-and-verify rounds per receiver before it is left as is.
  static constexpr int kMaxRecoveries = 20;
  struct ReceiverEntry {
    Kind kind = Kind::kConsume;
    proton::session session;
    proton::receiver receiver;
    std::string address;
    bool durable = false;
    std::string operation;
    std::string requeue_address;
    std::string dlq_address;
    int window = 256;
    int unsettled = 0;
    bool closed = false;
    bool recovering = false;
    bool verify_after_open = false;
    int recoveries = 0;
    uint64_t link_generation = 0;  // connection generation the link was opened in
    // Re-creates the broker-side queue (management API; blocking), or empty.
    std::function<absl::Status()> provision;
    RequestHandler on_request;
    DeliveryHandler on_delivery;
    ReplyHandler on_reply;
    std::shared_ptr<std::promise<absl::Status>> opened;
  };
  struct InflightEntry {
    proton::delivery delivery;
    std::string link;
    uint64_t generation = 0;
  };

  int Window(const Endpoint& ep) const {
    int w = ep.max_in_flight > 0 ? ep.max_in_flight : 256;
    if (opts_.credit_window > 0) w = std::min(w, opts_.credit_window);
    return w;
  }

  std::string NewLinkName(std::string_view role) {
    return absl::StrCat(name_, ".", Sv(role), ".", UniqueToken());
  }

  std::string DeadLetterQueueAddress(std::string_view operation) const {
    return scheme_->DeclaringQueueAddress(scheme_->CommandQueue(DeadLetterAddress(operation)));
  }

  std::string ReplyAddress(const std::string& reply_to) const {
    return absl::StartsWith(reply_to, "/") ? reply_to : scheme_->DeclaringQueueAddress(reply_to);
  }

  // Work for the container thread; false when the container has stopped.
  // Exceptions from Proton never escape into the event loop. The task is
  // moved in and boxed: Proton's work items are copyable, and a copy of a
  // closure holding an envelope would copy all its strings.
  bool Post(absl::AnyInvocable<void() &&> fn) {
    auto task = std::make_shared<absl::AnyInvocable<void() &&>>(std::move(fn));
    // Held while adding so the connection (and its queue) cannot be freed
    // meanwhile: on_transport_close clears the pointer under the same lock.
    absl::MutexLock l(&mu_);
    if (run_exited_ || work_queue_ == nullptr) return false;
    return work_queue_->add([task = std::move(task)] {
      try {
        std::move (*task)();
      } catch (const std::exception&) {
      }
    });
  }

  // Why Post returned false.
  absl::Status NotPosted() {
    absl::MutexLock l(&mu_);
    if (run_exited_ || stop_requested_.load()) {
      return absl::UnavailableError("amqp: transport is closed");
    }
    return absl::UnavailableError(absl::StrCat(
        "amqp: not connected to the broker (reconnecting",
        last_error_.empty() ? "" : absl::StrCat("; last error: ", last_error_), ")"));
  }

  // Runs `fn` on the container thread and waits for it (bounded); inline
  // when already there.
  void RunSync(std::function<void()> fn) {
    if (std::this_thread::get_id() == container_thread_) {
      try {
        fn();
      } catch (const std::exception&) {
      }
      return;
    }
    auto done = std::make_shared<std::promise<void>>();
    auto fut = done->get_future();
    if (!Post([fn = std::move(fn), done] {
          fn();
          done->set_value();
        })) {
      return;
    }
    fut.wait_for(std::chrono::milliseconds(absl::ToInt64Milliseconds(opts_.close_timeout)));
  }

  absl::Status OpenReceiverSync(Kind kind, const std::string& address, bool durable,
                                const std::string& operation, const std::string& requeue_address,
                                const std::string& dlq_address, int window,
                                RequestHandler on_request, DeliveryHandler on_delivery,
                                ReplyHandler on_reply, std::string* link_out,
                                std::function<absl::Status()> provision = {}) {
    std::string link = link_out != nullptr ? *link_out : NewLinkName("replies");
    auto opened = std::make_shared<std::promise<absl::Status>>();
    auto fut = opened->get_future();
    ReceiverEntry entry;
    entry.kind = kind;
    entry.address = address;
    entry.durable = durable;
    entry.operation = operation;
    entry.requeue_address = requeue_address;
    entry.dlq_address = dlq_address;
    entry.window = window;
    entry.on_request = std::move(on_request);
    entry.on_delivery = std::move(on_delivery);
    entry.on_reply = std::move(on_reply);
    entry.provision = std::move(provision);
    entry.opened = opened;
    bool posted = Post([this, link, entry = std::move(entry)]() mutable {
      if (!conn_ || closing_) {
        entry.opened->set_value(absl::UnavailableError("amqp: not connected"));
        return;
      }
      OpenLink(entry, link);
      receivers_[link] = std::move(entry);
    });
    if (!posted) return NotPosted();
    if (std::this_thread::get_id() == container_thread_) return absl::OkStatus();
    if (fut.wait_for(std::chrono::milliseconds(absl::ToInt64Milliseconds(opts_.connect_timeout))) !=
        std::future_status::ready) {
      CloseReceiver(link);
      return absl::UnavailableError(absl::StrCat("amqp: broker did not attach ", address,
                                                 " within ",
                                                 absl::FormatDuration(opts_.connect_timeout)));
    }
    absl::Status s = fut.get();
    if (!s.ok()) {
      CloseReceiver(link);
      return s;
    }
    if (link_out != nullptr) *link_out = link;
    return absl::OkStatus();
  }

  // Container thread: a session of its own and the receiver in it.
  void OpenLink(ReceiverEntry& entry, const std::string& link) {
    proton::receiver_options ro;
    ro.name(link);
    ro.credit_window(0);
    ro.auto_accept(false);
    ro.delivery_mode(proton::delivery_mode::AT_LEAST_ONCE);
    proton::source_options so;
    if (entry.durable) so.durability_mode(proton::source::UNSETTLED_STATE);
    ro.source(so);
    entry.session = conn_.open_session();
    entry.receiver = entry.session.open_receiver(entry.address, ro);
    entry.link_generation = generation_;
  }

  // A receiver the broker detached after it had worked (typically: after a
  // broker restart its queue is gone, as auto-delete and non-durable queues
  // are). The management-API provisioning runs again on the worker thread,
  // then the link is reopened; tried for about a minute.
  void ScheduleRecovery(ReceiverEntry& entry, const std::string& link) {
    if (entry.recovering || closing_) return;
    entry.recovering = true;
    std::weak_ptr<Core> weak = weak_from_this();
    std::function<absl::Status()> provision = entry.provision;
    worker_.Post([weak, link, provision] {
      for (int attempt = 0; attempt < 120; ++attempt) {
        auto core = weak.lock();
        if (!core || !core->RecoveryWanted()) return;
        absl::Status ps = provision ? provision() : absl::OkStatus();
        if (ps.ok()) {
          core->Post([core_raw = core.get(), link] { core_raw->Reopen(link); });
          return;
        }
        core.reset();
        absl::SleepFor(absl::Milliseconds(500));
      }
    });
  }

  bool RecoveryWanted() {
    absl::MutexLock l(&mu_);
    return !run_exited_ && work_queue_ != nullptr;
  }

  void Reopen(const std::string& link) {
    auto it = receivers_.find(link);
    if (it == receivers_.end() || closing_) return;
    ReceiverEntry& e = it->second;
    e.recovering = false;
    e.closed = false;
    e.unsettled = 0;
    for (auto d = inflight_.begin(); d != inflight_.end();) {
      d = d->second.link == link ? inflight_.erase(d) : std::next(d);
    }
    if (!conn_) return;  // reopened by the next connection's recovery
    // The new link first, then the old session: a consumer must stay on an
    // auto-delete queue throughout, or the broker deletes it.
    proton::session old = e.session;
    OpenLink(e, link);
    if (old) {
      try {
        old.close();
      } catch (const std::exception&) {
      }
    }
    e.verify_after_open = static_cast<bool>(e.provision) && ++e.recoveries <= kMaxRecoveries;
  }

  // After a reopen: a stale link closing on the broker's side can still take
  // an auto-delete queue away (sessions are handled concurrently there), so
  // check once that the queue exists and recover again if it does not.
  void VerifyQueue(ReceiverEntry& e, const std::string& link) {
    e.verify_after_open = false;
    std::weak_ptr<Core> weak = weak_from_this();
    std::string queue = QueueOfAddress(e.address);
    if (queue.empty() || !mgmt_) return;
    std::shared_ptr<ManagementClient> mgmt = mgmt_;
    worker_.Post([weak, link, queue, mgmt] {
      absl::SleepFor(absl::Milliseconds(500));
      absl::StatusOr<bool> exists = mgmt->QueueExists(queue);
      if (!exists.ok() || *exists) return;
      if (auto core = weak.lock()) {
        core->Post([core_raw = core.get(), link] {
          auto it = core_raw->receivers_.find(link);
          if (it == core_raw->receivers_.end()) return;
          it->second.closed = true;
          core_raw->ScheduleRecovery(it->second, link);
        });
      }
    });
  }

  std::string QueueOfAddress(const std::string& address) const {
    const std::string existing_prefix = scheme_->ExistingQueueAddress("");
    if (!absl::StartsWith(address, existing_prefix)) return "";
    return address.substr(existing_prefix.size());
  }

  void SendFromAnyThread(const std::string& address, bool durable, Envelope env, DoneCallback done,
                         bool durable_message = false) {
    auto shared_done = std::make_shared<DoneCallback>(std::move(done));
    bool posted = Post([this, address, durable, durable_message, env = std::move(env),
                        shared_done]() mutable {
      SendEnvelope(address, durable, env, durable || durable_message, "",
                   [shared_done](absl::Status s) {
                     if (*shared_done) std::move (*shared_done)(std::move(s));
                     *shared_done = nullptr;
                   });
      internal::RecycleEnvelope(std::move(env));
    });
    if (!posted && *shared_done) {
      std::move (*shared_done)(NotPosted());
    }
  }

  // ---- container thread from here on ----

  // A buffer for one encoded message: a spare one when there is one.
  std::vector<char> TakeBuffer() {
    if (spare_buffers_.empty()) return {};
    std::vector<char> b = std::move(spare_buffers_.back());
    spare_buffers_.pop_back();
    return b;
  }

  void KeepBuffer(std::vector<char>&& b) {
    if (b.capacity() <= kKeptBufferBytes / 16 && spare_buffers_.size() < kSpareBuffers) {
      spare_buffers_.push_back(std::move(b));
    }
  }

  // Encodes `env` (the message's durable flag: `durable_message`) and sends
  // it to `address` over a link that is `durable` or not, in the transport's
  // content mode or in `mode` (a reply goes in its request's).
  void SendEnvelope(const std::string& address, bool durable, const Envelope& env,
                    bool durable_message, std::string_view correlation_id, Done done) {
    SendEnvelope(address, durable, env, durable_message, correlation_id, opts_.content_mode,
                 std::move(done));
  }
  void SendEnvelope(const std::string& address, bool durable, const Envelope& env,
                    bool durable_message, std::string_view correlation_id, ContentMode mode,
                    Done done) {
    std::vector<char> bytes = TakeBuffer();
    if (absl::Status s = encoder_.Encode(env, durable_message, correlation_id, mode, &bytes);
        !s.ok()) {
      done(s);
      return;
    }
    Send(address, durable, std::move(bytes), std::move(done));
  }

  void Send(const std::string& address, bool durable, std::vector<char> bytes, Done done) {
    if (!conn_ || closing_) {
      done(absl::UnavailableError("amqp: not connected"));
      return;
    }
    auto it = senders_.find(address);
    if (it == senders_.end()) {
      if (senders_.size() >= kMaxSenders) EvictIdleSender();
      proton::sender_options so;
      std::string link = NewLinkName("send");
      so.name(link);
      so.delivery_mode(proton::delivery_mode::AT_LEAST_ONCE);
      proton::target_options to;
      if (durable) to.durability_mode(proton::target::UNSETTLED_STATE);
      so.target(to);
      SenderEntry entry;
      entry.address = address;
      entry.sender = conn_.open_sender(address, so);
      sender_links_[link] = address;
      it = senders_.emplace(address, std::move(entry)).first;
    }
    it->second.last_used = ++use_counter_;
    it->second.queue.push_back(Outgoing{std::move(bytes), std::move(done)});
    Flush(it->second);
  }

  void EvictIdleSender() {
    auto victim = senders_.end();
    for (auto it = senders_.begin(); it != senders_.end(); ++it) {
      if (!it->second.queue.empty() || it->second.outstanding > 0) continue;
      if (victim == senders_.end() || it->second.last_used < victim->second.last_used) victim = it;
    }
    if (victim == senders_.end()) return;
    const std::string link = victim->second.sender.name();
    try {
      victim->second.sender.close();  // not waited for
    } catch (const std::exception&) {
    }
    sender_links_.erase(link);
    senders_.erase(victim);
  }

  // Sends with Proton's C API what proton::sender::send does for a
  // proton::message, from bytes encoded once by EnvelopeEncoder. The
  // tracker events of the delivery come as for any send.
  void Flush(SenderEntry& entry) {
    while (!entry.queue.empty() && entry.sender.active() && entry.sender.credit() > 0) {
      Outgoing out = std::move(entry.queue.front());
      entry.queue.pop_front();
      pn_link_t* link = SenderLink(entry.sender).pn();
      const uint64_t tag = ++entry.last_tag;
      pn_delivery_t* delivery =
          pn_delivery(link, pn_dtag(reinterpret_cast<const char*>(&tag), sizeof tag));
      pn_link_send(link, out.bytes.data(), out.bytes.size());
      pn_link_advance(link);
      if (pn_link_snd_settle_mode(link) == PN_SND_SETTLED) pn_delivery_settle(delivery);
      ++entry.outstanding;
      trackers_.emplace(delivery, Tracked{link, &entry, std::move(out.done)});
      KeepBuffer(std::move(out.bytes));
    }
  }

  // The outcome callback of a sent message, taken by the broker's first
  // outcome for it (accept, reject, release or settle); null after that.
  Done TakeTracker(const proton::tracker& t) {
    auto it = trackers_.find(TrackerDelivery(t).pn());
    if (it == trackers_.end()) return nullptr;
    Tracked tracked = std::move(it->second);
    trackers_.erase(it);
    if (tracked.sender->outstanding > 0) --tracked.sender->outstanding;
    return std::move(tracked.done);
  }

  void DropSender(const proton::sender& s, const absl::Status& why) {
    pn_link_t* link = SenderLink(s).pn();
    std::vector<Done> failed;
    // Its messages without an outcome, before its entry goes.
    for (auto it = trackers_.begin(); it != trackers_.end();) {
      if (it->second.link == link) {
        failed.push_back(std::move(it->second.done));
        trackers_.erase(it++);
      } else {
        ++it;
      }
    }
    if (auto name_it = sender_links_.find(s.name()); name_it != sender_links_.end()) {
      if (auto it = senders_.find(name_it->second); it != senders_.end()) {
        for (auto& out : it->second.queue) failed.push_back(std::move(out.done));
        senders_.erase(it);
      }
      sender_links_.erase(name_it);
    }
    for (auto& d : failed) {
      if (d) d(why);
    }
  }

  static absl::Status LinkError(const proton::error_condition& e, std::string_view what) {
    std::string text = absl::StrCat("amqp: ", Sv(what), ": ", e.name(), " ", e.description());
    if (e.name() == "amqp:not-found") return absl::UnavailableError(text);
    if (e.name() == "amqp:unauthorized-access") return absl::PermissionDeniedError(text);
    if (e.name() == "amqp:precondition-failed" ||
        absl::StrContains(e.description(), "PRECONDITION_FAILED")) {
      return absl::FailedPreconditionError(text);
    }
    return absl::UnavailableError(text);
  }

  void GiveCredit(ReceiverEntry& r) {
    if (r.closed || !r.receiver.active()) return;
    int want = r.window - r.unsettled - r.receiver.credit();
    if (want > 0) r.receiver.add_credit(static_cast<uint32_t>(want));
  }

  void DoneWithOne(const std::string& link) {
    auto it = receivers_.find(link);
    if (it == receivers_.end()) return;
    if (it->second.unsettled > 0) --it->second.unsettled;
    GiveCredit(it->second);
  }

  void SettleOnContainer(uint64_t id, Action action, absl::Duration delay, absl::Status reason,
                         Envelope env) {
    auto it = inflight_.find(id);
    if (it == inflight_.end()) return;
    if (it->second.generation != generation_) {
      inflight_.erase(it);  // Stale after a reconnect: the broker redelivers it.
      return;
    }
    auto rit = receivers_.find(it->second.link);
    if (rit == receivers_.end() || rit->second.closed) {
      inflight_.erase(it);
      return;
    }
    switch (action) {
      case Action::kAck:
        it->second.delivery.accept();
        FinishInflight(id);
        return;
      case Action::kRetry: {
        if (delay > absl::ZeroDuration()) {
          std::weak_ptr<Core> weak = weak_from_this();
          // Held (unsettled) during the delay: a crash meanwhile still
          // leaves the message with the broker.
          // On the env's clock, so tests with a FakeClock control it.
          auto shared_env = std::make_shared<Envelope>(std::move(env));
          clock_->RunAfter(delay, [weak, id, shared_env] {
            if (auto core = weak.lock()) {
              core->Post([core_raw = core.get(), id, shared_env] {
                core_raw->Requeue(id, std::move(*shared_env));
              });
            }
          });
          return;
        }
        Requeue(id, std::move(env));
        return;
      }
      case Action::kDeadLetter: {
        env.extensions[std::string(attr::kDeadLetterReason)] = std::string(reason.message());
        env.extensions[std::string(attr::kDeadLetterCode)] = std::string(CodeName(reason.code()));
        ForwardThenAccept(id, rit->second.dlq_address, env);
        return;
      }
    }
  }

  // Retry: a copy with attempt + 1 goes to the back of the queue; once the
  // broker holds the copy, the original is accepted. RabbitMQ 3.10 cannot
  // change a message on release, so this is how the attempt stays exact.
  void Requeue(uint64_t id, Envelope env) {
    auto it = inflight_.find(id);
    if (it == inflight_.end()) return;
    auto rit = receivers_.find(it->second.link);
    if (it->second.generation != generation_ || rit == receivers_.end() || rit->second.closed) {
      inflight_.erase(it);
      return;
    }
    env.attempt = env.attempt + 1;
    ForwardThenAccept(id, rit->second.requeue_address, env);
  }

  void ForwardThenAccept(uint64_t id, const std::string& address, const Envelope& env) {
    std::vector<char> bytes = TakeBuffer();
    if (absl::Status s = encoder_.Encode(env, /*durable=*/true, "", opts_.content_mode, &bytes);
        !s.ok()) {
      // Not forwarded: the broker redelivers the original.
      FinishForward(id, generation_, s);
      return;
    }
    ForwardThenAccept(id, address, std::move(bytes));
  }

  void ForwardThenAccept(uint64_t id, const std::string& address, std::vector<char> bytes) {
    const uint64_t generation = generation_;
    Send(address, /*durable=*/true, std::move(bytes), [this, id, generation](absl::Status s) {
      FinishForward(id, generation, s);
    });
  }

  // Once the copy is with the broker (`forwarded` OK), the original is
  // accepted; otherwise it goes back to the broker, which redelivers it.
  void FinishForward(uint64_t id, uint64_t generation, const absl::Status& forwarded) {
    auto it = inflight_.find(id);
    if (it == inflight_.end()) return;
    if (it->second.generation == generation && generation == generation_) {
      if (forwarded.ok()) {
        it->second.delivery.accept();
      } else {
        it->second.delivery.release();
      }
    }
    FinishInflight(id);
  }

  void FinishInflight(uint64_t id) {
    auto it = inflight_.find(id);
    if (it == inflight_.end()) return;
    std::string link = it->second.link;
    inflight_.erase(it);
    DoneWithOne(link);
  }

  // A message that is not a valid envelope: to the dead-letter queue with
  // the reason (raw, so nothing is lost), then accepted.
  void DeadLetterRaw(proton::delivery& d, const proton::message& m, ReceiverEntry& r,
                     const absl::Status& why) {
    proton::message copy = m;
    AnnotateDeadLetter(why, &copy);
    uint64_t id = next_delivery_id_++;
    inflight_[id] = InflightEntry{d, r.receiver.name(), generation_};
    std::vector<char> bytes = TakeBuffer();
    try {
      copy.encode(bytes);
    } catch (const std::exception& e) {
      FinishForward(id, generation_,
                    absl::InternalError(absl::StrCat("amqp: encoding a dead letter: ", e.what())));
      return;
    }
    ForwardThenAccept(id, r.dlq_address, std::move(bytes));
  }

  void SendServerReply(const std::string& link, const std::string& reply_to,
                       const std::string& correlation, const Envelope& request,
                       absl::StatusOr<Envelope> result, ContentMode mode) {
    DoneWithOne(link);
    if (reply_to.empty()) return;
    Envelope reply = result.ok() ? *std::move(result) : internal::NewEnvelope();
    if (!result.ok()) reply.status = result.status();
    if (reply.id.empty()) reply.id = NewMessageId();
    if (reply.type.empty()) reply.type = request.type;
    if (reply.source.empty()) reply.source = source_;
    if (reply.correlation_id.empty()) reply.correlation_id = request.correlation_id;
    if (reply.time == absl::UnixEpoch()) reply.time = clock_->Now();
    if (reply.style == Style::kUnspecified) reply.style = Style::kRequest;
    SendEnvelope(ReplyAddress(reply_to), /*durable=*/false, reply, /*durable_message=*/false,
                 correlation, mode, [](absl::Status) {
                   // A lost reply surfaces as the caller's DeadlineExceeded.
                 });
    internal::RecycleEnvelope(std::move(reply));
  }

  // ResourceExhausted naming `max_message_bytes` when the message, encoded
  // as on the wire, is larger than the limit. Proton hands over a decoded
  // message without its size, and encoding it again cost more than the
  // decode, so the size MessageToEnvelope counted from the message's parts
  // is used (`counted`); a message it could not count (not an envelope, or
  // with annotations) is encoded to be measured.
  absl::Status CheckSize(const proton::message& m, std::optional<uint64_t> counted,
                         const ReceiverEntry& r) {
    uint64_t size;
    if (counted.has_value()) {
      size = *counted;
    } else {
      m.encode(size_buffer_);
      size = size_buffer_.size();
      // A rare large message must not keep its buffer for the transport's life.
      if (size_buffer_.capacity() > kKeptBufferBytes) std::vector<char>().swap(size_buffer_);
    }
    if (size <= opts_.max_message_bytes) return absl::OkStatus();
    return absl::ResourceExhaustedError(absl::StrCat(
        "amqp: message of ", size, " bytes", r.operation.empty() ? "" : " for ", r.operation,
        " exceeds `max_message_bytes` (", opts_.max_message_bytes, ") of amqp transport \"",
        name_, "\"; send smaller messages or raise `max_message_bytes` on the receiver"));
  }

  // Counted, never handed on: a request gets the error as its reply, a reply
  // fails its request, a command or event goes to the dead-letter queue
  // with the reason but without its payload (so the copy stays readable
  // under the same limit): a binary one as the raw message without its
  // body, a structured one as the envelope its body holds.
  void RejectOversized(proton::delivery& d, const proton::message& m, ReceiverEntry& r,
                       const absl::Status& why, absl::StatusOr<Envelope> env) {
    ++invalid_messages_;
    switch (r.kind) {
      case Kind::kServe: {
        d.accept();
        Envelope request;
        request.type = r.operation;
        SendServerReply(r.receiver.name(), m.reply_to(), MessageIdOf(m), request, why,
                        ContentModeOf(m));
        return;
      }
      case Kind::kReplies:
      case Kind::kInbox: {
        d.accept();
        --r.unsettled;
        GiveCredit(r);
        if (r.kind == Kind::kReplies) {
          std::string key;
          try {
            const proton::message_id c = m.correlation_id();
            key = c.type() == proton::STRING ? proton::get<std::string>(c) : proton::to_string(c);
          } catch (const std::exception&) {
          }
          CompleteRequest(key, absl::ResourceExhaustedError(
                                   absl::StrCat("amqp: reply rejected: ", why.message())));
        }
        return;
      }
      case Kind::kConsume: {
        if (env.ok() && ContentModeOf(m) == ContentMode::kStructured) {
          // Its attributes are in the body: dead-lettered as the envelope
          // it is, without the payload.
          env->data.clear();
          env->extensions[std::string(attr::kDeadLetterReason)] = std::string(why.message());
          env->extensions[std::string(attr::kDeadLetterCode)] = std::string(CodeName(why.code()));
          const uint64_t id = next_delivery_id_++;
          inflight_[id] = InflightEntry{d, r.receiver.name(), generation_};
          ForwardThenAccept(id, r.dlq_address, *env);
          return;
        }
        proton::message stripped = m;
        stripped.body(proton::binary());
        DeadLetterRaw(d, stripped, r, why);
        return;
      }
    }
  }

  void OnServe(proton::delivery& d, const proton::message& m, absl::StatusOr<Envelope> env,
               ReceiverEntry& r) {
    d.accept();  // Requests are at most once: the caller retries on timeout.
    const std::string reply_to = m.reply_to();
    const std::string correlation = MessageIdOf(m);
    const std::string link = r.receiver.name();
    // The reply goes back in the request's content mode.
    const ContentMode mode = ContentModeOf(m);
    if (!env.ok()) {
      ++invalid_messages_;
      Envelope req;
      SendServerReply(link, reply_to, correlation, req, env.status(), mode);
      return;
    }
    if (env->has_deadline() && env->deadline <= clock_->Now()) {
      SendServerReply(link, reply_to, correlation, *env,
                      absl::DeadlineExceededError(absl::StrCat(
                          "amqp: request for ", env->type, " expired before it was served")),
                      mode);
      return;
    }
    std::weak_ptr<Core> weak = weak_from_this();
    Envelope request_copy;
    request_copy.type = env->type;
    request_copy.correlation_id = env->correlation_id;
    auto once = std::make_shared<std::atomic<bool>>(false);
    ReplyCallback reply = [weak, link, reply_to, correlation, request_copy, once,
                           mode](absl::StatusOr<Envelope> result) mutable {
      if (once->exchange(true)) return;
      auto core = weak.lock();
      if (!core) return;
      // Runs once (`once`), so the captures move on.
      core->Post([core_raw = core.get(), link = std::move(link), reply_to = std::move(reply_to),
                  correlation = std::move(correlation), request_copy = std::move(request_copy),
                  result = std::move(result), mode]() mutable {
        core_raw->SendServerReply(link, reply_to, correlation, request_copy, std::move(result),
                                  mode);
      });
    };
    try {
      r.on_request(*std::move(env), std::move(reply));
    } catch (const std::exception&) {
      // The reply callback was moved into the handler; the caller times out.
    }
  }

  void OnReplies(proton::delivery& d, const proton::message& m, absl::StatusOr<Envelope> env,
                 ReceiverEntry& r) {
    d.accept();
    --r.unsettled;
    GiveCredit(r);
    std::string key;
    try {
      const proton::message_id c = m.correlation_id();
      key = c.type() == proton::STRING ? proton::get<std::string>(c) : proton::to_string(c);
    } catch (const std::exception&) {
    }
    if (!env.ok()) {
      ++invalid_messages_;
      CompleteRequest(key, absl::InternalError(absl::StrCat(
                               "amqp: reply is not a valid envelope: ", env.status().message())));
      return;
    }
    CompleteRequest(key, *std::move(env));
  }

  void OnInbox(proton::delivery& d, absl::StatusOr<Envelope> env, ReceiverEntry& r) {
    d.accept();
    --r.unsettled;
    GiveCredit(r);
    if (!env.ok()) {
      ++invalid_messages_;
      return;
    }
    try {
      if (r.on_reply) r.on_reply(*std::move(env));
    } catch (const std::exception&) {
    }
  }

  void OnConsume(proton::delivery& d, proton::message& m, absl::StatusOr<Envelope> env,
                 ReceiverEntry& r) {
    if (!env.ok()) {
      ++invalid_messages_;
      DeadLetterRaw(d, m, r, env.status());
      return;
    }
    // A redelivery by the broker (consumer gone before settling) comes with
    // the header's delivery-count raised; our own retries are fresh copies
    // carrying the attempt in the application properties.
    int64_t redeliveries = m.delivery_count();
    if (redeliveries == 0 && scheme_->FirstAcquirerMarksRedelivery() && !m.first_acquirer()) {
      redeliveries = 1;
    }
    if (redeliveries > 0) {
      env->attempt = static_cast<int32_t>(
          std::min<int64_t>(INT32_MAX, int64_t{env->attempt} + redeliveries));
    }
    uint64_t id = next_delivery_id_++;
    inflight_[id] = InflightEntry{d, r.receiver.name(), generation_};
    auto delivery = std::make_unique<AmqpDelivery>(*std::move(env), weak_from_this(), id);
    try {
      r.on_delivery(std::move(delivery));
    } catch (const std::exception&) {
      // The delivery, if still unsettled, is retried by its destructor.
    }
  }

  // ------------------------------------------------------ connecting
  // Each connection is a new Proton connection with new sessions and links.
  // Proton's own reconnect is not used: it binds the old connection object
  // to a new socket and begins its old sessions again, and RabbitMQ refused
  // those ("begin reply to unknown channel") often enough that a request
  // server and its client stayed without their links after a broker restart.
  proton::connection_options ConnectionOptions() const {
    proton::connection_options co;
    co.sasl_enabled(true);
    co.sasl_allow_insecure_mechs(true);
    if (!opts_.sasl_mechanisms.empty()) {
      co.sasl_allowed_mechs(opts_.sasl_mechanisms);
    } else if (!opts_.user.empty() || !opts_.password.empty() ||
               Redact(opts_.urls.front()) != opts_.urls.front()) {
      // With credentials, never fall back to ANONYMOUS (RabbitMQ offers it
      // and maps it to its default user): a wrong password must be refused.
      co.sasl_allowed_mechs("PLAIN");
    }
    if (!opts_.user.empty()) co.user(opts_.user);
    if (!opts_.password.empty()) co.password(opts_.password);
    if (opts_.idle_timeout > absl::ZeroDuration()) co.idle_timeout(ToProton(opts_.idle_timeout));
    if (opts_.use_tls) {
      const auto& t = opts_.tls;
      if (!t.cert_file().empty()) {
        co.ssl_client_options(proton::ssl_client_options(
            proton::ssl_certificate(t.cert_file(), t.key_file()), t.ca_file(),
            proton::ssl::VERIFY_PEER_NAME));
      } else if (!t.ca_file().empty()) {
        co.ssl_client_options(
            proton::ssl_client_options(t.ca_file(), proton::ssl::VERIFY_PEER_NAME));
      } else {
        co.ssl_client_options(proton::ssl_client_options(proton::ssl::VERIFY_PEER_NAME));
      }
    }
    return co;
  }

  // Container thread: one connection attempt to the next URL in turn.
  void Connect() {
    if (closing_ || stop_requested_.load()) return;
    const std::string& url = opts_.urls[connect_attempt_ % opts_.urls.size()];
    ++connect_attempt_;
    try {
      container_.connect(url, ConnectionOptions());
    } catch (const std::exception& e) {
      {
        absl::MutexLock l(&mu_);
        last_error_ = Redact(e.what());
      }
      ScheduleConnect();
    }
  }

  // Container thread: the next attempt after a lost or failed connection
  // (reconnect_backoff.h).
  void ScheduleConnect() {
    if (closing_ || stop_requested_.load()) return;
    const absl::Duration delay = ReconnectDelay(connect_attempt_, opts_.urls.size(),
                                                opts_.reconnect_initial, opts_.reconnect_max,
                                                RandomU64());
    container_.schedule(ToProton(delay), [this] { Connect(); });
  }

  // ------------------------------------------------------ Proton callbacks
  void on_container_start(proton::container&) override { Connect(); }

  void on_connection_open(proton::connection& c) override {
    conn_ = c;
    connect_attempt_ = 0;  // the first URL first after the next loss
    {
      // First: a recovery started below posts its reopen through it.
      absl::MutexLock l(&mu_);
      connected_ = true;
      transport_closed_ = false;
      work_queue_ = &c.work_queue();
    }
    if (ever_connected_) {
      // Every receiver was left with the lost connection (ForgetConnection),
      // and the broker may have lost their queues with its restart
      // (auto-delete, non-durable): provision again and reopen.
      for (auto& [link, r] : receivers_) ScheduleRecovery(r, link);
    }
    ever_connected_ = true;
  }

  // A first connection the broker refuses for good (credentials, TLS) ends
  // Start at once instead of being retried until `connect_timeout`; once
  // connected, the same errors are reconnects like any other. The text names
  // the setting to fix and never the password.
  absl::Status Refusal(const proton::error_condition& e) const {
    std::string what = Redact(e.what());
    if (!opts_.password.empty()) absl::StrReplaceAll({{opts_.password, "***"}}, &what);
    const std::string head = absl::StrCat("amqp transport \"", name_, "\": cannot connect to ",
                                          Redact(opts_.urls.front()), ": ", what);
    if (e.name() == "amqp:unauthorized-access") {
      bool url_credentials = false;
      for (const auto& u : opts_.urls) url_credentials |= Redact(u) != u;
      return absl::PermissionDeniedError(absl::StrCat(
          head, url_credentials && opts_.user.empty()
                    ? "; the broker refused the credentials in `url`; check them"
                    : "; the broker refused `user`/`password`; check them"));
    }
    if (!opts_.use_tls || !absl::StrContains(what, "SSL")) return absl::OkStatus();
    if (absl::StrContains(what, "certificate verify failed")) {
      return absl::UnavailableError(absl::StrCat(
          head, "; TLS: the broker's certificate is not trusted: check that `tls.ca_file` holds "
                "the CA that signed it and that the url's host is in it"));
    }
    return absl::UnavailableError(absl::StrCat(
        head, "; TLS: the broker ended the handshake: if it verifies clients, set "
              "`tls.cert_file`/`tls.key_file` to a certificate signed by a CA it trusts"));
  }

  void on_transport_error(proton::transport& t) override {
    absl::Status refusal = Refusal(t.error());
    absl::MutexLock l(&mu_);
    last_error_ = Redact(t.error().what());
    if (!connected_ && refused_.ok()) refused_ = refusal;
  }

  // The connection is gone (or never came up): forget it, then try again
  // unless the transport is closing or the broker refused the credentials
  // (as a retry would be refused too).
  void on_transport_close(proton::transport&) override {
    ForgetConnection();
    bool refused_for_good;
    {
      absl::MutexLock l(&mu_);
      transport_closed_ = true;
      work_queue_ = nullptr;
      refused_for_good = refused_.code() == absl::StatusCode::kPermissionDenied;
    }
    if (!refused_for_good) ScheduleConnect();
  }

  // Container thread: drops everything that belonged to the connection.
  // Messages without an outcome fail with Unavailable (the caller's retry
  // sends them again); deliveries not settled yet are the broker's to
  // redeliver; receivers are reopened on the next connection.
  void ForgetConnection() {
    ++generation_;
    inflight_.clear();
    std::vector<Done> unconfirmed;
    for (auto& [delivery, tracked] : trackers_) unconfirmed.push_back(std::move(tracked.done));
    trackers_.clear();
    std::vector<Done> unsent;
    for (auto& [address, entry] : senders_) {
      for (auto& out : entry.queue) unsent.push_back(std::move(out.done));
    }
    senders_.clear();
    sender_links_.clear();
    for (auto& [link, r] : receivers_) {
      r.closed = true;
      r.recovering = false;
      r.unsettled = 0;
      r.receiver = proton::receiver();
      r.session = proton::session();
    }
    conn_ = proton::connection();
    for (auto& d : unconfirmed) {
      if (d) d(absl::UnavailableError("amqp: connection lost before the broker confirmed"));
    }
    for (auto& d : unsent) {
      if (d) d(absl::UnavailableError("amqp: connection lost before the message was sent"));
    }
  }

  void on_connection_error(proton::connection& c) override {
    absl::MutexLock l(&mu_);
    last_error_ = Redact(c.error().what());
  }

  // The entry for this exact link (a reopened link reuses the name).
  ReceiverEntry* EntryOf(const proton::receiver& r) {
    auto it = receivers_.find(r.name());
    if (it == receivers_.end() || !(it->second.receiver == r)) return nullptr;
    return &it->second;
  }

  void on_receiver_open(proton::receiver& r) override {
    auto it = receivers_.find(r.name());
    if (it == receivers_.end()) return;
    if (!(it->second.receiver == r)) {
      r.close();  // An older link of this name (reopened since): not ours any more.
      return;
    }
    if (it->second.verify_after_open) VerifyQueue(it->second, r.name());
    GiveCredit(it->second);
    if (it->second.opened) {
      it->second.opened->set_value(absl::OkStatus());
      it->second.opened.reset();
    }
  }

  void on_receiver_error(proton::receiver& r) override {
    ReceiverEntry* e = EntryOf(r);
    if (e == nullptr) return;
    if (e->opened) {
      e->opened->set_value(LinkError(r.error(), absl::StrCat("attach ", e->address)));
      e->opened.reset();
      return;
    }
    e->closed = true;
    ScheduleRecovery(*e, r.name());
  }

  void on_receiver_close(proton::receiver& r) override {
    ReceiverEntry* e = EntryOf(r);
    if (e == nullptr) return;
    if (e->opened) {
      e->opened->set_value(absl::UnavailableError(absl::StrCat("amqp: broker closed ", e->address)));
      e->opened.reset();
      return;
    }
    e->closed = true;
    ScheduleRecovery(*e, r.name());
  }

  void on_sender_open(proton::sender&) override {}

  void on_sendable(proton::sender& s) override {
    auto name_it = sender_links_.find(s.name());
    if (name_it == sender_links_.end()) return;
    auto it = senders_.find(name_it->second);
    if (it != senders_.end()) Flush(it->second);
  }

  void on_sender_error(proton::sender& s) override {
    DropSender(s, LinkError(s.error(), "send"));
  }

  void on_sender_close(proton::sender& s) override {
    DropSender(s, absl::UnavailableError("amqp: broker closed the sending link"));
  }

  void on_tracker_accept(proton::tracker& t) override {
    if (Done done = TakeTracker(t)) done(absl::OkStatus());
  }

  void on_tracker_reject(proton::tracker& t) override {
    if (Done done = TakeTracker(t)) {
      done(absl::ResourceExhaustedError(
          "amqp: broker rejected the message (queue limit or policy); retry later"));
    }
  }

  void on_tracker_release(proton::tracker& t) override {
    if (Done done = TakeTracker(t)) {
      done(absl::UnavailableError("amqp: broker released the message; retry"));
    }
  }

  void on_tracker_settle(proton::tracker& t) override {
    // Also after an outcome (accept comes first, then settle): nothing is
    // built for it then.
    if (Done done = TakeTracker(t)) {
      done(absl::UnavailableError("amqp: broker settled without an outcome"));
    }
  }

  void on_message(proton::delivery& d, proton::message& m) override {
    ReceiverEntry* entry = EntryOf(d.receiver());
    if (entry == nullptr || entry->closed) {
      d.release();
      if (entry == nullptr) d.receiver().close();  // stale link: stop its flow
      return;
    }
    ReceiverEntry& r = *entry;
    ++r.unsettled;
    std::optional<uint64_t> wire_bytes;
    absl::StatusOr<Envelope> env = MessageToEnvelope(m, &wire_bytes);
    if (absl::Status size = CheckSize(m, wire_bytes, r); !size.ok()) {
      RejectOversized(d, m, r, size, std::move(env));
      return;
    }
    switch (r.kind) {
      case Kind::kServe:
        OnServe(d, m, std::move(env), r);
        break;
      case Kind::kReplies:
        OnReplies(d, m, std::move(env), r);
        break;
      case Kind::kInbox:
        OnInbox(d, std::move(env), r);
        break;
      case Kind::kConsume:
        OnConsume(d, m, std::move(env), r);
        break;
    }
  }

  void on_error(const proton::error_condition& e) override {
    absl::MutexLock l(&mu_);
    last_error_ = Redact(e.what());
  }

  // Immutable after construction.
  const std::string name_;
  const Options opts_;
  const std::unique_ptr<AddressScheme> scheme_;
  const std::shared_ptr<ManagementClient> mgmt_;
  Clock* const clock_;
  Executor* const executor_;
  const std::string source_;
  std::string reply_address_;  // set once in OpenReplyQueue, before any Request

  proton::container container_;
  std::thread thread_;
  std::atomic<std::thread::id> container_thread_{};
  std::atomic<bool> stop_requested_{false};

  absl::Mutex mu_;
  bool connected_ ABSL_GUARDED_BY(mu_) = false;
  bool transport_closed_ ABSL_GUARDED_BY(mu_) = false;
  bool run_exited_ ABSL_GUARDED_BY(mu_) = false;
  // The open connection's work queue: how other threads reach the
  // container thread; null while there is no connection.
  proton::work_queue* work_queue_ ABSL_GUARDED_BY(mu_) = nullptr;
  std::string last_error_ ABSL_GUARDED_BY(mu_);
  // Why the broker refused the first connection for good (see Refusal).
  absl::Status refused_ ABSL_GUARDED_BY(mu_);

  // Queues seen with a server recently (real time: broker state, not the
  // injected clock).
  static constexpr absl::Duration kServedCacheTtl = absl::Seconds(1);
  absl::Mutex served_mu_;
  std::map<std::string, absl::Time> served_until_ ABSL_GUARDED_BY(served_mu_);
  BlockingWorker worker_;

  absl::Mutex req_mu_;
  std::map<std::string, PendingRequest> requests_ ABSL_GUARDED_BY(req_mu_);

  std::atomic<int64_t> invalid_messages_{0};

  // Container thread only: where CheckSize encodes a received message it
  // could not count.
  static constexpr size_t kKeptBufferBytes = 1 << 20;
  std::vector<char> size_buffer_;
  // Container thread only: the encoder of sent messages, and buffers of
  // sent messages kept for the next sends.
  EnvelopeEncoder encoder_;
  static constexpr size_t kSpareBuffers = 16;
  std::vector<std::vector<char>> spare_buffers_;

  // Container thread only.
  proton::connection conn_;  // the open connection; null while there is none
  bool ever_connected_ = false;
  uint64_t connect_attempt_ = 0;  // attempts since the last open connection
  bool closing_ = false;
  uint64_t generation_ = 0;
  uint64_t next_delivery_id_ = 1;
  uint64_t use_counter_ = 0;
  std::map<std::string, SenderEntry> senders_;       // by address
  std::map<std::string, std::string> sender_links_;  // link name -> address
  // A sent message whose outcome the broker has not given yet.
  struct Tracked {
    pn_link_t* link;
    SenderEntry* sender;  // its entry in senders_, erased only with its trackers or when idle
    Done done;
  };
  absl::flat_hash_map<pn_delivery_t*, Tracked> trackers_;
  std::map<std::string, ReceiverEntry> receivers_;   // by link name
  std::map<uint64_t, InflightEntry> inflight_;
};

void AmqpDelivery::Settle(Action action, absl::Duration delay, absl::Status reason) {
  if (auto core = core_.lock()) {
    core->SettleFromAnyThread(id_, action, delay, std::move(reason), envelope_);
  }
}

class AmqpSubscription final : public Subscription {
 public:
  AmqpSubscription(std::weak_ptr<Core> core, std::string link)
      : core_(std::move(core)), link_(std::move(link)) {}
  ~AmqpSubscription() override {
    if (auto core = core_.lock()) core->CloseReceiver(link_);
  }

 private:
  std::weak_ptr<Core> core_;
  std::string link_;
};

class AmqpInbox final : public ReplyInbox {
 public:
  AmqpInbox(std::weak_ptr<Core> core, std::string link, std::string address)
      : core_(std::move(core)), link_(std::move(link)), address_(std::move(address)) {}
  ~AmqpInbox() override {
    if (auto core = core_.lock()) core->CloseReceiver(link_);
  }
  const std::string& address() const override { return address_; }

 private:
  std::weak_ptr<Core> core_;
  std::string link_;
  std::string address_;
};

class AmqpTransportImpl final : public AmqpTransport {
 public:
  AmqpTransportImpl(std::string name, std::shared_ptr<Core> core)
      : name_(std::move(name)), core_(std::move(core)), features_(AmqpFeatures()) {}
  ~AmqpTransportImpl() override { core_->Shutdown(); }

  AmqpTransportStats stats() const override {
    AmqpTransportStats out;
    out.bad_input = core_->invalid_messages();
    return out;
  }

  std::string_view name() const override { return name_; }
  std::string_view type() const override { return "amqp"; }
  const Features& features() const override { return features_; }

  void Request(Envelope request, ReplyCallback on_reply) override {
    core_->Request(std::move(request), std::move(on_reply));
  }
  absl::StatusOr<std::unique_ptr<Subscription>> Serve(const Endpoint& endpoint,
                                                      RequestHandler handler) override {
    auto link = core_->Serve(endpoint, std::move(handler));
    if (!link.ok()) return link.status();
    return std::make_unique<AmqpSubscription>(core_, *std::move(link));
  }
  void Enqueue(Envelope command, DoneCallback on_accepted) override {
    core_->Enqueue(std::move(command), std::move(on_accepted));
  }
  absl::StatusOr<std::unique_ptr<Subscription>> Consume(const Endpoint& endpoint,
                                                        DeliveryHandler handler) override {
    auto link = core_->Consume(endpoint, std::move(handler));
    if (!link.ok()) return link.status();
    return std::make_unique<AmqpSubscription>(core_, *std::move(link));
  }
  void Publish(Envelope event, DoneCallback on_published) override {
    core_->Publish(std::move(event), std::move(on_published));
  }
  absl::StatusOr<std::unique_ptr<Subscription>> Subscribe(const Endpoint& endpoint,
                                                          DeliveryHandler handler) override {
    auto link = core_->Subscribe(endpoint, std::move(handler));
    if (!link.ok()) return link.status();
    return std::make_unique<AmqpSubscription>(core_, *std::move(link));
  }
  absl::StatusOr<std::unique_ptr<ReplyInbox>> OpenInbox(ReplyHandler on_reply) override {
    auto r = core_->OpenInbox(std::move(on_reply));
    if (!r.ok()) return r.status();
    return std::make_unique<AmqpInbox>(core_, r->first, r->second);
  }
  void SendReply(const std::string& reply_to, Envelope reply, DoneCallback on_sent) override {
    core_->SendReply(reply_to, std::move(reply), std::move(on_sent));
  }
  absl::StatusOr<int64_t> QueueDepth(const Endpoint& endpoint) override {
    return core_->QueueDepth(endpoint);
  }

 private:
  std::string name_;
  std::shared_ptr<Core> core_;
  Features features_;
};

}  // namespace

Features AmqpFeatures() {
  Features f;
  f.durable = true;
  f.fan_out_to_groups = true;
  f.native_request_reply = false;
  f.ordering_per_key = false;
  f.broker_dedup = false;
  f.redelivery_count = true;
  f.reply_routing = true;
  f.cross_process = true;
  f.delayed_redelivery = true;
  return f;
}

absl::StatusOr<std::unique_ptr<Transport>> MakeAmqpTransport(std::string_view name,
                                                             const v1::TransportConfig& config,
                                                             const TransportEnv& env) {
  auto opts = ParseOptions(config.amqp());
  if (!opts.ok()) return opts.status();
  auto scheme = MakeAddressScheme(config.amqp().profile(), config.amqp().address_prefix());
  if (!scheme.ok()) return scheme.status();
  std::shared_ptr<ManagementClient> mgmt;
  if (!opts->management_url.empty()) {
    auto m = ManagementClient::Create(opts->management_url, opts->user.empty() ? "guest" : opts->user,
                                      opts->password.empty() ? "guest" : opts->password);
    if (!m.ok()) return m.status();
    mgmt = *std::move(m);
  }
  auto core = std::make_shared<Core>(std::string(name), *std::move(opts), *std::move(scheme),
                                     std::move(mgmt), env);
  if (auto s = core->Start(); !s.ok()) {
    core->Shutdown();
    return s;
  }
  if (auto s = core->OpenReplyQueue(); !s.ok()) {
    core->Shutdown();
    return s;
  }
  return std::make_unique<AmqpTransportImpl>(std::string(name), std::move(core));
}

}  // namespace switchboard::amqp
