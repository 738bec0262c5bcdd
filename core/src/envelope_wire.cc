#include "switchboard/internal/envelope_wire.h"

#include <ctime>
#include <string_view>
#include <vector>

#include "absl/time/time.h"
#include "switchboard/internal/envelope_pool.h"
#include "switchboard/internal/proto_wire.h"
#include "switchboard/internal/strings.h"
#include "switchboard/status.h"

namespace switchboard::internal {
namespace {

// Field numbers of v1.Envelope (proto/switchboard/v1/envelope.proto).
enum Field : int {
  kId = 1,
  kSource = 2,
  kSpecVersion = 3,
  kType = 4,
  kTime = 5,
  kDataContentType = 6,
  kSubject = 7,
  kTraceparent = 10,
  kTracestate = 11,
  kIdempotencyKey = 20,
  kDeadline = 21,
  kCorrelationId = 22,
  kReplyTo = 23,
  kAttempt = 24,
  kStyle = 25,
  kStatusCode = 30,
  kStatusMessage = 31,
  kExtensions = 40,
  kData = 50,
};

// Visits the fields of the protobuf form of `env` in field-number order,
// with the rules of ToProto: what a reader restores is left out, and so is
// every proto3 default (empty string, 0).
template <class Sink>
void VisitFields(const Envelope& env, Sink& sink) {
  sink.String(kId, env.id);
  sink.String(kSource, env.source);
  sink.String(kSpecVersion, env.spec_version);
  sink.String(kType, env.type);
  if (env.time != absl::UnixEpoch()) sink.Timestamp(kTime, TimestampFields(env.time));
  if (env.data_content_type != kContentTypeProtobuf) {
    sink.String(kDataContentType, env.data_content_type);
  }
  sink.String(kSubject, env.subject);
  sink.String(kTraceparent, env.traceparent);
  sink.String(kTracestate, env.tracestate);
  if (!WireOmitsIdempotencyKey(env)) sink.String(kIdempotencyKey, env.idempotency_key);
  if (env.has_deadline()) sink.Timestamp(kDeadline, TimestampFields(env.deadline));
  sink.String(kCorrelationId, env.correlation_id);
  sink.String(kReplyTo, env.reply_to);
  if (!WireOmitsAttempt(env)) sink.Int32(kAttempt, env.attempt);
  sink.Int32(kStyle, static_cast<int32_t>(env.style));
  sink.Int32(kStatusCode, static_cast<int32_t>(env.status.code()));
  sink.String(kStatusMessage, AsStd(env.status.message()));
  // A map entry is a message of its own with the key as field 1 and the
  // value as field 2, both written even when empty.
  for (const auto& [key, value] : env.extensions) sink.MapEntry(kExtensions, key, value);
  sink.String(kData, env.data);
}

size_t MapEntrySize(std::string_view key, std::string_view value) {
  return StringFieldSize(1, key.size()) + StringFieldSize(2, value.size());
}

struct SizeSink {
  size_t size = 0;

  void String(int field, std::string_view v) {
    if (!v.empty()) size += StringFieldSize(field, v.size());
  }
  void Int32(int field, int32_t v) {
    if (v != 0) size += VarintSize(Tag(field, kVarint)) + VarintSize(Int32Bits(v));
  }
  void Timestamp(int field, const TimestampFields& ts) {
    size += StringFieldSize(field, ts.Size());
  }
  void MapEntry(int field, std::string_view key, std::string_view value) {
    size += StringFieldSize(field, MapEntrySize(key, value));
  }
};

struct WriteSink {
  uint8_t* out;

