#include "switchboard/internal/cloudevent_wire.h"

#include <algorithm>
#include <optional>
#include <string_view>

#include "absl/container/inlined_vector.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/time/time.h"
#include "switchboard/internal/attribute_names.h"
#include "switchboard/internal/envelope_pool.h"
#include "switchboard/internal/proto_wire.h"
#include "switchboard/internal/strings.h"

namespace switchboard::internal {
namespace {

// Field numbers of io.cloudevents.v1.CloudEvent.
enum CloudEventField : int {
  kId = 1,
  kSource = 2,
  kSpecVersion = 3,
  kType = 4,
  kAttributes = 5,
  kBinaryData = 6,
  kTextData = 7,
  kProtoData = 8,
};

// Field numbers of CloudEvent.CloudEventAttributeValue (one of them is set).
enum ValueField : int {
  kBoolean = 1,
  kInteger = 2,
  kString = 3,
  kBytes = 4,
  kUri = 5,
  kUriRef = 6,
  kTimestamp = 7,
};

// Data whose content type says text travels as `text_data`.
bool IsTextContentType(std::string_view type) {
  if (type == kContentTypeProtobuf) return false;  // the default, at once
  return absl::StartsWithIgnoreCase(AsAbsl(type), "text/") ||
         absl::StartsWithIgnoreCase(AsAbsl(type), AsAbsl(kContentTypeJson));
}

bool DataIsText(const Envelope& env) {
  return IsTextContentType(env.data_content_type) && IsUtf8(env.data);
}

// Visits the CloudEvent form of `env` in field-number order, and the
// attributes sorted by name, as protobuf's deterministic serialization
// orders map entries: the mapped attributes are listed in name order and the
// extensions (a sorted map) are merged in between.
template <class Sink>
void VisitCloudEvent(const Envelope& env, Sink& sink) {
  sink.String(kId, env.id);
  sink.String(kSource, env.source);
  sink.String(kSpecVersion, env.spec_version);
  sink.String(kType, env.type);

  auto ext = env.extensions.begin();
  // The extensions that sort before `name` (all that are left without one).
  // (`compare`, not `<`: clang 14 cannot compare a std::string and a
  // std::string_view of libstdc++ 12 with `<`.)
  auto extensions_before = [&](const std::string_view* name) {
    for (; ext != env.extensions.end() && (name == nullptr || ext->first.compare(*name) < 0);
         ++ext) {
      if (IsAttributeName(ext->first) && !IsMappedAttribute(ext->first)) {
        sink.StringAttribute(ext->first, ext->second);
      }
    }
  };
  auto string_attribute = [&](std::string_view name, std::string_view value) {
    extensions_before(&name);
    if (!value.empty()) sink.StringAttribute(name, value);
  };
  auto int_attribute = [&](std::string_view name, bool present, int32_t value) {
    extensions_before(&name);
    if (present) sink.IntAttribute(name, value);
  };
  auto time_attribute = [&](std::string_view name, bool present, absl::Time value) {
    extensions_before(&name);
    if (present) sink.TimeAttribute(name, TimestampFields(value));
  };
  int_attribute("attempt", !WireOmitsAttempt(env), env.attempt);
  string_attribute("correlationid", env.correlation_id);
  string_attribute("datacontenttype", env.data_content_type);
  time_attribute("expirytime", env.has_deadline(), env.deadline);
  string_attribute("idempotencykey",
                   WireOmitsIdempotencyKey(env) ? std::string_view() : env.idempotency_key);
  string_attribute("replyto", env.reply_to);
  int_attribute("statuscode", !env.status.ok(), static_cast<int32_t>(env.status.code()));
  string_attribute("statusmessage", AsStd(env.status.message()));
  string_attribute("style", env.style == Style::kUnspecified ? std::string_view()
                                                             : StyleName(env.style));
  string_attribute("subject", env.subject);
  time_attribute("time", env.time != absl::UnixEpoch(), env.time);
  string_attribute("traceparent", env.traceparent);
  string_attribute("tracestate", env.tracestate);
  extensions_before(nullptr);

  // A oneof member is written when set, even empty.
  sink.Bytes(DataIsText(env) ? kTextData : kBinaryData, env.data);
}

// The sizes of an attribute's value message and of its map entry.
size_t StringValueSize(std::string_view v) { return StringFieldSize(kString, v.size()); }
size_t IntValueSize(int32_t v) {
  return VarintSize(Tag(kInteger, kVarint)) + VarintSize(Int32Bits(v));
}
size_t TimeValueSize(const TimestampFields& ts) { return StringFieldSize(kTimestamp, ts.Size()); }
size_t EntrySize(std::string_view name, size_t value_size) {
  return StringFieldSize(1, name.size()) + StringFieldSize(2, value_size);
}

struct SizeSink {
  size_t size = 0;

