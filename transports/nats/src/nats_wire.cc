#include "nats_wire.h"

#include <array>
#include <cstdint>
#include <cstring>
#include <optional>

#include "absl/container/inlined_vector.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "sv.h"
#include "switchboard/internal/attribute_names.h"
#include "switchboard/internal/envelope_pool.h"
#include "switchboard/status.h"

namespace switchboard::nats {
namespace {

// An empty header value on the wire (see ForEachHeader).
constexpr std::string_view kQuotedEmpty = "\"\"";

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

using internal::IsAttributeName;
using internal::IsMappedAttribute;

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

bool IsQuoted(std::string_view v) { return v.size() >= 2 && v.front() == '"' && v.back() == '"'; }

// A value that is neither quoted nor escaped is its own decoding.
bool IsPlain(std::string_view v) { return !IsQuoted(v) && v.find('%') == std::string_view::npos; }

absl::Status CheckEncoding(std::string_view raw) {
  if (IsPlain(raw)) return absl::OkStatus();
  return PercentDecode(raw).status();
}

// Decodes a value CheckEncoding accepted.
void DecodeValid(std::string_view raw, std::string* out) {
  if (IsPlain(raw)) {
    out->assign(raw);
    return;
  }
  absl::StatusOr<std::string> v = PercentDecode(raw);
  if (v.ok()) *out = *std::move(v);
}

// The headers EnvelopeFromHeaders maps to fields, by exact spelling.
enum Slot {
  kSlotContentType,
  kSlotId,
  kSlotType,
  kSlotSpecVersion,
  kSlotSource,
  kSlotTime,
  kSlotDataContentType,
  kSlotSubject,
  kSlotCeTraceparent,
  kSlotTraceparent,
  kSlotCeTracestate,
  kSlotTracestate,
  kSlotIdempotencyKey,
  kSlotExpiryTime,
  kSlotCorrelationId,
  kSlotReplyTo,
  kSlotAttempt,
  kSlotStyle,
  kSlotStatusCode,
  kSlotStatusMessage,
  kSlotCount,
};

constexpr std::string_view kSlotKeys[kSlotCount] = {
    kContentTypeHeader, "ce-id",          "ce-type",           "ce-specversion",
    "ce-source",        "ce-time",        "ce-datacontenttype", "ce-subject",
    "ce-traceparent",   "traceparent",    "ce-tracestate",     "tracestate",
    "ce-idempotencykey", "ce-expirytime", "ce-correlationid",  "ce-replyto",
    "ce-attempt",       "ce-style",       "ce-statuscode",     "ce-statusmessage"};
constexpr size_t kMaxSlotKey = 18;

// The slots by key length (-1 ends a row): a lookup, done for every received
// header, compares bytes with at most four keys instead of scanning all.
constexpr auto kSlotsByLength = [] {
  std::array<std::array<int8_t, 5>, kMaxSlotKey + 1> t{};
  for (auto& row : t) row.fill(-1);
  for (int i = 0; i < kSlotCount; ++i) {
    auto& row = t[kSlotKeys[i].size()];
    size_t j = 0;
    while (row[j] >= 0) ++j;
    row[j] = static_cast<int8_t>(i);
  }
  return t;
}();

int SlotOf(std::string_view key) {
  if (key.size() > kMaxSlotKey) return -1;
  for (int8_t i : kSlotsByLength[key.size()]) {
    if (i < 0) break;
    if (kSlotKeys[i] == key) return i;
  }
  return -1;
}

// "YYYY-MM-DDTHH:MM:SS.nnnnnnnnnZ"
constexpr size_t kMaxTimestamp = 30;

// Days since 1970-01-01 of a proleptic Gregorian date, and back (H. Hinnant's
// civil algorithms).
int64_t DaysFromCivil(int64_t y, int m, int d) {
  y -= m <= 2 ? 1 : 0;
  const int64_t era = (y >= 0 ? y : y - 399) / 400;
  const int64_t yoe = y - era * 400;
  const int64_t doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
  const int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + doe - 719468;
}

void CivilFromDays(int64_t z, int64_t* y, int* m, int* d) {
  z += 719468;
  const int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  const int64_t doe = z - era * 146097;
  const int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  const int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const int64_t mp = (5 * doy + 2) / 153;
  *d = static_cast<int>(doy - (153 * mp + 2) / 5 + 1);
  *m = static_cast<int>(mp < 10 ? mp + 3 : mp - 9);
  *y = yoe + era * 400 + (*m <= 2 ? 1 : 0);
}

int DaysInMonth(int64_t y, int m) {
  static constexpr int kDays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  const bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
  return m == 2 && leap ? 29 : kDays[m - 1];
}

void Put(char* p, int64_t v, int digits) {
  for (int i = digits - 1; i >= 0; --i) {
    p[i] = static_cast<char>('0' + v % 10);
    v /= 10;
  }
}

// Writes `t` as FormatRfc3339 does into `buf` (at least kMaxTimestamp bytes)
// and returns the length; 0 when the time is outside years 1000..9999 or has
// sub-nanosecond digits (the caller then uses FormatRfc3339).
size_t FormatTimestampFast(absl::Time t, char* buf) {
  const int64_t seconds = absl::ToUnixSeconds(t);
  const absl::Duration sub = t - absl::FromUnixSeconds(seconds);
  const int64_t nanos = absl::ToInt64Nanoseconds(sub);
  if (sub != absl::Nanoseconds(nanos) || nanos < 0 || nanos >= 1'000'000'000) return 0;
  constexpr int64_t kDay = 86400;
  // 0001-01-01T00:00:00Z .. 9999-12-31T23:59:59Z; also keeps the infinite
  // times out of the arithmetic below.
  if (seconds < -62'135'596'800 || seconds > 253'402'300'799) return 0;
  int64_t days = seconds / kDay;
  int64_t sod = seconds % kDay;
  if (sod < 0) {
    sod += kDay;
    --days;
  }
  int64_t y;
  int m, d;
  CivilFromDays(days, &y, &m, &d);
  if (y < 1000 || y > 9999) return 0;
  Put(buf, y, 4);
  buf[4] = '-';
  Put(buf + 5, m, 2);
  buf[7] = '-';
  Put(buf + 8, d, 2);
  buf[10] = 'T';
  Put(buf + 11, sod / 3600, 2);
  buf[13] = ':';
  Put(buf + 14, sod / 60 % 60, 2);
  buf[16] = ':';
  Put(buf + 17, sod % 60, 2);
  size_t n = 19;
  if (nanos != 0) {
    buf[n++] = '.';
    Put(buf + n, nanos, 9);
    size_t digits = 9;
    while (buf[n + digits - 1] == '0') --digits;
    n += digits;
  }
  buf[n++] = 'Z';
  return n;
}

bool Digits(std::string_view text, size_t pos, size_t count, int64_t* out) {
  int64_t v = 0;
  for (size_t i = pos; i < pos + count; ++i) {
    if (text[i] < '0' || text[i] > '9') return false;
    v = v * 10 + (text[i] - '0');
  }
  *out = v;
  return true;
}

// Parses the canonical form FormatTimestampFast writes (any 1..9 fraction
// digits); false for anything else, which the caller hands to ParseRfc3339.
bool ParseTimestampFast(std::string_view text, absl::Time* out) {
  if (text.size() < 20 || text.size() > kMaxTimestamp || text.back() != 'Z' || text[4] != '-' ||
      text[7] != '-' || text[10] != 'T' || text[13] != ':' || text[16] != ':') {
    return false;
  }
  int64_t y, mo, d, h, mi, s;
  if (!Digits(text, 0, 4, &y) || !Digits(text, 5, 2, &mo) || !Digits(text, 8, 2, &d) ||
      !Digits(text, 11, 2, &h) || !Digits(text, 14, 2, &mi) || !Digits(text, 17, 2, &s)) {
    return false;
  }
  if (y < 1000 || mo < 1 || mo > 12 || d < 1 || d > DaysInMonth(y, static_cast<int>(mo)) ||
      h > 23 || mi > 59 || s > 59) {
    return false;
  }
  int64_t nanos = 0;
  const size_t frac = text.size() - 20;  // digits after '.'
  if (frac > 0) {
    if (text[19] != '.' || frac < 2 || !Digits(text, 20, frac - 1, &nanos)) return false;
    for (size_t i = frac - 1; i < 9; ++i) nanos *= 10;
  }
  const int64_t days = DaysFromCivil(y, static_cast<int>(mo), static_cast<int>(d));
  *out = absl::FromUnixSeconds(days * 86400 + h * 3600 + mi * 60 + s) + absl::Nanoseconds(nanos);
  return true;
}

}  // namespace

absl::StatusOr<std::string> PercentDecode(std::string_view value) {
  std::string unquoted;
  std::string_view text = value;
  if (IsQuoted(value)) {
    unquoted = Unquote(value);
    text = unquoted;
  }
  size_t pct = text.find('%');
  if (pct == std::string_view::npos) return std::string(text);
  std::string out;
  out.reserve(text.size());
  size_t done = 0;
  while (pct != std::string_view::npos) {
    out.append(text.substr(done, pct - done));
    if (pct + 2 >= text.size()) {
      return absl::InvalidArgumentError("truncated percent-escape");
    }
    int hi = HexValue(text[pct + 1]);
    int lo = HexValue(text[pct + 2]);
    if (hi < 0 || lo < 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("bad percent-escape \"", Sv(text.substr(pct, 3)), "\""));
    }
    out.push_back(static_cast<char>((hi << 4) | lo));
    done = pct + 3;
    pct = text.find('%', done);
  }
  out.append(text.substr(done));
  return out;
}

std::string FormatTimestamp(absl::Time t) {
  char buf[kMaxTimestamp + 1];
  size_t n = FormatTimestampFast(t, buf);
  return n == 0 ? FormatRfc3339(t) : std::string(buf, n);
}

absl::StatusOr<absl::Time> ParseTimestamp(std::string_view text) {
  absl::Time t;
  if (ParseTimestampFast(text, &t)) return t;
  return ParseRfc3339(text);
}

std::string DedupId(const Envelope& env) {
  std::string id = env.idempotency_key.empty() ? env.id : env.idempotency_key;
  // A replayed dead letter is the same logical call sent again on purpose:
  // the broker must not drop it as a duplicate of the original.
  auto replayed = env.extensions.find("deadletterreplayedat");
  if (replayed != env.extensions.end()) id += "+replay@" + replayed->second;
  return id;
}

void ForEachHeader(const Envelope& env,
                   absl::FunctionRef<void(std::string_view, std::string_view)> emit) {
  std::string scratch;
  // `value` must be NUL-terminated unless it needs escaping.
  auto add = [&](std::string_view key, std::string_view value) {
    if (value.empty()) {
      // cnats (3.4) reads an empty header value as the whole next header
      // line, losing that header: an empty value goes as the quoted empty
      // string, which readers unquote (RFC 7230).
      emit(key, kQuotedEmpty);
      return;
    }
    if (!internal::NeedsPercentEncoding(value)) {
      emit(key, value);
      return;
    }
    scratch.clear();
    AppendPercentEncoded(value, &scratch);
    emit(key, scratch);
  };
  auto add_copy = [&](std::string_view key, std::string_view value) {
    if (value.empty()) {
      emit(key, kQuotedEmpty);
      return;
    }
    scratch.clear();
    AppendPercentEncoded(value, &scratch);
    emit(key, scratch);
  };
  auto add_time = [&](std::string_view key, absl::Time t) {
    char buf[kMaxTimestamp + 1];
    size_t n = FormatTimestampFast(t, buf);
    if (n == 0) {
      add_copy(key, FormatRfc3339(t));
      return;
    }
    buf[n] = '\0';
    emit(key, std::string_view(buf, n));
  };
  add("ce-id", env.id);
  add("ce-source", env.source);
  add("ce-specversion", env.spec_version);
  add("ce-type", env.type);
  if (env.time != absl::UnixEpoch()) add_time("ce-time", env.time);
  // Binary mode: `Content-Type` would say only that the message is not
  // structured, which its absence says as well.
  if (!env.data_content_type.empty()) add("ce-datacontenttype", env.data_content_type);
  if (!env.subject.empty()) add("ce-subject", env.subject);
  if (!env.traceparent.empty()) {
    add("ce-traceparent", env.traceparent);
    add("traceparent", env.traceparent);
  }
  if (!env.tracestate.empty()) {
    add("ce-tracestate", env.tracestate);
    add("tracestate", env.tracestate);
  }
  if (!WireOmitsIdempotencyKey(env)) add("ce-idempotencykey", env.idempotency_key);
  if (env.has_deadline()) add_time("ce-expirytime", env.deadline);
  if (!env.correlation_id.empty()) add("ce-correlationid", env.correlation_id);
  if (!env.reply_to.empty()) add("ce-replyto", env.reply_to);
  if (!WireOmitsAttempt(env)) {
    char attempt[16];
    const size_t attempt_len = static_cast<size_t>(
        absl::numbers_internal::FastIntToBuffer(env.attempt, attempt) - attempt);
    emit("ce-attempt", std::string_view(attempt, attempt_len));
  }
  if (env.style != Style::kUnspecified) add_copy("ce-style", StyleName(env.style));
  if (!env.status.ok()) {
    add_copy("ce-statuscode", absl::StrCat(static_cast<int>(env.status.code())));
    add_copy("ce-statusmessage", std::string_view(env.status.message().data(),
                                                  env.status.message().size()));
  }
  std::string key;
  for (const auto& [name, value] : env.extensions) {
    if (!IsAttributeName(name) || IsMappedAttribute(name)) continue;
    key.assign(kCePrefix);
    key.append(name);
    add(key, value);
  }
}

HeaderList EnvelopeToHeaders(const Envelope& env) {
  HeaderList h;
  h.reserve(16 + env.extensions.size());
  ForEachHeader(env, [&h](std::string_view key, std::string_view value) {
    h.emplace_back(key, value);
  });
  return h;
}

absl::StatusOr<Envelope> EnvelopeFromHeaders(const HeaderMap& headers, std::string data) {
  std::vector<HeaderView> views;
  views.reserve(headers.size());
  for (const auto& [key, value] : headers) views.push_back({key, value});
  return EnvelopeFromHeaders(views, std::move(data));
}

absl::StatusOr<Envelope> EnvelopeFromHeaders(absl::Span<const HeaderView> headers,
                                             std::string data) {
  // One pass: every value's encoding is checked (a bad escape anywhere is
  // reported with its key) and the mapped headers are picked out as views.
  // Other ce-* headers are collected for the extension pass.
  std::optional<std::string_view> slot[kSlotCount];
  absl::InlinedVector<const HeaderView*, 8> extensions;
  for (const HeaderView& h : headers) {
    if (absl::Status s = CheckEncoding(h.value); !s.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("NATS header ", Sv(h.key), ": ", s.message()));
    }
    int i = SlotOf(h.key);
    if (i >= 0) {
      if (!slot[i]) slot[i] = h.value;
    } else if (h.key.size() > kCePrefix.size() && h.key.substr(0, kCePrefix.size()) == kCePrefix) {
      extensions.push_back(&h);
    }
  }
  auto get = [&slot](Slot i, std::string* out) {
    if (!slot[i]) return false;
    DecodeValid(*slot[i], out);
    return true;
  };
  // The decoded value of a header that is only parsed or compared: the
  // header itself when it needs no decoding, else decoded into `scratch`.
  auto view = [&slot](Slot i, std::string* scratch) -> std::optional<std::string_view> {
    if (!slot[i]) return std::nullopt;
    if (IsPlain(*slot[i])) return *slot[i];
    DecodeValid(*slot[i], scratch);
    return std::string_view(*scratch);
  };

