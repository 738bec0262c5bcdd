#include "switchboard/internal/envelope_wire.h"

#include <cstring>
#include <ctime>
#include <string_view>

#include "absl/time/time.h"
#include "switchboard/internal/strings.h"

namespace switchboard::internal {
namespace {

// Protobuf wire types.
constexpr uint32_t kVarint = 0;
constexpr uint32_t kLengthDelimited = 2;

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

size_t VarintSize(uint64_t v) {
  size_t n = 1;
  while (v >= 0x80) {
    v >>= 7;
    ++n;
  }
  return n;
}

uint8_t* PutVarint(uint64_t v, uint8_t* out) {
  while (v >= 0x80) {
    *out++ = static_cast<uint8_t>(v | 0x80);
    v >>= 7;
  }
  *out++ = static_cast<uint8_t>(v);
  return out;
}

uint64_t Tag(int field, uint32_t wire_type) {
  return (static_cast<uint64_t>(field) << 3) | wire_type;
}

// int32 and enum values travel sign-extended to 64 bits.
uint64_t Int32Bits(int32_t v) { return static_cast<uint64_t>(static_cast<int64_t>(v)); }

// google.protobuf.Timestamp as ToProto writes it: seconds and nanos of the
// POSIX timespec, each left out when 0.
struct TimestampFields {
  int64_t seconds;
  int32_t nanos;

  explicit TimestampFields(absl::Time t) {
    timespec ts = absl::ToTimespec(t);
    seconds = ts.tv_sec;
    nanos = static_cast<int32_t>(ts.tv_nsec);
  }
  size_t Size() const {
    size_t n = 0;
    if (seconds != 0) n += 1 + VarintSize(static_cast<uint64_t>(seconds));
    if (nanos != 0) n += 1 + VarintSize(Int32Bits(nanos));
    return n;
  }
  uint8_t* Write(uint8_t* out) const {
    if (seconds != 0) out = PutVarint(static_cast<uint64_t>(seconds), PutVarint(Tag(1, kVarint), out));
    if (nanos != 0) out = PutVarint(Int32Bits(nanos), PutVarint(Tag(2, kVarint), out));
    return out;
  }
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

size_t StringFieldSize(int field, size_t length) {
  return VarintSize(Tag(field, kLengthDelimited)) + VarintSize(length) + length;
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
  void Timestamp(int field, const TimestampFields& ts) { size += StringFieldSize(field, ts.Size()); }
  void MapEntry(int field, std::string_view key, std::string_view value) {
    size += StringFieldSize(field, MapEntrySize(key, value));
  }
};

struct WriteSink {
  uint8_t* out;

  void Bytes(int field, std::string_view v) {
    out = PutVarint(v.size(), PutVarint(Tag(field, kLengthDelimited), out));
    if (!v.empty()) std::memcpy(out, v.data(), v.size());
    out += v.size();
  }
  void String(int field, std::string_view v) {
    if (!v.empty()) Bytes(field, v);
  }
  void Int32(int field, int32_t v) {
    if (v != 0) out = PutVarint(Int32Bits(v), PutVarint(Tag(field, kVarint), out));
  }
  void Timestamp(int field, const TimestampFields& ts) {
    out = PutVarint(ts.Size(), PutVarint(Tag(field, kLengthDelimited), out));
    out = ts.Write(out);
  }
  void MapEntry(int field, std::string_view key, std::string_view value) {
    out = PutVarint(MapEntrySize(key, value), PutVarint(Tag(field, kLengthDelimited), out));
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

}  // namespace switchboard::internal
