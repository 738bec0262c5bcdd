#include "wire.h"

#include <cstdint>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "switchboard/internal/strings.h"
#include "switchboard/status.h"
#include "switchboard/v1/envelope.pb.h"

namespace switchboard::grpc::wire {
namespace {

constexpr std::string_view kPrefix = "ce-";

// CloudEvents attribute names are lower-case letters and digits; anything
// else cannot be a `ce-` metadata key without ambiguity.
bool IsAttributeName(std::string_view name) {
  if (name.empty()) return false;
  for (char c : name) {
    if (!absl::ascii_islower(c) && !absl::ascii_isdigit(c)) return false;
  }
  return true;
}

void SetTimestamp(absl::Time t, google::protobuf::Timestamp* out) {
  const int64_t seconds = absl::ToUnixSeconds(t);
  out->set_seconds(seconds);
  out->set_nanos(static_cast<int32_t>(
      absl::ToInt64Nanoseconds(t - absl::FromUnixSeconds(seconds))));
}

bool IsKnownAttribute(std::string_view name) {
  static constexpr std::string_view kKnown[] = {
      "id",           "source",         "specversion",   "type",      "time",
      "datacontenttype", "subject",     "traceparent",   "tracestate", attr::kIdempotencyKey,
      attr::kExpiryTime, attr::kCorrelationId, attr::kReplyTo, attr::kAttempt, attr::kStyle,
      attr::kStatusCode, attr::kStatusMessage};
  for (std::string_view k : kKnown) {
    if (k == name) return true;
  }
  return false;
}

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

}  // namespace

std::string PercentEncode(std::string_view value) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(value.size());
  for (unsigned char c : value) {
    if (c < 0x21 || c > 0x7E || c == '"' || c == '%') {
      out.push_back('%');
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 0xF]);
    } else {
      out.push_back(static_cast<char>(c));
    }
  }
  return out;
}

std::string PercentDecode(std::string_view value) {
  std::string out;
  out.reserve(value.size());
  for (size_t i = 0; i < value.size(); ++i) {
    if (value[i] == '%' && i + 2 < value.size()) {
      int hi = HexValue(value[i + 1]);
      int lo = HexValue(value[i + 2]);
      if (hi >= 0 && lo >= 0) {
        out.push_back(static_cast<char>(hi * 16 + lo));
        i += 2;
        continue;
      }
    }
    out.push_back(value[i]);
  }
  return out;
}

Metadata ToMetadata(const Envelope& env) {
  Metadata md;
  auto add = [&md](std::string_view name, std::string_view value) {
    if (value.empty()) return;
    std::string encoded = PercentEncode(value);
    // Headers are for readers along the way; long values stay in the body
    // so that a call never trips HTTP/2 header limits.
    if (encoded.size() > kMaxMetadataValue) return;
    md.emplace_back(Cat(kPrefix, name), std::move(encoded));
  };
  add("id", env.id);
  add("source", env.source);
  add("specversion", env.spec_version);
  add("type", env.type);
  if (env.time != absl::UnixEpoch()) add("time", FormatRfc3339(env.time));
  add("datacontenttype", env.data_content_type);
  add("subject", env.subject);
  // W3C Trace Context has its own header names; proxies and tracers look
  // for those, not for ce-traceparent.
  if (!env.traceparent.empty() && env.traceparent.size() <= kMaxMetadataValue) {
    md.emplace_back("traceparent", PercentEncode(env.traceparent));
  }
  if (!env.tracestate.empty() && env.tracestate.size() <= kMaxMetadataValue) {
    md.emplace_back("tracestate", PercentEncode(env.tracestate));
  }
  add(attr::kIdempotencyKey, env.idempotency_key);
  if (env.has_deadline()) add(attr::kExpiryTime, FormatRfc3339(env.deadline));
  add(attr::kCorrelationId, env.correlation_id);
  add(attr::kReplyTo, env.reply_to);
  add(attr::kAttempt, Cat(env.attempt));
  if (env.style != Style::kUnspecified) add(attr::kStyle, StyleName(env.style));
  if (!env.status.ok()) {
    add(attr::kStatusCode, Cat(static_cast<int>(env.status.code())));
    add(attr::kStatusMessage, AsStd(env.status.message()));
  }
  for (const auto& [name, value] : env.extensions) {
    if (IsAttributeName(name) && !IsKnownAttribute(name) && name != kQueuedTypeExtension) {
      add(name, value);
    }
  }
  return md;
}

