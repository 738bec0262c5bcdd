#include "switchboard/internal/envelope_wire.h"

#include <cstdint>
#include <random>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "google/protobuf/io/coded_stream.h"
#include "google/protobuf/io/zero_copy_stream_impl_lite.h"
#include "google/protobuf/stubs/logging.h"
#include "gtest/gtest.h"
#include "switchboard/testing/envelope_testing.h"
#include "switchboard/testing/proto_wire_testing.h"
#include "switchboard/test/v1/wire.pb.h"
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
  for (int i = 0; i < 2000; ++i) {
    const Envelope env = testing::RandomEnvelope(rng);
    std::string direct = EnvelopeToWire(env);
    ASSERT_EQ(direct, ViaProto(env)) << "envelope " << i;
    v1::Envelope parsed;
    ASSERT_TRUE(parsed.ParseFromString(direct)) << "envelope " << i;
    Envelope back;
    ASSERT_TRUE(FromProto(parsed, &back).ok()) << "envelope " << i;
    ASSERT_TRUE(testing::EnvelopesEqual(back, env)) << "envelope " << i;
    Envelope read;
    EnvelopeWireRest rest;
    ASSERT_TRUE(ReadEnvelopeWire(direct, &read, &rest).ok()) << "envelope " << i;
    ASSERT_TRUE(CompleteEnvelope(rest, &read).ok()) << "envelope " << i;
    ASSERT_TRUE(testing::EnvelopesEqual(read, env)) << "envelope " << i;
  }
}

// What protobuf (whether it parsed; FromProto's status and envelope) and the
// direct reader (its status, then CompleteEnvelope) made of the same bytes:
// both accept or both refuse, and what they accept reads the same.
::testing::AssertionResult SameReading(bool proto_parsed, const absl::Status& want_status,
                                       const Envelope& want, const absl::Status& read,
                                       const EnvelopeWireRest& rest, Envelope& got) {
  if (read.ok() != proto_parsed) {
    return ::testing::AssertionFailure()
           << "protobuf parsed: " << proto_parsed << ", the direct reader: " << read;
  }
  if (!read.ok()) {
    if (read.code() != absl::StatusCode::kInvalidArgument) {
      return ::testing::AssertionFailure() << "refused with " << read;
    }
    return ::testing::AssertionSuccess();
  }
  absl::Status got_status = CompleteEnvelope(rest, &got);
  if (got_status != want_status) {
    return ::testing::AssertionFailure()
           << "FromProto: " << want_status << ", CompleteEnvelope: " << got_status;
  }
  if (!got_status.ok()) return ::testing::AssertionSuccess();
  return testing::EnvelopesEqual(got, want);
}

// Protobuf's parser and FromProto against ReadEnvelopeWire and
// CompleteEnvelope on the same bytes.
::testing::AssertionResult ReadsAsProtobufDoes(std::string_view bytes) {
  google::protobuf::LogSilencer quiet;  // protobuf logs each string that is not UTF-8
  v1::Envelope proto;
  const bool proto_parsed = proto.ParseFromArray(bytes.data(), static_cast<int>(bytes.size()));
  Envelope want;
  absl::Status want_status = proto_parsed ? FromProto(proto, &want) : absl::OkStatus();
  Envelope got = Full();  // every attribute must be replaced
  EnvelopeWireRest rest;
  absl::Status read = ReadEnvelopeWire(bytes, &got, &rest);
  return SameReading(proto_parsed, want_status, want, read, rest, got);
}

using testing::Key;
using testing::Len;
using testing::Varint;

