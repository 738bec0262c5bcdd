// proto_wire.h: protobuf's wire format, written and read by hand, for the
// envelope forms that are protobuf messages (envelope_wire.cc, the v1
// envelope; cloudevent_wire.cc, the CloudEvents protobuf format) and the
// gRPC transport's Send stream frames. Internal: not part of the API.
#pragma once

#include <cstdint>
#include <cstring>
#include <ctime>
#include <string_view>

#include "absl/time/time.h"

namespace switchboard::internal {

// Protobuf wire types.
inline constexpr uint32_t kVarint = 0;
inline constexpr uint32_t kLengthDelimited = 2;

inline constexpr uint32_t kFixed64 = 1;
inline constexpr uint32_t kStartGroup = 3;
inline constexpr uint32_t kEndGroup = 4;
inline constexpr uint32_t kFixed32 = 5;

// ---- writing ----

inline size_t VarintSize(uint64_t v) {
  size_t n = 1;
  while (v >= 0x80) {
    v >>= 7;
    ++n;
  }
  return n;
}

inline uint8_t* PutVarint(uint64_t v, uint8_t* out) {
  while (v >= 0x80) {
    *out++ = static_cast<uint8_t>(v | 0x80);
    v >>= 7;
  }
  *out++ = static_cast<uint8_t>(v);
  return out;
}

inline uint64_t Tag(int field, uint32_t wire_type) {
  return (static_cast<uint64_t>(field) << 3) | wire_type;
}

// int32 and enum values travel sign-extended to 64 bits.
inline uint64_t Int32Bits(int32_t v) { return static_cast<uint64_t>(static_cast<int64_t>(v)); }

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
    if (seconds != 0) {
      out = PutVarint(static_cast<uint64_t>(seconds), PutVarint(Tag(1, kVarint), out));
    }
    if (nanos != 0) out = PutVarint(Int32Bits(nanos), PutVarint(Tag(2, kVarint), out));
    return out;
  }
};

inline size_t StringFieldSize(int field, size_t length) {
  return VarintSize(Tag(field, kLengthDelimited)) + VarintSize(length) + length;
}

// The tag and length of a length-delimited field; its bytes follow.
inline uint8_t* PutFieldHeader(int field, size_t length, uint8_t* out) {
  return PutVarint(length, PutVarint(Tag(field, kLengthDelimited), out));
}

// A length-delimited field: tag, length, bytes (written even when empty).
inline uint8_t* PutBytesField(int field, std::string_view v, uint8_t* out) {
  out = PutFieldHeader(field, v.size(), out);
  if (!v.empty()) std::memcpy(out, v.data(), v.size());
  return out + v.size();
}

// ---- reading ----

// protobuf's default recursion limit: messages and groups nested deeper do
// not parse.
inline constexpr int kMaxDepth = 100;

// UTF-8 as protobuf checks proto3 strings: no overlong forms, no surrogates,
// nothing above U+10FFFF.
inline bool IsUtf8(std::string_view s) {
  const auto* p = reinterpret_cast<const uint8_t*>(s.data());
  const auto* end = p + s.size();
  while (p < end) {
    // ASCII, the common case, eight bytes at a time.
    uint64_t word;
    while (end - p >= 8 && (std::memcpy(&word, p, 8), (word & 0x8080808080808080ULL) == 0)) p += 8;
    if (p == end) break;
    const uint8_t c = *p;
    if (c < 0x80) {
      ++p;
      continue;
    }
    size_t n;
    uint8_t lo = 0x80, hi = 0xBF;  // the range of the second byte
    if (c >= 0xC2 && c <= 0xDF) {
      n = 2;
    } else if (c >= 0xE0 && c <= 0xEF) {
      n = 3;
      if (c == 0xE0) lo = 0xA0;  // overlong
      if (c == 0xED) hi = 0x9F;  // surrogates
    } else if (c >= 0xF0 && c <= 0xF4) {
      n = 4;
      if (c == 0xF0) lo = 0x90;  // overlong
      if (c == 0xF4) hi = 0x8F;  // above U+10FFFF
    } else {
      return false;
    }
    if (static_cast<size_t>(end - p) < n || p[1] < lo || p[1] > hi) return false;
    for (size_t i = 2; i < n; ++i) {
      if (p[i] < 0x80 || p[i] > 0xBF) return false;
    }
    p += n;
  }
  return true;
}

// A cursor over the bytes of one message, with protobuf's rules for varints,
// tags and lengths.
class WireReader {
 public:
  WireReader(const uint8_t* p, const uint8_t* end) : p_(p), end_(end) {}

