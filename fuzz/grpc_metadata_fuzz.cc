// Fuzzes the gRPC binding: received metadata + a protobuf body -> Envelope
// (the path the gRPC server takes: internal::ReadEnvelopeWire,
// wire::FillFromMetadata, internal::CompleteEnvelope), plus the
// inbox-address parser and the percent decoder; the body also as a Send
// stream batch (each frame's request read as the server reads it) and as an
// ack batch (which must read the same after it is written again).
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "fuzz_input.h"
#include "switchboard/envelope.h"
#include "switchboard/internal/envelope_wire.h"
#include "wire.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  namespace wire = switchboard::grpc::wire;
  switchboard::fuzz::HeaderInput in = switchboard::fuzz::SplitHeaders(data, size);
  std::vector<wire::FrameView> frames;
  if (wire::ReadSendBatch(in.body, &frames)) {
    for (const wire::FrameView& f : frames) {
      if (!f.kind) continue;
      const wire::RequestShape shape = wire::ShapeOf(*f.kind);
      switchboard::Envelope request;
      switchboard::internal::EnvelopeWireRest request_rest;
      std::string text;
      if (switchboard::internal::ReadEnvelopeFieldWire(f.request, shape.envelope_field,
                                                       shape.text_field, &request,
                                                       &request_rest, &text)
              .ok()) {
        (void)switchboard::internal::CompleteEnvelope(request_rest, &request);
      }
    }
  }
  wire::AckList acks;
  if (wire::ReadAckBatch(in.body, &acks)) {
    std::string again(wire::AckBatchWireSize(acks), '\0');
    wire::WriteAckBatch(acks, reinterpret_cast<uint8_t*>(again.data()));
    wire::AckList reread;
    if (!wire::ReadAckBatch(again, &reread) || reread != acks) __builtin_trap();
  }
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