void FillFromMetadata(const Metadata& md, v1::Envelope* body) {
  for (const auto& [key, raw] : md) {
    std::string value = PercentDecode(raw);
    if (key == "traceparent") {
      if (body->traceparent().empty()) body->set_traceparent(value);
      continue;
    }
    if (key == "tracestate") {
      if (body->tracestate().empty()) body->set_tracestate(value);
      continue;
    }
    if (std::string_view(key).substr(0, kPrefix.size()) != kPrefix) continue;
    std::string_view name = std::string_view(key).substr(kPrefix.size());
    if (name == "id") {
      if (body->id().empty()) body->set_id(value);
    } else if (name == "source") {
      if (body->source().empty()) body->set_source(value);
    } else if (name == "specversion") {
      if (body->spec_version().empty()) body->set_spec_version(value);
    } else if (name == "type") {
      if (body->type().empty()) body->set_type(value);
    } else if (name == "time") {
      if (!body->has_time()) {
        if (absl::StatusOr<absl::Time> t = ParseRfc3339(value); t.ok()) {
          SetTimestamp(*t, body->mutable_time());
        }
      }
    } else if (name == "datacontenttype") {
      if (body->data_content_type().empty()) body->set_data_content_type(value);
    } else if (name == "subject") {
      if (body->subject().empty()) body->set_subject(value);
    } else if (name == attr::kIdempotencyKey) {
      if (body->idempotency_key().empty()) body->set_idempotency_key(value);
    } else if (name == attr::kExpiryTime) {
      if (!body->has_deadline()) {
        if (absl::StatusOr<absl::Time> t = ParseRfc3339(value); t.ok()) {
          SetTimestamp(*t, body->mutable_deadline());
        }
      }
    } else if (name == attr::kCorrelationId) {
      if (body->correlation_id().empty()) body->set_correlation_id(value);
    } else if (name == attr::kReplyTo) {
      if (body->reply_to().empty()) body->set_reply_to(value);
    } else if (name == attr::kAttempt) {
      int attempt = 0;
      if (body->attempt() == 0 && absl::SimpleAtoi(value, &attempt)) body->set_attempt(attempt);
    } else if (name == attr::kStyle) {
      Style style;
      if (body->style() == v1::STYLE_UNSPECIFIED && ParseStyle(value, &style)) {
        body->set_style(static_cast<v1::Style>(style));
      }
    } else if (name == attr::kStatusCode || name == attr::kStatusMessage) {
      // Outcome of a reply: the gRPC status is authoritative.
    } else if (IsAttributeName(name)) {
      body->mutable_extensions()->insert({std::string(name), value});
    }
  }
}

std::vector<std::string> TargetKeys(std::string_view operation) {
  std::vector<std::string> keys;
  keys.emplace_back(operation);
  if (size_t slash = operation.find('/'); slash != std::string_view::npos) {
    keys.emplace_back(operation.substr(0, slash));
  } else if (size_t dot = operation.rfind('.'); dot != std::string_view::npos) {
    keys.emplace_back(operation.substr(0, dot));
  }
  keys.emplace_back("*");
  return keys;
}

std::string InboxAddress(std::string_view host_port, std::string_view inbox_id) {
  return Cat("grpc://", host_port, "/inbox/", inbox_id);
}

absl::StatusOr<InboxRef> ParseInboxAddress(std::string_view address) {
  constexpr std::string_view kScheme = "grpc://";
  constexpr std::string_view kPath = "/inbox/";
  size_t path = address.find(kPath, kScheme.size());
  if (address.substr(0, kScheme.size()) != kScheme || path == std::string_view::npos ||
      path == kScheme.size() || path + kPath.size() == address.size()) {
    return absl::InvalidArgumentError(
        Cat("\"", address,
                     "\" is not a gRPC reply address (expected grpc://host:port/inbox/<id>)"));
  }
  InboxRef ref;
  ref.target = std::string(address.substr(kScheme.size(), path - kScheme.size()));
  ref.inbox = std::string(address.substr(path + kPath.size()));
  return ref;
}

std::string GroupQueue(std::string_view type, std::string_view group) {
  return Cat(type, "#", group);
}

}  // namespace switchboard::grpc::wire
