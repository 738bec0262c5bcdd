// Fuzzes the canonical protobuf envelope: bytes -> v1::Envelope ->
// switchboard::Envelope. An envelope FromProto accepts must survive
// ToProto/FromProto unchanged in its core attributes.
#include <cstddef>
#include <cstdint>
#include <cstdlib>

#include "switchboard/envelope.h"
#include "switchboard/v1/envelope.pb.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  switchboard::v1::Envelope proto;
  if (!proto.ParseFromArray(data, static_cast<int>(size))) return 0;
  switchboard::Envelope env;
  if (!switchboard::FromProto(proto, &env).ok()) return 0;
  (void)switchboard::ValidateEnvelope(env);
  switchboard::v1::Envelope again;
  switchboard::ToProto(env, &again);
  switchboard::Envelope env2;
  if (!switchboard::FromProto(again, &env2).ok()) std::abort();
  if (env2.id != env.id || env2.type != env.type || env2.data != env.data ||
      env2.attempt != env.attempt || env2.style != env.style) {
    std::abort();
  }
  return 0;
}
