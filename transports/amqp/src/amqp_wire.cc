#include "amqp_wire.h"

#include <cstdint>
#include <exception>
#include <map>
#include <optional>
#include <set>
#include <utility>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/match.h"
#include "proton/binary.hpp"
#include "proton/codec/map.hpp"
#include "proton/codec/vector.hpp"
#include "proton/message_id.hpp"
#include "proton/scalar.hpp"
#include "proton/timestamp.hpp"
#include "proton/types.hpp"
#include "proton/value.hpp"
#include "sv.h"
#include "switchboard/status.h"

namespace switchboard::amqp {
namespace {

// A received message's application properties, decoded once in wire order
// (no map: a message has about fifteen, and lookups compare in place).
using PropList = std::vector<std::pair<std::string, proton::scalar>>;

// The entry named `key`, or null.
const proton::scalar* FindPlain(const PropList& props, std::string_view key) {
  for (const auto& [k, v] : props) {
    if (k == key) return &v;
  }
  return nullptr;
}

// The entry `cloudEvents_<attribute>`, or null.
const proton::scalar* Find(const PropList& props, std::string_view attribute) {
  const size_t prefix = kCePrefix.size();
  for (const auto& [k, v] : props) {
    if (k.size() == prefix + attribute.size() && std::string_view(k).substr(prefix) == attribute &&
        std::string_view(k).substr(0, prefix) == kCePrefix) {
      return &v;
    }
  }
  return nullptr;
}

std::string Key(std::string_view attribute) { return absl::StrCat(Sv(kCePrefix), Sv(attribute)); }

proton::timestamp ToTimestamp(absl::Time t) { return proton::timestamp(absl::ToUnixMillis(t)); }

// The attributes this mapping owns; any other `cloudEvents_<name>` is an
// extension passed through.
const std::set<std::string, std::less<>>& KnownAttributes() {
  static const auto* known = new std::set<std::string, std::less<>>{
      "id", "source", "specversion", "type", "time", "datacontenttype", "subject",
      std::string(attr::kTraceparent), std::string(attr::kTracestate),
      std::string(attr::kIdempotencyKey), std::string(attr::kExpiryTime),
      std::string(attr::kCorrelationId), std::string(attr::kReplyTo),
      std::string(attr::kAttempt), std::string(attr::kStyle), std::string(attr::kStatusCode),
      std::string(attr::kStatusMessage)};
  return *known;
}

bool IsStringType(proton::type_id t) { return t == proton::STRING || t == proton::SYMBOL; }

bool IsIntegerType(proton::type_id t) {
  switch (t) {
    case proton::BYTE: case proton::UBYTE: case proton::SHORT: case proton::USHORT:
    case proton::INT: case proton::UINT: case proton::LONG: case proton::ULONG:
      return true;
    default:
      return false;
  }
}

std::string ScalarString(const proton::scalar& s) {
  return s.type() == proton::SYMBOL ? std::string(proton::get<proton::symbol>(s))
                                    : proton::get<std::string>(s);
}

absl::Status WrongType(std::string_view attribute, std::string_view want, const proton::scalar& s) {
  return absl::InvalidArgumentError(absl::StrCat("AMQP application property ", Key(attribute),
                                                 " must be ", Sv(want), ", got ",
                                                 proton::type_name(s.type())));
}

// Returns NotFound when absent (callers decide whether that is an error).
// (A NotFound without a message: nothing to allocate for the usual absent
// optional attribute.)
absl::StatusOr<std::string> ReadString(const PropList& props, std::string_view attribute) {
  const proton::scalar* s = Find(props, attribute);
  if (s == nullptr) return absl::NotFoundError("");
  if (!IsStringType(s->type())) return WrongType(attribute, "a string", *s);
  return ScalarString(*s);
}

absl::StatusOr<absl::Time> ReadTime(const PropList& props, std::string_view attribute) {
  const proton::scalar* found = Find(props, attribute);
  if (found == nullptr) return absl::NotFoundError("");
  const proton::scalar& s = *found;
  if (s.type() == proton::TIMESTAMP) {
    return absl::FromUnixMillis(proton::get<proton::timestamp>(s).milliseconds());
  }
  if (IsStringType(s.type())) {
    auto t = ParseRfc3339(ScalarString(s));
    if (!t.ok()) {
      return absl::InvalidArgumentError(absl::StrCat("AMQP application property ", Key(attribute),
                                                     " is not an RFC 3339 time: ",
                                                     t.status().message()));
    }
    return *t;
  }
  return WrongType(attribute, "a timestamp or an RFC 3339 string", s);
}

absl::StatusOr<int64_t> ReadInt(const PropList& props, std::string_view attribute) {
  const proton::scalar* found = Find(props, attribute);
  if (found == nullptr) return absl::NotFoundError("");
  const proton::scalar& s = *found;
  if (IsIntegerType(s.type())) {
    if (s.type() == proton::ULONG) {
      uint64_t u = proton::get<uint64_t>(s);
      if (u > static_cast<uint64_t>(INT64_MAX)) return WrongType(attribute, "a long in range", s);
      return static_cast<int64_t>(u);
    }
    return proton::coerce<int64_t>(s);
  }
  if (IsStringType(s.type())) {
    int64_t v = 0;
    if (absl::SimpleAtoi(ScalarString(s), &v)) return v;
    return absl::InvalidArgumentError(
        absl::StrCat("AMQP application property ", Key(attribute), " is not an integer"));
  }
  return WrongType(attribute, "a long", s);
}

// Absent is fine (empty); a wrong type is not.
absl::Status ReadOptionalString(const PropList& props, std::string_view attribute, std::string* out) {
  auto v = ReadString(props, attribute);
  if (v.ok()) {
    *out = *std::move(v);
    return absl::OkStatus();
  }
  return absl::IsNotFound(v.status()) ? absl::OkStatus() : v.status();
}

absl::Status ReadRequiredString(const PropList& props, std::string_view attribute, std::string* out) {
  auto v = ReadString(props, attribute);
  if (absl::IsNotFound(v.status())) {
    return absl::InvalidArgumentError(
        absl::StrCat("AMQP message has no application property ", Key(attribute)));
  }
  if (!v.ok()) return v.status();
  if (v->empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("AMQP application property ", Key(attribute), " is empty"));
  }
  *out = *std::move(v);
  return absl::OkStatus();
}

// Extension values other than strings keep their canonical string form.
bool ExtensionString(const proton::scalar& s, std::string* out) {
  if (IsStringType(s.type())) {
    *out = ScalarString(s);
  } else if (s.type() == proton::BOOLEAN) {
    *out = proton::get<bool>(s) ? "true" : "false";
  } else if (IsIntegerType(s.type())) {
    *out = s.type() == proton::ULONG ? absl::StrCat(proton::get<uint64_t>(s))
                                     : absl::StrCat(proton::coerce<int64_t>(s));
  } else if (s.type() == proton::TIMESTAMP) {
    *out = FormatRfc3339(absl::FromUnixMillis(proton::get<proton::timestamp>(s).milliseconds()));
  } else if (s.type() == proton::BINARY) {
    const proton::binary b = proton::get<proton::binary>(s);
    out->assign(b.begin(), b.end());
  } else {
    return false;
  }
  return true;
}

std::string MessageIdString(const proton::message_id& id) {
  switch (id.type()) {
    case proton::STRING:
      return proton::get<std::string>(id);
    case proton::NULL_TYPE:
      return "";
    default:
      return proton::to_string(id);
  }
}

// AMQP type codes and lengths: a string, symbol or binary of up to 255
// bytes has 2 bytes of them, a longer one 5.
uint64_t Sized(size_t n) { return n + (n <= 255 ? 2 : 5); }

uint64_t ScalarBytes(const proton::scalar& s) {
  switch (s.type()) {
    case proton::STRING:
      return Sized(proton::get<std::string>(s).size());
    case proton::SYMBOL:
      return Sized(proton::get<proton::symbol>(s).size());
    case proton::BINARY:
      return Sized(proton::get<proton::binary>(s).size());
    case proton::UUID:
    case proton::DECIMAL128:
      return 17;
    default:
      return 9;  // the widest of the remaining fixed-size types
  }
}

// The received message's size as encoded, counted from its parts: the body,
// every field of the properties section, every application property (mapped
// to the envelope or not). Unset when it has annotations, which this does not
// count (the caller then encodes the message to measure it).
std::optional<uint64_t> ReceivedSize(const proton::message& msg, const PropList& props,
                                     size_t body_bytes) {
  if (!msg.message_annotations().empty() || !msg.delivery_annotations().empty()) {
    return std::nullopt;
  }
  constexpr uint64_t kFraming = 16;  // section descriptors, list and map headers, the header
  constexpr uint64_t kTimes = 3 * 9;  // absolute-expiry-time, creation-time, group-sequence
  uint64_t size = kFraming + kTimes + Sized(body_bytes);
  for (const std::string& field :
       {MessageIdString(msg.id()), MessageIdString(msg.correlation_id()), msg.reply_to(),
        msg.content_type(), msg.to(), msg.subject(), msg.user(), msg.group_id(),
        msg.reply_to_group_id(), msg.content_encoding()}) {
    if (!field.empty()) size += Sized(field.size());
  }
  for (const auto& [key, value] : props) size += Sized(key.size()) + ScalarBytes(value);
  return size;
}

absl::StatusOr<Envelope> Decode(const proton::message& msg, std::optional<uint64_t>* wire_bytes) {
  PropList props;
  const proton::value& pv = msg.properties().value();
  if (!pv.empty()) {
    props.reserve(24);
    proton::get(pv, props);
  }

  Envelope env;
  env.data_content_type.clear();
  if (auto s = ReadRequiredString(props, "id", &env.id); !s.ok()) return s;
  if (auto s = ReadRequiredString(props, "type", &env.type); !s.ok()) return s;
  if (auto s = ReadRequiredString(props, "specversion", &env.spec_version); !s.ok()) return s;
  if (auto s = ReadOptionalString(props, "source", &env.source); !s.ok()) return s;
  if (auto s = ReadOptionalString(props, "subject", &env.subject); !s.ok()) return s;
  if (auto s = ReadOptionalString(props, "datacontenttype", &env.data_content_type); !s.ok()) {
    return s;
  }
  if (env.data_content_type.empty()) env.data_content_type = msg.content_type();

  if (auto t = ReadTime(props, "time"); t.ok()) {
    env.time = *t;
  } else if (!absl::IsNotFound(t.status())) {
    return t.status();
  } else if (msg.creation_time().milliseconds() != 0) {
    env.time = absl::FromUnixMillis(msg.creation_time().milliseconds());
  }
  if (auto t = ReadTime(props, attr::kExpiryTime); t.ok()) {
    env.deadline = *t;
  } else if (!absl::IsNotFound(t.status())) {
    return t.status();
  }

  // Trace context: the CloudEvents form first, then the plain W3C form.
  if (auto s = ReadOptionalString(props, attr::kTraceparent, &env.traceparent); !s.ok()) return s;
  if (auto s = ReadOptionalString(props, attr::kTracestate, &env.tracestate); !s.ok()) return s;
  auto plain = [&](std::string_view name, std::string* out) {
    if (!out->empty()) return;
    const proton::scalar* s = FindPlain(props, name);
    if (s != nullptr && IsStringType(s->type())) *out = ScalarString(*s);
  };
  plain(attr::kTraceparent, &env.traceparent);
  plain(attr::kTracestate, &env.tracestate);

  if (auto s = ReadOptionalString(props, attr::kIdempotencyKey, &env.idempotency_key); !s.ok()) {
    return s;
  }
  if (auto s = ReadOptionalString(props, attr::kCorrelationId, &env.correlation_id); !s.ok()) {
    return s;
  }
  if (env.correlation_id.empty()) env.correlation_id = MessageIdString(msg.correlation_id());
  if (auto s = ReadOptionalString(props, attr::kReplyTo, &env.reply_to); !s.ok()) return s;
  if (env.reply_to.empty()) env.reply_to = msg.reply_to();

  if (auto a = ReadInt(props, attr::kAttempt); a.ok()) {
    if (*a < 1 || *a > INT32_MAX) {
      return absl::InvalidArgumentError(
          absl::StrCat("AMQP application property ", Key(attr::kAttempt), " must be >= 1"));
    }
    env.attempt = static_cast<int32_t>(*a);
  } else if (!absl::IsNotFound(a.status())) {
    return a.status();
  }

  std::string style;
  if (auto s = ReadOptionalString(props, attr::kStyle, &style); !s.ok()) return s;
  if (!style.empty() && !ParseStyle(style, &env.style)) {
    return absl::InvalidArgumentError(
        absl::StrCat("AMQP application property ", Key(attr::kStyle), " has unknown style"));
  }

  absl::StatusCode code = absl::StatusCode::kOk;
  if (const proton::scalar* sc = Find(props, attr::kStatusCode); sc != nullptr) {
    if (IsStringType(sc->type())) {
      if (!ParseCode(ScalarString(*sc), &code)) {
        return absl::InvalidArgumentError(absl::StrCat("AMQP application property ",
                                                       Key(attr::kStatusCode), " is not a code"));
      }
    } else {
      auto c = ReadInt(props, attr::kStatusCode);
      if (!c.ok()) return c.status();
      code = CodeFromInt(static_cast<int>(std::clamp<int64_t>(*c, -1, 1000)));
    }
  }
  std::string status_message;
  if (auto s = ReadOptionalString(props, attr::kStatusMessage, &status_message); !s.ok()) return s;
  if (code != absl::StatusCode::kOk) env.status = absl::Status(code, status_message);

  for (const auto& [key, value] : props) {
    if (!absl::StartsWith(key, Sv(kCePrefix))) continue;
    std::string name = key.substr(kCePrefix.size());
    if (name.empty() || KnownAttributes().count(name) > 0) continue;
    std::string text;
    if (ExtensionString(value, &text)) env.extensions[name] = std::move(text);
  }

  const proton::value& body = msg.body();
  switch (body.type()) {
    case proton::NULL_TYPE:
      break;
    case proton::BINARY: {
      const proton::binary b = proton::get<proton::binary>(body);
      env.data.assign(b.begin(), b.end());
      break;
    }
    case proton::STRING:
      env.data = proton::get<std::string>(body);
      break;
    default:
      return absl::InvalidArgumentError(absl::StrCat(
          "AMQP message body must be one data section (binary), got ",
          proton::type_name(body.type())));
  }

  if (auto s = ValidateEnvelope(env); !s.ok()) return s;
  if (wire_bytes != nullptr) *wire_bytes = ReceivedSize(msg, props, env.data.size());
  return env;
}

}  // namespace

