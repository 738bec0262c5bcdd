#include "switchboard/trace_context.h"

#include <array>
#include <string>

#include "gtest/gtest.h"

namespace switchboard {
namespace {

constexpr char kValid[] = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

TEST(TraceParentTest, ParsesAndFormatsVersion00) {
  TraceParent tp;
  ASSERT_TRUE(TraceParent::Parse(kValid, &tp));
  EXPECT_EQ(tp.TraceId(), "4bf92f3577b34da6a3ce929d0e0e4736");
  EXPECT_EQ(tp.SpanId(), "00f067aa0ba902b7");
  std::array<char, 16> chars = tp.SpanIdChars();
  EXPECT_EQ(std::string(chars.data(), chars.size()), "00f067aa0ba902b7");
  EXPECT_TRUE(tp.sampled());
  EXPECT_EQ(tp.ToString(), kValid);
}

TEST(TraceParentTest, ChildKeepsTraceAndChangesSpan) {
  TraceParent tp;
  ASSERT_TRUE(TraceParent::Parse(kValid, &tp));
  TraceParent child = tp.Child();
  EXPECT_EQ(child.TraceId(), tp.TraceId());
  EXPECT_NE(child.SpanId(), tp.SpanId());
}

TEST(TraceParentTest, RejectsMalformed) {
  TraceParent tp;
  for (const char* bad : {
           "",
           "garbage",
           "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",   // version ff
           "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",   // upper case
           "00-00000000000000000000000000000000-00f067aa0ba902b7-01",   // zero trace
           "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",   // zero span
           "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-x", // 00 with extra
           "00_4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",   // bad separator
           "00-4bf92f3577b34da6a3ce929d0e0e473g-00f067aa0ba902b7-01",   // non-hex
       }) {
    EXPECT_FALSE(TraceParent::Parse(bad, &tp)) << bad;
  }
}

// Every byte value at every hex position: only 0-9 and a-f parse, and each
// parses to its value (read back through the formatted form).
TEST(TraceParentTest, EveryByteAtEveryHexPosition) {
  const std::string valid = kValid;
  for (size_t pos = 0; pos < valid.size(); ++pos) {
    if (valid[pos] == '-') continue;
    for (int c = 0; c < 256; ++c) {
      std::string h = valid;
      h[pos] = static_cast<char>(c);
      const bool hex = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
      // A version of ff is invalid; a zero version keeps the length rule.
      const bool version_ff = pos == 1 && c == 'f' && h[0] == 'f';
      TraceParent tp;
      const bool parsed = TraceParent::Parse(h, &tp);
      ASSERT_EQ(parsed, hex && !version_ff) << "byte " << c << " at " << pos;
      if (parsed && pos >= 3) {
        EXPECT_EQ(tp.ToString().substr(pos, 1), h.substr(pos, 1));
      }
    }
  }
}

TEST(TraceParentTest, FormatsEveryByteValue) {
  // A span id of the 8 bytes b, b+1, ..., for every b: each byte's two digits.
  static constexpr char kDigits[] = "0123456789abcdef";
  for (int b = 0; b < 256; b += 8) {
    std::string h = "00-4bf92f3577b34da6a3ce929d0e0e4736-";
    for (int i = 0; i < 8; ++i) {
      h += kDigits[(b + i) >> 4];
      h += kDigits[(b + i) & 15];
    }
    h += "-01";
    TraceParent tp;
    ASSERT_TRUE(TraceParent::Parse(h, &tp)) << h;
    EXPECT_EQ(tp.ToString(), h);
    std::array<char, 16> chars = tp.SpanIdChars();
    EXPECT_EQ(std::string(chars.data(), chars.size()), h.substr(36, 16));
  }
}

TEST(TraceParentTest, HigherVersionReadAtFixedPositionsAndReemittedAs00) {
  TraceParent tp;
  ASSERT_TRUE(TraceParent::Parse(
      "cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-what-the-future-holds", &tp));
  EXPECT_EQ(tp.ToString(), kValid);
}

TEST(TraceParentTest, NewRootIsValidAndUnique) {
  TraceParent a = TraceParent::NewRoot(), b = TraceParent::NewRoot();
  TraceParent parsed;
  EXPECT_TRUE(TraceParent::Parse(a.ToString(), &parsed));
  EXPECT_NE(a.TraceId(), b.TraceId());
}

TEST(TracestateTest, Validates) {
  EXPECT_TRUE(IsValidTracestate(""));
  EXPECT_TRUE(IsValidTracestate("congo=t61rcWkgMzE,rojo=00f067aa0ba902b7"));
  EXPECT_FALSE(IsValidTracestate("novalue"));
  EXPECT_FALSE(IsValidTracestate("a=b,\x01=c"));
  std::string many;
  for (int i = 0; i < 33; ++i) many += "k" + std::to_string(i) + "=v,";
  EXPECT_FALSE(IsValidTracestate(many));
}

}  // namespace
}  // namespace switchboard
