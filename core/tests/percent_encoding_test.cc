#include "switchboard/internal/percent_encoding.h"

#include <string>

#include "gtest/gtest.h"

namespace switchboard::internal {
namespace {

bool Escaped(unsigned c) { return c < 0x21 || c > 0x7E || c == '"' || c == '%'; }

// NeedsPercentEncoding checks eight bytes at a time and the rest one by one:
// every byte value, at every position of a string longer than two words.
TEST(PercentEncodingTest, EveryByteAtEveryPosition) {
  for (unsigned c = 0; c < 256; ++c) {
    for (size_t pos = 0; pos < 19; ++pos) {
      std::string s(19, 'a');
      s[pos] = static_cast<char>(c);
      ASSERT_EQ(NeedsPercentEncoding(s), Escaped(c)) << "byte " << c << " at " << pos;
    }
  }
}

// Pairs of bytes inside one word: an escaped byte next to a plain one must
// not hide it, and two plain bytes must not look escaped together (borrows
// and carries between the bytes of a word).
TEST(PercentEncodingTest, EveryPairOfNeighbours) {
  std::string s(8, 'a');
  for (unsigned lo = 0; lo < 256; ++lo) {
    for (unsigned hi = 0; hi < 256; ++hi) {
      s[3] = static_cast<char>(lo);
      s[4] = static_cast<char>(hi);
      ASSERT_EQ(NeedsPercentEncoding(s), Escaped(lo) || Escaped(hi)) << lo << " " << hi;
    }
  }
}

TEST(PercentEncodingTest, PlainValuesPassAndEscapesAreUpperCaseHex) {
  EXPECT_FALSE(NeedsPercentEncoding(""));
  EXPECT_FALSE(NeedsPercentEncoding("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"));
  EXPECT_EQ(PercentEncode("a b\"c%d\xff"), "a%20b%22c%25d%FF");
}

}  // namespace
}  // namespace switchboard::internal
