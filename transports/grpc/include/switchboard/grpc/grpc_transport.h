// grpc_transport.h: the gRPC transport (type "grpc").
//
// Every operation travels on one generic service, switchboard.v1.Switchboard
// (proto/switchboard/v1/transport.proto), so one server carries all of a
// node's operations and any gRPC client can call them:
//   - request: a unary Call to the target of the operation; the envelope's
//     deadline becomes the gRPC deadline; status codes map 1:1.
//   - command: a unary Enqueue that returns once the receiving node has put
//     the command into its local queue. Not durable: a crash of the receiving
//     node loses what it has queued. Retry and dead-letter happen there.
//   - event: the target of the event type is its hub; subscriber nodes open a
//     server-streaming Subscribe(type, group) to the hub, which writes each
//     event to one stream per group (at-most-once on the stream, then
//     at-least-once inside the subscriber node). Or, with
//     GrpcOptions.event_targets, the publisher pushes one copy per group.
//   - replies to commands: the inbox address is this node's advertised
//     address plus an inbox id; SendReply is a unary Reply call.
// Attributes also travel as gRPC metadata (ce-*, traceparent, tracestate).
// The README next to this header has the option table and the wire mapping.
//
// Targets: an operation "pkg.Service/Method" (or event type "pkg.Type") is
// sent to targets["pkg.Service/Method"], else targets["pkg.Service"] (the
// event type's package for events), else targets["*"], else this node's own
// server when it listens. Channels are cached per target.
//
//   transports: { rpc: { type: grpc, listen: "127.0.0.1:0",
//                        targets: { "*": "127.0.0.1:50051" } } }
//
// Threads: gRPC's callback API; no thread per call. Handlers and callbacks
// run on gRPC's callback threads (commands and events on the thread that
// hands them to the local queue, or the clock's timer thread for a delayed
// redelivery) and MUST NOT block.
//
// Thread safety: every method may be called from any thread. Destroy the
// transport from a thread of your own, not from inside one of its callbacks:
// closing cancels the calls in flight and waits (up to 2 s) for their
// callbacks to return.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "switchboard/transport.h"

namespace switchboard::grpc {

// Counters (monotonic): what went wrong on the wire, and how sends travelled.
struct GrpcStats {
  // Requests whose body was not the expected message or not a valid
  // envelope (answered INVALID_ARGUMENT), Send frames and batches that did
  // not read, ack batches from a server that did not read (the stream is
  // ended), and events from a hub that did not parse (dropped).
  uint64_t malformed = 0;
  // Calls whose request message never reached the service: larger than
  // `max_message_bytes` (gRPC refuses it before decoding and answers
  // RESOURCE_EXHAUSTED itself), or the client half-closed or cancelled
  // without one.
  uint64_t unreadable = 0;
  // Event copies not delivered: every stream of a group was full (hub), or
  // the local group queue refused it (subscriber).
  uint64_t dropped_events = 0;
  // Commands, events and replies sent as frames on a Send stream, and those
  // sent as unary calls (see GrpcOptions.unary_sends).
  uint64_t streamed_sends = 0;
  uint64_t unary_sends = 0;
  // Times the server side of a Send stream stopped reading because 4,096
  // frames it had read were waiting for their acks to be written (a client
  // that sends and does not read its acks); it reads again once half are.
  uint64_t send_read_pauses = 0;
};

// The concrete transport, for what the generic SPI does not expose.
class GrpcTransport : public Transport {
 public:
  [[nodiscard]] virtual GrpcStats stats() const = 0;
  // The port the server listens on (the one the OS chose for port 0), or 0
  // when this transport does not listen.
  [[nodiscard]] virtual int bound_port() const = 0;
  // "host:port" other nodes use to reach this one ("" when not listening).
  [[nodiscard]] virtual std::string advertised_address() const = 0;
  // Adds or replaces a target (key: operation, service, package or "*")
  // after creation, for deployments that learn addresses at run time.
  virtual void SetTarget(std::string key, std::string address) = 0;
};

// Creates the transport from `config.grpc()` and, when `listen` is set,
// starts its server. InvalidArgument names the bad option (unreadable TLS
// files, bad addresses); Unavailable when the listen address cannot be bound.
[[nodiscard]] absl::StatusOr<std::unique_ptr<Transport>> MakeGrpcTransport(
    std::string_view name, const v1::TransportConfig& config, const TransportEnv& env);

// The same, returning the concrete type.
[[nodiscard]] absl::StatusOr<std::unique_ptr<GrpcTransport>> CreateGrpcTransport(
    std::string_view name, const v1::TransportConfig& config, const TransportEnv& env);

// Features the gRPC transport declares.
[[nodiscard]] Features GrpcFeatures();

// The full gRPC method names of the service ("/switchboard.v1.Switchboard/Call").
inline constexpr std::string_view kMethodCall = "/switchboard.v1.Switchboard/Call";
inline constexpr std::string_view kMethodEnqueue = "/switchboard.v1.Switchboard/Enqueue";
inline constexpr std::string_view kMethodPublish = "/switchboard.v1.Switchboard/Publish";
inline constexpr std::string_view kMethodSubscribe = "/switchboard.v1.Switchboard/Subscribe";
inline constexpr std::string_view kMethodReply = "/switchboard.v1.Switchboard/Reply";
inline constexpr std::string_view kMethodSend = "/switchboard.v1.Switchboard/Send";

}  // namespace switchboard::grpc
