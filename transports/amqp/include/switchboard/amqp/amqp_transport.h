// amqp_transport.h: the AMQP 1.0 transport (type "amqp") on Qpid Proton C++.
//
// Requests travel to a request queue with reply-to = a reply queue this
// transport names itself and a correlation id; commands go to a durable
// queue per operation (durable terminus, durable messages) and are settled
// accept / requeue-a-copy / dead-letter; events are published to a topic
// exchange and every subscriber group consumes its own durable queue, which
// the transport provisions through the broker's management API. Broker
// address conventions sit behind a profile ("rabbitmq"); see
// transports/amqp/README.md for the options, the wire mapping and the
// RabbitMQ topology.
//
//   v1::TransportConfig cfg;
//   cfg.set_type("amqp");
//   cfg.mutable_amqp()->set_url("amqp://guest:guest@127.0.0.1:5672");
//   cfg.mutable_amqp()->set_management_url("http://guest:guest@127.0.0.1:15672");
//   auto transport = amqp::MakeAmqpTransport("mq", cfg, env);
//
// Threads. One Proton container thread per transport owns every Proton
// object; all public methods may be called from any thread (work is handed
// to the container through its connection's work queue). Handlers and
// callbacks (RequestHandler, DeliveryHandler, ReplyHandler, ReplyCallback,
// DoneCallback) run on that container thread and MUST NOT block: post work to
// an executor. Exceptions: a request's DeadlineExceeded is reported on the
// env clock's timer thread, a request's "no server" Unavailable on the
// transport's management-API thread, and a failure to hand work to a stopped
// transport on the calling thread. Delivery settlement and request replies
// may come from any thread; they are marshalled back to the container
// thread. Serve, Subscribe and OpenInbox block the caller briefly (an HTTP
// call to the management API, then the broker's attach, each bounded).
//
// At least once: a command or event may arrive again after a reconnect or a
// consumer crash (its attempt is then raised); deduplicate with the
// idempotency key.
//
// Shutdown. The destructor closes links and the connection with a bounded
// wait (AmqpOptions.close_timeout); a broker that does not answer the close
// cannot hold the process.
#pragma once

#include <cstdint>
#include <memory>
#include <string_view>

#include "absl/status/statusor.h"
#include "switchboard/transport.h"

namespace switchboard::amqp {

// Counters of one transport instance; monotonic.
struct AmqpTransportStats {
  // Received messages that were not valid envelopes, or larger than
  // `max_message_bytes` (encoded size). Requests get an error reply
  // (InvalidArgument, ResourceExhausted when oversized); commands and events
  // are dead-lettered with the reason (an oversized one without its body).
  int64_t bad_input = 0;
};

// The concrete transport, for what the generic SPI does not expose.
class AmqpTransport : public Transport {
 public:
  [[nodiscard]] virtual AmqpTransportStats stats() const = 0;
};

// Creates an AMQP transport (dynamic type AmqpTransport) and opens its
// connection (bounded by AmqpOptions.connect_timeout). InvalidArgument for a bad option (the
// message names it), Unavailable when the broker cannot be reached.
[[nodiscard]] absl::StatusOr<std::unique_ptr<Transport>> MakeAmqpTransport(
    std::string_view name, const v1::TransportConfig& config, const TransportEnv& env);

// Features the AMQP transport declares (rabbitmq profile).
[[nodiscard]] Features AmqpFeatures();

}  // namespace switchboard::amqp
