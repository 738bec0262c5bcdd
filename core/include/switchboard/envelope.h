// envelope.h: the in-memory envelope every transport moves.
//
// `Envelope` is the C++ form of proto/switchboard/v1/envelope.proto: the
// CloudEvents 1.0 attributes, W3C Trace Context, and Switchboard's extensions,
// plus the payload bytes. Transports map it onto native headers (CloudEvents
// bindings); `ToProto` / `FromProto` give the canonical protobuf form.
//
// Attribute names on the wire (CloudEvents extension names, lower case):
//   idempotencykey, expirytime (deadline), correlationid, replyto, attempt,
//   style, statuscode, statusmessage.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace switchboard {

namespace v1 {
class Envelope;
}

enum class Style : int { kUnspecified = 0, kRequest = 1, kCommand = 2, kEvent = 3 };

// "request" / "command" / "event" / "unspecified".
[[nodiscard]] std::string_view StyleName(Style style);
[[nodiscard]] bool ParseStyle(std::string_view text, Style* style);

// CloudEvents extension attribute names used by Switchboard.
namespace attr {
inline constexpr std::string_view kIdempotencyKey = "idempotencykey";
inline constexpr std::string_view kExpiryTime = "expirytime";
inline constexpr std::string_view kCorrelationId = "correlationid";
inline constexpr std::string_view kReplyTo = "replyto";
inline constexpr std::string_view kAttempt = "attempt";
inline constexpr std::string_view kStyle = "style";
inline constexpr std::string_view kStatusCode = "statuscode";
inline constexpr std::string_view kStatusMessage = "statusmessage";
inline constexpr std::string_view kTraceparent = "traceparent";
inline constexpr std::string_view kTracestate = "tracestate";
// Set on a dead-lettered message: why it was dead-lettered.
inline constexpr std::string_view kDeadLetterReason = "deadletterreason";
inline constexpr std::string_view kDeadLetterCode = "deadlettercode";
}  // namespace attr

inline constexpr std::string_view kContentTypeProtobuf = "application/protobuf";
inline constexpr std::string_view kContentTypeJson = "application/json";

struct Envelope {
  // CloudEvents core.
  std::string id;
  std::string source;
  std::string spec_version = "1.0";
  std::string type;  // the operation name
  absl::Time time = absl::UnixEpoch();
  std::string data_content_type = std::string(kContentTypeProtobuf);
  std::string subject;

  // W3C Trace Context.
  std::string traceparent;
  std::string tracestate;

  // Switchboard extensions.
  std::string idempotency_key;
  absl::Time deadline = absl::InfiniteFuture();
  std::string correlation_id;
  std::string reply_to;
  int32_t attempt = 1;
  Style style = Style::kUnspecified;

  // Outcome carried by a reply; OK otherwise.
  absl::Status status;

  // Other extension attributes, passed through unchanged.
  std::map<std::string, std::string> extensions;

  // Serialized payload.
  std::string data;

  bool has_deadline() const { return deadline != absl::InfiniteFuture(); }
};

// Attributes a wire form leaves out because a reader restores them: the
// idempotency key when it is the message id (the key a CloudEvents consumer
// deduplicates on anyway: source + id) and the attempt when it is the first.
// Every transport's mapping and the protobuf form follow these rules, and
// every reader calls `RestoreOmittedAttributes` after decoding, so an
// envelope comes out as it went in. A message from a sender that writes the
// attributes anyway reads the same.
[[nodiscard]] inline bool WireOmitsIdempotencyKey(const Envelope& env) {
  return env.idempotency_key.empty() || env.idempotency_key == env.id;
}
[[nodiscard]] inline bool WireOmitsAttempt(const Envelope& env) { return env.attempt == 1; }
// A decoded envelope without an idempotency key gets its id as the key.
inline void RestoreOmittedAttributes(Envelope* env) {
  if (env->idempotency_key.empty()) env->idempotency_key = env->id;
}

// The protobuf form leaves out what its reader restores (see above), and a
// data content type of `application/protobuf`, the proto's default.
void ToProto(const Envelope& in, v1::Envelope* out);
// Fails with InvalidArgument naming the attribute when the proto is not a
// valid envelope (missing id or type, bad spec version, bad attempt).
[[nodiscard]] absl::Status FromProto(const v1::Envelope& in, Envelope* out);
// The same, taking `in` apart: its strings are moved, not copied.
[[nodiscard]] absl::Status FromProto(v1::Envelope&& in, Envelope* out);

// Wire helpers shared by the transports' header mappings.
[[nodiscard]] std::string FormatRfc3339(absl::Time t);
[[nodiscard]] absl::StatusOr<absl::Time> ParseRfc3339(std::string_view text);

// Checks the attributes any receiver relies on: id, type, spec version "1.0",
// attempt >= 1. InvalidArgument names the attribute that is wrong.
[[nodiscard]] absl::Status ValidateEnvelope(const Envelope& env);

// A new random message id (UUIDv7: time-ordered).
[[nodiscard]] std::string NewMessageId();

}  // namespace switchboard