void EnvelopeToMessage(const Envelope& env, bool durable, proton::message* msg) {
  msg->clear();
  msg->id(proton::message_id(env.id));
  if (!env.correlation_id.empty()) msg->correlation_id(proton::message_id(env.correlation_id));
  if (!env.reply_to.empty()) msg->reply_to(env.reply_to);
  msg->content_type(env.data_content_type);
  msg->creation_time(ToTimestamp(env.time));
  msg->durable(durable);
  // A binary body with `inferred` is sent as a data section, as the
  // binding's binary mode requires.
  msg->body(proton::binary(env.data.begin(), env.data.end()));
  msg->inferred(true);

  auto& props = msg->properties();
  auto put_string = [&](std::string_view attribute, const std::string& value) {
    if (!value.empty()) props.put(Key(attribute), value);
  };
  props.put(Key("id"), env.id);
  put_string("source", env.source);
  props.put(Key("specversion"), env.spec_version);
  props.put(Key("type"), env.type);
  props.put(Key("time"), ToTimestamp(env.time));
  put_string("datacontenttype", env.data_content_type);
  put_string("subject", env.subject);
  if (!env.traceparent.empty()) {
    props.put(Key(attr::kTraceparent), env.traceparent);
    props.put(std::string(attr::kTraceparent), env.traceparent);
  }
  if (!env.tracestate.empty()) {
    props.put(Key(attr::kTracestate), env.tracestate);
    props.put(std::string(attr::kTracestate), env.tracestate);
  }
  put_string(attr::kIdempotencyKey, env.idempotency_key);
  if (env.has_deadline()) props.put(Key(attr::kExpiryTime), ToTimestamp(env.deadline));
  put_string(attr::kCorrelationId, env.correlation_id);
  put_string(attr::kReplyTo, env.reply_to);
  props.put(Key(attr::kAttempt), static_cast<int64_t>(env.attempt));
  if (env.style != Style::kUnspecified) {
    props.put(Key(attr::kStyle), std::string(StyleName(env.style)));
  }
  if (!env.status.ok()) {
    props.put(Key(attr::kStatusCode), static_cast<int64_t>(env.status.code()));
    props.put(Key(attr::kStatusMessage), std::string(env.status.message()));
  }
  for (const auto& [name, value] : env.extensions) {
    if (name.empty() || KnownAttributes().count(name) > 0) continue;
    props.put(Key(name), value);
  }
}

absl::StatusOr<Envelope> MessageToEnvelope(const proton::message& msg,
                                           std::optional<uint64_t>* wire_bytes) {
  if (wire_bytes != nullptr) wire_bytes->reset();
  try {
    return Decode(msg, wire_bytes);
  } catch (const std::exception& e) {
    return absl::InvalidArgumentError(
        absl::StrCat("AMQP message is not a valid envelope: ", e.what()));
  }
}

void AnnotateDeadLetter(const absl::Status& reason, proton::message* msg) {
  try {
    msg->properties().put(Key(attr::kDeadLetterReason), std::string(reason.message()));
    msg->properties().put(Key(attr::kDeadLetterCode), std::string(CodeName(reason.code())));
    msg->durable(true);
  } catch (const std::exception&) {
    // A message whose properties cannot even be rewritten is forwarded as is.
  }
}

std::string MessageIdOf(const proton::message& msg) {
  try {
    return MessageIdString(msg.id());
  } catch (const std::exception&) {
    return "";
  }
}

}  // namespace switchboard::amqp
