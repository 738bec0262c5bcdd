// Fuzzes the gRPC binding: received metadata + a protobuf body -> Envelope
// (the path the gRPC server takes: internal::ReadEnvelopeWire,
// wire::FillFromMetadata, internal::CompleteEnvelope), plus the
// inbox-address parser and the percent decoder.
#include <cstddef>
#include <cstdint>

#include "fuzz_input.h"
#include "switchboard/envelope.h"
#include "switchboard/internal/envelope_wire.h"
#include "wire.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  namespace wire = switchboard::grpc::wire;
  switchboard::fuzz::HeaderInput in = switchboard::fuzz::SplitHeaders(data, size);
  wire::Metadata md;
  for (auto& [name, value] : in.headers) {
    (void)wire::PercentDecode(value);
    (void)wire::ParseInboxAddress(value);
    md.emplace_back(name, value);
  }
  switchboard::Envelope env;
  switchboard::internal::EnvelopeWireRest rest;
  if (!switchboard::internal::ReadEnvelopeWire(in.body, &env, &rest).ok()) {
    (void)switchboard::internal::ReadEnvelopeWire("", &env, &rest);  // metadata only
  }
  wire::FillFromMetadata(md, &env, &rest);
  if (!switchboard::internal::CompleteEnvelope(rest, &env).ok()) return 0;
  (void)wire::ToMetadata(env);
  (void)wire::TargetKeys(env.type);
  return 0;
}
