// The envelope <-> gRPC metadata mapping and the address conventions.
#include "wire.h"

#include <map>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "switchboard/v1/envelope.pb.h"

namespace switchboard::grpc::wire {
namespace {

using ::testing::Contains;
using ::testing::Pair;

std::map<std::string, std::string> AsMap(const Metadata& md) {
  return std::map<std::string, std::string>(md.begin(), md.end());
}

// A command with every attribute the metadata tests look at.
Envelope CommandEnvelope() {
  Envelope env;
  env.id = "id-1";
  env.source = "//orders/1";
  env.type = "orders.v1.Orders/PlaceOrder";
  env.time = absl::FromUnixSeconds(1'800'000'000);
  env.traceparent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
  env.tracestate = "congo=t61rcWkgMzE";
  env.idempotency_key = "key 1";
  env.deadline = absl::FromUnixSeconds(1'800'000'005);
  return env;
}

TEST(GrpcWireTest, EnvelopeAttributesBecomeCeMetadata) {
  Envelope env = CommandEnvelope();
  env.correlation_id = "c-1";
  env.reply_to = "grpc://127.0.0.1:1/inbox/7";
  env.attempt = 3;
  env.style = Style::kCommand;
  env.extensions["tenant"] = "acme";
  env.extensions["Bad-Key"] = "skipped";
  std::map<std::string, std::string> md = AsMap(ToMetadata(env));
  EXPECT_EQ(md["ce-id"], "id-1");
  EXPECT_EQ(md["ce-source"], "//orders/1");
  EXPECT_EQ(md["ce-specversion"], "1.0");
  EXPECT_EQ(md["ce-type"], "orders.v1.Orders/PlaceOrder");
  EXPECT_EQ(md["ce-time"], "2027-01-15T08:00:00Z");
  EXPECT_EQ(md["ce-datacontenttype"], "application/protobuf");
  EXPECT_EQ(md["traceparent"], env.traceparent);
  EXPECT_EQ(md["tracestate"], env.tracestate);
  EXPECT_EQ(md["ce-idempotencykey"], "key%201");
  EXPECT_EQ(md["ce-expirytime"], "2027-01-15T08:00:05Z");
  EXPECT_EQ(md["ce-correlationid"], "c-1");
  EXPECT_EQ(md["ce-replyto"], "grpc://127.0.0.1:1/inbox/7");
  EXPECT_EQ(md["ce-attempt"], "3");
  EXPECT_EQ(md["ce-style"], "command");
  EXPECT_EQ(md["ce-tenant"], "acme");
  EXPECT_EQ(md.count("ce-Bad-Key"), 0u);
  EXPECT_EQ(md.count("ce-statuscode"), 0u);
}

// With the full set, an idempotency key that is the id and a first attempt
// are left out, as in the body: a reader restores them.
TEST(GrpcWireTest, DefaultKeyAndFirstAttemptAreLeftOut) {
  Envelope env = CommandEnvelope();
  env.idempotency_key = env.id;
  std::map<std::string, std::string> md = AsMap(ToMetadata(env));
  EXPECT_EQ(md.count("ce-idempotencykey"), 0u);
  EXPECT_EQ(md.count("ce-attempt"), 0u);
  EXPECT_EQ(md["ce-id"], "id-1");
}

TEST(GrpcWireTest, ErrorReplyCarriesStatusAttributes) {
  Envelope env;
  env.id = "r";
  env.type = "t";
  env.status = absl::NotFoundError("no such \"order\"");
  std::map<std::string, std::string> md = AsMap(ToMetadata(env));
  EXPECT_EQ(md["ce-statuscode"], "5");
  EXPECT_EQ(md["ce-statusmessage"], "no%20such%20%22order%22");
}

TEST(GrpcWireTest, LongValuesStayInTheBody) {
  Envelope env;
  env.id = "id";
  env.type = "t";
  env.subject = std::string(kMaxMetadataValue + 1, 's');
  env.extensions["big"] = std::string(kMaxMetadataValue, ' ');  // triples when encoded
  env.extensions["small"] = "ok";
  std::map<std::string, std::string> md = AsMap(ToMetadata(env));
  EXPECT_EQ(md.count("ce-subject"), 0u);
  EXPECT_EQ(md.count("ce-big"), 0u);
  EXPECT_EQ(md["ce-small"], "ok");
  EXPECT_EQ(md["ce-id"], "id");
}

TEST(GrpcWireTest, PercentEncodingRoundTrips) {
  const std::string raw = "a b\"c%d\x7f\xc3\xa9/ok";
  std::string enc = PercentEncode(raw);
  for (char c : enc) {
    EXPECT_TRUE(c >= 0x21 && c <= 0x7e) << static_cast<int>(c);
  }
  EXPECT_EQ(PercentDecode(enc), raw);
  EXPECT_EQ(PercentDecode("100%"), "100%");
  EXPECT_EQ(PercentDecode("%zz"), "%zz");
}

// The body as the server reads it: internal::ReadEnvelopeWire.
Envelope ReadBody(const v1::Envelope& body, internal::EnvelopeWireRest* rest) {
  Envelope env;
  EXPECT_TRUE(internal::ReadEnvelopeWire(body.SerializeAsString(), &env, rest).ok());
  return env;
}

TEST(GrpcWireTest, MetadataFillsOnlyWhatTheBodyLeavesEmpty) {
  v1::Envelope body;
  body.set_id("from-body");
  Metadata md = {{"ce-id", "from-md"},
                 {"ce-type", "pkg.Svc/Op"},
                 {"ce-attempt", "2"},
                 {"ce-expirytime", "2027-01-15T08:00:05Z"},
                 {"ce-time", "2027-01-15T08:00:01.5Z"},
                 {"ce-style", "request"},
                 {"ce-tenant", "acme%20corp"},
                 {"traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"},
                 {"user-agent", "ignored"}};
  internal::EnvelopeWireRest rest;
  Envelope env = ReadBody(body, &rest);
  FillFromMetadata(md, &env, &rest);
  ASSERT_TRUE(internal::CompleteEnvelope(rest, &env).ok());
  EXPECT_EQ(env.id, "from-body");
  EXPECT_EQ(env.type, "pkg.Svc/Op");
  EXPECT_EQ(env.attempt, 2);
  EXPECT_EQ(env.deadline, absl::FromUnixSeconds(1'800'000'005));
  EXPECT_EQ(env.time, absl::FromUnixMillis(1'800'000'001'500));
  EXPECT_EQ(env.style, Style::kRequest);
  EXPECT_THAT(env.extensions, Contains(Pair("tenant", "acme corp")));
  EXPECT_EQ(env.traceparent, "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01");
}

TEST(GrpcWireTest, MetadataDoesNotReplaceWhatTheBodySent) {
  v1::Envelope body;
  body.set_id("id-1");
  body.set_type("pkg.Svc/Op");
  body.set_attempt(3);
  body.set_style(v1::STYLE_EVENT);
  body.mutable_deadline()->set_seconds(1'800'000'000);
  body.mutable_time()->set_seconds(1'700'000'000);
  Metadata md = {{"ce-attempt", "2"},
                 {"ce-style", "request"},
                 {"ce-expirytime", "2027-01-15T08:00:05Z"},
                 {"ce-time", "2027-01-15T08:00:01Z"}};
  internal::EnvelopeWireRest rest;
  Envelope env = ReadBody(body, &rest);
  FillFromMetadata(md, &env, &rest);
  ASSERT_TRUE(internal::CompleteEnvelope(rest, &env).ok());
  EXPECT_EQ(env.attempt, 3);
  EXPECT_EQ(env.style, Style::kEvent);
  EXPECT_EQ(env.deadline, absl::FromUnixSeconds(1'800'000'000));
  EXPECT_EQ(env.time, absl::FromUnixSeconds(1'700'000'000));
}

TEST(GrpcWireTest, RoutingSetCarriesOnlyWhatProxiesAndTracersUse) {
  Envelope env = CommandEnvelope();
  env.correlation_id = "c 1";
  env.reply_to = "grpc://127.0.0.1:1/inbox/7";
  env.style = Style::kCommand;
  env.status = absl::NotFoundError("gone");
  env.extensions["tenant"] = "acme";
  std::map<std::string, std::string> md = AsMap(ToMetadata(env, MetadataSet::kRouting));
  EXPECT_EQ(md, (std::map<std::string, std::string>{
                    {"ce-type", "orders.v1.Orders/PlaceOrder"},
                    {"traceparent", env.traceparent},
                    {"tracestate", env.tracestate},
                }));
  // The full set is a superset with the same values.
  std::map<std::string, std::string> full = AsMap(ToMetadata(env, MetadataSet::kFull));
  for (const auto& [k, v] : md) EXPECT_EQ(full[k], v) << k;
  EXPECT_EQ(full["ce-id"], "id-1");
  EXPECT_EQ(full["ce-correlationid"], "c%201");
  EXPECT_EQ(full["ce-tenant"], "acme");
  EXPECT_EQ(full["ce-statuscode"], "5");
}

TEST(GrpcWireTest, PercentEncodingKeepsPlainValuesAndEscapesBoundaries) {
  EXPECT_FALSE(NeedsPercentEncoding("plain-ASCII_value/1.0~!"));
  EXPECT_EQ(PercentEncode("plain-ASCII_value/1.0~!"), "plain-ASCII_value/1.0~!");
  EXPECT_EQ(PercentEncode(""), "");
  // 0x20 and 0x7F are just outside the printable range; 0x21 and 0x7E inside.
  EXPECT_TRUE(NeedsPercentEncoding(std::string("\x20", 1)));
  EXPECT_EQ(PercentEncode(std::string("\x20\x21\x7e\x7f", 4)), "%20!~%7F");
  EXPECT_EQ(PercentEncode("\"%"), "%22%25");
  EXPECT_EQ(PercentEncode(std::string("a\0b", 3)), "a%00b");
  std::string appended = "keep:";
  AppendPercentEncoded("x y", &appended);
  EXPECT_EQ(appended, "keep:x%20y");
  for (const std::string& raw : {std::string("no escapes"), std::string("100% \"sure\""),
                                std::string("\x01\xff tail"), std::string(300, '%')}) {
    EXPECT_EQ(PercentDecode(PercentEncode(raw)), raw);
  }
  EXPECT_EQ(PercentDecode("a%2fb%2Fc"), "a/b/c");
  EXPECT_EQ(PercentDecode("%"), "%");
  EXPECT_EQ(PercentDecode("%4"), "%4");
  EXPECT_EQ(PercentDecode("%%41"), "%A");
  EXPECT_EQ(PercentDecode("x%4g%41"), "x%4gA");
}

TEST(GrpcWireTest, MetadataViewsFillTheBodyWithoutOverwriting) {
  v1::Envelope body;
  body.set_type("from-body");
  (*body.mutable_extensions())["tenant"] = "body";
  const std::string id = "md%20id";
  std::vector<MetadataView> md = {{"ce-id", id},
                                  {"ce-type", "ignored"},
                                  {"ce-tenant", "metadata"},
                                  {"ce-region", "eu"},
                                  {"tracestate", "a=1"}};
  internal::EnvelopeWireRest rest;
  Envelope env = ReadBody(body, &rest);
  FillFromMetadata(md, &env, &rest);
  EXPECT_EQ(env.id, "md id");
  EXPECT_EQ(env.type, "from-body");
  EXPECT_EQ(env.extensions.at("tenant"), "body");
  EXPECT_EQ(env.extensions.at("region"), "eu");
  EXPECT_EQ(env.tracestate, "a=1");
}

TEST(GrpcWireTest, TargetKeysGoFromOperationToServiceToDefault) {
  EXPECT_THAT(TargetKeys("orders.v1.Orders/PlaceOrder"),
              ::testing::ElementsAre("orders.v1.Orders/PlaceOrder", "orders.v1.Orders", "*"));
  EXPECT_THAT(TargetKeys("orders.v1.OrderPlaced"),
              ::testing::ElementsAre("orders.v1.OrderPlaced", "orders.v1", "*"));
  EXPECT_THAT(TargetKeys("plain"), ::testing::ElementsAre("plain", "*"));
}

TEST(GrpcWireTest, InboxAddressesRoundTripAndBadOnesAreRefused) {
  std::string a = InboxAddress("127.0.0.1:5000", "42-abc");
  EXPECT_EQ(a, "grpc://127.0.0.1:5000/inbox/42-abc");
  absl::StatusOr<InboxRef> ref = ParseInboxAddress(a);
  ASSERT_TRUE(ref.ok()) << ref.status();
  EXPECT_EQ(ref->target, "127.0.0.1:5000");
  EXPECT_EQ(ref->inbox, "42-abc");
  for (const char* bad : {"", "127.0.0.1:5000/inbox/1", "grpc:///inbox/1",
                          "grpc://127.0.0.1:5000/inbox/", "nats://x/inbox/1"}) {
    EXPECT_EQ(ParseInboxAddress(bad).status().code(), absl::StatusCode::kInvalidArgument) << bad;
  }
}

}  // namespace
}  // namespace switchboard::grpc::wire