TEST(EnvelopeWireTest, ReadsEdgeCasesAsProtobufDoes) {
  const std::string valid = Len(1, "id-1") + Len(4, "t.v1.T/Op");
  std::vector<std::pair<std::string, std::string>> cases = {
      {"valid", valid},
      {"empty", ""},
      {"no type", Len(1, "id-1")},
      {"surrogate in id", Len(1, "\xED\xA0\x80") + Len(4, "t")},
      {"overlong two bytes", Len(1, "\xC0\x80") + Len(4, "t")},
      {"overlong three bytes", Len(1, "\xE0\x80\x80") + Len(4, "t")},
      {"above U+10FFFF", Len(1, "\xF4\x90\x80\x80") + Len(4, "t")},
      {"four-byte character", Len(1, "\xF0\x9F\x98\x80") + Len(4, "t")},
      {"cut character", Len(1, "a\xE2\x82") + Len(4, "t")},
      {"bytes are not checked", valid + Len(50, "\xFF\xFE")},
      {"bad key in extensions", valid + Len(40, Len(1, "\xFF") + Len(2, "v"))},
      {"bad value in extensions", valid + Len(40, Len(1, "k") + Len(2, "\xC3"))},
      {"entry without key or value", valid + Len(40, "")},
      {"bad value replaced in its entry",
       valid + Len(40, Len(1, "k") + Len(2, "\xD0\x12") + Len(2, "ok"))},
      {"bad key replaced in its entry", valid + Len(40, Len(1, "\xFF") + Len(1, "k"))},
      {"bad id replaced", valid + Len(1, "\xFF") + Len(1, "id-2")},
      {"entry fields twice",
       valid + Len(40, Len(1, "a") + Len(2, "1") + Len(1, "b") + Len(2, "2"))},
      {"entry with unknown field",
       valid + Len(40, Len(1, "k") + Key(9, 0) + Varint(5) + Len(2, "v"))},
      {"same key twice",
       valid + Len(40, Len(1, "k") + Len(2, "1")) + Len(40, Len(1, "k") + Len(2, "2"))},
      {"id twice", valid + Len(1, "id-2")},
      {"id as a varint", valid + Key(1, 0) + Varint(7)},
      {"attempt as bytes", valid + Len(24, "x")},
      {"attempt 0", valid + Key(24, 0) + Varint(0)},
      {"attempt negative", valid + Key(24, 0) + Varint(uint64_t(-3))},
      {"attempt over 32 bits", valid + Key(24, 0) + Varint((uint64_t(1) << 32) + 2)},
      {"style out of range", valid + Key(25, 0) + Varint(9)},
      {"status code", valid + Key(30, 0) + Varint(5) + Len(31, "gone")},
      {"status message without code", valid + Len(31, "ignored")},
      {"time merged", valid + Len(5, Key(1, 0) + Varint(100)) + Len(5, Key(2, 0) + Varint(7))},
      {"empty time", valid + Len(5, "")},
      {"deadline with unknown", valid + Len(21, Key(1, 0) + Varint(9) + Key(3, 5) + "abcd")},
      {"time cut", valid + Key(5, 2) + Varint(4) + Key(1, 0)},
      {"ten-byte varint", valid + Key(24, 0) + std::string(9, '\xFF') + "\x7F"},
      {"eleven-byte varint", valid + Key(24, 0) + std::string(10, '\xFF') + "\x01"},
      {"five-byte tag", valid + "\x80\x80\x80\x80\x01" + Varint(1)},
      {"six-byte tag", valid + "\x80\x80\x80\x80\x80\x01" + Varint(1)},
      {"tag 0", valid + std::string(1, '\0')},
      {"field 0", valid + Key(0, 0) + Varint(1)},
      {"end group alone", valid + Key(9, 4)},
      {"wire type 6", valid + Key(9, 6)},
      {"wire type 7", valid + Key(9, 7)},
      {"fixed64 and fixed32", valid + Key(60, 1) + "12345678" + Key(61, 5) + "1234"},
      {"fixed64 cut", valid + Key(60, 1) + "1234"},
      {"group", valid + Key(70, 3) + Key(1, 0) + Varint(1) + Key(70, 4)},
      {"group ended by another", valid + Key(70, 3) + Key(71, 4)},
      {"group not ended", valid + Key(70, 3) + Key(1, 0) + Varint(1)},
      {"length beyond the end", valid + Key(2, 2) + Varint(50) + "abc"},
      {"huge length", valid + Key(2, 2) + Varint(uint64_t(1) << 40)},
      {"five-byte length", valid + Key(2, 2) + std::string("\x83\x80\x80\x80\x00", 5) + "abc"},
      {"six-byte length", valid + Key(2, 2) + std::string("\x83\x80\x80\x80\x80\x00", 6) + "abc"},
      {"six-byte length of unknown bytes",
       valid + Key(60, 2) + std::string("\x80\x80\x80\x80\x80\x00", 6)},
      {"five-byte length of 2 GiB", valid + Key(60, 2) + std::string("\x80\x80\x80\x80\x08", 5)},
      {"five-byte length with high bits",
       valid + Key(2, 2) + std::string("\x83\x80\x80\x80\x10", 5) + "abc"},
  };
  for (int depth : {99, 100, 101}) {
    std::string nested = valid;
    for (int i = 0; i < depth; ++i) nested += Key(70, 3);
    for (int i = 0; i < depth; ++i) nested += Key(70, 4);
    cases.emplace_back("groups nested " + std::to_string(depth), nested);
    std::string in_time;
    for (int i = 0; i < depth; ++i) in_time += Key(70, 3);
    for (int i = 0; i < depth; ++i) in_time += Key(70, 4);
    cases.emplace_back("groups nested in time " + std::to_string(depth), valid + Len(5, in_time));
  }
  for (const auto& [name, bytes] : cases) EXPECT_TRUE(ReadsAsProtobufDoes(bytes)) << name;
}

