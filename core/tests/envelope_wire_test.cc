#include "switchboard/internal/envelope_wire.h"

#include <cstdint>
#include <random>
#include <string>

#include "google/protobuf/io/coded_stream.h"
#include "google/protobuf/io/zero_copy_stream_impl_lite.h"
#include "gtest/gtest.h"
#include "switchboard/testing/envelope_testing.h"
#include "switchboard/v1/envelope.pb.h"

namespace switchboard::internal {
namespace {

// The bytes protobuf writes for ToProto(env): deterministic serialization,
// which sorts map entries by key as std::map iterates them.
std::string ViaProto(const Envelope& env) {
  v1::Envelope proto;
  ToProto(env, &proto);
  std::string bytes;
  {
    google::protobuf::io::StringOutputStream stream(&bytes);
    google::protobuf::io::CodedOutputStream coded(&stream);
    coded.SetSerializationDeterministic(true);
    EXPECT_TRUE(proto.SerializeToCodedStream(&coded));
  }
  return bytes;
}

Envelope Full() {
  Envelope e;
  e.id = "0190b3d2-7c1e-7a41-9c55-3f1f1a2b3c4d";
  e.source = "//orders/node-1";
  e.type = "orders.v1.Orders/PlaceOrder";
  e.time = absl::FromUnixNanos(1'700'000'000'123'456'789);
  e.data_content_type = "application/json";
  e.subject = "order-1";
  e.traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
  e.tracestate = "congo=t61rcWkgMzE,rojo=00f067aa0ba902b7";
  e.idempotency_key = "place-order-1";
  e.deadline = absl::FromUnixMillis(1'700'000'005'000);
  e.correlation_id = "corr-1";
  e.reply_to = "nats://_INBOX.abc";
  e.attempt = 3;
  e.style = Style::kCommand;
  e.status = absl::NotFoundError("order 9 not found");
  e.extensions["tenant"] = "acme";
  e.extensions["empty"] = "";
  e.extensions[""] = "no name";
  e.data = std::string("\0\1\2payload", 10);
  return e;
}

TEST(EnvelopeWireTest, WritesTheBytesProtobufWritesForToProto) {
  std::vector<std::pair<std::string, Envelope>> cases;
  cases.emplace_back("default", Envelope{});
  cases.emplace_back("full", Full());
  Envelope e = Full();
  e.idempotency_key = e.id;  // left out: the reader restores it
  e.attempt = 1;             // left out
  e.data_content_type = std::string(kContentTypeProtobuf);  // left out
  e.status = absl::OkStatus();
  cases.emplace_back("defaults left out", e);
  e = Full();
  e.attempt = -5;  // an int32 below 0 is a ten-byte varint
  e.style = static_cast<Style>(-1);
  cases.emplace_back("negative int32", e);
  e = Full();
  e.time = absl::FromUnixNanos(-1'500'000'000);  // before 1970: negative seconds, nanos > 0
  e.deadline = absl::FromUnixSeconds(7);          // nanos 0: left out of the timestamp
  cases.emplace_back("timestamps", e);
  e = Full();
  e.time = absl::FromUnixNanos(250);  // seconds 0: left out of the timestamp
  cases.emplace_back("timestamp without seconds", e);
  e = Full();
  e.data.assign(200'000, 'x');  // a three-byte length
  e.extensions["long"] = std::string(300, 'v');
  cases.emplace_back("long lengths", e);

  for (const auto& [name, env] : cases) {
    std::string direct = EnvelopeToWire(env);
    EXPECT_EQ(direct, ViaProto(env)) << name;
    EXPECT_EQ(direct.size(), EnvelopeWireSize(env)) << name;
  }
}

TEST(EnvelopeWireTest, RandomEnvelopesMatchProtobufAndReadBack) {
  std::mt19937_64 rng(20261124);
  auto pick = [&](int n) { return static_cast<int>(rng() % static_cast<uint64_t>(n)); };
  auto text = [&](int max) {
    std::string s(static_cast<size_t>(pick(max + 1)), ' ');
    for (char& c : s) c = static_cast<char>('!' + pick(94));
    return s;
  };
  for (int i = 0; i < 2000; ++i) {
    Envelope env;
    env.id = "id-" + text(40);
    env.source = text(20);
    env.type = "t." + text(60);
    if (pick(2)) env.time = absl::FromUnixNanos(static_cast<int64_t>(rng() >> 2) - (int64_t{1} << 61));
    if (pick(2)) env.data_content_type = "type/" + text(30);
    env.subject = text(10);
    env.traceparent = text(55);
    env.tracestate = text(200);
    env.idempotency_key = pick(2) ? env.id : "key-" + text(40);
    if (pick(2)) env.deadline = absl::FromUnixMicros(static_cast<int64_t>(rng() % (int64_t{1} << 52)));
    env.correlation_id = text(40);
    env.reply_to = text(40);
    env.attempt = 1 + pick(5);
    env.style = static_cast<Style>(pick(4));
    if (pick(2)) env.status = absl::Status(static_cast<absl::StatusCode>(1 + pick(16)), text(100));
    for (int n = pick(4); n > 0; --n) env.extensions[text(8)] = text(20);
    env.data = text(pick(2) ? 100 : 5000);

    std::string direct = EnvelopeToWire(env);
    ASSERT_EQ(direct, ViaProto(env)) << "envelope " << i;
    v1::Envelope parsed;
    ASSERT_TRUE(parsed.ParseFromString(direct)) << "envelope " << i;
    Envelope back;
    ASSERT_TRUE(FromProto(parsed, &back).ok()) << "envelope " << i;
    ASSERT_TRUE(testing::EnvelopesEqual(back, env)) << "envelope " << i;
  }
}

TEST(EnvelopeWireTest, AnEnvelopeFieldIsTheEnvelopeInsideItsMessage) {
  Envelope env = Full();
  const size_t size = EnvelopeWireSize(env);
  std::string bytes(EnvelopeFieldWireSize(1, size) + StringFieldWireSize(3, "group-a") +
                        StringFieldWireSize(4, ""),
                    '\0');
  uint8_t* end = WriteEnvelopeField(1, env, size, reinterpret_cast<uint8_t*>(bytes.data()));
  end = WriteStringField(3, "group-a", end);
  end = WriteStringField(4, "", end);  // left out
  EXPECT_EQ(end, reinterpret_cast<uint8_t*>(bytes.data()) + bytes.size());
  v1::DeadLetter dead_letter;  // field 1: the envelope; 3: a string
  ASSERT_TRUE(dead_letter.ParseFromString(bytes));
  EXPECT_EQ(dead_letter.reason(), "group-a");
  Envelope back;
  ASSERT_TRUE(FromProto(dead_letter.envelope(), &back).ok());
  EXPECT_TRUE(testing::EnvelopesEqual(back, env));
}

}  // namespace
}  // namespace switchboard::internal