  void String(int field, std::string_view v) {
    if (!v.empty()) size += StringFieldSize(field, v.size());
  }
  void Bytes(int field, std::string_view v) { size += StringFieldSize(field, v.size()); }
  void Entry(std::string_view name, size_t value_size) {
    size += StringFieldSize(kAttributes, EntrySize(name, value_size));
  }
  void StringAttribute(std::string_view name, std::string_view v) {
    Entry(name, StringValueSize(v));
  }
  void IntAttribute(std::string_view name, int32_t v) { Entry(name, IntValueSize(v)); }
  void TimeAttribute(std::string_view name, const TimestampFields& ts) {
    Entry(name, TimeValueSize(ts));
  }
};

struct WriteSink {
  uint8_t* out;

  void Header(int field, size_t length) { out = PutFieldHeader(field, length, out); }
  void Bytes(int field, std::string_view v) { out = PutBytesField(field, v, out); }
  void String(int field, std::string_view v) {
    if (!v.empty()) Bytes(field, v);
  }
  // The map entry's header and key; the value message follows.
  void Entry(std::string_view name, size_t value_size) {
    Header(kAttributes, EntrySize(name, value_size));
    Bytes(1, name);
    Header(2, value_size);
  }
  void StringAttribute(std::string_view name, std::string_view v) {
    Entry(name, StringValueSize(v));
    Bytes(kString, v);
  }
  void IntAttribute(std::string_view name, int32_t v) {
    Entry(name, IntValueSize(v));
    out = PutVarint(Int32Bits(v), PutVarint(Tag(kInteger, kVarint), out));
  }
  void TimeAttribute(std::string_view name, const TimestampFields& ts) {
    Entry(name, TimeValueSize(ts));
    Header(kTimestamp, ts.Size());
    out = ts.Write(out);
  }
};

}  // namespace

bool IsStructuredContentType(std::string_view content_type) {
  constexpr std::string_view kPrefix = "application/cloudevents";
  // The spelling senders use, at once; any other case after it.
  if (content_type.substr(0, kPrefix.size()) == kPrefix) return true;
  return absl::StartsWithIgnoreCase(AsAbsl(content_type), AsAbsl(kPrefix));
}

bool IsCloudEventsProtobuf(std::string_view content_type) {
  if (content_type == kCloudEventsProtobuf) return true;
  std::string_view type =
      content_type.substr(0, std::min(content_type.find(';'), content_type.size()));
  while (!type.empty() && type.back() == ' ') type.remove_suffix(1);
  return absl::EqualsIgnoreCase(AsAbsl(type), AsAbsl(kCloudEventsProtobuf));
}

bool ParseContentMode(std::string_view text, ContentMode* mode) {
  if (text.empty() || text == "structured") {
    *mode = ContentMode::kStructured;
    return true;
  }
  if (text == "binary") {
    *mode = ContentMode::kBinary;
    return true;
  }
  return false;
}

size_t CloudEventWireSize(const Envelope& env) {
  SizeSink sink;
  VisitCloudEvent(env, sink);
  return sink.size;
}

uint8_t* WriteCloudEventWire(const Envelope& env, uint8_t* out) {
  WriteSink sink{out};
  VisitCloudEvent(env, sink);
  return sink.out;
}

std::string EnvelopeToCloudEvent(const Envelope& env) {
  std::string bytes(CloudEventWireSize(env), '\0');
  WriteCloudEventWire(env, reinterpret_cast<uint8_t*>(bytes.data()));
  return bytes;
}

// ---- reading ----

namespace {

// One attribute as read: its name and the member of the value's oneof that
// was set last (kind 0: none).
struct Attribute {
  std::string_view name;
  int kind = 0;
  std::string_view text;  // String, Bytes, URI, URI-reference
  uint64_t number = 0;    // Boolean, Integer
  TimestampParts time;
};

// Reads a CloudEventAttributeValue. A later member of the oneof replaces an
// earlier one; a Timestamp after a Timestamp merges into it, as protobuf's
// parser does.
bool ReadValue(std::string_view bytes, int depth, Attribute* a) {
  return ReadMessage(bytes, depth, [a](uint32_t tag, WireReader& r, int inner_depth) {
    const int field = static_cast<int>(tag >> 3);
    const uint32_t wire_type = tag & 7;
    if (wire_type == kVarint && (field == kBoolean || field == kInteger)) {
      if (!r.Varint(&a->number)) return false;
      a->kind = field;
      return true;
    }
    if (wire_type == kLengthDelimited && field >= kString && field <= kUriRef) {
      if (!r.Bytes(&a->text) || (field != kBytes && !IsUtf8(a->text))) return false;
      a->kind = field;
      return true;
    }
    if (wire_type == kLengthDelimited && field == kTimestamp) {
      std::string_view ts;
      if (a->kind != kTimestamp) a->time = TimestampParts{};
      if (!r.Bytes(&ts) || !ReadTimestamp(ts, inner_depth, &a->time)) return false;
      a->kind = kTimestamp;
      return true;
    }
    return r.SkipField(tag, inner_depth);
  });
}

// The attribute's value when it is a string (String, URI, URI-reference).
bool TextOf(const Attribute& a, std::string_view* out) {
  if (a.kind != kString && a.kind != kUri && a.kind != kUriRef) return false;
  *out = a.text;
  return true;
}

// An Integer, or its canonical string.
bool IntOf(const Attribute& a, int32_t* out) {
  if (a.kind == kInteger) {
    *out = static_cast<int32_t>(static_cast<uint32_t>(a.number));
    return true;
  }
  std::string_view text;
  return TextOf(a, &text) && absl::SimpleAtoi(AsAbsl(text), out);
}

// A Timestamp, or its canonical string (RFC 3339).
bool TimestampOf(const Attribute& a, absl::Time* out) {
  if (a.kind == kTimestamp) {
    *out = TimeOf(a.time);
    return true;
  }
  std::string_view text;
  if (!TextOf(a, &text)) return false;
  absl::StatusOr<absl::Time> t = ParseRfc3339(text);
  if (!t.ok()) return false;
  *out = *t;
  return true;
}

// An extension's value as the canonical string of its type.
void AssignCanonical(const Attribute& a, std::string* out) {
  switch (a.kind) {
    case kBoolean: out->assign(a.number != 0 ? "true" : "false"); return;
    case kInteger:
      out->assign(absl::StrCat(static_cast<int32_t>(static_cast<uint32_t>(a.number))));
      return;
    case kBytes: out->assign(absl::Base64Escape(AsAbsl(a.text))); return;
    case kTimestamp: out->assign(FormatRfc3339(TimeOf(a.time))); return;
    default: out->assign(a.text); return;
  }
}

absl::Status BadAttribute(std::string_view name, std::string_view what) {
  return absl::InvalidArgumentError(Cat("CloudEvent attribute `", name, "` ", what));
}

}  // namespace

absl::Status ReadCloudEventWire(std::string_view bytes, Envelope* env) {
  ClearKeepingBuffers(env);
  env->spec_version.clear();
  env->data_content_type.clear();
  // Map entries with the same name: the last one counts, as in protobuf.
  absl::InlinedVector<Attribute, 16> attributes;
  std::string_view data;
  int data_field = 0;
  const char* bad = nullptr;  // the field that did not read
  auto string_field = [&bad](WireReader& r, std::string* out, const char* name) {
    std::string_view v;
    if (!r.String(&v)) {
      bad = name;
      return false;
    }
    out->assign(v);
    return true;
  };
  auto on_field = [&](uint32_t tag, WireReader& r, int depth) -> bool {
    if ((tag & 7) != kLengthDelimited) return r.SkipField(tag, depth);
    switch (static_cast<int>(tag >> 3)) {
      case kId: return string_field(r, &env->id, "id");
      case kSource: return string_field(r, &env->source, "source");
      case kSpecVersion: return string_field(r, &env->spec_version, "spec_version");
      case kType: return string_field(r, &env->type, "type");
      case kAttributes: {
        std::string_view entry;
        Attribute a;
        // Every occurrence of the key must be UTF-8, also one that a later
        // one replaces; a value message that occurs twice merges.
        auto on_entry = [&a](uint32_t t, WireReader& er, int entry_depth) {
          std::string_view value;
          if (t == Tag(1, kLengthDelimited)) return er.String(&a.name);
          if (t == Tag(2, kLengthDelimited)) {
            return er.Bytes(&value) && ReadValue(value, entry_depth, &a);
          }
          return er.SkipField(t, entry_depth);
        };
        if (!r.Bytes(&entry) || !ReadMessage(entry, depth, on_entry)) {
          bad = "attributes";
          return false;
        }
        for (Attribute& existing : attributes) {
          if (existing.name == a.name) {
            existing = a;
            return true;
          }
        }
        attributes.push_back(a);
        return true;
      }
      case kBinaryData:
      case kTextData: {
        std::string_view v;
        if (!r.Bytes(&v) || ((tag >> 3) == kTextData && !IsUtf8(v))) {
          bad = (tag >> 3) == kTextData ? "text_data" : "binary_data";
          return false;
        }
        data = v;
        data_field = static_cast<int>(tag >> 3);
        return true;
      }
      case kProtoData: {
        // google.protobuf.Any: type_url = 1, value = 2. A second occurrence
        // merges into the first.
        std::string_view any;
        if (data_field != kProtoData) data = std::string_view();
        auto on_any = [&data](uint32_t t, WireReader& ar, int any_depth) {
          std::string_view type_url;
          if (t == Tag(1, kLengthDelimited)) return ar.String(&type_url);
          if (t == Tag(2, kLengthDelimited)) return ar.Bytes(&data);
          return ar.SkipField(t, any_depth);
        };
        if (!r.Bytes(&any) || !ReadMessage(any, depth, on_any)) {
          bad = "proto_data";
          return false;
        }
        data_field = kProtoData;
        return true;
      }
      default: return r.SkipField(tag, depth);
    }
  };
  // The top-level message takes the first level, as in protobuf.
  if (!ReadMessage(bytes, kMaxDepth + 1, on_field)) {
    return absl::InvalidArgumentError(
        bad != nullptr ? Cat("not a protobuf CloudEvent: field `", bad, "` does not read")
                       : std::string("not a protobuf CloudEvent"));
  }

  std::optional<int32_t> status_code;
  std::string_view status_message;
  for (const Attribute& a : attributes) {
    if (a.kind == 0) continue;  // no value: as if not sent
    const std::string_view name = a.name;
    std::string_view text;
    auto text_into = [&](std::string* out) {
      if (!TextOf(a, &text)) return BadAttribute(name, "must be a string");
      out->assign(text);
      return absl::OkStatus();
    };
    absl::Status s;
    if (name == "time" || name == "expirytime") {
      absl::Time t;
      if (!TimestampOf(a, &t)) return BadAttribute(name, "must be a timestamp");
      (name == "time" ? env->time : env->deadline) = t;
    } else if (name == "attempt") {
      if (!IntOf(a, &env->attempt) || env->attempt < 1) {
        return BadAttribute(name, "must be an integer >= 1");
      }
    } else if (name == "statuscode") {
      int32_t code;
      if (!IntOf(a, &code) || code < 0 || code > 16) {
        return BadAttribute(name, "must be a status code (0 to 16)");
      }
      status_code = code;
    } else if (name == "statusmessage") {
      if (!TextOf(a, &status_message)) return BadAttribute(name, "must be a string");
    } else if (name == "style") {
      if (!TextOf(a, &text) || !ParseStyle(text, &env->style) ||
          env->style == Style::kUnspecified) {
        return BadAttribute(name, "must be request, command or event");
      }
    } else if (name == "datacontenttype") {
      s = text_into(&env->data_content_type);
    } else if (name == "subject") {
      s = text_into(&env->subject);
    } else if (name == "traceparent") {
      s = text_into(&env->traceparent);
    } else if (name == "tracestate") {
      s = text_into(&env->tracestate);
    } else if (name == "idempotencykey") {
      s = text_into(&env->idempotency_key);
    } else if (name == "correlationid") {
      s = text_into(&env->correlation_id);
    } else if (name == "replyto") {
      s = text_into(&env->reply_to);
    } else if (IsAttributeName(name) && !IsMappedAttribute(name)) {
      AssignCanonical(a, &env->extensions[std::string(name)]);
    }
    if (!s.ok()) return s;
  }
  if (status_code.has_value() && *status_code != 0) {
    env->status = absl::Status(static_cast<absl::StatusCode>(*status_code), AsAbsl(status_message));
  }
  if (env->data_content_type.empty()) env->data_content_type = kContentTypeProtobuf;
  env->data.assign(data);
  RestoreOmittedAttributes(env);
  return ValidateEnvelope(*env);
}

}  // namespace switchboard::internal
