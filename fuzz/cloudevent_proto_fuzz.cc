// Fuzzes the CloudEvents protobuf format (internal/cloudevent_wire.h), the
// body of a structured NATS message: bytes -> envelope. Whatever the reader
// accepts is a valid envelope, and writing it and reading it again gives the
// same envelope (every extension it kept is sendable, every attribute it read
// has a form the writer produces).
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "switchboard/envelope.h"
#include "switchboard/internal/cloudevent_wire.h"

namespace {

bool Same(const switchboard::Envelope& a, const switchboard::Envelope& b) {
  return a.id == b.id && a.source == b.source && a.spec_version == b.spec_version &&
         a.type == b.type && a.time == b.time && a.data_content_type == b.data_content_type &&
         a.subject == b.subject && a.traceparent == b.traceparent &&
         a.tracestate == b.tracestate && a.idempotency_key == b.idempotency_key &&
         a.deadline == b.deadline && a.correlation_id == b.correlation_id &&
         a.reply_to == b.reply_to && a.attempt == b.attempt && a.style == b.style &&
         a.status == b.status && a.extensions == b.extensions && a.data == b.data;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  namespace internal = switchboard::internal;
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  switchboard::Envelope env;
  const absl::Status read = internal::ReadCloudEventWire(bytes, &env);
  if (!read.ok()) {
    if (read.code() != absl::StatusCode::kInvalidArgument) std::abort();
    return 0;
  }
  if (!switchboard::ValidateEnvelope(env).ok()) std::abort();
  const std::string written = internal::EnvelopeToCloudEvent(env);
  if (written.size() != internal::CloudEventWireSize(env)) std::abort();
  switchboard::Envelope again;
  if (!internal::ReadCloudEventWire(written, &again).ok() || !Same(again, env)) std::abort();
  return 0;
}