TEST(EnvelopeWireTest, ReadsDamagedBytesAsProtobufDoes) {
  std::mt19937_64 rng(424242);
  const std::string base = EnvelopeToWire(Full());
  int accepted = 0;
  for (int i = 0; i < 20000; ++i) {
    const std::string bytes = testing::DamagedCopy(base, rng);
    ::testing::AssertionResult same = ReadsAsProtobufDoes(bytes);
    ASSERT_TRUE(same) << "damaged copy " << i;
    google::protobuf::LogSilencer quiet;
    v1::Envelope proto;
    if (proto.ParseFromString(bytes)) ++accepted;
  }
  // Both outcomes were exercised.
  EXPECT_GT(accepted, 1000);
  EXPECT_LT(accepted, 19000);
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

// ---- an envelope inside another message ----

// Protobuf's parser of the enclosing message and FromProto of its envelope,
// against ReadEnvelopeFieldWire and CompleteEnvelope on the same bytes; `Msg`
// is EnvelopeThenText (fields 1 and 2) or TextThenEnvelope (2 and 1).
template <class Msg>
::testing::AssertionResult FieldReadsAsProtobufDoes(std::string_view bytes) {
  constexpr bool kEnvelopeFirst = std::is_same_v<Msg, test::v1::EnvelopeThenText>;
  google::protobuf::LogSilencer quiet;
  Msg proto;
  const bool proto_parsed = proto.ParseFromArray(bytes.data(), static_cast<int>(bytes.size()));
  Envelope want;
  absl::Status want_status = proto_parsed ? FromProto(proto.envelope(), &want) : absl::OkStatus();
  Envelope got = Full();  // every attribute must be replaced
  EnvelopeWireRest rest;
  std::string text = "left over";
  absl::Status read = ReadEnvelopeFieldWire(bytes, kEnvelopeFirst ? 1 : 2, kEnvelopeFirst ? 2 : 1,
                                            &got, &rest, &text);
  if (proto_parsed && read.ok() && text != proto.text()) {
    return ::testing::AssertionFailure() << "text \"" << text << "\", protobuf: \""
                                         << proto.text() << "\"";
  }
  return SameReading(proto_parsed, want_status, want, read, rest, got);
}

// What the gRPC transport's client writes: the envelope as a field and the
// string after or before it.
std::string EnvelopeThenText(const Envelope& env, std::string_view text) {
  const size_t size = EnvelopeWireSize(env);
  std::string bytes(EnvelopeFieldWireSize(1, size) + StringFieldWireSize(2, text), '\0');
  WriteStringField(2, text,
                   WriteEnvelopeField(1, env, size, reinterpret_cast<uint8_t*>(bytes.data())));
  return bytes;
}

std::string TextThenEnvelope(const Envelope& env, std::string_view text) {
  const size_t size = EnvelopeWireSize(env);
  std::string bytes(EnvelopeFieldWireSize(2, size) + StringFieldWireSize(1, text), '\0');
  WriteEnvelopeField(2, env, size,
                     WriteStringField(1, text, reinterpret_cast<uint8_t*>(bytes.data())));
  return bytes;
}

TEST(EnvelopeFieldWireTest, RandomRequestsReadBackAsProtobufReadsThem) {
  std::mt19937_64 rng(7);
  const std::string texts[] = {"", "orders.v1.Orders/Place.dlq", "group-a", "inbox-\xC3\xA9"};
  for (int i = 0; i < 1000; ++i) {
    const Envelope env = testing::RandomEnvelope(rng);
    const std::string& text = texts[i % 4];
    for (bool envelope_first : {true, false}) {
      const std::string bytes =
          envelope_first ? EnvelopeThenText(env, text) : TextThenEnvelope(env, text);
      ASSERT_TRUE(envelope_first ? FieldReadsAsProtobufDoes<test::v1::EnvelopeThenText>(bytes)
                                 : FieldReadsAsProtobufDoes<test::v1::TextThenEnvelope>(bytes))
          << "request " << i;
      Envelope read;
      EnvelopeWireRest rest;
      std::string read_text;
      ASSERT_TRUE(ReadEnvelopeFieldWire(bytes, envelope_first ? 1 : 2, envelope_first ? 2 : 1,
                                        &read, &rest, &read_text)
                      .ok());
      ASSERT_TRUE(CompleteEnvelope(rest, &read).ok());
      ASSERT_TRUE(testing::EnvelopesEqual(read, env)) << "request " << i;
      ASSERT_EQ(read_text, text);
    }
  }
}

TEST(EnvelopeFieldWireTest, ReadsEdgeCasesAsProtobufDoes) {
  const std::string env = Len(1, "id-1") + Len(4, "t.v1.T/Op");
  const std::string env2 = Len(1, "id-2") + Len(40, Len(1, "k") + Len(2, "v")) +
                           Len(5, Key(2, 0) + Varint(9));
  std::vector<std::pair<std::string, std::string>> cases = {
      {"envelope and text", Len(1, env) + Len(2, "q")},
      {"text first", Len(2, "q") + Len(1, env)},
      {"no envelope", Len(2, "q")},
      {"empty", ""},
      {"empty envelope", Len(1, "")},
      {"envelope twice: merged", Len(1, env) + Len(2, "q") + Len(1, env2)},
      {"envelope three times", Len(1, env) + Len(1, env2) + Len(1, Len(3, "1.0"))},
      {"time merged across occurrences",
       Len(1, env + Len(5, Key(1, 0) + Varint(100))) + Len(1, Len(5, Key(2, 0) + Varint(7)))},
      {"text twice", Len(1, env) + Len(2, "a") + Len(2, "b")},
      {"bad text", Len(1, env) + Len(2, "\xFF")},
      {"bad text replaced", Len(1, env) + Len(2, "\xFF") + Len(2, "ok")},
      {"text as a varint", Len(1, env) + Key(2, 0) + Varint(5)},
      {"envelope as a varint", Len(1, env) + Key(1, 0) + Varint(5)},
      {"envelope as fixed32", Key(1, 5) + "1234" + Len(1, env)},
      {"bad id in the envelope", Len(1, Len(1, "\xC0\x80") + Len(4, "t"))},
      {"bad id replaced by a later occurrence", Len(1, Len(1, "\xFF")) + Len(1, env)},
      // Each occurrence must read on its own, though their concatenation
      // would (found by the envelope_proto fuzzer).
      {"a field cut at the end of an occurrence", Len(1, env + Key(12, 5) + "1") + Len(1, "1.0")},
      {"a group across two occurrences", Len(1, env + Key(70, 3)) + Len(1, Key(70, 4))},
      {"envelope cut", Key(1, 2) + Varint(40) + env},
      {"envelope with a cut field", Len(1, Key(1, 2) + Varint(9) + "abc")},
      {"unknown fields", Len(1, env) + Key(9, 0) + Varint(1) + Len(10, "x") + Key(11, 1) +
                             "12345678"},
      {"group", Len(1, env) + Key(70, 3) + Key(1, 0) + Varint(1) + Key(70, 4)},
      {"group not ended", Len(1, env) + Key(70, 3)},
      {"field 0", Len(1, env) + Key(0, 0) + Varint(1)},
      {"end group alone", Len(1, env) + Key(9, 4)},
      {"length beyond the end", Len(1, env) + Key(2, 2) + Varint(50) + "abc"},
  };
  // One level less for an envelope inside a message: groups nested in it
  // meet protobuf's recursion limit one level earlier.
  for (int depth : {98, 99, 100}) {
    std::string nested = env;
    for (int i = 0; i < depth; ++i) nested += Key(70, 3);
    for (int i = 0; i < depth; ++i) nested += Key(70, 4);
    cases.emplace_back("groups nested in the envelope " + std::to_string(depth), Len(1, nested));
    std::string outer = Len(1, env);
    for (int i = 0; i < depth + 1; ++i) outer += Key(70, 3);
    for (int i = 0; i < depth + 1; ++i) outer += Key(70, 4);
    cases.emplace_back("groups nested beside it " + std::to_string(depth + 1), outer);
  }
  for (const auto& [name, bytes] : cases) {
    EXPECT_TRUE(FieldReadsAsProtobufDoes<test::v1::EnvelopeThenText>(bytes)) << name;
  }
  // The same bytes with the field numbers swapped: field 1 is the text.
  for (const auto& [name, bytes] : cases) {
    EXPECT_TRUE(FieldReadsAsProtobufDoes<test::v1::TextThenEnvelope>(bytes)) << name;
  }
}

TEST(EnvelopeFieldWireTest, ReadsDamagedBytesAsProtobufDoes) {
  std::mt19937_64 rng(1124);
  const std::string bases[] = {EnvelopeThenText(Full(), "orders.v1.Orders/Place.dlq"),
                               TextThenEnvelope(Full(), "inbox-1")};
  int accepted = 0;
  for (int i = 0; i < 20000; ++i) {
    const bool envelope_first = i % 2 == 0;
    const std::string bytes = testing::DamagedCopy(bases[i % 2], rng);
    ASSERT_TRUE(envelope_first ? FieldReadsAsProtobufDoes<test::v1::EnvelopeThenText>(bytes)
                               : FieldReadsAsProtobufDoes<test::v1::TextThenEnvelope>(bytes))
        << "damaged copy " << i;
    google::protobuf::LogSilencer quiet;
    test::v1::EnvelopeThenText a;
    test::v1::TextThenEnvelope b;
    if (envelope_first ? a.ParseFromString(bytes) : b.ParseFromString(bytes)) ++accepted;
  }
  // Both outcomes were exercised (damage inside the envelope refuses more).
  EXPECT_GT(accepted, 500);
  EXPECT_LT(accepted, 19000);
}

TEST(EnvelopeFieldWireTest, SaysWhichFieldDidNotRead) {
  Envelope env;
  EnvelopeWireRest rest;
  std::string text;
  absl::Status s = ReadEnvelopeFieldWire(Len(1, "x") + Len(2, "\xFF"), 1, 2, &env, &rest, &text);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("string field"), std::string::npos) << s;
  s = ReadEnvelopeFieldWire(Len(1, Len(1, "\xFF")), 1, 2, &env, &rest, &text);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("field `id`"), std::string::npos) << s;
}

}  // namespace
}  // namespace switchboard::internal
