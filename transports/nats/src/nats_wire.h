// nats_wire.h: the envelope <-> NATS headers mapping (CloudEvents NATS
// binding, binary mode). Pure functions on a neutral header list so they are
// testable without cnats or a server.
//
// Every attribute is a `ce-<name>` header with its canonical string value,
// percent-encoded (space, '"', '%' and bytes outside 0x21..0x7E as %XY); the
// body is the data. `Content-Type` repeats datacontenttype and plain
// `traceparent` / `tracestate` repeat the trace context for W3C readers.
#pragma once

#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "switchboard/envelope.h"

namespace switchboard::nats {

using HeaderList = std::vector<std::pair<std::string, std::string>>;
// Received headers, first value per key (NATS header keys are
// case-sensitive; lookups try the exact spelling we write).
using HeaderMap = std::map<std::string, std::string, std::less<>>;

inline constexpr std::string_view kMsgIdHeader = "Nats-Msg-Id";
inline constexpr std::string_view kContentTypeHeader = "Content-Type";
inline constexpr std::string_view kCePrefix = "ce-";

[[nodiscard]] std::string PercentEncode(std::string_view value);
// Unquotes an RFC 7230 quoted string, then percent-decodes once.
// InvalidArgument on a truncated or non-hex escape.
[[nodiscard]] absl::StatusOr<std::string> PercentDecode(std::string_view value);

// Headers for `env` (without Nats-Msg-Id). Extensions whose names are not
// CloudEvents attribute names ([a-z0-9]+) or that clash with a mapped
// attribute are not sent.
[[nodiscard]] HeaderList EnvelopeToHeaders(const Envelope& env);

// The envelope of a received message. InvalidArgument naming the header when
// a required attribute is missing (ce-id, ce-type, ce-specversion) or a value
// is malformed (time, expirytime, attempt, style, statuscode, encoding), or
// when the message is in structured mode.
[[nodiscard]] absl::StatusOr<Envelope> EnvelopeFromHeaders(const HeaderMap& headers,
                                                           std::string data);

// The value for Nats-Msg-Id: the idempotency key, else the message id.
[[nodiscard]] std::string DedupId(const Envelope& env);

}  // namespace switchboard::nats
