#include "nats_wire.h"

#include <cstdint>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "sv.h"
#include "switchboard/status.h"

namespace switchboard::nats {
namespace {

constexpr char kHex[] = "0123456789ABCDEF";

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

std::string Ce(std::string_view name) { return absl::StrCat(Sv(kCePrefix), Sv(name)); }

// Attributes with a field of their own; an extension with one of these names
// would be ambiguous on the wire.
bool IsMappedAttribute(std::string_view name) {
  static constexpr std::string_view kNames[] = {
      "id",          "source",         "specversion",   "type",          "time",
      "datacontenttype", "subject",    "traceparent",   "tracestate",    "idempotencykey",
      "expirytime",  "correlationid",  "replyto",       "attempt",       "style",
      "statuscode",  "statusmessage"};
  for (std::string_view n : kNames) {
    if (n == name) return true;
  }
  return false;
}

bool IsAttributeName(std::string_view name) {
  if (name.empty()) return false;
  for (char c : name) {
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'))) return false;
  }
  return true;
}

// Unquotes an RFC 7230 quoted-string ("..." with \-escapes); other text is
// returned unchanged.
std::string Unquote(std::string_view v) {
  if (v.size() < 2 || v.front() != '"' || v.back() != '"') return std::string(v);
  std::string out;
  v = v.substr(1, v.size() - 2);
  for (size_t i = 0; i < v.size(); ++i) {
    if (v[i] == '\\' && i + 1 < v.size()) ++i;
    out.push_back(v[i]);
  }
  return out;
}

}  // namespace

std::string PercentEncode(std::string_view value) {
  std::string out;
  out.reserve(value.size());
  for (unsigned char c : value) {
    if (c < 0x21 || c > 0x7e || c == '"' || c == '%') {
      out.push_back('%');
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 0xf]);
    } else {
      out.push_back(static_cast<char>(c));
    }
  }
  return out;
}

absl::StatusOr<std::string> PercentDecode(std::string_view value) {
  std::string text = Unquote(value);
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] != '%') {
      out.push_back(text[i]);
      continue;
    }
    if (i + 2 >= text.size()) {
      return absl::InvalidArgumentError("truncated percent-escape");
    }
    int hi = HexValue(text[i + 1]);
    int lo = HexValue(text[i + 2]);
    if (hi < 0 || lo < 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("bad percent-escape \"", text.substr(i, 3), "\""));
    }
    out.push_back(static_cast<char>((hi << 4) | lo));
    i += 2;
  }
  return out;
}

std::string DedupId(const Envelope& env) {
  std::string id = env.idempotency_key.empty() ? env.id : env.idempotency_key;
  // A replayed dead letter is the same logical call sent again on purpose:
  // the broker must not drop it as a duplicate of the original.
  auto replayed = env.extensions.find("deadletterreplayedat");
  if (replayed != env.extensions.end()) id += "+replay@" + replayed->second;
  return id;
}

HeaderList EnvelopeToHeaders(const Envelope& env) {
  HeaderList h;
  h.reserve(16 + env.extensions.size());
  auto add = [&h](std::string key, const auto& value) {
    std::string_view v(value.data(), value.size());
    h.emplace_back(std::move(key), PercentEncode(v));
  };
  add(Ce("id"), env.id);
  add(Ce("source"), env.source);
  add(Ce("specversion"), env.spec_version);
  add(Ce("type"), env.type);
  if (env.time != absl::UnixEpoch()) add(Ce("time"), FormatRfc3339(env.time));
  if (!env.data_content_type.empty()) {
    add(Ce("datacontenttype"), env.data_content_type);
    add(std::string(kContentTypeHeader), env.data_content_type);
  }
  if (!env.subject.empty()) add(Ce("subject"), env.subject);
  if (!env.traceparent.empty()) {
    add(Ce(attr::kTraceparent), env.traceparent);
    add(std::string(attr::kTraceparent), env.traceparent);
  }
  if (!env.tracestate.empty()) {
    add(Ce(attr::kTracestate), env.tracestate);
    add(std::string(attr::kTracestate), env.tracestate);
  }
  if (!env.idempotency_key.empty()) add(Ce(attr::kIdempotencyKey), env.idempotency_key);
  if (env.has_deadline()) add(Ce(attr::kExpiryTime), FormatRfc3339(env.deadline));
  if (!env.correlation_id.empty()) add(Ce(attr::kCorrelationId), env.correlation_id);
  if (!env.reply_to.empty()) add(Ce(attr::kReplyTo), env.reply_to);
  add(Ce(attr::kAttempt), absl::StrCat(env.attempt));
  if (env.style != Style::kUnspecified) add(Ce(attr::kStyle), StyleName(env.style));
  if (!env.status.ok()) {
    add(Ce(attr::kStatusCode), absl::StrCat(static_cast<int>(env.status.code())));
    add(Ce(attr::kStatusMessage), env.status.message());
  }
  for (const auto& [name, value] : env.extensions) {
    if (!IsAttributeName(name) || IsMappedAttribute(name)) continue;
    add(Ce(name), value);
  }
  return h;
}

