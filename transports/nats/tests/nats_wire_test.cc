// The envelope <-> NATS header mapping and the naming rules, without a server.
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "switchboard/testing/envelope_testing.h"
#include "nats_names.h"
#include "nats_wire.h"
#include "switchboard/envelope.h"

namespace switchboard::nats {
namespace {

using ::testing::HasSubstr;

HeaderMap ToMap(const HeaderList& list) {
  HeaderMap m;
  for (const auto& [k, v] : list) m.emplace(k, v);
  return m;
}

Envelope FullEnvelope() {
  Envelope e;
  e.id = "0190a7c2-1111-7abc-8def-0123456789ab";
  e.source = "//orders/instance 1";
  e.type = "orders.v1.Orders/PlaceOrder";
  e.time = absl::FromUnixMicros(1'800'000'000'123'456);
  e.data_content_type = "application/json";
  e.subject = "order/42";
  e.traceparent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
  e.tracestate = "congo=t61rcWkgMzE,rojo=00f067aa0ba902b7";
  e.idempotency_key = "key with spaces %and \"quotes\"";
  e.deadline = absl::FromUnixMillis(1'800'000'005'000);
  e.correlation_id = "corr-1";
  e.reply_to = "_INBOX.abc";
  e.attempt = 3;
  e.style = Style::kCommand;
  e.status = absl::NotFoundError("no order 42 — gone");
  e.extensions["tenant"] = "acme";
  e.extensions["deadletterreason"] = "handler said: no\r\nnewline";
  e.data = std::string("\x00\x01\xffpayload", 10);
  return e;
}

TEST(NatsWire, RoundTripKeepsEveryAttribute) {
  Envelope in = FullEnvelope();
  absl::StatusOr<Envelope> out = EnvelopeFromHeaders(ToMap(EnvelopeToHeaders(in)), in.data);
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_TRUE(::switchboard::testing::EnvelopesEqual(*out, in));
}

TEST(NatsWire, MinimalEnvelopeRoundTrips) {
  Envelope in;
  in.id = "1";
  in.type = "t";
  absl::StatusOr<Envelope> out = EnvelopeFromHeaders(ToMap(EnvelopeToHeaders(in)), "");
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_FALSE(out->has_deadline());
  EXPECT_EQ(out->time, absl::UnixEpoch());
  EXPECT_EQ(out->attempt, 1);
  EXPECT_TRUE(out->status.ok());
  EXPECT_EQ(out->style, Style::kUnspecified);
  EXPECT_EQ(out->data_content_type, kContentTypeProtobuf);
}

TEST(NatsWire, HeadersFollowTheCloudEventsNatsBinding) {
  HeaderMap h = ToMap(EnvelopeToHeaders(FullEnvelope()));
  EXPECT_EQ(h.at("ce-specversion"), "1.0");
  EXPECT_EQ(h.at("ce-type"), "orders.v1.Orders/PlaceOrder");
  EXPECT_EQ(h.at("ce-source"), "//orders/instance%201");
  EXPECT_EQ(h.at("ce-datacontenttype"), "application/json");
  EXPECT_EQ(h.count("Content-Type"), 0u);  // binary mode: it would only mark structured mode
  EXPECT_EQ(h.at("ce-idempotencykey"), "key%20with%20spaces%20%25and%20%22quotes%22");
  EXPECT_EQ(h.at("ce-time"), "2027-01-15T08:00:00.123456Z");
  EXPECT_EQ(h.at("ce-expirytime"), "2027-01-15T08:00:05Z");
  EXPECT_EQ(h.at("ce-attempt"), "3");
  EXPECT_EQ(h.at("ce-style"), "command");
  EXPECT_EQ(h.at("ce-statuscode"), "5");
  EXPECT_EQ(h.at("traceparent"), h.at("ce-traceparent"));
  EXPECT_EQ(h.at("tracestate"), h.at("ce-tracestate"));
  EXPECT_EQ(h.at("ce-tenant"), "acme");
  EXPECT_EQ(h.count("ce-data"), 0u);
  for (const auto& [k, v] : h) {
    for (char c : v) {
      EXPECT_TRUE(c >= 0x21 && c <= 0x7e && c != '"') << k << " carries raw byte " << int(c);
    }
  }
}

// An idempotency key that is the id and a first attempt are left out, and a
// reader restores them: the envelope comes out as it went in.
TEST(NatsWire, DefaultKeyAndFirstAttemptAreLeftOutAndRestored) {
  Envelope in = FullEnvelope();
  in.idempotency_key = in.id;
  in.attempt = 1;
  HeaderMap h = ToMap(EnvelopeToHeaders(in));
  EXPECT_EQ(h.count("ce-idempotencykey"), 0u);
  EXPECT_EQ(h.count("ce-attempt"), 0u);
  absl::StatusOr<Envelope> out = EnvelopeFromHeaders(h, in.data);
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(out->idempotency_key, in.id);
  EXPECT_EQ(out->attempt, 1);
  EXPECT_TRUE(::switchboard::testing::EnvelopesEqual(*out, in));

  // A sender that writes them anyway, and one that still sends Content-Type
  // instead of ce-datacontenttype, read the same.
  h["ce-idempotencykey"] = in.id;
  h["ce-attempt"] = "1";
  h.erase("ce-datacontenttype");
  h["Content-Type"] = "application/json";
  out = EnvelopeFromHeaders(h, in.data);
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_TRUE(::switchboard::testing::EnvelopesEqual(*out, in));

  // A key of its own still travels.
  in.idempotency_key = "order-42";
  EXPECT_EQ(ToMap(EnvelopeToHeaders(in)).at("ce-idempotencykey"), "order-42");
}

// cnats reads an empty header value as the whole next header line, so an
// empty value travels as the quoted empty string and reads back as empty.
TEST(NatsWire, EmptyValuesTravelQuotedAndReadBackEmpty) {
  Envelope in = FullEnvelope();
  in.source.clear();
  in.status = absl::NotFoundError("");
  in.extensions["blank"] = "";
  HeaderList list = EnvelopeToHeaders(in);
  for (const auto& [k, v] : list) EXPECT_FALSE(v.empty()) << k << " has an empty value";
  HeaderMap h = ToMap(list);
  EXPECT_EQ(h.at("ce-source"), "\"\"");
  EXPECT_EQ(h.at("ce-statusmessage"), "\"\"");
  EXPECT_EQ(h.at("ce-blank"), "\"\"");
  absl::StatusOr<Envelope> out = EnvelopeFromHeaders(h, in.data);
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_TRUE(::switchboard::testing::EnvelopesEqual(*out, in));
}

TEST(NatsWire, PercentEncodingEdgeCases) {
  EXPECT_EQ(PercentEncode(""), "");
  EXPECT_EQ(PercentEncode("a b"), "a%20b");
  EXPECT_EQ(PercentEncode("100%"), "100%25");
  EXPECT_EQ(PercentEncode("say \"hi\""), "say%20%22hi%22");
  EXPECT_EQ(PercentEncode("é"), "%C3%A9");
  EXPECT_EQ(PercentEncode("\r\n\t"), "%0D%0A%09");
  EXPECT_EQ(PercentEncode("~!"), "~!");
  EXPECT_EQ(PercentEncode(std::string("\x7f", 1)), "%7F");

  EXPECT_EQ(*PercentDecode("a%20b"), "a b");
  EXPECT_EQ(*PercentDecode("%c3%a9"), "é");  // lower-case hex is accepted
  EXPECT_EQ(*PercentDecode("\"quoted%20value\""), "quoted value");
  EXPECT_EQ(*PercentDecode("\"a\\\"b\""), "a\"b");
  EXPECT_EQ(*PercentDecode("\""), "\"");  // a lone quote is not a quoted string
  EXPECT_EQ(PercentDecode("50%").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(PercentDecode("%4").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(PercentDecode("%zz").status().code(), absl::StatusCode::kInvalidArgument);
  // Decoding once: an encoded '%' stays a '%'.
  EXPECT_EQ(*PercentDecode("%2520"), "%20");

  std::string all;
  for (int c = 0; c < 256; ++c) all.push_back(static_cast<char>(c));
  EXPECT_EQ(*PercentDecode(PercentEncode(all)), all);
}

HeaderMap Valid() {
  Envelope e;
  e.id = "m1";
  e.type = "op";
  return ToMap(EnvelopeToHeaders(e));
}

absl::Status Decode(HeaderMap h) { return EnvelopeFromHeaders(h, "x").status(); }

TEST(NatsWire, GarbageHeadersAreInvalidArgumentNamingTheHeader) {
  struct Case {
    std::string key;
    std::string value;  // "" with erase=true removes the header
    bool erase;
    std::string expect;
  };
  const Case cases[] = {
      {"ce-id", "", true, "ce-id"},
      {"ce-type", "", true, "ce-type"},
      {"ce-specversion", "", true, "ce-specversion"},
      {"ce-specversion", "0.3", false, "ce-specversion"},
      {"ce-id", "", false, "ce-id"},
      {"ce-time", "yesterday", false, "ce-time"},
      {"ce-expirytime", "2026-13-45T99:00:00Z", false, "ce-expirytime"},
      {"ce-attempt", "0", false, "ce-attempt"},
      {"ce-attempt", "-4", false, "ce-attempt"},
      {"ce-attempt", "three", false, "ce-attempt"},
      {"ce-attempt", "99999999999999999999", false, "ce-attempt"},
      {"ce-style", "telepathy", false, "ce-style"},
      {"ce-statuscode", "teapot", false, "ce-statuscode"},
      {"ce-statuscode", "99", false, "ce-statuscode"},
      {"ce-subject", "bad%escape", false, "ce-subject"},
      {"Content-Type", "application/cloudevents+json", false, "structured"},
  };
  for (const Case& c : cases) {
    HeaderMap h = Valid();
    if (c.erase) {
      h.erase(c.key);
    } else {
      h[c.key] = c.value;
    }
    absl::Status s = Decode(h);
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << c.key << "=" << c.value;
    EXPECT_THAT(std::string(s.message()), HasSubstr(c.expect)) << c.key << "=" << c.value;
  }
  EXPECT_EQ(Decode({}).code(), absl::StatusCode::kInvalidArgument);
}

TEST(NatsWire, ReaderIsLenientWhereTheBindingAllows) {
  HeaderMap h = Valid();
  h.erase("ce-traceparent");
  h["traceparent"] = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
  h["ce-statuscode"] = "NOT_FOUND";
  h["ce-statusmessage"] = "gone";
  h["ce-Tenant"] = "acme";          // extension names are lower-cased
  h["ce-bad_name"] = "dropped";     // not a CloudEvents attribute name
  h["X-Other"] = "ignored";
  h.erase("ce-datacontenttype");
  h["Content-Type"] = "application/json";
  absl::StatusOr<Envelope> e = EnvelopeFromHeaders(h, "");
  ASSERT_TRUE(e.ok()) << e.status();
  EXPECT_EQ(e->traceparent, "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01");
  EXPECT_EQ(e->status.code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(e->status.message(), "gone");
  EXPECT_EQ(e->data_content_type, "application/json");
  EXPECT_EQ(e->extensions.at("tenant"), "acme");
  EXPECT_EQ(e->extensions.count("bad_name"), 0u);
}

TEST(NatsWire, ExtensionsThatCannotTravelAreNotSent) {
  Envelope e;
  e.id = "1";
  e.type = "t";
  e.extensions["Upper"] = "x";
  e.extensions["with-dash"] = "x";
  e.extensions["id"] = "shadow";
  e.extensions["ok1"] = "y";
  HeaderMap h = ToMap(EnvelopeToHeaders(e));
  EXPECT_EQ(h.at("ce-id"), "1");
  EXPECT_EQ(h.count("ce-Upper"), 0u);
  EXPECT_EQ(h.count("ce-with-dash"), 0u);
  EXPECT_EQ(h.at("ce-ok1"), "y");
}

TEST(NatsWire, DedupIdPrefersTheIdempotencyKey) {
  Envelope e;
  e.id = "id-1";
  EXPECT_EQ(DedupId(e), "id-1");
  e.idempotency_key = "key-1";
  EXPECT_EQ(DedupId(e), "key-1");
}

TEST(NatsWire, ReplayedDeadLetterGetsItsOwnDedupId) {
  Envelope e;
  e.id = "id-1";
  e.idempotency_key = "key-1";
  e.extensions["deadletterreplayedat"] = "2026-11-23T08:00:00Z";
  EXPECT_EQ(DedupId(e), "key-1+replay@2026-11-23T08:00:00Z");
}

TEST(NatsWire, PercentEncodingKeepsPlainValuesAndEscapesBoundaries) {
  EXPECT_EQ(PercentEncode(""), "");
  EXPECT_EQ(PercentEncode("plain-ASCII_value/1.0~!"), "plain-ASCII_value/1.0~!");
  // 0x20 and 0x7F are just outside the printable range; 0x21 and 0x7E inside.
  EXPECT_EQ(PercentEncode(std::string("\x20\x21\x7e\x7f", 4)), "%20!~%7F");
  EXPECT_EQ(PercentEncode("\"%"), "%22%25");
  EXPECT_EQ(PercentEncode(std::string("a\0b", 3)), "a%00b");
  EXPECT_EQ(PercentEncode("\xc3\xa9t\xc3\xa9"), "%C3%A9t%C3%A9");
  for (const std::string& raw : {std::string("no escapes"), std::string("100% \"sure\""),
                                std::string("\x01\xff tail"), std::string(300, '%')}) {
    absl::StatusOr<std::string> back = PercentDecode(PercentEncode(raw));
    ASSERT_TRUE(back.ok()) << back.status();
    EXPECT_EQ(*back, raw);
  }
  EXPECT_EQ(*PercentDecode("\"quoted%20value\""), "quoted value");
  EXPECT_EQ(*PercentDecode("a%2fb%2Fc"), "a/b/c");
  EXPECT_FALSE(PercentDecode("end%2").ok());
  EXPECT_FALSE(PercentDecode("%g0").ok());
}

TEST(NatsWire, TimestampsMatchTheCoreFormatAndParser) {
  std::vector<absl::Time> times = {
      absl::UnixEpoch(),
      absl::FromUnixSeconds(1'800'000'000),
      absl::FromUnixSeconds(1'800'000'000) + absl::Milliseconds(5),
      absl::FromUnixSeconds(1'800'000'000) + absl::Nanoseconds(123'456'780),
      absl::FromUnixSeconds(951'782'400),      // 2000-02-29, a leap day
      absl::FromUnixSeconds(-1) + absl::Nanoseconds(1),
      absl::FromUnixSeconds(-30'000'000'000),  // year 1019
      absl::FromUnixSeconds(253'402'300'799),  // 9999-12-31T23:59:59Z
      absl::FromUnixSeconds(-62'135'596'800),  // year 1: the core path
      absl::FromUnixSeconds(1) + absl::Nanoseconds(1) / 4,  // below a nanosecond
  };
  uint64_t x = 88172645463325252u;  // xorshift: a spread of instants
  for (int i = 0; i < 2000; ++i) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    times.push_back(absl::FromUnixNanos(static_cast<int64_t>(x % 8'000'000'000'000'000'000u)) -
                    absl::Hours(24 * 365 * 100));
  }
  for (absl::Time t : times) {
    const std::string want = FormatRfc3339(t);
    EXPECT_EQ(FormatTimestamp(t), want);
    absl::StatusOr<absl::Time> fast = ParseTimestamp(want);
    absl::StatusOr<absl::Time> core = ParseRfc3339(want);
    ASSERT_EQ(fast.ok(), core.ok()) << want;
    if (core.ok()) {
      EXPECT_EQ(*fast, *core) << want;
    }
  }
  for (std::string_view text :
       {"2027-01-15T08:00:00.5Z", "2027-01-15T08:00:00.000000001Z", "2027-01-15T08:00:00+02:00",
        "2027-01-15t08:00:00z", "2027-02-29T00:00:00Z", "2028-02-29T00:00:00Z",
        "2027-13-01T00:00:00Z", "2027-01-15T24:00:00Z", "2027-01-15T08:00:60Z",
        "2027-01-15T08:00:00.Z", "2027-01-15T08:00:00.1234567891Z", "2027-1-15T08:00:00Z",
        "0999-01-01T00:00:00Z", ""}) {
    absl::StatusOr<absl::Time> fast = ParseTimestamp(text);
    absl::StatusOr<absl::Time> core = ParseRfc3339(text);
    ASSERT_EQ(fast.ok(), core.ok()) << text;
    if (core.ok()) {
      EXPECT_EQ(*fast, *core) << text;
    }
  }
}

TEST(NatsWire, HeadersAreNulTerminatedViewsAndDecodeFromViews) {
  Envelope env = FullEnvelope();
  env.idempotency_key = "key 1";
  env.time = absl::FromUnixSeconds(1'800'000'000) + absl::Milliseconds(250);
  env.deadline = absl::FromUnixSeconds(1'800'000'005);
  env.extensions["tenant"] = "acme corp";
  std::vector<std::pair<std::string, std::string>> copied;
  ForEachHeader(env, [&](std::string_view key, std::string_view value) {
    EXPECT_EQ(key.data()[key.size()], '\0') << key;
    EXPECT_EQ(value.data()[value.size()], '\0') << key;
    copied.emplace_back(key, value);
  });
  std::map<std::string, std::string> by_key(copied.begin(), copied.end());
  EXPECT_EQ(by_key["ce-idempotencykey"], "key%201");
  EXPECT_EQ(by_key["ce-time"], "2027-01-15T08:00:00.25Z");
  EXPECT_EQ(by_key["ce-expirytime"], "2027-01-15T08:00:05Z");
  EXPECT_EQ(by_key["ce-tenant"], "acme%20corp");
  EXPECT_EQ(by_key["ce-attempt"], std::to_string(env.attempt));

  std::vector<HeaderView> views;
  for (const auto& [k, v] : copied) views.push_back({k, v});
  views.push_back({"ce-id", "a-second-value-is-ignored"});
  views.push_back({"ce-Region", "eu"});
  absl::StatusOr<Envelope> back = EnvelopeFromHeaders(views, "payload");
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->id, env.id);
  EXPECT_EQ(back->idempotency_key, "key 1");
  EXPECT_EQ(back->time, env.time);
  EXPECT_EQ(back->deadline, env.deadline);
  EXPECT_EQ(back->extensions.at("tenant"), "acme corp");
  EXPECT_EQ(back->extensions.at("region"), "eu");
  EXPECT_EQ(back->status, env.status);
  EXPECT_EQ(back->data, "payload");

  // A bad escape in a header the envelope does not use is still refused.
  views.push_back({"X-Other", "bad%zz"});
  absl::StatusOr<Envelope> bad = EnvelopeFromHeaders(views, "");
  ASSERT_FALSE(bad.ok());
  EXPECT_THAT(bad.status().message(), HasSubstr("NATS header X-Other"));
}

TEST(NatsNames, SubjectsAreDeterministicAndSafe) {
  EXPECT_EQ(OperationSubject("sb", Kind::kRequest, "orders.v1.Orders/PlaceOrder"),
            "sb.req.orders.v1.Orders/PlaceOrder");
  EXPECT_EQ(OperationSubject("sb", Kind::kCommand, "a b*c>d"), "sb.cmd.a_b_c_d");
  EXPECT_EQ(OperationSubject("sb", Kind::kEvent, "a..b."), "sb.evt.a._.b._");
  EXPECT_EQ(OperationSubject("sb", Kind::kEvent, "x", "custom.subject"), "custom.subject");
  EXPECT_EQ(SubjectSafe(""), "_");
}

TEST(NatsNames, StreamAndConsumerNamesHaveNoReservedCharacters) {
  std::string a = StreamName("sb.run1", Kind::kCommand, "sb.run1.cmd.orders.v1.Orders/PlaceOrder");
  std::string b = StreamName("sb.run1", Kind::kCommand, "sb.run1.cmd.orders.v1.Orders_PlaceOrder");
  EXPECT_NE(a, b);  // the hash separates names that sanitize alike
  for (const std::string& n : {a, b, CommandConsumerName("orders.v1.Orders/PlaceOrder"),
                               GroupConsumerName("pay ment.group"), QueueGroupName("a.b")}) {
    EXPECT_EQ(n.find_first_of("./*> \t"), std::string::npos) << n;
  }
  EXPECT_EQ(CommandConsumerName("op"), CommandConsumerName("op"));
  std::string long_op(500, 'x');
  EXPECT_LT(StreamName("sb", Kind::kEvent, long_op).size(), 120u);
}

}  // namespace
}  // namespace switchboard::nats
