// amqp_wire.h: the Envelope <-> AMQP 1.0 message mapping (CloudEvents AMQP
// binding).
//
// Structured mode (the transport's default): the body is one data section
// holding the envelope as a CloudEvent in the protobuf format
// (switchboard/internal/cloudevent_wire.h), content-type
// application/cloudevents+protobuf; message-id, correlation-id, reply-to
// and creation-time repeat what brokers and tools read. No application
// properties.
//
// Binary mode:
//
// Properties section: message-id = id, correlation-id, reply-to,
// content-type = datacontenttype, creation-time = time. Every other attribute
// travels in application-properties as `cloudEvents_<name>` (native AMQP
// types: timestamp for time/expirytime, long for attempt/statuscode), plus
// the plain W3C `traceparent` / `tracestate`; id, time, correlation id and
// reply-to are in both. The idempotency key and the attempt are left out
// when a reader restores them (`WireOmitsIdempotencyKey`, `WireOmitsAttempt`
// in envelope.h). The payload is one data section. Readers accept the native
// types and the canonical strings, and `cloudEvents_datacontenttype` too.
//
// Thread safety: pure functions, callable from any thread.
#pragma once

#include <cstdint>
#include <optional>

#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "proton/message.h"
#include "proton/message.hpp"
#include "switchboard/envelope.h"
#include "switchboard/internal/cloudevent_wire.h"

namespace switchboard::amqp {

inline constexpr std::string_view kCePrefix = "cloudEvents_";

using internal::ContentMode;

// Encodes envelopes as AMQP messages (the mapping above) with Proton's C
// codec. The transport sends the bytes itself: a send of a proton::message
// turns its application properties into a std::map of proton::scalar
// (four allocations per property) on every encode, and a new message
// allocates its sections; the encoder keeps one message and reuses it.
//
// Thread safety: not thread-safe; one per thread (the transport has one on
// its container thread).
class EnvelopeEncoder {
 public:
  EnvelopeEncoder();
  ~EnvelopeEncoder();
  EnvelopeEncoder(const EnvelopeEncoder&) = delete;
  EnvelopeEncoder& operator=(const EnvelopeEncoder&) = delete;

  // Replaces `out` with the encoded message. `durable` sets the header's
  // durable flag (commands, events and their dead letters). A non-empty
  // `correlation_id` is the message's correlation-id instead of the
  // envelope's (a reply answers the request's message id). Internal (never
  // expected) when Proton's encoder fails.
  [[nodiscard]] absl::Status Encode(const Envelope& env, bool durable,
                                    std::string_view correlation_id, ContentMode mode,
                                    std::vector<char>* out);

 private:
  // pn_message_encode into `out`, growing it until the message fits.
  absl::Status EncodeMessage(const Envelope& env, std::vector<char>* out);

  pn_message_t* msg_;
  std::string body_;  // a structured body, its buffer kept
};

// The content mode a received message is in (its content-type).
[[nodiscard]] ContentMode ContentModeOf(const proton::message& msg);

// `env` as a proton::message (replacing `msg`), through EnvelopeEncoder: for
// tests and tools that want the message rather than its bytes.
[[nodiscard]] absl::Status EnvelopeToMessage(const Envelope& env, bool durable,
                                             proton::message* msg,
                                             ContentMode mode = ContentMode::kBinary);

// Reads an envelope in either mode. InvalidArgument naming the attribute when
// a required attribute is missing or an attribute has the wrong type, or
// naming the format of a structured message that is not protobuf; never
// throws.
//
// With `wire_bytes`, a valid envelope also gets the message's size as
// encoded, counted from its parts (the body, every properties-section field,
// every application property, mapped or not) without encoding it again:
// within a few percent of proton's encoding (tested). It stays unset when
// the envelope is invalid or the message has annotations, which are not
// counted; the receiver then encodes the message to measure it.
[[nodiscard]] absl::StatusOr<Envelope> MessageToEnvelope(
    const proton::message& msg, std::optional<uint64_t>* wire_bytes = nullptr);

// Adds the dead-letter reason to a raw message that could not be mapped (so
// nothing is lost, even when it is not a valid envelope).
void AnnotateDeadLetter(const absl::Status& reason, proton::message* msg);

// Best-effort message id of a raw message, for logs and counters.
[[nodiscard]] std::string MessageIdOf(const proton::message& msg);

}  // namespace switchboard::amqp
