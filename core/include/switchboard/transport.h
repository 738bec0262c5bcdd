// transport.h: the transport SPI.
//
// A transport moves envelopes; the core builds the three styles on these
// primitives. Implementations live in transports/<name>/ (inproc lives in
// core/) and register a factory by type name (transport_registry.h). Vendor
// SDK types MUST NOT appear in a transport's public header.
//
// Every transport runs tests/conformance, which checks each MUST below.
//
// Addresses. The core passes operation names ("orders.v1.Orders/PlaceOrder",
// "orders.v1.OrderPlaced") and group names; a transport derives its native
// names (subjects, queues, streams) from them, deterministically, so that
// separate processes agree. `Endpoint::address` overrides the derived name.
//
// Threads. Handlers passed to Serve/Consume/Subscribe run on a transport
// thread; they MUST NOT block for long: the core hands work to its executor
// and settles later, from any thread.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "switchboard/envelope.h"

namespace switchboard {

class Clock;
class Executor;

namespace v1 {
class TransportConfig;
}

// What a transport can promise. The conformance suite skips, by name, the
// cases a transport does not claim; the core refuses at config load a
// binding that needs a missing feature.
struct Features {
  // Commands and events are kept while no consumer is online, and survive a
  // restart of the sending process.
  bool durable = false;
  // Each subscriber group of an event gets its own copy; one consumer per
  // group receives it.
  bool fan_out_to_groups = true;
  // Request/reply is native (no emulation over queues).
  bool native_request_reply = true;
  // Messages with the same subject/key are delivered in order to one group.
  bool ordering_per_key = false;
  // The broker drops a repeated message id (idempotency key) itself.
  bool broker_dedup = false;
  // Redeliveries carry an accurate attempt number.
  bool redelivery_count = true;
  // Replies can be routed to a reply address (command with reply: true).
  bool reply_routing = true;
  // Endpoints are reachable from other processes.
  bool cross_process = false;
  // Retry(delay) is honoured (else redelivery is immediate or after a
  // broker-defined interval).
  bool delayed_redelivery = true;
};

struct Endpoint {
  // The operation (or event type) name.
  std::string operation;
  // Consumer group. For requests and commands the core uses one group per
  // operation; for events, the subscriber group.
  std::string group;
  // Native address override from config (empty = derive from operation).
  std::string address;
  // Deliveries handed to this subscription and not yet settled, at most.
  int max_in_flight = 256;
};

// One received command or event. The receiver MUST settle it exactly once
// with Ack, Retry or DeadLetter, from any thread. Destroying an unsettled
// Delivery is the same as Retry(0): the message is redelivered, never lost.
class Delivery {
 public:
  // Gives the envelope's buffers to the spare envelopes (envelope_pool.h).
  virtual ~Delivery();
  const Envelope& envelope() const { return envelope_; }
  Envelope& mutable_envelope() { return envelope_; }

  // Done: the message is removed.
  virtual void Ack() = 0;
  // Redeliver to the group (possibly another consumer) after about `delay`,
  // with attempt + 1.
  virtual void Retry(absl::Duration delay) = 0;
  // Move the message, with `reason`, to the dead-letter address of its
  // operation (see DeadLetterAddress) and remove it. The dead-lettered
  // envelope carries the reason in extensions["deadletterreason"] and the
  // code in extensions["deadlettercode"].
  virtual void DeadLetter(const absl::Status& reason) = 0;