  void Bytes(int field, std::string_view v) { out = PutBytesField(field, v, out); }
  void String(int field, std::string_view v) {
    if (!v.empty()) Bytes(field, v);
  }
  void Int32(int field, int32_t v) {
    if (v != 0) out = PutVarint(Int32Bits(v), PutVarint(Tag(field, kVarint), out));
  }
  void Timestamp(int field, const TimestampFields& ts) {
    out = PutFieldHeader(field, ts.Size(), out);
    out = ts.Write(out);
  }
  void MapEntry(int field, std::string_view key, std::string_view value) {
    out = PutFieldHeader(field, MapEntrySize(key, value), out);
    Bytes(1, key);
    Bytes(2, value);
  }
};

}  // namespace

size_t EnvelopeWireSize(const Envelope& env) {
  SizeSink sink;
  VisitFields(env, sink);
  return sink.size;
}

uint8_t* WriteEnvelopeWire(const Envelope& env, uint8_t* out) {
  WriteSink sink{out};
  VisitFields(env, sink);
  return sink.out;
}

size_t EnvelopeFieldWireSize(int field_number, size_t envelope_size) {
  return StringFieldSize(field_number, envelope_size);
}

uint8_t* WriteEnvelopeField(int field_number, const Envelope& env, size_t envelope_size,
                            uint8_t* out) {
  out = PutVarint(envelope_size, PutVarint(Tag(field_number, kLengthDelimited), out));
  return WriteEnvelopeWire(env, out);
}

size_t StringFieldWireSize(int field_number, std::string_view value) {
  return value.empty() ? 0 : StringFieldSize(field_number, value.size());
}

uint8_t* WriteStringField(int field_number, std::string_view value, uint8_t* out) {
  WriteSink sink{out};
  sink.String(field_number, value);
  return sink.out;
}

std::string EnvelopeToWire(const Envelope& env) {
  std::string bytes(EnvelopeWireSize(env), '\0');
  WriteEnvelopeWire(env, reinterpret_cast<uint8_t*>(bytes.data()));
  return bytes;
}

// ---- reading ----

namespace {

// Reads an envelope whose fields are `depth` levels from protobuf's
// recursion limit: kMaxDepth + 1 at the top level, one less for each
// message it is inside of.
absl::Status ReadEnvelopeAt(std::string_view bytes, int depth, Envelope* env,
                            EnvelopeWireRest* rest);

}  // namespace

absl::Status ReadEnvelopeWire(std::string_view bytes, Envelope* env, EnvelopeWireRest* rest) {
  // The top-level message takes the first level, as in protobuf.
  return ReadEnvelopeAt(bytes, kMaxDepth + 1, env, rest);
}

absl::Status ReadEnvelopeFieldWire(std::string_view bytes, int envelope_field, int text_field,
                                   Envelope* env, EnvelopeWireRest* rest, std::string* text) {
  text->clear();
  // The envelope's occurrences: usually one. Protobuf parses each into the
  // same message, so each must read on its own, and together they read as
  // their concatenation (a later string replaces, a map entry is added, a
  // timestamp merges).
  std::string_view first;
  std::vector<std::string_view> more;  // the second and later occurrences
  bool found = false;
  int envelope_depth = kMaxDepth;
  const char* bad = nullptr;
  auto on_field = [&](uint32_t tag, WireReader& r, int depth) -> bool {
    if (tag == Tag(envelope_field, kLengthDelimited)) {
      std::string_view v;
      if (!r.Bytes(&v)) {
        bad = "envelope";
        return false;
      }
      if (found) {
        more.push_back(v);
      } else {
        first = v;
        found = true;
      }
      envelope_depth = depth;
      return true;
    }
    if (tag == Tag(text_field, kLengthDelimited)) {
      std::string_view v;
      if (!r.String(&v)) {
        bad = "string";
        return false;
      }
      text->assign(v);
      return true;
    }
    return r.SkipField(tag, depth);
  };
  if (!ReadMessage(bytes, kMaxDepth + 1, on_field)) {
    return absl::InvalidArgumentError(bad != nullptr
                                          ? Cat("not a protobuf message: its ", bad,
                                                " field does not read")
                                          : std::string("not a protobuf message"));
  }
  if (absl::Status s = ReadEnvelopeAt(first, envelope_depth, env, rest); !s.ok() || more.empty()) {
    return s;
  }
  std::string merged(first);
  for (std::string_view one : more) {
    if (absl::Status s = ReadEnvelopeAt(one, envelope_depth, env, rest); !s.ok()) return s;
    merged.append(one);
  }
  return ReadEnvelopeAt(merged, envelope_depth, env, rest);
}

namespace {

absl::Status ReadEnvelopeAt(std::string_view bytes, int depth_limit, Envelope* env,
                            EnvelopeWireRest* rest) {
  *rest = EnvelopeWireRest{};
  ClearKeepingBuffers(env);
  env->spec_version.clear();
  env->data_content_type.clear();
  TimestampParts time, deadline;
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
  auto int32_field = [&bad](WireReader& r, int32_t* out, const char* name) {
    uint64_t v;
    if (!r.Varint(&v)) {
      bad = name;
      return false;
    }
    *out = static_cast<int32_t>(static_cast<uint32_t>(v));
    return true;
  };
  auto timestamp_field = [&bad](WireReader& r, int depth, TimestampParts* ts, bool* has,
                                const char* name) {
    std::string_view v;
    if (!r.Bytes(&v) || !ReadTimestamp(v, depth, ts)) {
      bad = name;
      return false;
    }
    *has = true;
    return true;
  };
  auto on_field = [&](uint32_t tag, WireReader& r, int depth) -> bool {
    const uint32_t wire_type = tag & 7;
    const int field = static_cast<int>(tag >> 3);
    if (wire_type == kLengthDelimited) {
      switch (field) {
        case kId: return string_field(r, &env->id, "id");
        case kSource: return string_field(r, &env->source, "source");
        case kSpecVersion: return string_field(r, &env->spec_version, "spec_version");
        case kType: return string_field(r, &env->type, "type");
        case kTime: return timestamp_field(r, depth, &time, &rest->has_time, "time");
        case kDataContentType:
          return string_field(r, &env->data_content_type, "data_content_type");
        case kSubject: return string_field(r, &env->subject, "subject");
        case kTraceparent: return string_field(r, &env->traceparent, "traceparent");
        case kTracestate: return string_field(r, &env->tracestate, "tracestate");
        case kIdempotencyKey: return string_field(r, &env->idempotency_key, "idempotency_key");
        case kDeadline:
          return timestamp_field(r, depth, &deadline, &rest->has_deadline, "deadline");
        case kCorrelationId: return string_field(r, &env->correlation_id, "correlation_id");
        case kReplyTo: return string_field(r, &env->reply_to, "reply_to");
        case kStatusMessage: return string_field(r, &rest->status_message, "status_message");
        case kExtensions: {
          std::string_view entry;
          std::string_view key, value;
          // Every occurrence of the key or value must be UTF-8, also one
          // that a later one replaces.
          auto on_entry = [&key, &value](uint32_t t, WireReader& er, int entry_depth) {
            if (t == Tag(1, kLengthDelimited)) return er.String(&key);
            if (t == Tag(2, kLengthDelimited)) return er.String(&value);
            return er.SkipField(t, entry_depth);
          };
          if (!r.Bytes(&entry) || !ReadMessage(entry, depth, on_entry)) {
            bad = "extensions";
            return false;
          }
          env->extensions.insert_or_assign(std::string(key), std::string(value));
          return true;
        }
        case kData: {
          std::string_view v;
          if (!r.Bytes(&v)) {
            bad = "data";
            return false;
          }
          env->data.assign(v);
          return true;
        }
        default: break;
      }
    } else if (wire_type == kVarint) {
      switch (field) {
        case kAttempt: return int32_field(r, &rest->attempt, "attempt");
        case kStyle: return int32_field(r, &rest->style, "style");
        case kStatusCode: return int32_field(r, &rest->status_code, "status_code");
        default: break;
      }
    }
    return r.SkipField(tag, depth);
  };
  if (!ReadMessage(bytes, depth_limit, on_field)) {
    return absl::InvalidArgumentError(
        bad != nullptr ? Cat("not a protobuf envelope: field `", bad, "` does not read")
                       : std::string("not a protobuf envelope"));
  }
  if (rest->has_time) env->time = TimeOf(time);
  if (rest->has_deadline) env->deadline = TimeOf(deadline);
  return absl::OkStatus();
}

}  // namespace

absl::Status CompleteEnvelope(const EnvelopeWireRest& rest, Envelope* env) {
  if (env->spec_version.empty()) env->spec_version = "1.0";
  if (env->data_content_type.empty()) env->data_content_type = kContentTypeProtobuf;
  if (!rest.has_time) env->time = absl::UnixEpoch();
  if (!rest.has_deadline) env->deadline = absl::InfiniteFuture();
  env->attempt = rest.attempt == 0 ? 1 : rest.attempt;
  RestoreOmittedAttributes(env);
  env->style = (rest.style >= 0 && rest.style <= 3) ? static_cast<Style>(rest.style)
                                                     : Style::kUnspecified;
  env->status = rest.status_code == 0
                    ? absl::OkStatus()
                    : absl::Status(CodeFromInt(rest.status_code), rest.status_message);
  return ValidateEnvelope(*env);
}

}  // namespace switchboard::internal
