#include "switchboard/envelope.h"

#include <cstring>

#include "switchboard/internal/envelope_pool.h"
#include "switchboard/internal/envelope_wire.h"
#include "switchboard/internal/strings.h"
#include "google/protobuf/util/time_util.h"
#include "switchboard/status.h"
#include "switchboard/trace_context.h"
#include "switchboard/v1/envelope.pb.h"

namespace switchboard {
namespace {

void ToTimestamp(absl::Time t, google::protobuf::Timestamp* out) {
  timespec ts = absl::ToTimespec(t);
  out->set_seconds(ts.tv_sec);
  out->set_nanos(static_cast<int32_t>(ts.tv_nsec));
}

absl::Time FromTimestamp(const google::protobuf::Timestamp& ts) {
  return absl::FromUnixSeconds(ts.seconds()) + absl::Nanoseconds(ts.nanos());
}

}  // namespace

std::string_view StyleName(Style style) {
  switch (style) {
    case Style::kRequest:
      return "request";
    case Style::kCommand:
      return "command";
    case Style::kEvent:
      return "event";
    default:
      return "unspecified";
  }
}

bool ParseStyle(std::string_view text, Style* style) {
  if (text == "request" || text == "STYLE_REQUEST") {
    *style = Style::kRequest;
  } else if (text == "command" || text == "STYLE_COMMAND") {
    *style = Style::kCommand;
  } else if (text == "event" || text == "STYLE_EVENT") {
    *style = Style::kEvent;
  } else {
    return false;
  }
  return true;
}

void ToProto(const Envelope& in, v1::Envelope* out) {
  out->set_id(in.id);
  out->set_source(in.source);
  out->set_spec_version(in.spec_version);
  out->set_type(in.type);
  if (in.time != absl::UnixEpoch()) ToTimestamp(in.time, out->mutable_time());
  if (in.data_content_type != kContentTypeProtobuf) {
    out->set_data_content_type(in.data_content_type);
  }
  out->set_subject(in.subject);
  out->set_traceparent(in.traceparent);
  out->set_tracestate(in.tracestate);
  if (!WireOmitsIdempotencyKey(in)) out->set_idempotency_key(in.idempotency_key);
  if (in.has_deadline()) ToTimestamp(in.deadline, out->mutable_deadline());
  out->set_correlation_id(in.correlation_id);
  out->set_reply_to(in.reply_to);
  if (!WireOmitsAttempt(in)) out->set_attempt(in.attempt);
  out->set_style(static_cast<v1::Style>(in.style));
  out->set_status_code(static_cast<int32_t>(in.status.code()));
  out->set_status_message(std::string(in.status.message()));
  for (const auto& [k, v] : in.extensions) (*out->mutable_extensions())[k] = v;
  out->set_data(in.data);
}

namespace {

// The fields of the proto that are not strings, as read.
internal::EnvelopeWireRest RestOf(const v1::Envelope& in, Envelope* out) {
  internal::EnvelopeWireRest rest;
  rest.has_time = in.has_time();
  rest.has_deadline = in.has_deadline();
  if (rest.has_time) out->time = FromTimestamp(in.time());
  if (rest.has_deadline) out->deadline = FromTimestamp(in.deadline());
  rest.attempt = in.attempt();
  rest.style = in.style();
  rest.status_code = in.status_code();
  if (rest.status_code != 0) rest.status_message = in.status_message();
  return rest;
}

}  // namespace

absl::Status FromProto(const v1::Envelope& in, Envelope* out) {
  out->id = in.id();
  out->source = in.source();
  out->spec_version = in.spec_version();
  out->type = in.type();
  out->data_content_type = in.data_content_type();
  out->subject = in.subject();
  out->traceparent = in.traceparent();
  out->tracestate = in.tracestate();
  out->idempotency_key = in.idempotency_key();
  out->correlation_id = in.correlation_id();
  out->reply_to = in.reply_to();
  out->extensions.clear();
  for (const auto& [k, v] : in.extensions()) out->extensions[k] = v;
  out->data = in.data();
  return internal::CompleteEnvelope(RestOf(in, out), out);
}

absl::Status FromProto(v1::Envelope&& in, Envelope* out) {
  internal::EnvelopeWireRest rest;
  internal::ReadEnvelopeProto(std::move(in), out, &rest);
  return internal::CompleteEnvelope(rest, out);
}

namespace internal {

void ReadEnvelopeProto(v1::Envelope&& in, Envelope* out, EnvelopeWireRest* rest) {
  out->id = std::move(*in.mutable_id());
  out->source = std::move(*in.mutable_source());
  out->spec_version = std::move(*in.mutable_spec_version());
  out->type = std::move(*in.mutable_type());
  out->data_content_type = std::move(*in.mutable_data_content_type());
  out->subject = std::move(*in.mutable_subject());
  out->traceparent = std::move(*in.mutable_traceparent());
  out->tracestate = std::move(*in.mutable_tracestate());
  out->idempotency_key = std::move(*in.mutable_idempotency_key());
  out->correlation_id = std::move(*in.mutable_correlation_id());
  out->reply_to = std::move(*in.mutable_reply_to());
  out->extensions.clear();
  for (auto& [k, v] : *in.mutable_extensions()) out->extensions[k] = std::move(v);
  out->data = std::move(*in.mutable_data());
  *rest = RestOf(in, out);
}

}  // namespace internal

std::string FormatRfc3339(absl::Time t) {
  return absl::FormatTime("%Y-%m-%d%ET%H:%M:%E*SZ", t, absl::UTCTimeZone());
}

absl::StatusOr<absl::Time> ParseRfc3339(std::string_view text) {
  absl::Time t;
  std::string err;
  if (!absl::ParseTime(absl::RFC3339_full, AsAbsl(text), &t, &err)) {
    return absl::InvalidArgumentError(
        Cat("not an RFC 3339 timestamp: \"", text.substr(0, 64), "\" (", err, ")"));
  }
  return t;
}

absl::Status ValidateEnvelope(const Envelope& env) {
  if (env.id.empty()) return absl::InvalidArgumentError("envelope has no `id`");
  if (env.type.empty()) return absl::InvalidArgumentError("envelope has no `type` (operation)");
  if (env.spec_version != "1.0") {
    return absl::InvalidArgumentError(
        Cat("envelope `specversion` is \"", env.spec_version.substr(0, 16),
                     "\"; only \"1.0\" is understood"));
  }
  if (env.attempt < 1) {
    return absl::InvalidArgumentError(Cat("envelope `attempt` is ", env.attempt, "; must be >= 1"));
  }
  return absl::OkStatus();
}

namespace internal {

void AssignNewMessageId(std::string* out) {
  // UUIDv7: 48-bit Unix milliseconds, version 7, 74 random bits, variant 10.
  uint64_t ms = static_cast<uint64_t>(absl::ToUnixMillis(absl::Now()));
  uint64_t r1 = RandomU64(), r2 = RandomU64();
  uint64_t hi = (ms << 16) | 0x7000 | (r1 & 0x0fff);
  uint64_t lo = (r2 & 0x3fffffffffffffffULL) | 0x8000000000000000ULL;
  static constexpr char kHex[] = "0123456789abcdef";
  char digits[32];
  for (int i = 0; i < 16; ++i) {
    digits[i] = kHex[(hi >> (60 - 4 * i)) & 15];
    digits[16 + i] = kHex[(lo >> (60 - 4 * i)) & 15];
  }
  // 8-4-4-4-12
  out->assign(36, '-');
  char* p = out->data();
  std::memcpy(p, digits, 8);
  std::memcpy(p + 9, digits + 8, 4);
  std::memcpy(p + 14, digits + 12, 4);
  std::memcpy(p + 19, digits + 16, 4);
  std::memcpy(p + 24, digits + 20, 12);
}

}  // namespace internal

std::string NewMessageId() {
  std::string out;
  internal::AssignNewMessageId(&out);
  return out;
}

}  // namespace switchboard