 protected:
  explicit Delivery(Envelope env) : envelope_(std::move(env)) {}
  Envelope envelope_;
};

// An active server, consumer or subscription. Destroying it stops delivery
// and waits until every handler call it started has returned (settlements
// after that are ignored: the message is redelivered elsewhere).
class Subscription {
 public:
  virtual ~Subscription() = default;
};

// Where replies to this node arrive (a NATS inbox, an AMQP reply queue, ...).
class ReplyInbox {
 public:
  virtual ~ReplyInbox() = default;
  // The address callers put in Envelope::reply_to.
  virtual const std::string& address() const = 0;
};

// The reply (or error) is passed by rvalue reference: each layer that wraps
// a callback hands it on without moving it.
using ReplyCallback = absl::AnyInvocable<void(absl::StatusOr<Envelope>&&) &&>;
using DoneCallback = absl::AnyInvocable<void(absl::Status) &&>;
// Serves one request. The transport passes a `reply` callback that MUST be
// called exactly once (from any thread) with the reply envelope or an error.
using RequestHandler = std::function<void(Envelope request, ReplyCallback reply)>;
using DeliveryHandler = std::function<void(std::unique_ptr<Delivery> delivery)>;
using ReplyHandler = std::function<void(Envelope reply)>;

// The dead-letter operation name of `operation`: "<operation>.dlq". It is
// consumed like any command queue.
[[nodiscard]] std::string DeadLetterAddress(std::string_view operation);

class Transport {
 public:
  virtual ~Transport() = default;

  // The configured name ("bus") and type ("nats").
  virtual std::string_view name() const = 0;
  virtual std::string_view type() const = 0;
  virtual const Features& features() const = 0;

  // ---- request / reply ----
  // Sends `request` (envelope.type names the operation) to one server of the
  // operation and calls `on_reply` exactly once with:
  //   - the reply envelope; a handler error travels in Envelope::status and
  //     MUST arrive with its code and message unchanged;
  //   - Unavailable, promptly (not at the deadline), when no server serves the
  //     operation;
  //   - DeadlineExceeded at request.deadline if nothing came back by then.
  virtual void Request(Envelope request, ReplyCallback on_reply) = 0;
  // Serves requests of `endpoint.operation`. Several servers of one operation
  // share the load (each request goes to exactly one).
  virtual absl::StatusOr<std::unique_ptr<Subscription>> Serve(const Endpoint& endpoint,
                                                              RequestHandler handler) = 0;

  // ---- commands ----
  // Queues `command` for the group consuming envelope.type. `on_accepted` is
  // called once the transport holds the command (durably where
  // features().durable), with OK, or with an error (ResourceExhausted when a
  // bound is hit, Unavailable when the transport cannot take it).
  virtual void Enqueue(Envelope command, DoneCallback on_accepted) = 0;
  // Consumes the commands of `endpoint.operation`: each command goes to
  // exactly one consumer among all consumers of the endpoint (competing
  // consumers), with Envelope::attempt = the delivery number.
  virtual absl::StatusOr<std::unique_ptr<Subscription>> Consume(const Endpoint& endpoint,
                                                                DeliveryHandler handler) = 0;

  // ---- events ----
  // Publishes `event` to every subscriber group of envelope.type.
  // `on_published` as for Enqueue.
  virtual void Publish(Envelope event, DoneCallback on_published) = 0;
  // Subscribes group `endpoint.group` to events of `endpoint.operation`. Each
  // group gets every event published after the group first subscribed
  // (earlier ones too where durable); within a group each event goes to one
  // subscriber.
  virtual absl::StatusOr<std::unique_ptr<Subscription>> Subscribe(const Endpoint& endpoint,
                                                                  DeliveryHandler handler) = 0;

  // ---- replies to commands ----
  // Opens this node's reply inbox; `on_reply` gets every envelope sent to it.
  virtual absl::StatusOr<std::unique_ptr<ReplyInbox>> OpenInbox(ReplyHandler on_reply) = 0;
  // Sends a reply to an inbox address (possibly of another process).
  virtual void SendReply(const std::string& reply_to, Envelope reply, DoneCallback on_sent) = 0;

  // Optional: messages waiting in the queue of an endpoint, if the transport
  // can tell (for metrics); Unimplemented otherwise.
  virtual absl::StatusOr<int64_t> QueueDepth(const Endpoint& endpoint) {
    (void)endpoint;
    return absl::UnimplementedError("queue depth not reported by this transport");
  }
};

// What a transport factory gets besides its config.
struct TransportEnv {
  Clock* clock = nullptr;
  // For transport work that may block (never for handler code).
  Executor* executor = nullptr;
  // CloudEvents source of this node.
  std::string source;
};

using TransportFactory = std::function<absl::StatusOr<std::unique_ptr<Transport>>(
    std::string_view name, const v1::TransportConfig& config, const TransportEnv& env)>;

}  // namespace switchboard