  bool done() const { return p_ == end_; }

  // Up to ten bytes; bits beyond 64 are dropped, as protobuf does.
  bool Varint(uint64_t* v) { return VarintOf<10>(v); }

  // A tag: up to five bytes, 32 bits kept.
  bool Tag(uint32_t* tag) { return VarintOf<5>(tag); }

  // A proto3 string: a length and that many bytes of UTF-8.
  bool String(std::string_view* out) { return Bytes(out) && IsUtf8(*out); }

  // A length as protobuf's parser reads one: at most five bytes, and under
  // 2 GiB (a longer encoding of a small length is refused, as protobuf does).
  bool Length(uint64_t* n) { return VarintOf<5>(n) && *n <= 0x7FFFFFFFu; }

  // A length and that many bytes.
  bool Bytes(std::string_view* out) {
    uint64_t n;
    if (!Length(&n) || n > static_cast<uint64_t>(end_ - p_)) return false;
    *out = std::string_view(reinterpret_cast<const char*>(p_), static_cast<size_t>(n));
    p_ += n;
    return true;
  }

  bool Skip(size_t n) {
    if (n > static_cast<size_t>(end_ - p_)) return false;
    p_ += n;
    return true;
  }

  // Skips a field this reader does not know (or whose wire type is not the
  // expected one). A group is skipped up to its end tag.
  bool SkipField(uint32_t tag, int depth) {
    uint64_t ignored;
    std::string_view bytes;
    switch (tag & 7) {
      case kVarint:
        return Varint(&ignored);
      case kFixed64:
        return Skip(8);
      case kLengthDelimited:
        return Bytes(&bytes);
      case kStartGroup: {
        if (depth <= 0) return false;
        for (;;) {
          uint32_t inner;
          if (!Tag(&inner)) return false;
          if ((inner & 7) == kEndGroup) return inner == ((tag & ~7u) | kEndGroup);
          if ((inner >> 3) == 0 || !SkipField(inner, depth - 1)) return false;
        }
      }
      case kFixed32:
        return Skip(4);
      default:
        return false;  // an end tag without its group, or wire types 6 and 7
    }
  }

 private:
  template <int kMaxBytes, class T>
  bool VarintOf(T* v) {
    // One byte, the common case for tags and lengths.
    if (p_ != end_ && *p_ < 0x80) {
      *v = static_cast<T>(*p_++);
      return true;
    }
    T result = 0;
    for (int i = 0; i < kMaxBytes; ++i) {
      if (p_ == end_) return false;
      const uint8_t b = *p_++;
      result |= static_cast<T>(b & 0x7F) << (7 * i);
      if (b < 0x80) {
        *v = result;
        return true;
      }
    }
    return false;
  }

  const uint8_t* p_;
  const uint8_t* end_;
};

// The bytes of a submessage field, read with the same rules; `on_field`
// handles (tag, reader) of each field and returns false to fail.
template <class OnField>
bool ReadMessage(std::string_view bytes, int depth, OnField&& on_field) {
  if (depth <= 0) return false;
  const auto* p = reinterpret_cast<const uint8_t*>(bytes.data());
  WireReader r(p, p + bytes.size());
  while (!r.done()) {
    uint32_t tag;
    if (!r.Tag(&tag) || (tag >> 3) == 0 || (tag & 7) == kEndGroup) return false;
    if (!on_field(tag, r, depth - 1)) return false;
  }
  return true;
}

struct TimestampParts {
  int64_t seconds = 0;
  int32_t nanos = 0;
};

// Repeated occurrences of a message field merge, as protobuf's do.
inline bool ReadTimestamp(std::string_view bytes, int depth, TimestampParts* ts) {
  return ReadMessage(bytes, depth, [ts](uint32_t tag, WireReader& r, int inner_depth) {
    uint64_t v;
    if (tag == Tag(1, kVarint)) {
      if (!r.Varint(&v)) return false;
      ts->seconds = static_cast<int64_t>(v);
      return true;
    }
    if (tag == Tag(2, kVarint)) {
      if (!r.Varint(&v)) return false;
      ts->nanos = static_cast<int32_t>(static_cast<uint32_t>(v));
      return true;
    }
    return r.SkipField(tag, inner_depth);
  });
}

inline absl::Time TimeOf(const TimestampParts& ts) {
  return absl::FromUnixSeconds(ts.seconds) + absl::Nanoseconds(ts.nanos);
}

}  // namespace switchboard::internal
