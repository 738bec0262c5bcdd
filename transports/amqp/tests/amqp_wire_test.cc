// The Envelope <-> AMQP message mapping, without a broker.
#include "amqp_wire.h"

#include <algorithm>
#include <limits>
#include <optional>
#include <string_view>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "address_scheme.h"
#include "reconnect_backoff.h"
#include "gtest/gtest.h"
#include "switchboard/internal/cloudevent_wire.h"
#include "switchboard/testing/envelope_testing.h"
#include "proton/annotation_key.hpp"
#include "proton/binary.hpp"
#include "proton/codec.h"
#include "proton/message.h"
#include "proton/codec/vector.hpp"
#include "proton/message.hpp"
#include "proton/message_id.hpp"
#include "proton/scalar.hpp"
#include "proton/timestamp.hpp"

namespace switchboard::amqp {
namespace {

Envelope FullEnvelope() {
  Envelope e;
  e.id = "0190a0b2-id";
  e.source = "//test/node-1";
  e.type = "orders.v1.Orders/PlaceOrder";
  e.time = absl::FromUnixMillis(1'800'000'123'456);
  e.data_content_type = "application/protobuf";
  e.subject = "order-42";
  e.traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
  e.tracestate = "vendor=abc";
  e.idempotency_key = "idem-1";
  e.deadline = absl::FromUnixMillis(1'800'000'133'456);
  e.correlation_id = "corr-1";
  e.reply_to = "/queue/sb.reply.x";
  e.attempt = 3;
  e.style = Style::kCommand;
  e.status = absl::NotFoundError("no such order");
  e.extensions["tenant"] = "acme";
  e.data = std::string("\x00\x01\xffpayload", 10);
  return e;
}

TEST(AmqpWireTest, RoundTripKeepsEveryAttribute) {
  const Envelope in = FullEnvelope();
  proton::message msg;
  ASSERT_TRUE(EnvelopeToMessage(in, /*durable=*/true, &msg).ok());
  // Through the codec too, as the broker would see it.
  std::vector<char> bytes;
  msg.encode(bytes);
  proton::message decoded;
  decoded.decode(bytes);

  auto out = MessageToEnvelope(decoded);
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_TRUE(::switchboard::testing::EnvelopesEqual(*out, in));
}

TEST(AmqpWireTest, StructuredModeIsOneCloudEventBodyAndReadsBack) {
  const Envelope in = FullEnvelope();
  proton::message msg;
  ASSERT_TRUE(EnvelopeToMessage(in, /*durable=*/true, &msg, ContentMode::kStructured).ok());
  std::vector<char> bytes;
  msg.encode(bytes);
  proton::message decoded;
  decoded.decode(bytes);

  EXPECT_EQ(decoded.content_type(), "application/cloudevents+protobuf");
  EXPECT_TRUE(decoded.properties().empty());  // no attribute travels outside the body
  EXPECT_EQ(proton::get<std::string>(decoded.id()), in.id);
  EXPECT_EQ(proton::get<std::string>(decoded.correlation_id()), in.correlation_id);
  EXPECT_EQ(decoded.reply_to(), in.reply_to);
  EXPECT_TRUE(decoded.durable());
  const std::string body = proton::get<proton::binary>(decoded.body());
  Envelope from_body;
  ASSERT_TRUE(internal::ReadCloudEventWire(body, &from_body).ok());
  EXPECT_TRUE(::switchboard::testing::EnvelopesEqual(from_body, in));
  EXPECT_EQ(ContentModeOf(decoded), ContentMode::kStructured);

  std::optional<uint64_t> counted;
  auto out = MessageToEnvelope(decoded, &counted);
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_TRUE(::switchboard::testing::EnvelopesEqual(*out, in));
  ASSERT_TRUE(counted.has_value());
  EXPECT_GE(static_cast<double>(*counted), bytes.size() * 0.97 - 16);
  EXPECT_LE(static_cast<double>(*counted), bytes.size() * 1.03 + 16);
}

TEST(AmqpWireTest, StructuredMessagesInAnotherFormOrBodyAreInvalidArgument) {
  proton::message msg;
  ASSERT_TRUE(
      EnvelopeToMessage(FullEnvelope(), /*durable=*/false, &msg, ContentMode::kStructured).ok());
  proton::message json = msg;
  json.content_type("application/cloudevents+json; charset=utf-8");
  auto out = MessageToEnvelope(json);
  EXPECT_EQ(out.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(out.status().message().find("format application/cloudevents+json"),
            std::string::npos)
      << out.status();

  proton::message text_body = msg;
  text_body.body(std::string("not a data section"));
  out = MessageToEnvelope(text_body);
  EXPECT_EQ(out.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(out.status().message().find("one data section"), std::string::npos) << out.status();

  proton::message damaged = msg;
  damaged.body(proton::binary(std::string("\x0A\x09short")));
  out = MessageToEnvelope(damaged);
  EXPECT_EQ(out.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(out.status().message().find("not a protobuf CloudEvent"), std::string::npos)
      << out.status();

  // Parameters and case of the content type do not matter.
  proton::message spelled = msg;
  spelled.content_type("Application/CloudEvents+Protobuf; x=1");
  EXPECT_TRUE(MessageToEnvelope(spelled).ok());
}

// The transport keeps one encoder: a message encoded after another must be
// the same bytes as from a new encoder, with nothing left of the last one.
TEST(AmqpWireTest, ReusedEncoderCarriesNothingOfItsLastEnvelope) {
  Envelope small;
  small.id = "id-2";
  small.type = "a.b.C";
  small.time = absl::FromUnixMillis(1'800'000'000'000);
  small.data = "x";

  EnvelopeEncoder reused;
  std::vector<char> first;
  ASSERT_TRUE(reused
                  .Encode(FullEnvelope(), /*durable=*/true, "corr-of-a-reply",
                          ContentMode::kBinary, &first)
                  .ok());
  std::vector<char> got;
  ASSERT_TRUE(reused.Encode(small, /*durable=*/false, "", ContentMode::kBinary, &got).ok());

  EnvelopeEncoder fresh;
  std::vector<char> want;
  ASSERT_TRUE(fresh.Encode(small, /*durable=*/false, "", ContentMode::kBinary, &want).ok());
  EXPECT_EQ(got, want);
  EXPECT_LT(got.size(), first.size());
}

// A reply's correlation-id is the request's message id; the envelope's own
// correlation id stays in its application property.
TEST(AmqpWireTest, ReplyCorrelationIdIsTheOneGiven) {
  EnvelopeEncoder encoder;
  std::vector<char> bytes;
  ASSERT_TRUE(encoder
                  .Encode(FullEnvelope(), /*durable=*/false, "request-id", ContentMode::kBinary,
                          &bytes)
                  .ok());
  proton::message m;
  m.decode(bytes);
  EXPECT_EQ(proton::get<std::string>(m.correlation_id()), "request-id");
  EXPECT_EQ(proton::get<std::string>(m.properties().get("cloudEvents_correlationid")), "corr-1");
  EXPECT_FALSE(m.durable());
}

TEST(AmqpWireTest, NativeTypesAndAmqpPropertiesOnTheWire) {
  proton::message msg;
  ASSERT_TRUE(EnvelopeToMessage(FullEnvelope(), /*durable=*/true, &msg).ok());
  EXPECT_TRUE(msg.durable());
  EXPECT_EQ(proton::get<std::string>(msg.id()), "0190a0b2-id");
  EXPECT_EQ(proton::get<std::string>(msg.correlation_id()), "corr-1");
  EXPECT_EQ(msg.reply_to(), "/queue/sb.reply.x");
  EXPECT_EQ(msg.content_type(), "application/protobuf");
  EXPECT_EQ(msg.creation_time().milliseconds(), 1'800'000'123'456);
  EXPECT_TRUE(msg.inferred());  // binary body as a data section
  const auto& p = msg.properties();
  EXPECT_EQ(p.get("cloudEvents_time").type(), proton::TIMESTAMP);
  EXPECT_EQ(p.get("cloudEvents_expirytime").type(), proton::TIMESTAMP);
  EXPECT_EQ(p.get("cloudEvents_attempt").type(), proton::LONG);
  EXPECT_EQ(p.get("cloudEvents_statuscode").type(), proton::LONG);
  EXPECT_EQ(proton::get<std::string>(p.get("cloudEvents_specversion")), "1.0");
  // Trace context in both forms.
  EXPECT_EQ(proton::get<std::string>(p.get("cloudEvents_traceparent")),
            proton::get<std::string>(p.get("traceparent")));
  EXPECT_EQ(proton::get<std::string>(p.get("tracestate")), "vendor=abc");
  EXPECT_EQ(proton::get<std::string>(p.get("cloudEvents_tenant")), "acme");
  EXPECT_EQ(proton::get<std::string>(p.get("cloudEvents_idempotencykey")), "idem-1");
  // The binding's place for datacontenttype is properties.content-type only.
  EXPECT_FALSE(p.exists("cloudEvents_datacontenttype"));
}

// An idempotency key that is the id and a first attempt are left out, and a
// reader restores them: the envelope comes out as it went in.
TEST(AmqpWireTest, DefaultKeyAndFirstAttemptAreLeftOutAndRestored) {
  Envelope in = FullEnvelope();
  in.idempotency_key = in.id;
  in.attempt = 1;
  proton::message msg;
  ASSERT_TRUE(EnvelopeToMessage(in, /*durable=*/true, &msg).ok());
  EXPECT_FALSE(msg.properties().exists("cloudEvents_idempotencykey"));
  EXPECT_FALSE(msg.properties().exists("cloudEvents_attempt"));
  absl::StatusOr<Envelope> out = MessageToEnvelope(msg);
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(out->idempotency_key, in.id);
  EXPECT_EQ(out->attempt, 1);
  EXPECT_TRUE(::switchboard::testing::EnvelopesEqual(*out, in));

  // A sender that writes them anyway (and datacontenttype as a property)
  // reads the same.
  msg.properties().put("cloudEvents_idempotencykey", in.id);
  msg.properties().put("cloudEvents_attempt", int64_t{1});
  msg.properties().put("cloudEvents_datacontenttype", in.data_content_type);
  msg.content_type("");
  out = MessageToEnvelope(msg);
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_TRUE(::switchboard::testing::EnvelopesEqual(*out, in));
}

TEST(AmqpWireTest, AcceptsCanonicalStringForms) {
  proton::message msg;
  auto& p = msg.properties();
  p.put("cloudEvents_id", std::string("x1"));
  p.put("cloudEvents_type", std::string("a.b.C"));
  p.put("cloudEvents_specversion", std::string("1.0"));
  p.put("cloudEvents_time", std::string("2027-01-15T08:00:00.250Z"));
  p.put("cloudEvents_expirytime", std::string("2027-01-15T08:00:30Z"));
  p.put("cloudEvents_attempt", std::string("4"));
  p.put("cloudEvents_statuscode", std::string("UNAVAILABLE"));
  p.put("cloudEvents_statusmessage", std::string("down"));
  p.put("cloudEvents_flag", true);
  p.put("cloudEvents_count", int32_t{7});
  p.put("traceparent", std::string("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"));
  msg.content_type("application/json");
  msg.body(std::string("{}"));

  auto out = MessageToEnvelope(msg);
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(out->time, *ParseRfc3339("2027-01-15T08:00:00.250Z"));
  EXPECT_EQ(out->deadline, *ParseRfc3339("2027-01-15T08:00:30Z"));
  EXPECT_EQ(out->attempt, 4);
  EXPECT_EQ(out->status.code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(out->status.message(), "down");
  EXPECT_EQ(out->extensions.at("flag"), "true");
  EXPECT_EQ(out->extensions.at("count"), "7");
  EXPECT_EQ(out->data_content_type, "application/json");  // from content-type
  EXPECT_EQ(out->traceparent, "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01");
  EXPECT_EQ(out->data, "{}");
}

proton::message Minimal() {
  proton::message msg;
  msg.properties().put("cloudEvents_id", std::string("x1"));
  msg.properties().put("cloudEvents_type", std::string("a.b.C"));
  msg.properties().put("cloudEvents_specversion", std::string("1.0"));
  return msg;
}

// Encodes `m` and decodes it again, as a receiver gets it; `bytes` is the
// encoded size.
proton::message AsReceived(const proton::message& m, size_t* bytes) {
  std::vector<char> wire;
  m.encode(wire);
  *bytes = wire.size();
  proton::message received;
  received.decode(wire);
  return received;
}

// The receive-side size check uses the counted size; it must stay close to
// what proton's encoder writes, from a bare envelope to a large payload.
TEST(AmqpWireTest, CountedSizeIsCloseToTheEncodedSize) {
  Envelope minimal;
  minimal.id = "m-1";
  minimal.type = "t";
  Envelope request = FullEnvelope();
  request.status = absl::OkStatus();
  request.extensions.clear();
  request.data = std::string(128, 'x');
  Envelope large = FullEnvelope();
  large.data = std::string(300'000, 'y');
  const Envelope full = FullEnvelope();
  Envelope long_values = FullEnvelope();
  long_values.source = std::string(400, 's');
  long_values.extensions["note"] = std::string(1000, 'n');
  long_values.data = std::string(4096, 'z');
  for (const Envelope* env :
       std::vector<const Envelope*>{&minimal, &request, &full, &large, &long_values}) {
    proton::message m;
    ASSERT_TRUE(EnvelopeToMessage(*env, /*durable=*/true, &m).ok());
    size_t encoded = 0;
    std::optional<uint64_t> counted;
    ASSERT_TRUE(MessageToEnvelope(AsReceived(m, &encoded), &counted).ok());
    ASSERT_TRUE(counted.has_value());
    EXPECT_GE(static_cast<double>(*counted), encoded * 0.97 - 16) << "payload " << env->data.size();
    EXPECT_LE(static_cast<double>(*counted), encoded * 1.03 + 16) << "payload " << env->data.size();
  }
}

// What the envelope does not keep still counts: a large property the mapping
// ignores, or a large properties-section field, cannot slip a message past
// `max_message_bytes`.
TEST(AmqpWireTest, CountedSizeIncludesWhatTheEnvelopeDoesNotKeep) {
  proton::message m;
  ASSERT_TRUE(EnvelopeToMessage(FullEnvelope(), /*durable=*/false, &m).ok());
  m.properties().put("x-not-ours", std::string(200'000, 'p'));
  m.properties().put("cloudEvents_binaryext", proton::binary(std::string(100'000, 'b')));
  m.subject(std::string(50'000, 's'));
  size_t encoded = 0;
  std::optional<uint64_t> counted;
  ASSERT_TRUE(MessageToEnvelope(AsReceived(m, &encoded), &counted).ok());
  ASSERT_TRUE(counted.has_value());
  EXPECT_GT(encoded, 350'000u);
  EXPECT_GE(static_cast<double>(*counted), encoded * 0.97);
}

// Annotations are not counted: the size stays unset, so the receiver encodes
// the message to measure it. So does an invalid envelope.
TEST(AmqpWireTest, SizeIsNotCountedWithAnnotationsOrForAnInvalidEnvelope) {
  proton::message m;
  ASSERT_TRUE(EnvelopeToMessage(FullEnvelope(), /*durable=*/false, &m).ok());
  m.message_annotations().put(proton::annotation_key(proton::symbol("x-opt-big")),
                              std::string(100'000, 'a'));
  size_t encoded = 0;
  std::optional<uint64_t> counted = 1;
  ASSERT_TRUE(MessageToEnvelope(AsReceived(m, &encoded), &counted).ok());
  EXPECT_FALSE(counted.has_value());

  counted = 1;
  EXPECT_EQ(MessageToEnvelope(Minimal(), &counted).status().code(), absl::StatusCode::kOk);
  proton::message no_id = Minimal();
  no_id.properties().erase("cloudEvents_id");
  counted = 1;
  EXPECT_EQ(MessageToEnvelope(no_id, &counted).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_FALSE(counted.has_value());
}

TEST(AmqpWireTest, MinimalMessageIsValid) {
  auto out = MessageToEnvelope(Minimal());
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(out->attempt, 1);
  EXPECT_FALSE(out->has_deadline());
  EXPECT_TRUE(out->status.ok());
}

TEST(AmqpWireTest, MissingIdOrTypeIsInvalidArgument) {
  proton::message no_props;
  EXPECT_EQ(MessageToEnvelope(no_props).status().code(), absl::StatusCode::kInvalidArgument);

  proton::message no_id = Minimal();
  no_id.properties().erase("cloudEvents_id");
  auto s = MessageToEnvelope(no_id).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("cloudEvents_id"), std::string::npos) << s;

  proton::message no_type = Minimal();
  no_type.properties().erase("cloudEvents_type");
  s = MessageToEnvelope(no_type).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("cloudEvents_type"), std::string::npos) << s;
}

TEST(AmqpWireTest, WrongTypesAreInvalidArgument) {
  struct Case {
    const char* key;
    proton::scalar value;
  };
  const Case cases[] = {
      {"cloudEvents_id", proton::scalar(int64_t{5})},
      {"cloudEvents_type", proton::scalar(true)},
      {"cloudEvents_time", proton::scalar(3.5)},
      {"cloudEvents_time", proton::scalar(std::string("yesterday"))},
      {"cloudEvents_expirytime", proton::scalar(std::string("not a time"))},
      {"cloudEvents_attempt", proton::scalar(std::string("many"))},
      {"cloudEvents_attempt", proton::scalar(int64_t{0})},
      {"cloudEvents_attempt", proton::scalar(2.0)},
      {"cloudEvents_style", proton::scalar(std::string("shout"))},
      {"cloudEvents_statuscode", proton::scalar(std::string("NOPE"))},
      {"cloudEvents_replyto", proton::scalar(int32_t{1})},
      {"cloudEvents_specversion", proton::scalar(std::string("0.3"))},
  };
  for (const Case& c : cases) {
    proton::message msg = Minimal();
    msg.properties().put(c.key, c.value);
    auto s = MessageToEnvelope(msg).status();
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << c.key << ": " << s;
  }
}

TEST(AmqpWireTest, ExtensionsOfEveryTypeKeepTheirCanonicalForm) {
  proton::message msg = Minimal();
  auto& p = msg.properties();
  p.put("cloudEvents_sym", proton::symbol("s1"));
  p.put("cloudEvents_no", false);
  p.put("cloudEvents_neg", int64_t{-5});
  p.put("cloudEvents_small", uint8_t{200});
  p.put("cloudEvents_huge", std::numeric_limits<uint64_t>::max());
  p.put("cloudEvents_when", proton::timestamp(1'800'000'123'456));
  p.put("cloudEvents_raw", proton::binary(std::string("\x01\x02")));
  p.put("cloudEvents_ratio", 0.5);  // no canonical form: dropped
  size_t bytes = 0;
  auto out = MessageToEnvelope(AsReceived(msg, &bytes));
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(out->extensions.at("sym"), "s1");
  EXPECT_EQ(out->extensions.at("no"), "false");
  EXPECT_EQ(out->extensions.at("neg"), "-5");
  EXPECT_EQ(out->extensions.at("small"), "200");
  EXPECT_EQ(out->extensions.at("huge"), "18446744073709551615");
  EXPECT_EQ(out->extensions.at("when"), FormatRfc3339(absl::FromUnixMillis(1'800'000'123'456)));
  EXPECT_EQ(out->extensions.at("raw"), std::string("\x01\x02"));
  EXPECT_EQ(out->extensions.count("ratio"), 0u);
}

// Application properties as a sender outside Proton C++ may write them:
// Proton C++ itself refuses to encode these.
proton::message ReceivedWithRawProperties(void (*write)(pn_data_t*)) {
  pn_message_t* pm = pn_message();
  write(pn_message_properties(pm));
  std::vector<char> wire(4096);
  size_t size = wire.size();
  EXPECT_EQ(pn_message_encode(pm, wire.data(), &size), 0);
  pn_message_free(pm);
  wire.resize(size);
  proton::message received;
  received.decode(wire);
  return received;
}

void PutString(pn_data_t* d, std::string_view s) {
  pn_data_put_string(d, pn_bytes(s.size(), s.data()));
}

TEST(AmqpWireTest, PropertiesThatAreNotStringKeysAndSimpleValuesAreInvalidArgument) {
  // A valid map written the same way is accepted (the helper is sound).
  proton::message ok = ReceivedWithRawProperties([](pn_data_t* d) {
    pn_data_put_map(d);
    pn_data_enter(d);
    PutString(d, "cloudEvents_id");
    PutString(d, "x1");
    PutString(d, "cloudEvents_type");
    PutString(d, "a.b.C");
    PutString(d, "cloudEvents_specversion");
    PutString(d, "1.0");
    pn_data_exit(d);
  });
  EXPECT_TRUE(MessageToEnvelope(ok).ok()) << MessageToEnvelope(ok).status();

  proton::message int_key = ReceivedWithRawProperties([](pn_data_t* d) {
    pn_data_put_map(d);
    pn_data_enter(d);
    PutString(d, "cloudEvents_id");
    PutString(d, "x1");
    pn_data_put_long(d, 7);
    PutString(d, "seven");
    pn_data_exit(d);
  });
  absl::Status s = MessageToEnvelope(int_key).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << s;
  EXPECT_NE(s.message().find("key must be a string"), std::string_view::npos) << s;

  proton::message list_value = ReceivedWithRawProperties([](pn_data_t* d) {
    pn_data_put_map(d);
    pn_data_enter(d);
    PutString(d, "cloudEvents_id");
    pn_data_put_list(d);
    pn_data_enter(d);
    PutString(d, "x1");
    pn_data_exit(d);
    pn_data_exit(d);
  });
  s = MessageToEnvelope(list_value).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << s;
  EXPECT_NE(s.message().find("cloudEvents_id must be a simple value"), std::string_view::npos)
      << s;

  proton::message not_a_map = ReceivedWithRawProperties([](pn_data_t* d) { PutString(d, "x"); });
  s = MessageToEnvelope(not_a_map).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << s;
}

TEST(AmqpWireTest, BodyThatIsNotDataIsInvalidArgument) {
  proton::message msg = Minimal();
  msg.body(proton::value(std::vector<int32_t>{1, 2, 3}));
  EXPECT_EQ(MessageToEnvelope(msg).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(AmqpWireTest, GarbageBytesNeverCrash) {
  // Bytes that decode to some message, or fail to decode at all: either way
  // the mapping answers with a status.
  for (int seed = 0; seed < 200; ++seed) {
    proton::message full;
    ASSERT_TRUE(EnvelopeToMessage(FullEnvelope(), true, &full).ok());
    std::vector<char> bytes;
    full.encode(bytes);
    for (size_t i = 0; i < bytes.size(); i += 7 + seed % 5) {
      bytes[i] = static_cast<char>(bytes[i] ^ (seed * 31 + i));
    }
    proton::message m;
    try {
      m.decode(bytes);
    } catch (const std::exception&) {
      continue;
    }
    auto out = MessageToEnvelope(m);
    if (!out.ok()) {
      EXPECT_EQ(out.status().code(), absl::StatusCode::kInvalidArgument);
    }
  }
}

TEST(AmqpWireTest, DeadLetterAnnotationOnRawMessage) {
  proton::message msg;
  msg.body(std::string("garbage"));
  AnnotateDeadLetter(absl::InvalidArgumentError("no cloudEvents_id"), &msg);
  EXPECT_TRUE(msg.durable());
  EXPECT_EQ(proton::get<std::string>(msg.properties().get("cloudEvents_deadletterreason")),
            "no cloudEvents_id");
  EXPECT_EQ(proton::get<std::string>(msg.properties().get("cloudEvents_deadlettercode")),
            "INVALID_ARGUMENT");
}

TEST(AmqpWireTest, RabbitMqAddressScheme) {
  auto scheme = MakeAddressScheme("rabbitmq", "t1.");
  ASSERT_TRUE(scheme.ok());
  EXPECT_EQ((*scheme)->CommandQueue("orders.v1.Orders/PlaceOrder"), "t1.orders.v1.Orders.PlaceOrder");
  EXPECT_EQ((*scheme)->RequestQueue("a.B/C"), "t1.req.a.B.C");
  EXPECT_EQ((*scheme)->GroupQueue("orders.v1.OrderPlaced", "pay ment"),
            "t1.evt.orders.v1.OrderPlaced.pay_ment");
  EXPECT_EQ((*scheme)->DeclaringQueueAddress("q"), "/queue/q");
  EXPECT_EQ((*scheme)->ExistingQueueAddress("q"), "/amq/queue/q");
  EXPECT_EQ((*scheme)->TopicAddress("k"), "/exchange/amq.topic/k");
  EXPECT_EQ(MakeAddressScheme("artemis", "").status().code(), absl::StatusCode::kInvalidArgument);
}

// ---- reconnect_backoff.h

TEST(ReconnectDelayTest, FirstRoundGoesAtOnceOverEveryUrl) {
  const absl::Duration initial = absl::Milliseconds(100), max = absl::Seconds(5);
  EXPECT_EQ(ReconnectDelay(0, 1, initial, max, 12345), absl::ZeroDuration());
  for (uint64_t attempt = 0; attempt < 3; ++attempt) {
    EXPECT_EQ(ReconnectDelay(attempt, 3, initial, max, 999), absl::ZeroDuration()) << attempt;
  }
  // Within a later round, the other URLs are tried at once too.
  EXPECT_EQ(ReconnectDelay(4, 3, initial, max, 999), absl::ZeroDuration());
  EXPECT_EQ(ReconnectDelay(5, 3, initial, max, 999), absl::ZeroDuration());
  EXPECT_GE(ReconnectDelay(3, 3, initial, max, 999), initial);
}

TEST(ReconnectDelayTest, BoundDoublesPerRoundUpToMax) {
  const absl::Duration initial = absl::Milliseconds(100), max = absl::Seconds(5);
  // The largest random number gives the bound itself: 100, 200, 400, ... 3200, then 5000.
  const uint64_t top = ~uint64_t{0};
  auto bound = [&](uint64_t round) {
    absl::Duration longest = absl::ZeroDuration();
    for (uint64_t r = 0; r < 6000; ++r) {
      longest = std::max(longest, ReconnectDelay(round, 1, initial, max, r));
    }
    return longest;
  };
  EXPECT_EQ(bound(1), absl::Milliseconds(100));
  EXPECT_EQ(bound(2), absl::Milliseconds(200));
  EXPECT_EQ(bound(3), absl::Milliseconds(400));
  EXPECT_EQ(bound(6), absl::Milliseconds(3200));
  EXPECT_EQ(bound(7), absl::Seconds(5));
  EXPECT_EQ(bound(1000), absl::Seconds(5));
  EXPECT_LE(ReconnectDelay(1000000, 1, initial, max, top), max);
}

TEST(ReconnectDelayTest, SpreadBetweenInitialAndBound) {
  const absl::Duration initial = absl::Milliseconds(100), max = absl::Seconds(5);
  absl::Duration shortest = absl::InfiniteDuration(), longest = absl::ZeroDuration();
  for (uint64_t r = 0; r < 5000; ++r) {
    absl::Duration d = ReconnectDelay(4, 1, initial, max, r * 7919);
    shortest = std::min(shortest, d);
    longest = std::max(longest, d);
  }
  EXPECT_EQ(shortest, initial);
  EXPECT_EQ(longest, absl::Milliseconds(800));
  // A max below initial waits initial.
  EXPECT_EQ(ReconnectDelay(5, 1, absl::Seconds(1), absl::Milliseconds(10), 77), absl::Seconds(1));
}

}  // namespace
}  // namespace switchboard::amqp
