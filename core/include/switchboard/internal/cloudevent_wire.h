// cloudevent_wire.h: an envelope as one CloudEvent in the CloudEvents
// protobuf format (`io.cloudevents.v1.CloudEvent`, media type
// application/cloudevents+protobuf), for a transport's structured content
// mode: the whole envelope is the body, no attribute travels as a header.
//
// Written straight from the envelope and read straight into one, without a
// protobuf message in between; the bytes are those of protobuf's
// deterministic serialization of the same CloudEvent (map entries sorted by
// key), and the reader accepts what protobuf's parser accepts (tested
// against both on random and damaged bytes).
//
//   std::string body = internal::EnvelopeToCloudEvent(env);
//   absl::Status s = internal::ReadCloudEventWire(body, &env);
//
// The mapping:
//
// - id, source, specversion and type are the CloudEvent's own fields.
// - Every other attribute is an entry of `attributes`, typed as CloudEvents
//   types it: `time` and `expirytime` (the deadline) Timestamp; `attempt`
//   and `statuscode` Integer; the rest String, extensions included. What a
//   reader restores is left out, as in every wire form (envelope.h): the
//   idempotency key when it is the id, the first attempt, an OK status.
// - The data is `binary_data`, or `text_data` when the content type is
//   text (`text/*`, `application/json`) and the data is UTF-8. A Switchboard
//   payload is bytes whose message type the envelope does not name, so a
//   protobuf payload is binary data with `datacontenttype`
//   application/protobuf rather than a `proto_data` Any; a reader takes all
//   three, `proto_data` as its value's bytes.
// - Readers also take an attribute in another form a sender may choose: a
//   URI or URI-reference for a String, the canonical string for an Integer
//   or a Timestamp. An extension of a non-string type becomes its canonical
//   string (Boolean "true"/"false", Integer decimal, Binary base64,
//   Timestamp RFC 3339).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "switchboard/envelope.h"

namespace switchboard::internal {

// The media type of the format, the `Content-Type` of a structured message.
inline constexpr std::string_view kCloudEventsProtobuf = "application/cloudevents+protobuf";

// A transport binding's two content modes. Binary: the data is the body and
// each attribute a header or property of the transport. Structured: the
// whole envelope is the body, in the format its content type names.
enum class ContentMode { kStructured, kBinary };

// The bindings' rule: a content type that starts with
// `application/cloudevents` (any case) marks a structured message.
[[nodiscard]] bool IsStructuredContentType(std::string_view content_type);

// Whether a structured message's content type names the protobuf format
// (parameters and case ignored), the one format these read.
[[nodiscard]] bool IsCloudEventsProtobuf(std::string_view content_type);

// "content_mode" of a transport's options: "" or "structured" (the
// default), "binary". False for anything else.
[[nodiscard]] bool ParseContentMode(std::string_view text, ContentMode* mode);

// Bytes of the CloudEvent form of `env`.
[[nodiscard]] size_t CloudEventWireSize(const Envelope& env);

// Writes exactly CloudEventWireSize(env) bytes at `out`; returns the end.
uint8_t* WriteCloudEventWire(const Envelope& env, uint8_t* out);

// The CloudEvent form as a string.
[[nodiscard]] std::string EnvelopeToCloudEvent(const Envelope& env);

// Reads a CloudEvent into `env` (every attribute is replaced). InvalidArgument
// naming what is wrong when the bytes are not a CloudEvent (protobuf's
// rules: truncated or overlong fields, bad wire types, strings that are not
// UTF-8, nesting too deep), when an attribute has a type its meaning does
// not allow or a value out of range, or when the envelope is not valid
// (ValidateEnvelope).
[[nodiscard]] absl::Status ReadCloudEventWire(std::string_view bytes, Envelope* env);

}  // namespace switchboard::internal