absl::StatusOr<Envelope> EnvelopeFromHeaders(const HeaderMap& headers, std::string data) {
  // Decode every value first so a bad escape anywhere is reported with its key.
  HeaderMap d;
  for (const auto& [key, raw] : headers) {
    absl::StatusOr<std::string> value = PercentDecode(raw);
    if (!value.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("NATS header ", key, ": ", value.status().message()));
    }
    d.emplace(key, *std::move(value));
  }
  auto get = [&d](std::string_view key, std::string* out) {
    auto it = d.find(key);
    if (it == d.end()) return false;
    *out = it->second;
    return true;
  };

  Envelope env;
  std::string v;
  std::string content_type;
  bool has_ct = get(kContentTypeHeader, &content_type);
  if (has_ct && absl::StartsWithIgnoreCase(content_type, "application/cloudevents")) {
    return absl::InvalidArgumentError(
        absl::StrCat("structured-mode CloudEvents (Content-Type ", content_type.substr(0, 64),
                     ") are not supported; send binary mode (ce-* headers)"));
  }
  if (!get(Ce("id"), &env.id) || env.id.empty()) {
    return absl::InvalidArgumentError("NATS message has no ce-id header");
  }
  if (!get(Ce("type"), &env.type) || env.type.empty()) {
    return absl::InvalidArgumentError("NATS message has no ce-type header");
  }
  if (!get(Ce("specversion"), &env.spec_version)) {
    return absl::InvalidArgumentError("NATS message has no ce-specversion header");
  }
  if (env.spec_version != "1.0") {
    return absl::InvalidArgumentError(absl::StrCat(
        "ce-specversion is \"", env.spec_version.substr(0, 16), "\"; only \"1.0\" is understood"));
  }
  get(Ce("source"), &env.source);
  if (get(Ce("time"), &v)) {
    absl::StatusOr<absl::Time> t = ParseRfc3339(v);
    if (!t.ok()) return absl::InvalidArgumentError(absl::StrCat("ce-time: ", t.status().message()));
    env.time = *t;
  }
  if (get(Ce("datacontenttype"), &v)) {
    env.data_content_type = v;
  } else if (has_ct) {
    env.data_content_type = content_type;
  }
  get(Ce("subject"), &env.subject);
  if (!get(Ce(attr::kTraceparent), &env.traceparent)) get(attr::kTraceparent, &env.traceparent);
  if (!get(Ce(attr::kTracestate), &env.tracestate)) get(attr::kTracestate, &env.tracestate);
  get(Ce(attr::kIdempotencyKey), &env.idempotency_key);
  if (get(Ce(attr::kExpiryTime), &v)) {
    absl::StatusOr<absl::Time> t = ParseRfc3339(v);
    if (!t.ok()) {
      return absl::InvalidArgumentError(absl::StrCat("ce-expirytime: ", t.status().message()));
    }
    env.deadline = *t;
  }
  get(Ce(attr::kCorrelationId), &env.correlation_id);
  get(Ce(attr::kReplyTo), &env.reply_to);
  if (get(Ce(attr::kAttempt), &v)) {
    int32_t attempt = 0;
    if (!absl::SimpleAtoi(v, &attempt) || attempt < 1) {
      return absl::InvalidArgumentError(
          absl::StrCat("ce-attempt is \"", v.substr(0, 16), "\"; must be an integer >= 1"));
    }
    env.attempt = attempt;
  }
  if (get(Ce(attr::kStyle), &v) && !ParseStyle(v, &env.style)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "ce-style is \"", v.substr(0, 16), "\"; must be request, command or event"));
  }
  if (get(Ce(attr::kStatusCode), &v)) {
    absl::StatusCode code;
    if (!ParseCode(v, &code)) {
      return absl::InvalidArgumentError(
          absl::StrCat("ce-statuscode is \"", v.substr(0, 24), "\"; not a status code"));
    }
    std::string message;
    get(Ce(attr::kStatusMessage), &message);
    if (code != absl::StatusCode::kOk) env.status = absl::Status(code, message);
  }

  for (const auto& [key, value] : d) {
    if (!absl::StartsWith(key, Sv(kCePrefix))) continue;
    std::string name = absl::AsciiStrToLower(key.substr(kCePrefix.size()));
    if (!IsAttributeName(name) || IsMappedAttribute(name)) continue;
    env.extensions[name] = value;
  }
  env.data = std::move(data);
  return env;
}

}  // namespace switchboard::nats
