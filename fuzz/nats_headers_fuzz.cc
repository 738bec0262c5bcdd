// Fuzzes the NATS binding: header pairs + body -> Envelope
// (nats::EnvelopeFromHeaders), and the percent decoder on each value. An
// envelope that decodes must encode to headers that decode to the same
// attributes.
#include <cstddef>
#include <cstdint>
#include <cstdlib>

#include "fuzz_input.h"
#include "nats_wire.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  namespace nats = switchboard::nats;
  switchboard::fuzz::HeaderInput in = switchboard::fuzz::SplitHeaders(data, size);
  nats::HeaderMap headers;
  for (auto& [name, value] : in.headers) {
    (void)nats::PercentDecode(value);
    headers.emplace(name, value);  // first value per key, as the transport does
  }
  auto env = nats::EnvelopeFromHeaders(headers, in.body);
  if (!env.ok()) return 0;
  (void)nats::DedupId(*env);
  nats::HeaderMap again;
  for (auto& [name, value] : nats::EnvelopeToHeaders(*env)) again.emplace(name, value);
  auto env2 = nats::EnvelopeFromHeaders(again, env->data);
  if (!env2.ok() || env2->id != env->id || env2->type != env->type ||
      env2->attempt != env->attempt || env2->idempotency_key != env->idempotency_key) {
    std::abort();
  }
  return 0;
}
