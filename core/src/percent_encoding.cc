#include "switchboard/internal/percent_encoding.h"

#include <array>
#include <cstring>

namespace switchboard::internal {
namespace {

constexpr auto kEscape = [] {
  std::array<bool, 256> t{};
  for (int c = 0; c < 256; ++c) t[c] = c < 0x21 || c > 0x7E || c == '"' || c == '%';
  return t;
}();

bool Escaped(char c) { return kEscape[static_cast<unsigned char>(c)]; }

}  // namespace

bool NeedsPercentEncoding(std::string_view value) {
  for (char c : value) {
    if (Escaped(c)) return true;
  }
  return false;
}

void AppendPercentEncoded(std::string_view value, std::string* out) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  size_t first = 0;
  while (first < value.size() && !Escaped(value[first])) ++first;
  if (first == value.size()) {
    out->append(value);
    return;
  }
  size_t escapes = 0;
  for (size_t i = first; i < value.size(); ++i) escapes += Escaped(value[i]) ? 1 : 0;
  const size_t start = out->size();
  out->resize(start + value.size() + 2 * escapes);
  char* p = out->data() + start;
  std::memcpy(p, value.data(), first);
  p += first;
  for (size_t i = first; i < value.size(); ++i) {
    const auto c = static_cast<unsigned char>(value[i]);
    if (kEscape[c]) {
      *p++ = '%';
      *p++ = kHex[c >> 4];
      *p++ = kHex[c & 0xF];
    } else {
      *p++ = static_cast<char>(c);
    }
  }
}

std::string PercentEncode(std::string_view value) {
  std::string out;
  AppendPercentEncoded(value, &out);
  return out;
}

}  // namespace switchboard::internal
