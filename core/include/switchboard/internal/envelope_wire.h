// envelope_wire.h: the protobuf form of an envelope written straight from
// the envelope, for transports whose body is a `v1.Envelope`.
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
// (envelope.h). The reader stays protobuf's parser and `FromProto`.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "switchboard/envelope.h"

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

}  // namespace switchboard::internal
