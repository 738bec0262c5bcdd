// Fuzzes the canonical protobuf envelope: bytes -> v1::Envelope ->
// switchboard::Envelope. An envelope FromProto accepts must survive
// ToProto/FromProto unchanged in its core attributes. The direct reader and
// writer (internal/envelope_wire.h) must agree with protobuf: the same bytes
// are accepted or refused by both and read the same, and the direct writer
// writes the bytes ToProto serializes to. The same bytes read as a message
// that holds an envelope and a string, in either field order (the gRPC
// transport's EnqueueRequest, PublishRequest and ReplyRequest), must read as
// protobuf reads them too.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "switchboard/envelope.h"
#include "switchboard/internal/envelope_wire.h"
#include "switchboard/test/v1/wire.pb.h"
#include "switchboard/v1/envelope.pb.h"

namespace {

bool SameCore(const switchboard::Envelope& a, const switchboard::Envelope& b) {
  return a.id == b.id && a.source == b.source && a.type == b.type && a.data == b.data &&
         a.attempt == b.attempt && a.style == b.style && a.time == b.time &&
         a.deadline == b.deadline && a.idempotency_key == b.idempotency_key &&
         a.extensions == b.extensions && a.status == b.status;
}

// `Msg` is EnvelopeThenText or TextThenEnvelope.
template <class Msg>
void ReadsAsAFieldAsProtobufDoes(std::string_view bytes, int envelope_field, int text_field) {
  namespace internal = switchboard::internal;
  Msg proto;
  const bool parsed = proto.ParseFromArray(bytes.data(), static_cast<int>(bytes.size()));
  switchboard::Envelope direct;
  internal::EnvelopeWireRest rest;
  std::string text;
  const bool read =
      internal::ReadEnvelopeFieldWire(bytes, envelope_field, text_field, &direct, &rest, &text)
          .ok();
  if (parsed != read) std::abort();
  if (!parsed) return;
  if (text != proto.text()) std::abort();
  switchboard::Envelope env;
  const absl::Status from_proto = switchboard::FromProto(proto.envelope(), &env);
  if (internal::CompleteEnvelope(rest, &direct) != from_proto) std::abort();
  if (from_proto.ok() && !SameCore(direct, env)) std::abort();
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
  ReadsAsAFieldAsProtobufDoes<switchboard::test::v1::EnvelopeThenText>(bytes, 1, 2);
  ReadsAsAFieldAsProtobufDoes<switchboard::test::v1::TextThenEnvelope>(bytes, 2, 1);
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