  // A spare envelope: its strings take the values without allocating.
  Envelope env = internal::NewEnvelope();
  std::string scratch;
  std::string content_type_scratch;
  const std::optional<std::string_view> content_type =
      view(kSlotContentType, &content_type_scratch);
  if (content_type && absl::StartsWithIgnoreCase(Sv(*content_type), "application/cloudevents")) {
    return absl::InvalidArgumentError(
        absl::StrCat("structured-mode CloudEvents (Content-Type ", Sv(content_type->substr(0, 64)),
                     ") are not supported; send binary mode (ce-* headers)"));
  }
  if (!get(kSlotId, &env.id) || env.id.empty()) {
    return absl::InvalidArgumentError("NATS message has no ce-id header");
  }
  if (!get(kSlotType, &env.type) || env.type.empty()) {
    return absl::InvalidArgumentError("NATS message has no ce-type header");
  }
  if (!get(kSlotSpecVersion, &env.spec_version)) {
    return absl::InvalidArgumentError("NATS message has no ce-specversion header");
  }
  if (env.spec_version != "1.0") {
    return absl::InvalidArgumentError(absl::StrCat(
        "ce-specversion is \"", env.spec_version.substr(0, 16), "\"; only \"1.0\" is understood"));
  }
  get(kSlotSource, &env.source);
  if (std::optional<std::string_view> v = view(kSlotTime, &scratch)) {
    absl::StatusOr<absl::Time> t = ParseTimestamp(*v);
    if (!t.ok()) return absl::InvalidArgumentError(absl::StrCat("ce-time: ", t.status().message()));
    env.time = *t;
  }
  if (std::optional<std::string_view> v = view(kSlotDataContentType, &scratch)) {
    env.data_content_type.assign(*v);
  } else if (content_type) {
    env.data_content_type.assign(*content_type);
  }
  get(kSlotSubject, &env.subject);
  if (!get(kSlotCeTraceparent, &env.traceparent)) get(kSlotTraceparent, &env.traceparent);
  if (!get(kSlotCeTracestate, &env.tracestate)) get(kSlotTracestate, &env.tracestate);
  get(kSlotIdempotencyKey, &env.idempotency_key);
  if (std::optional<std::string_view> v = view(kSlotExpiryTime, &scratch)) {
    absl::StatusOr<absl::Time> t = ParseTimestamp(*v);
    if (!t.ok()) {
      return absl::InvalidArgumentError(absl::StrCat("ce-expirytime: ", t.status().message()));
    }
    env.deadline = *t;
  }
  get(kSlotCorrelationId, &env.correlation_id);
  get(kSlotReplyTo, &env.reply_to);
  if (std::optional<std::string_view> v = view(kSlotAttempt, &scratch)) {
    int32_t attempt = 0;
    if (!absl::SimpleAtoi(Sv(*v), &attempt) || attempt < 1) {
      return absl::InvalidArgumentError(absl::StrCat(
          "ce-attempt is \"", Sv(v->substr(0, 16)), "\"; must be an integer >= 1"));
    }
    env.attempt = attempt;
  }
  if (std::optional<std::string_view> v = view(kSlotStyle, &scratch);
      v && !ParseStyle(*v, &env.style)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "ce-style is \"", Sv(v->substr(0, 16)), "\"; must be request, command or event"));
  }
  if (std::optional<std::string_view> v = view(kSlotStatusCode, &scratch)) {
    absl::StatusCode code;
    if (!ParseCode(*v, &code)) {
      return absl::InvalidArgumentError(
          absl::StrCat("ce-statuscode is \"", Sv(v->substr(0, 24)), "\"; not a status code"));
    }
    std::string message;
    get(kSlotStatusMessage, &message);
    if (code != absl::StatusCode::kOk) env.status = absl::Status(code, message);
  }

  std::string lower;
  for (const HeaderView* h : extensions) {
    // Lower-cased only when it is not already: a sender's own spelling.
    std::string_view name = h->key.substr(kCePrefix.size());
    if (!IsAttributeName(name)) {
      lower = absl::AsciiStrToLower(Sv(name));
      name = lower;
    }
    if (!IsAttributeName(name) || IsMappedAttribute(name)) continue;
    DecodeValid(h->value, &env.extensions[std::string(name)]);
  }
  RestoreOmittedAttributes(&env);
  env.data = std::move(data);
  return env;
}

}  // namespace switchboard::nats
