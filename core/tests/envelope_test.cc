#include "switchboard/envelope.h"

#include "gtest/gtest.h"
#include "switchboard/status.h"
#include "switchboard/testing/envelope_testing.h"
#include "switchboard/v1/envelope.pb.h"

namespace switchboard {
namespace {

Envelope Full() {
  Envelope e;
  e.id = NewMessageId();
  e.source = "//test/a";
  e.type = "orders.v1.Orders/PlaceOrder";
  e.time = absl::FromUnixMillis(1'700'000'000'123);
  e.data_content_type = "application/json";
  e.subject = "order-1";
  e.traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
  e.tracestate = "a=b";
  e.idempotency_key = "key-1";
  e.deadline = absl::FromUnixMillis(1'700'000'005'000);
  e.correlation_id = "corr";
  e.reply_to = "inbox";
  e.attempt = 3;
  e.style = Style::kCommand;
  e.status = absl::NotFoundError("nope");
  e.extensions["custom"] = "x";
  e.data = std::string("\0\1\2", 3);
  return e;
}

TEST(EnvelopeTest, ProtoRoundTripKeepsEveryAttribute) {
  Envelope in = Full();
  v1::Envelope proto;
  ToProto(in, &proto);
  Envelope out;
  ASSERT_TRUE(FromProto(proto, &out).ok());
  EXPECT_TRUE(::switchboard::testing::EnvelopesEqual(out, in));
}

TEST(EnvelopeTest, FromProtoTakingTheProtoApartGivesTheSameEnvelope) {
  const Envelope in = Full();
  v1::Envelope proto;
  ToProto(in, &proto);
  Envelope copied;
  ASSERT_TRUE(FromProto(proto, &copied).ok());
  Envelope taken;
  ASSERT_TRUE(FromProto(std::move(proto), &taken).ok());
  EXPECT_TRUE(::switchboard::testing::EnvelopesEqual(taken, in));
  EXPECT_TRUE(::switchboard::testing::EnvelopesEqual(taken, copied));

  // Defaults for what a sender left out, as for the copying form.
  v1::Envelope bare;
  bare.set_id("x");
  bare.set_type("t");
  Envelope out;
  ASSERT_TRUE(FromProto(std::move(bare), &out).ok());
  EXPECT_EQ(out.spec_version, "1.0");
  EXPECT_EQ(out.data_content_type, kContentTypeProtobuf);
  EXPECT_EQ(out.attempt, 1);
  EXPECT_EQ(out.deadline, absl::InfiniteFuture());
  v1::Envelope no_type;
  no_type.set_id("x");
  EXPECT_EQ(FromProto(std::move(no_type), &out).code(), absl::StatusCode::kInvalidArgument);
}

// The protobuf form leaves out what its reader restores: an idempotency key
// that is the id, the first attempt, the default content type.
TEST(EnvelopeTest, ProtoLeavesOutDefaultsAndTheReaderRestoresThem) {
  Envelope in = Full();
  in.idempotency_key = in.id;
  in.attempt = 1;
  in.data_content_type = std::string(kContentTypeProtobuf);
  v1::Envelope proto;
  ToProto(in, &proto);
  EXPECT_EQ(proto.idempotency_key(), "");
  EXPECT_EQ(proto.attempt(), 0);
  EXPECT_EQ(proto.data_content_type(), "");
  Envelope out;
  ASSERT_TRUE(FromProto(proto, &out).ok());
  EXPECT_TRUE(::switchboard::testing::EnvelopesEqual(out, in));
  Envelope taken;
  ASSERT_TRUE(FromProto(std::move(proto), &taken).ok());
  EXPECT_TRUE(::switchboard::testing::EnvelopesEqual(taken, in));

  // A key of its own and a later attempt travel.
  in.idempotency_key = "order-42";
  in.attempt = 2;
  ToProto(in, &proto);
  EXPECT_EQ(proto.idempotency_key(), "order-42");
  EXPECT_EQ(proto.attempt(), 2);
}

TEST(EnvelopeTest, FromProtoRejectsMissingAttributes) {
  v1::Envelope proto;
  Envelope out;
  absl::Status s = FromProto(proto, &out);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("`id`"), std::string::npos);
  proto.set_id("x");
  s = FromProto(proto, &out);
  EXPECT_NE(s.message().find("`type`"), std::string::npos);
  proto.set_type("t");
  proto.set_spec_version("0.3");
  s = FromProto(proto, &out);
  EXPECT_NE(s.message().find("specversion"), std::string::npos);
  proto.set_spec_version("1.0");
  proto.set_attempt(-2);
  EXPECT_EQ(FromProto(proto, &out).code(), absl::StatusCode::kInvalidArgument);
  proto.set_status_code(9999);
  proto.set_attempt(1);
  ASSERT_TRUE(FromProto(proto, &out).ok());
  EXPECT_EQ(out.status.code(), absl::StatusCode::kUnknown);
}

TEST(EnvelopeTest, Rfc3339RoundTrip) {
  absl::Time t = absl::FromUnixMicros(1'700'000'000'123'456);
  std::string s = FormatRfc3339(t);
  EXPECT_EQ(s, "2023-11-14T22:13:20.123456Z");
  EXPECT_EQ(*ParseRfc3339(s), t);
  EXPECT_EQ(*ParseRfc3339("2023-11-14T23:13:20.123456+01:00"), t);
  EXPECT_EQ(ParseRfc3339("yesterday").status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(EnvelopeTest, MessageIdsAreUuidV7AndUnique) {
  std::string a = NewMessageId(), b = NewMessageId();
  EXPECT_EQ(a.size(), 36u);
  EXPECT_EQ(a[14], '7');
  EXPECT_NE(a, b);
  // 8-4-4-4-12 lower-case hex, variant 10 (8, 9, a or b).
  for (size_t i = 0; i < a.size(); ++i) {
    if (i == 8 || i == 13 || i == 18 || i == 23) {
      EXPECT_EQ(a[i], '-') << a;
    } else {
      EXPECT_TRUE((a[i] >= '0' && a[i] <= '9') || (a[i] >= 'a' && a[i] <= 'f')) << a;
    }
  }
  EXPECT_NE(std::string_view("89ab").find(a[19]), std::string_view::npos) << a;
  // The first 48 bits are the Unix time in milliseconds.
  uint64_t ms = std::stoull(a.substr(0, 8) + a.substr(9, 4), nullptr, 16);
  int64_t now = absl::ToUnixMillis(absl::Now());
  EXPECT_LE(static_cast<int64_t>(ms), now);
  EXPECT_GT(static_cast<int64_t>(ms), now - 60000);
}

TEST(StatusTest, OneRuleDecidesRetryability) {
  EXPECT_TRUE(IsRetryable(absl::UnavailableError("")));
  EXPECT_TRUE(IsRetryable(absl::ResourceExhaustedError("")));
  EXPECT_FALSE(IsRetryable(absl::InvalidArgumentError("")));
  EXPECT_FALSE(IsRetryable(absl::NotFoundError("")));
  EXPECT_FALSE(CountsAsFailure(absl::InvalidArgumentError("")));
  EXPECT_TRUE(CountsAsFailure(absl::InternalError("")));
  absl::StatusCode code;
  ASSERT_TRUE(ParseCode("deadline_exceeded", &code));
  EXPECT_EQ(code, absl::StatusCode::kDeadlineExceeded);
  EXPECT_EQ(CodeName(absl::StatusCode::kUnavailable), "UNAVAILABLE");
  EXPECT_FALSE(ParseCode("NOPE", &code));
}

}  // namespace
}  // namespace switchboard

namespace switchboard {
namespace {

TEST(EnvelopeTestingTest, NamesEveryAttributeThatDiffers) {
  Envelope a;
  a.id = "1";
  a.type = "t";
  a.extensions["tenant"] = "acme";
  Envelope b = a;
  EXPECT_TRUE(::switchboard::testing::EnvelopesEqual(a, b));
  b.subject = "other";
  b.extensions["tenant"] = "globex";
  b.extensions["extra"] = "x";
  ::testing::AssertionResult r = ::switchboard::testing::EnvelopesEqual(a, b);
  ASSERT_FALSE(r);
  std::string message = r.message();
  EXPECT_NE(message.find("subject"), std::string::npos) << message;
  EXPECT_NE(message.find("extension tenant"), std::string::npos) << message;
  EXPECT_NE(message.find("extension extra: missing"), std::string::npos) << message;
}

}  // namespace
}  // namespace switchboard
