// nats_wire.h: the envelope <-> NATS headers mapping (CloudEvents NATS
// binding, binary mode). Pure functions on a neutral header list so they are
// testable without cnats or a server.
//
// Every attribute is a `ce-<name>` header with its canonical string value,
// percent-encoded (space, '"', '%' and bytes outside 0x21..0x7E as %XY); the
// body is the data. Plain `traceparent` / `tracestate` repeat the trace
// context for W3C readers. No `Content-Type` is written: in the binding it
// marks structured mode, and a binary message needs none. The idempotency
// key and the attempt are left out when a reader restores them
// (`WireOmitsIdempotencyKey`, `WireOmitsAttempt` in envelope.h).
#pragma once

#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/functional/function_ref.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "switchboard/envelope.h"
#include "switchboard/internal/cloudevent_wire.h"
#include "switchboard/internal/percent_encoding.h"

namespace switchboard::nats {

using HeaderList = std::vector<std::pair<std::string, std::string>>;
// Received headers, first value per key (NATS header keys are
// case-sensitive; lookups try the exact spelling we write).
using HeaderMap = std::map<std::string, std::string, std::less<>>;
// A received header as views into the message (first value per key).
struct HeaderView {
  std::string_view key;
  std::string_view value;
};

// The binding's two content modes: binary, the data is the body and each
// attribute a `ce-<name>` header (this file); structured, the whole envelope
// is the body in a CloudEvents format named by `Content-Type`
// (switchboard/internal/cloudevent_wire.h, the protobuf format).
using internal::ContentMode;

inline constexpr std::string_view kMsgIdHeader = "Nats-Msg-Id";
inline constexpr std::string_view kContentTypeHeader = "Content-Type";
inline constexpr std::string_view kCePrefix = "ce-";

// The binding's percent-encoding (switchboard/internal/percent_encoding.h).
using internal::AppendPercentEncoded;
using internal::PercentEncode;
// Unquotes an RFC 7230 quoted string, then percent-decodes once.
// InvalidArgument on a truncated or non-hex escape.
[[nodiscard]] absl::StatusOr<std::string> PercentDecode(std::string_view value);

// Calls `emit(key, value)` for each header of `env` (without Nats-Msg-Id),
// values encoded. Extensions whose names are not CloudEvents attribute names
// ([a-z0-9]+) or that clash with a mapped attribute are not sent. Both views
// are NUL-terminated (data()[size()] == '\0', for C APIs) and valid only
// during the call; a value that needs no escaping is passed without a copy.
void ForEachHeader(const Envelope& env,
                   absl::FunctionRef<void(std::string_view key, std::string_view value)> emit);
// The same headers, copied.
[[nodiscard]] HeaderList EnvelopeToHeaders(const Envelope& env);

// The envelope of a received message. InvalidArgument naming the header when
// a required attribute is missing (ce-id, ce-type, ce-specversion) or a value
// is malformed (time, expirytime, attempt, style, statuscode, encoding), or
// when the message is in structured mode.
[[nodiscard]] absl::StatusOr<Envelope> EnvelopeFromHeaders(absl::Span<const HeaderView> headers,
                                                           std::string data);
[[nodiscard]] absl::StatusOr<Envelope> EnvelopeFromHeaders(const HeaderMap& headers,
                                                           std::string data);

// RFC 3339 in UTC exactly as FormatRfc3339 / ParseRfc3339 (core) write and
// read it, without a time-zone library on the common path: the canonical
// form `YYYY-MM-DDTHH:MM:SS[.fraction]Z` is handled directly, anything else
// (offsets, other years, sub-nanosecond times) by the core functions.
[[nodiscard]] std::string FormatTimestamp(absl::Time t);
[[nodiscard]] absl::StatusOr<absl::Time> ParseTimestamp(std::string_view text);

// The value for Nats-Msg-Id: the idempotency key, else the message id.
[[nodiscard]] std::string DedupId(const Envelope& env);

}  // namespace switchboard::nats
