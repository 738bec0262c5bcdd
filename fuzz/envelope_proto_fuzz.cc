// Fuzzes the canonical protobuf envelope: bytes -> v1::Envelope ->
// switchboard::Envelope. An envelope FromProto accepts must survive
// ToProto/FromProto unchanged in its core attributes. The direct reader and
// writer (internal/envelope_wire.h) must agree with protobuf: the same bytes
// are accepted or refused by both and read the same, and the direct writer
// writes the bytes ToProto serializes to.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "switchboard/envelope.h"
#include "switchboard/internal/envelope_wire.h"
#include "switchboard/v1/envelope.pb.h"

namespace {

bool SameCore(const switchboard::Envelope& a, const switchboard::Envelope& b) {
  return a.id == b.id && a.source == b.source && a.type == b.type && a.data == b.data &&
         a.attempt == b.attempt && a.style == b.style && a.time == b.time &&
         a.deadline == b.deadline && a.idempotency_key == b.idempotency_key &&
         a.extensions == b.extensions && a.status == b.status;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  namespace internal = switchboard::internal;
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  switchboard::v1::Envelope proto;
  const bool parsed = proto.ParseFromArray(data, static_cast<int>(size));
  switchboard::Envelope direct;
  internal::EnvelopeWireRest rest;
  const bool read = internal::ReadEnvelopeWire(bytes, &direct, &rest).ok();
  if (parsed != read) std::abort();
  if (!parsed) return 0;
  switchboard::Envelope env;
  const absl::Status from_proto = switchboard::FromProto(proto, &env);
  if (internal::CompleteEnvelope(rest, &direct) != from_proto) std::abort();
  if (!from_proto.ok()) return 0;
  if (!SameCore(direct, env)) std::abort();
  (void)switchboard::ValidateEnvelope(env);
  switchboard::v1::Envelope again;
  switchboard::ToProto(env, &again);
  switchboard::Envelope env2;
  if (!switchboard::FromProto(again, &env2).ok()) std::abort();
  if (env2.id != env.id || env2.type != env.type || env2.data != env.data ||
      env2.attempt != env.attempt || env2.style != env.style) {
    std::abort();
  }
  switchboard::Envelope env3;
  if (!internal::ReadEnvelopeWire(internal::EnvelopeToWire(env), &env3, &rest).ok() ||
      !internal::CompleteEnvelope(rest, &env3).ok() || !SameCore(env3, env)) {
    std::abort();
  }
  return 0;
}
