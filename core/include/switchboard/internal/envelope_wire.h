// envelope_wire.h: the protobuf form of an envelope, written straight from
// and read straight into an `Envelope`, for transports whose body is a
// `v1.Envelope` (the gRPC transport).
//
// `ToProto` followed by serialization copies every attribute into the
// message (the long ones are an allocation each) and walks the message
// again to write it. These write the same bytes as that, field by field, in
// field-number order, as protobuf's deterministic serialization does (map
// entries sorted by key), without building the message:
//
//   std::string bytes(internal::EnvelopeWireSize(env), '\0');
//   internal::WriteEnvelopeWire(env, reinterpret_cast<uint8_t*>(bytes.data()));
//
// The rules of `ToProto` apply: defaults that a reader restores are left out
// (envelope.h). Reading is below.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "switchboard/envelope.h"

namespace switchboard::v1 {
class Envelope;
}

namespace switchboard::internal {

// Bytes of the protobuf form of `env`.
[[nodiscard]] size_t EnvelopeWireSize(const Envelope& env);

// Writes exactly EnvelopeWireSize(env) bytes at `out`; returns the end.
uint8_t* WriteEnvelopeWire(const Envelope& env, uint8_t* out);

// Writes the envelope as the length-delimited field `field_number` of an
// enclosing message (as `EnqueueRequest.command`): tag, length, bytes.
// `envelope_size` is EnvelopeWireSize(env), computed once by the caller.
[[nodiscard]] size_t EnvelopeFieldWireSize(int field_number, size_t envelope_size);
uint8_t* WriteEnvelopeField(int field_number, const Envelope& env, size_t envelope_size,
                            uint8_t* out);

// A string field of an enclosing message (`EnqueueRequest.queue`), left out
// when empty as proto3 does.
[[nodiscard]] size_t StringFieldWireSize(int field_number, std::string_view value);
uint8_t* WriteStringField(int field_number, std::string_view value, uint8_t* out);

// The protobuf form as a string.
[[nodiscard]] std::string EnvelopeToWire(const Envelope& env);

// ---- reading ----
//
// The protobuf form read straight into an envelope, as protobuf's parser and
// `FromProto` would (tested against them on random and damaged bytes), in
// two steps, so that a transport can fill what the body leaves out from its
// headers in between:
//
//   internal::EnvelopeWireRest rest;
//   absl::Status s = internal::ReadEnvelopeWire(bytes, &env, &rest);
//   ... fill empty attributes from metadata ...
//   if (s.ok()) s = internal::CompleteEnvelope(rest, &env);

// The fields of the protobuf form whose absence a reader must see, as read.
struct EnvelopeWireRest {
  bool has_time = false;
  bool has_deadline = false;
  int32_t attempt = 0;  // 0: not sent
  int32_t style = 0;
  int32_t status_code = 0;
  std::string status_message;
};

// Reads `bytes` into `env` (every attribute is replaced; time and deadline
// only when sent) and `rest`. InvalidArgument when the bytes are not a
// v1.Envelope: a truncated or overlong field, a bad wire type, a string
// that is not UTF-8, groups nested too deep.
[[nodiscard]] absl::Status ReadEnvelopeWire(std::string_view bytes, Envelope* env,
                                            EnvelopeWireRest* rest);

// A message that holds an envelope as its field `envelope_field` and a
// string as its field `text_field` (EnqueueRequest{command = 1, queue = 2},
// PublishRequest{event = 1, group = 2}, ReplyRequest{inbox = 1, reply = 2}),
// read as protobuf's parser followed by ReadEnvelopeProto would: repeated
// occurrences of the envelope merge, the last string wins, and a message
// without the envelope reads as an empty one. `text` gets the string.
[[nodiscard]] absl::Status ReadEnvelopeFieldWire(std::string_view bytes, int envelope_field,
                                                 int text_field, Envelope* env,
                                                 EnvelopeWireRest* rest, std::string* text);

// The same from a parsed proto, taking it apart (its strings are moved)
// (FromProto).
void ReadEnvelopeProto(v1::Envelope&& in, Envelope* env, EnvelopeWireRest* rest);

// What FromProto does after the strings: defaults for what was not sent, the
// outcome of a reply, and ValidateEnvelope.
[[nodiscard]] absl::Status CompleteEnvelope(const EnvelopeWireRest& rest, Envelope* env);

}  // namespace switchboard::internal
