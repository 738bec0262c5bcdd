// proto_wire_testing.h: protobuf wire bytes by hand, for tests of the
// direct readers (envelope_wire, cloudevent_wire): fields to build edge
// cases from, and damaged copies of valid bytes.
//
//   std::string bytes = Len(1, "id-1") + Key(24, 0) + Varint(3);
//   std::string broken = DamagedCopy(bytes, rng);
#pragma once

#include <cstdint>
#include <random>
#include <string>
#include <string_view>

namespace switchboard::testing {

inline std::string Varint(uint64_t v) {
  std::string out;
  while (v >= 0x80) {
    out.push_back(static_cast<char>(v | 0x80));
    v >>= 7;
  }
  out.push_back(static_cast<char>(v));
  return out;
}

// A tag: field number and wire type.
inline std::string Key(int field, int wire_type) {
  return Varint((static_cast<uint64_t>(field) << 3) | static_cast<uint64_t>(wire_type));
}

// A length-delimited field.
inline std::string Len(int field, std::string_view bytes) {
  return Key(field, 2) + Varint(bytes.size()) + std::string(bytes);
}

// `base` with one to three random changes: a byte changed, a cut, bytes
// inserted, or a piece of it repeated.
inline std::string DamagedCopy(const std::string& base, std::mt19937_64& rng) {
  auto pick = [&](size_t n) { return static_cast<size_t>(rng() % n); };
  std::string bytes = base;
  for (int n = 1 + static_cast<int>(pick(3)); n > 0 && !bytes.empty(); --n) {
    switch (pick(4)) {
      case 0:
        bytes[pick(bytes.size())] = static_cast<char>(rng());
        break;
      case 1:
        bytes.resize(pick(bytes.size()));
        break;
      case 2:
        bytes.insert(pick(bytes.size() + 1), std::string(1 + pick(4), static_cast<char>(rng())));
        break;
      default: {
        const size_t at = pick(bytes.size());
        bytes.insert(pick(bytes.size() + 1), bytes.substr(at, 1 + pick(12)));
        break;
      }
    }
  }
  return bytes;
}

}  // namespace switchboard::testing
