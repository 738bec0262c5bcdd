#include "switchboard/trace_context.h"

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
