// nats_transport.h: the NATS transport (type "nats").
//
// Defines `MakeNatsTransport` (a `TransportFactory`), the features it
// declares, and `NatsTransport`, the concrete interface with its counters.
//
//   transports:
//     bus: { type: nats, url: nats://127.0.0.1:4222, jetstream: true }
//
// Styles: `request` is NATS request/reply (servers in a queue group; no
// responders fails fast with Unavailable). With `jetstream: true`, `command`
// is a WorkQueue stream per operation with one shared durable pull consumer,
// and `event` is a stream per event type with one durable pull consumer per
// subscriber group; publishes carry `Nats-Msg-Id` (idempotency key, else
// message id) so the broker drops duplicates. With `jetstream: false` both are
// core NATS queue groups: nothing is kept while no consumer listens. The
// envelope travels in headers per the CloudEvents NATS binding (binary mode);
// the mapping, names and options are in transports/nats/README.md.
//
// Thread safety: every method may be called from any thread. Threads:
// request replies and Enqueue/Publish acceptance callbacks run on cnats
// delivery threads (or the clock's timer thread for a request deadline);
// Serve handlers run on the subscription's cnats delivery thread;
// Consume/Subscribe handlers run on one fetch thread per subscription
// (JetStream) or the subscription's delivery thread (core NATS). Settlement
// (Ack/Retry/DeadLetter) and reply callbacks may be called from any thread.
#pragma once

#include <cstdint>
#include <memory>
#include <string_view>

#include "absl/status/statusor.h"
#include "switchboard/transport.h"

namespace switchboard::nats {

// Counters of one transport instance; monotonic.
struct NatsTransportStats {
  // Messages from the wire whose envelope did not decode (missing or bad
  // ce-* headers), or larger than `max_message_bytes` (payload + headers).
  // Requests get an InvalidArgument (ResourceExhausted when oversized)
  // reply; commands and events are dead-lettered with the reason (an
  // oversized one without its payload).
  int64_t bad_input = 0;
  // Messages this transport moved to a dead-letter subject (bad input and
  // Delivery::DeadLetter).
  int64_t dead_lettered = 0;
  // Publishes (requests, replies, enqueues, events) the server or the client
  // library refused.
  int64_t publish_errors = 0;
  // Pull requests (JetStream Fetch) that failed other than by timing out.
  int64_t fetch_errors = 0;
  // Asynchronous connection errors reported by the client (slow consumer...).
  int64_t async_errors = 0;
};

class NatsTransport : public Transport {
 public:
  [[nodiscard]] virtual NatsTransportStats stats() const = 0;
};

// Connects (failing with Unavailable naming the URL, credentials redacted),
// checks JetStream when `jetstream: true`, and returns a ready transport whose
// dynamic type is NatsTransport.
[[nodiscard]] absl::StatusOr<std::unique_ptr<Transport>> MakeNatsTransport(
    std::string_view name, const v1::TransportConfig& config, const TransportEnv& env);

// Features declared for `jetstream: true` / `false`.
[[nodiscard]] Features NatsFeatures(bool jetstream);

}  // namespace switchboard::nats
