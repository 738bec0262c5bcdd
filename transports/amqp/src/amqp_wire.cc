#include "amqp_wire.h"

#include <algorithm>
#include <cstdint>
#include <exception>
#include <map>
#include <optional>
#include <utility>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/match.h"
#include "absl/container/inlined_vector.h"
#include "proton/binary.hpp"
#include "proton/codec.h"
#include "proton/codec/decoder.hpp"
#include "proton/message_id.hpp"
#include "proton/scalar.hpp"
#include "proton/timestamp.hpp"
#include "proton/types.hpp"
#include "proton/value.hpp"
#include "sv.h"
#include "switchboard/internal/attribute_names.h"
#include "switchboard/internal/envelope_pool.h"
#include "switchboard/status.h"

namespace switchboard::amqp {
namespace {

// A view of a proton::value's decoded data (pn_data_t), read with Proton's
// C codec: it hands out strings in place, where the C++ decoder copies each
// key and value into a std::string or proton::scalar (six allocations per
// property on this path).
class DataView : public proton::codec::decoder {
 public:
  explicit DataView(const proton::value& v) : decoder(v) {}
  pn_data_t* data() const { return pn_object(); }
};

std::string_view View(pn_bytes_t b) { return std::string_view(b.start, b.size); }

// One received application property, viewed in the message's decoded data:
// valid while the message is neither changed nor freed.
struct Prop {
  std::string_view key;
  pn_type_t type = PN_NULL;
  std::string_view bytes;  // PN_STRING, PN_SYMBOL, PN_BINARY
  int64_t num = 0;         // signed integers; PN_TIMESTAMP in milliseconds
  uint64_t unum = 0;       // unsigned integers
  bool flag = false;       // PN_BOOL
};

// A received message's application properties, decoded once in wire order
// (no map: a message has about fifteen, and lookups compare in place).
using PropList = absl::InlinedVector<Prop, 24>;

// Reads the application-properties map of `pv` into `props`. AMQP allows
// only string keys and simple values there; anything else makes the message
// invalid.
absl::Status ReadProps(const proton::value& pv, PropList* props) {
  DataView view(pv);
  pn_data_t* d = view.data();
  pn_data_rewind(d);
  if (!pn_data_next(d)) return absl::OkStatus();
  if (pn_data_type(d) != PN_MAP) {
    return absl::InvalidArgumentError(absl::StrCat(
        "AMQP application-properties must be a map, got ", pn_type_name(pn_data_type(d))));
  }
  const size_t count = pn_data_get_map(d) / 2;
  pn_data_enter(d);
  for (size_t i = 0; i < count; ++i) {
    Prop p;
    if (!pn_data_next(d)) break;
    switch (pn_data_type(d)) {
      case PN_STRING: p.key = View(pn_data_get_string(d)); break;
      case PN_SYMBOL: p.key = View(pn_data_get_symbol(d)); break;
      default:
        return absl::InvalidArgumentError(absl::StrCat(
            "AMQP application property key must be a string, got ", pn_type_name(pn_data_type(d))));
    }
    if (!pn_data_next(d)) {
      return absl::InvalidArgumentError(
          absl::StrCat("AMQP application property ", Sv(p.key), " has no value"));
    }
    p.type = pn_data_type(d);
    switch (p.type) {
      case PN_STRING: p.bytes = View(pn_data_get_string(d)); break;
      case PN_SYMBOL: p.bytes = View(pn_data_get_symbol(d)); break;
      case PN_BINARY: p.bytes = View(pn_data_get_binary(d)); break;
      case PN_BOOL: p.flag = pn_data_get_bool(d); break;
      case PN_BYTE: p.num = pn_data_get_byte(d); break;
      case PN_SHORT: p.num = pn_data_get_short(d); break;
      case PN_INT: p.num = pn_data_get_int(d); break;
      case PN_LONG: p.num = pn_data_get_long(d); break;
      case PN_TIMESTAMP: p.num = pn_data_get_timestamp(d); break;
      case PN_UBYTE: p.unum = pn_data_get_ubyte(d); break;
      case PN_USHORT: p.unum = pn_data_get_ushort(d); break;
      case PN_UINT: p.unum = pn_data_get_uint(d); break;
      case PN_ULONG: p.unum = pn_data_get_ulong(d); break;
      case PN_NULL: case PN_CHAR: case PN_FLOAT: case PN_DOUBLE: case PN_DECIMAL32:
      case PN_DECIMAL64: case PN_DECIMAL128: case PN_UUID:
        break;  // kept, typed, for the size count; no attribute uses them
      default:
        return absl::InvalidArgumentError(absl::StrCat("AMQP application property ", Sv(p.key),
                                                       " must be a simple value, got ",
                                                       pn_type_name(p.type)));
    }
    props->push_back(p);
  }
  pn_data_exit(d);
  return absl::OkStatus();
}

// The entry named `key`, or null.
const Prop* FindPlain(const PropList& props, std::string_view key) {
  for (const Prop& p : props) {
    if (p.key == key) return &p;
  }
  return nullptr;
}

// The entry `cloudEvents_<attribute>`, or null.
const Prop* Find(const PropList& props, std::string_view attribute) {
  const size_t prefix = kCePrefix.size();
  for (const Prop& p : props) {
    if (p.key.size() == prefix + attribute.size() && p.key.substr(prefix) == attribute &&
        p.key.substr(0, prefix) == kCePrefix) {
      return &p;
    }
  }
  return nullptr;
}

std::string Key(std::string_view attribute) { return absl::StrCat(Sv(kCePrefix), Sv(attribute)); }

// The attributes this mapping owns (a field of their own in the envelope);
// any other `cloudEvents_<name>` is an extension passed through.
using internal::IsMappedAttribute;

bool IsStringType(pn_type_t t) { return t == PN_STRING || t == PN_SYMBOL; }

bool IsIntegerType(pn_type_t t) {
  switch (t) {
    case PN_BYTE: case PN_UBYTE: case PN_SHORT: case PN_USHORT:
    case PN_INT: case PN_UINT: case PN_LONG: case PN_ULONG:
      return true;
    default:
      return false;
  }
}

bool IsUnsigned(pn_type_t t) {
  return t == PN_UBYTE || t == PN_USHORT || t == PN_UINT || t == PN_ULONG;
}

absl::Status WrongType(std::string_view attribute, std::string_view want, const Prop& p) {
  return absl::InvalidArgumentError(absl::StrCat("AMQP application property ", Key(attribute),
                                                 " must be ", Sv(want), ", got ",
                                                 pn_type_name(p.type)));
}

// Returns NotFound when absent (callers decide whether that is an error).
// (A NotFound without a message: nothing to allocate for the usual absent
// optional attribute.)
absl::StatusOr<std::string_view> ReadString(const PropList& props, std::string_view attribute) {
  const Prop* p = Find(props, attribute);
  if (p == nullptr) return absl::NotFoundError("");
  if (!IsStringType(p->type)) return WrongType(attribute, "a string", *p);
  return p->bytes;
}

absl::StatusOr<absl::Time> ReadTime(const PropList& props, std::string_view attribute) {
  const Prop* p = Find(props, attribute);
  if (p == nullptr) return absl::NotFoundError("");
  if (p->type == PN_TIMESTAMP) return absl::FromUnixMillis(p->num);
  if (IsStringType(p->type)) {
    auto t = ParseRfc3339(p->bytes);
    if (!t.ok()) {
      return absl::InvalidArgumentError(absl::StrCat("AMQP application property ", Key(attribute),
                                                     " is not an RFC 3339 time: ",
                                                     t.status().message()));
    }
    return *t;
  }
  return WrongType(attribute, "a timestamp or an RFC 3339 string", *p);
}

absl::StatusOr<int64_t> ReadInt(const PropList& props, std::string_view attribute) {
  const Prop* p = Find(props, attribute);
  if (p == nullptr) return absl::NotFoundError("");
  if (IsUnsigned(p->type)) {
    if (p->unum > static_cast<uint64_t>(INT64_MAX)) {
      return WrongType(attribute, "a long in range", *p);
    }
    return static_cast<int64_t>(p->unum);
  }
  if (IsIntegerType(p->type)) return p->num;
  if (IsStringType(p->type)) {
    int64_t v = 0;
    if (absl::SimpleAtoi(Sv(p->bytes), &v)) return v;
    return absl::InvalidArgumentError(
        absl::StrCat("AMQP application property ", Key(attribute), " is not an integer"));
  }
  return WrongType(attribute, "a long", *p);
}

// Absent is fine (empty); a wrong type is not.
absl::Status ReadOptionalString(const PropList& props, std::string_view attribute, std::string* out) {
  auto v = ReadString(props, attribute);
  if (v.ok()) {
    out->assign(v->data(), v->size());
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
  out->assign(v->data(), v->size());
  return absl::OkStatus();
}

// Extension values other than strings keep their canonical string form.
bool ExtensionString(const Prop& p, std::string* out) {
  if (IsStringType(p.type) || p.type == PN_BINARY) {
    out->assign(p.bytes.data(), p.bytes.size());
  } else if (p.type == PN_BOOL) {
    *out = p.flag ? "true" : "false";
  } else if (IsUnsigned(p.type)) {
    *out = absl::StrCat(p.unum);
  } else if (IsIntegerType(p.type)) {
    *out = absl::StrCat(p.num);
  } else if (p.type == PN_TIMESTAMP) {
    *out = FormatRfc3339(absl::FromUnixMillis(p.num));
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

uint64_t PropBytes(const Prop& p) {
  switch (p.type) {
    case PN_STRING:
    case PN_SYMBOL:
    case PN_BINARY:
      return Sized(p.bytes.size());
    case PN_UUID:
    case PN_DECIMAL128:
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
  for (const Prop& p : props) size += Sized(p.key.size()) + PropBytes(p);
  return size;
}

// The body as one data section (binary), or null.
std::optional<std::string_view> BinaryBody(const proton::message& msg) {
  DataView body(msg.body());
  pn_data_t* b = body.data();
  pn_data_rewind(b);
  if (!pn_data_next(b) || pn_data_type(b) != PN_BINARY) return std::nullopt;
  // The view stays valid: the decoded data belongs to the message.
  return View(pn_data_get_binary(b));
}

absl::StatusOr<Envelope> DecodeStructured(const proton::message& msg,
                                          const std::string& content_type,
                                          std::optional<uint64_t>* wire_bytes) {
  if (!internal::IsCloudEventsProtobuf(content_type)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "structured-mode CloudEvents in the format ", content_type.substr(0, 64),
        " are not supported; send ", Sv(internal::kCloudEventsProtobuf),
        " or binary mode (cloudEvents_* application properties)"));
  }
  std::optional<std::string_view> body = BinaryBody(msg);
  if (!body.has_value()) {
    return absl::InvalidArgumentError(
        "a structured AMQP message must have one data section (binary) as its body");
  }
  Envelope env = internal::NewEnvelope();
  if (absl::Status s = internal::ReadCloudEventWire(*body, &env); !s.ok()) return s;
  // What the body leaves out, from the properties section.
  if (env.correlation_id.empty()) env.correlation_id = MessageIdString(msg.correlation_id());
  if (env.reply_to.empty()) env.reply_to = msg.reply_to();
  if (wire_bytes != nullptr) {
    PropList props;  // counted, not read: structured mode has none of its own
    if (ReadProps(msg.properties().value(), &props).ok()) {
      *wire_bytes = ReceivedSize(msg, props, body->size());
    }
  }
  return env;
}

absl::StatusOr<Envelope> Decode(const proton::message& msg, std::optional<uint64_t>* wire_bytes) {
  // Read once: proton copies it into a new string on every call.
  std::string content_type = msg.content_type();
  if (internal::IsStructuredContentType(content_type)) {
    return DecodeStructured(msg, content_type, wire_bytes);
  }
  PropList props;
  if (absl::Status s = ReadProps(msg.properties().value(), &props); !s.ok()) return s;

  // A spare envelope: its strings take the values without allocating.
  Envelope env = internal::NewEnvelope();
  env.data_content_type.clear();
  if (auto s = ReadRequiredString(props, "id", &env.id); !s.ok()) return s;
  if (auto s = ReadRequiredString(props, "type", &env.type); !s.ok()) return s;
  if (auto s = ReadRequiredString(props, "specversion", &env.spec_version); !s.ok()) return s;
  if (auto s = ReadOptionalString(props, "source", &env.source); !s.ok()) return s;
  if (auto s = ReadOptionalString(props, "subject", &env.subject); !s.ok()) return s;
  if (auto s = ReadOptionalString(props, "datacontenttype", &env.data_content_type); !s.ok()) {
    return s;
  }
  if (env.data_content_type.empty()) env.data_content_type = std::move(content_type);

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
    const Prop* p = FindPlain(props, name);
    if (p != nullptr && IsStringType(p->type)) out->assign(p->bytes.data(), p->bytes.size());
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

  absl::StatusOr<std::string_view> style = ReadString(props, attr::kStyle);
  if (!style.ok() && !absl::IsNotFound(style.status())) return style.status();
  if (style.ok() && !style->empty() && !ParseStyle(*style, &env.style)) {
    return absl::InvalidArgumentError(
        absl::StrCat("AMQP application property ", Key(attr::kStyle), " has unknown style"));
  }

  absl::StatusCode code = absl::StatusCode::kOk;
  if (const Prop* sc = Find(props, attr::kStatusCode); sc != nullptr) {
    if (IsStringType(sc->type)) {
      if (!ParseCode(sc->bytes, &code)) {
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

  for (const Prop& p : props) {
    if (!absl::StartsWith(Sv(p.key), Sv(kCePrefix))) continue;
    std::string_view name = p.key.substr(kCePrefix.size());
    if (name.empty() || IsMappedAttribute(name)) continue;
    std::string text;
    if (ExtensionString(p, &text)) env.extensions[std::string(name)] = std::move(text);
  }

  // The body is copied once, from the decoded data into the envelope.
  DataView body(msg.body());
  pn_data_t* b = body.data();
  pn_data_rewind(b);
  const pn_type_t body_type = pn_data_next(b) ? pn_data_type(b) : PN_NULL;
  switch (body_type) {
    case PN_NULL:
      break;
    case PN_BINARY: {
      std::string_view bytes = View(pn_data_get_binary(b));
      env.data.assign(bytes.data(), bytes.size());
      break;
    }
    case PN_STRING: {
      std::string_view text = View(pn_data_get_string(b));
      env.data.assign(text.data(), text.size());
      break;
    }
    default:
      return absl::InvalidArgumentError(absl::StrCat(
          "AMQP message body must be one data section (binary), got ", pn_type_name(body_type)));
  }

  RestoreOmittedAttributes(&env);
  if (auto s = ValidateEnvelope(env); !s.ok()) return s;
  if (wire_bytes != nullptr) *wire_bytes = ReceivedSize(msg, props, env.data.size());
  return env;
}

// The application-property names of the mapped attributes, built once: each
// message would otherwise build a dozen key strings only to copy them.
struct PropertyKeys {
  const std::string id = Key("id");
  const std::string source = Key("source");
  const std::string spec_version = Key("specversion");
  const std::string type = Key("type");
  const std::string time = Key("time");
  const std::string subject = Key("subject");
  const std::string traceparent = Key(attr::kTraceparent);
  const std::string plain_traceparent = std::string(attr::kTraceparent);
  const std::string tracestate = Key(attr::kTracestate);
  const std::string plain_tracestate = std::string(attr::kTracestate);
  const std::string idempotency_key = Key(attr::kIdempotencyKey);
  const std::string expiry_time = Key(attr::kExpiryTime);
  const std::string correlation_id = Key(attr::kCorrelationId);
  const std::string reply_to = Key(attr::kReplyTo);
  const std::string attempt = Key(attr::kAttempt);
  const std::string style = Key(attr::kStyle);
  const std::string status_code = Key(attr::kStatusCode);
  const std::string status_message = Key(attr::kStatusMessage);
};

const PropertyKeys& Keys() {
  static const auto* keys = new PropertyKeys;
  return *keys;
}

}  // namespace

namespace {

pn_bytes_t Bytes(std::string_view s) { return pn_bytes(s.size(), s.data()); }

pn_atom_t StringAtom(std::string_view s) {
  pn_atom_t atom;
  atom.type = PN_STRING;
  atom.u.as_bytes = Bytes(s);
  return atom;
}

void PutString(pn_data_t* d, const std::string& key, std::string_view value) {
  pn_data_put_string(d, Bytes(key));
  pn_data_put_string(d, Bytes(value));
}

void PutLong(pn_data_t* d, const std::string& key, int64_t value) {
  pn_data_put_string(d, Bytes(key));
  pn_data_put_long(d, value);
}

void PutTimestamp(pn_data_t* d, const std::string& key, absl::Time t) {
  pn_data_put_string(d, Bytes(key));
  pn_data_put_timestamp(d, absl::ToUnixMillis(t));
}

}  // namespace

EnvelopeEncoder::EnvelopeEncoder() : msg_(pn_message()) {}

EnvelopeEncoder::~EnvelopeEncoder() { pn_message_free(msg_); }

absl::Status EnvelopeEncoder::Encode(const Envelope& env, bool durable,
                                     std::string_view correlation_id, ContentMode mode,
                                     std::vector<char>* out) {
  pn_message_clear(msg_);
  pn_message_set_id(msg_, StringAtom(env.id));
  if (correlation_id.empty()) correlation_id = env.correlation_id;
  if (!correlation_id.empty()) pn_message_set_correlation_id(msg_, StringAtom(correlation_id));
  if (!env.reply_to.empty()) pn_message_set_reply_to(msg_, env.reply_to.c_str());
  pn_message_set_creation_time(msg_, absl::ToUnixMillis(env.time));
  pn_message_set_durable(msg_, durable);
  // A binary body with `inferred` is sent as a data section, as both of the
  // binding's modes require.
  pn_message_set_inferred(msg_, true);
  if (mode == ContentMode::kStructured) {
    pn_message_set_content_type(msg_, internal::kCloudEventsProtobuf.data());
    body_.resize(internal::CloudEventWireSize(env));
    internal::WriteCloudEventWire(env, reinterpret_cast<uint8_t*>(body_.data()));
    pn_data_put_binary(pn_message_body(msg_), Bytes(body_));
    absl::Status encoded = EncodeMessage(env, out);
    // A rare large body must not keep its buffer for the encoder's life.
    constexpr size_t kKeptBodyBytes = 64 * 1024;
    if (body_.capacity() > kKeptBodyBytes) std::string().swap(body_);
    return encoded;
  }
  pn_message_set_content_type(msg_, env.data_content_type.c_str());
  pn_data_put_binary(pn_message_body(msg_), Bytes(env.data));

  const PropertyKeys& keys = Keys();
  pn_data_t* d = pn_message_properties(msg_);
  pn_data_put_map(d);
  pn_data_enter(d);
  auto put_nonempty = [d](const std::string& key, const std::string& value) {
    if (!value.empty()) PutString(d, key, value);
  };
  PutString(d, keys.id, env.id);
  put_nonempty(keys.source, env.source);
  PutString(d, keys.spec_version, env.spec_version);
  PutString(d, keys.type, env.type);
  PutTimestamp(d, keys.time, env.time);
  put_nonempty(keys.subject, env.subject);
  if (!env.traceparent.empty()) {
    PutString(d, keys.traceparent, env.traceparent);
    PutString(d, keys.plain_traceparent, env.traceparent);
  }
  if (!env.tracestate.empty()) {
    PutString(d, keys.tracestate, env.tracestate);
    PutString(d, keys.plain_tracestate, env.tracestate);
  }
  if (!WireOmitsIdempotencyKey(env)) PutString(d, keys.idempotency_key, env.idempotency_key);
  if (env.has_deadline()) PutTimestamp(d, keys.expiry_time, env.deadline);
  put_nonempty(keys.correlation_id, env.correlation_id);
  put_nonempty(keys.reply_to, env.reply_to);
  if (!WireOmitsAttempt(env)) PutLong(d, keys.attempt, env.attempt);
  if (env.style != Style::kUnspecified) PutString(d, keys.style, StyleName(env.style));
  if (!env.status.ok()) {
    PutLong(d, keys.status_code, static_cast<int64_t>(env.status.code()));
    const absl::string_view message = env.status.message();
    PutString(d, keys.status_message, std::string_view(message.data(), message.size()));
  }
  for (const auto& [name, value] : env.extensions) {
    if (name.empty() || IsMappedAttribute(name)) continue;
    PutString(d, Key(name), value);
  }
  pn_data_exit(d);
  return EncodeMessage(env, out);
}

absl::Status EnvelopeEncoder::EncodeMessage(const Envelope& env, std::vector<char>* out) {
  // The body and properties bound the size; the rest is a few hundred bytes.
  size_t size = std::max<size_t>(out->capacity(), env.data.size() + 1024);
  for (;;) {
    out->resize(size);
    int err = pn_message_encode(msg_, out->data(), &size);
    if (err == 0) break;
    if (err != PN_OVERFLOW || out->size() > (size_t{1} << 31)) {
      out->clear();
      return absl::InternalError(
          absl::StrCat("amqp: encoding message ", env.id, " failed: ", pn_code(err)));
    }
    size = out->size() * 2;
  }
  out->resize(size);
  return absl::OkStatus();
}

ContentMode ContentModeOf(const proton::message& msg) {
  return internal::IsStructuredContentType(msg.content_type()) ? ContentMode::kStructured
                                                               : ContentMode::kBinary;
}

absl::Status EnvelopeToMessage(const Envelope& env, bool durable, proton::message* msg,
                               ContentMode mode) {
  EnvelopeEncoder encoder;
  std::vector<char> bytes;
  if (absl::Status s = encoder.Encode(env, durable, "", mode, &bytes); !s.ok()) return s;
  try {
    msg->decode(bytes);
  } catch (const std::exception& e) {
    return absl::InternalError(absl::StrCat("amqp: decoding an encoded envelope: ", e.what()));
  }
  return absl::OkStatus();
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
