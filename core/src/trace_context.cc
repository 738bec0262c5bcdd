#include "switchboard/trace_context.h"

#include <array>
#include <cstdint>
#include <cstring>
#include <random>

#include "absl/strings/str_split.h"

namespace switchboard {
namespace {

// The value of each byte as a lower-case hex digit, or -1. Upper case is
// invalid in traceparent.
constexpr std::array<int8_t, 256> kHexValue = [] {
  std::array<int8_t, 256> t{};
  for (int8_t& v : t) v = -1;
  for (int c = '0'; c <= '9'; ++c) t[c] = static_cast<int8_t>(c - '0');
  for (int c = 'a'; c <= 'f'; ++c) t[c] = static_cast<int8_t>(c - 'a' + 10);
  return t;
}();

// The two lower-case hex digits of each byte value.
constexpr std::array<char, 512> kHexPairs = [] {
  constexpr char kDigits[] = "0123456789abcdef";
  std::array<char, 512> t{};
  for (int b = 0; b < 256; ++b) {
    t[2 * b] = kDigits[b >> 4];
    t[2 * b + 1] = kDigits[b & 15];
  }
  return t;
}();

int HexValue(char c) { return kHexValue[static_cast<unsigned char>(c)]; }

template <size_t N>
bool ParseHex(std::string_view text, std::array<uint8_t, N>* out) {
  if (text.size() != 2 * N) return false;
  // Any invalid digit makes the OR of all values negative: one test at the end.
  int bad = 0;
  for (size_t i = 0; i < N; ++i) {
    int hi = HexValue(text[2 * i]), lo = HexValue(text[2 * i + 1]);
    bad |= hi | lo;
    (*out)[i] = static_cast<uint8_t>(static_cast<unsigned>(hi) << 4 | static_cast<unsigned>(lo));
  }
  return bad >= 0;
}

template <size_t N>
bool AllZero(const std::array<uint8_t, N>& a) {
  for (uint8_t b : a)
    if (b != 0) return false;
  return true;
}

// Writes 2 * N lower-case hex digits at `out`.
template <size_t N>
char* WriteHex(const std::array<uint8_t, N>& a, char* out) {
  for (uint8_t b : a) {
    std::memcpy(out, &kHexPairs[2 * b], 2);
    out += 2;
  }
  return out;
}

template <size_t N>
std::string Hex(const std::array<uint8_t, N>& a) {
  std::string out(2 * N, '0');
  WriteHex(a, out.data());
  return out;
}

template <size_t N>
void FillRandom(std::array<uint8_t, N>* a) {
  do {
    for (size_t i = 0; i < N; i += 8) {
      uint64_t r = RandomU64();
      for (size_t j = 0; j < 8 && i + j < N; ++j) (*a)[i + j] = static_cast<uint8_t>(r >> (8 * j));
    }
  } while (AllZero(*a));
}

}  // namespace

// xoshiro256** (Blackman and Vigna), seeded per thread from the OS: a few
// instructions per number, which ids and span ids are drawn on every call.
uint64_t RandomU64() {
  struct Xoshiro {
    uint64_t s[4];
    Xoshiro() {
      std::random_device rd;
      // splitmix64 spreads the seed over the whole state (never all zero).
      uint64_t x = (static_cast<uint64_t>(rd()) << 32) ^ rd();
      for (uint64_t& word : s) {
        uint64_t z = (x += 0x9e3779b97f4a7c15ULL);
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
        word = z ^ (z >> 31);
      }
    }
    static uint64_t Rotl(uint64_t v, int k) { return (v << k) | (v >> (64 - k)); }
    uint64_t Next() {
      const uint64_t result = Rotl(s[1] * 5, 7) * 9;
      const uint64_t t = s[1] << 17;
      s[2] ^= s[0];
      s[3] ^= s[1];
      s[1] ^= s[2];
      s[0] ^= s[3];
      s[2] ^= t;
      s[3] = Rotl(s[3], 45);
      return result;
    }
  };
  thread_local Xoshiro gen;
  return gen.Next();
}

bool TraceParent::Parse(std::string_view h, TraceParent* out) {
  // version "-" trace-id "-" parent-id "-" flags
  if (h.size() < 55) return false;
  int v_hi = HexValue(h[0]), v_lo = HexValue(h[1]);
  if (v_hi < 0 || v_lo < 0) return false;
  int version = v_hi << 4 | v_lo;
  if (version == 0xff) return false;
  if (version == 0 && h.size() != 55) return false;
  // A future version may append fields after a '-'.
  if (version > 0 && h.size() > 55 && h[55] != '-') return false;
  if (h[2] != '-' || h[35] != '-' || h[52] != '-') return false;
  TraceParent tp;
  if (!ParseHex(h.substr(3, 32), &tp.trace_id_)) return false;
  if (!ParseHex(h.substr(36, 16), &tp.span_id_)) return false;
  std::array<uint8_t, 1> flags;
  if (!ParseHex(h.substr(53, 2), &flags)) return false;
  if (AllZero(tp.trace_id_) || AllZero(tp.span_id_)) return false;
  tp.flags_ = flags[0];
  *out = tp;
  return true;
}

TraceParent TraceParent::NewRoot(bool sampled) {
  TraceParent tp;
  FillRandom(&tp.trace_id_);
  FillRandom(&tp.span_id_);
  tp.flags_ = sampled ? 1 : 0;
  return tp;
}

TraceParent TraceParent::Child() const {
  TraceParent tp = *this;
  FillRandom(&tp.span_id_);
  return tp;
}

std::string TraceParent::ToString() const {
  std::string out;
  AssignTo(&out);
  return out;
}

void TraceParent::AssignTo(std::string* out) const {
  // "00-" trace-id "-" span-id "-" flags: 55 characters.
  out->resize(55);
  char* p = out->data();
  *p++ = '0';
  *p++ = '0';
  *p++ = '-';
  p = WriteHex(trace_id_, p);
  *p++ = '-';
  p = WriteHex(span_id_, p);
  *p++ = '-';
  WriteHex(std::array<uint8_t, 1>{flags_}, p);
}

std::string TraceParent::TraceId() const { return Hex(trace_id_); }

std::string TraceParent::SpanId() const { return Hex(span_id_); }

std::array<char, 16> TraceParent::SpanIdChars() const {
  std::array<char, 16> out;
  WriteHex(span_id_, out.data());
  return out;
}

bool TraceParent::valid() const { return !AllZero(trace_id_) && !AllZero(span_id_); }

bool IsValidTracestate(std::string_view tracestate) {
  if (tracestate.empty()) return true;
  if (tracestate.size() > 8192) return false;
  int members = 0;
  for (absl::string_view member : absl::StrSplit(absl::string_view(tracestate.data(), tracestate.size()), ',')) {
    // Optional whitespace around members is allowed; empty members are ignored.
    while (!member.empty() && (member.front() == ' ' || member.front() == '\t')) member.remove_prefix(1);
    while (!member.empty() && (member.back() == ' ' || member.back() == '\t')) member.remove_suffix(1);
    if (member.empty()) continue;
    if (++members > 32) return false;
    size_t eq = member.find('=');
    if (eq == std::string_view::npos || eq == 0 || eq + 1 == member.size()) return false;
    for (char c : member) {
      if (static_cast<unsigned char>(c) < 0x20 || static_cast<unsigned char>(c) > 0x7e) return false;
    }
  }
  return true;
}

}  // namespace switchboard
