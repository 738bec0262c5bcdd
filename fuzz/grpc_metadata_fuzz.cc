// Fuzzes the gRPC binding: received metadata + a protobuf body ->
// v1::Envelope -> Envelope (the path the gRPC server takes:
// wire::FillFromMetadata then FromProto), plus the inbox-address parser and
// the percent decoder.
#include <cstddef>
#include <cstdint>

#include "fuzz_input.h"
#include "switchboard/envelope.h"
#include "switchboard/v1/envelope.pb.h"
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
  switchboard::v1::Envelope body;
  if (!body.ParseFromString(in.body)) body.Clear();
  wire::FillFromMetadata(md, &body);
  switchboard::Envelope env;
  if (!switchboard::FromProto(body, &env).ok()) return 0;
  (void)wire::ToMetadata(env);
  (void)wire::TargetKeys(env.type);
  return 0;
}
