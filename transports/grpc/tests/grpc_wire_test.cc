// The envelope <-> gRPC metadata mapping, the address conventions, and the
// Send stream's frames against protobuf's own messages.
#include "wire.h"

#include <cstring>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "google/protobuf/stubs/logging.h"
#include "gtest/gtest.h"
#include "switchboard/v1/envelope.pb.h"
#include "switchboard/v1/transport.pb.h"

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

// ---- Send stream frames ----

std::string RandomText(std::mt19937_64& rng, size_t max) {
  std::string s(rng() % (max + 1), '\0');
  for (char& c : s) c = static_cast<char>('a' + rng() % 26);
  return s;
}

v1::Envelope RandomEnvelope(std::mt19937_64& rng) {
  v1::Envelope e;
  e.set_id(RandomText(rng, 12));
  e.set_type(RandomText(rng, 20));
  e.set_data(RandomText(rng, 300));
  if (rng() % 2) e.set_attempt(static_cast<int32_t>(rng() % 5));
  return e;
}

// A batch of 0-5 frames of every kind, and frames without a request.
v1::SendBatch RandomBatch(std::mt19937_64& rng) {
  v1::SendBatch batch;
  const int n = static_cast<int>(rng() % 6);
  for (int i = 0; i < n; ++i) {
    v1::SendFrame* f = batch.add_frames();
    f->set_seq(rng() >> (rng() % 64));
    switch (rng() % 4) {
      case 0:
        *f->mutable_enqueue()->mutable_command() = RandomEnvelope(rng);
        f->mutable_enqueue()->set_queue(RandomText(rng, 8));
        break;
      case 1:
        *f->mutable_publish()->mutable_event() = RandomEnvelope(rng);
        f->mutable_publish()->set_group(RandomText(rng, 8));
        break;
      case 2:
        f->mutable_reply()->set_inbox(RandomText(rng, 8));
        *f->mutable_reply()->mutable_reply() = RandomEnvelope(rng);
        break;
      default:
        break;
    }
  }
  return batch;
}

// The kind and bytes protobuf gives a frame's request.
std::optional<SendKind> KindOf(const v1::SendFrame& f) {
  switch (f.request_case()) {
    case v1::SendFrame::kEnqueue:
      return SendKind::kEnqueue;
    case v1::SendFrame::kPublish:
      return SendKind::kPublish;
    case v1::SendFrame::kReply:
      return SendKind::kReply;
    default:
      return std::nullopt;
  }
}
std::string RequestOf(const v1::SendFrame& f) {
  switch (f.request_case()) {
    case v1::SendFrame::kEnqueue:
      return f.enqueue().SerializeAsString();
    case v1::SendFrame::kPublish:
      return f.publish().SerializeAsString();
    case v1::SendFrame::kReply:
      return f.reply().SerializeAsString();
    default:
      return "";
  }
}

// A frame's request bytes as protobuf reads them (merging what occurs
// twice), written again.
std::string Reserialized(SendKind kind, std::string_view bytes) {
  auto read = [&](auto message) {
    return message.ParseFromArray(bytes.data(), static_cast<int>(bytes.size()))
               ? message.SerializeAsString()
               : std::string("<does not parse>");
  };
  switch (kind) {
    case SendKind::kEnqueue:
      return read(v1::EnqueueRequest());
    case SendKind::kPublish:
      return read(v1::PublishRequest());
    case SendKind::kReply:
      break;
  }
  return read(v1::ReplyRequest());
}

// What the protobuf batch holds, read as FrameViews hold it.
void ExpectSameFrames(const v1::SendBatch& batch, const std::vector<FrameView>& frames) {
  ASSERT_EQ(frames.size(), static_cast<size_t>(batch.frames_size()));
  for (int i = 0; i < batch.frames_size(); ++i) {
    const v1::SendFrame& f = batch.frames(i);
    EXPECT_EQ(frames[i].seq, f.seq()) << i;
    ASSERT_EQ(frames[i].kind, KindOf(f)) << i;
    if (KindOf(f)) {
      EXPECT_EQ(Reserialized(*KindOf(f), frames[i].request), RequestOf(f)) << i;
    }
  }
}

// The batch a Send stream writes: headers from wire.h, requests after them.
std::string WriteBatch(const v1::SendBatch& batch) {
  size_t size = 0;
  for (const v1::SendFrame& f : batch.frames()) {
    if (KindOf(f)) size += FrameWireSize(f.seq(), RequestOf(f).size());
  }
  std::string out(size, '\0');
  auto* p = reinterpret_cast<uint8_t*>(out.data());
  for (const v1::SendFrame& f : batch.frames()) {
    if (!KindOf(f)) continue;  // the writer always sends a request
    const std::string request = RequestOf(f);
    p = WriteFrameHeader(f.seq(), *KindOf(f), request.size(), p);
    std::memcpy(p, request.data(), request.size());
    p += request.size();
  }
  EXPECT_EQ(p, reinterpret_cast<uint8_t*>(out.data()) + out.size());
  return out;
}

TEST(GrpcWireTest, SendBatchesReadAsProtobufWritesThemAndTheOtherWayRound) {
  std::mt19937_64 rng(20261124);
  for (int round = 0; round < 1000; ++round) {
    const v1::SendBatch batch = RandomBatch(rng);
    std::vector<FrameView> frames;
    const std::string bytes = batch.SerializeAsString();
    ASSERT_TRUE(ReadSendBatch(bytes, &frames)) << round;
    ExpectSameFrames(batch, frames);

    v1::SendBatch written;
    ASSERT_TRUE(written.ParseFromString(WriteBatch(batch))) << round;
    v1::SendBatch expected = batch;
    // Frames without a request are never written.
    expected.clear_frames();
    for (const v1::SendFrame& f : batch.frames()) {
      if (KindOf(f)) *expected.add_frames() = f;
    }
    EXPECT_EQ(written.SerializeAsString(), expected.SerializeAsString()) << round;
  }
}

// One byte changed, inserted, or the bytes cut short.
void Damage(std::mt19937_64& rng, std::string* bytes) {
  switch (rng() % 3) {
    case 0:
      (*bytes)[rng() % bytes->size()] = static_cast<char>(rng());
      break;
    case 1:
      bytes->resize(rng() % bytes->size());
      break;
    default:
      bytes->insert(rng() % bytes->size(), 1, static_cast<char>(rng()));
      break;
  }
}

TEST(GrpcWireTest, DamagedSendBatchesReadOnlyAsProtobufReadsThem) {
  google::protobuf::LogSilencer quiet;  // protobuf logs each string that is not UTF-8
  std::mt19937_64 rng(7);
  int protobuf_read = 0;
  for (int round = 0; round < 20000; ++round) {
    std::string bytes = RandomBatch(rng).SerializeAsString();
    if (bytes.empty()) continue;
    Damage(rng, &bytes);
    std::vector<FrameView> frames;
    const bool ours = ReadSendBatch(bytes, &frames);
    v1::SendBatch batch;
    // Protobuf also reads each request (and checks its strings' UTF-8),
    // which the stream leaves to the request's own reader: what protobuf
    // reads, the stream reads the same; not the other way round.
    if (!batch.ParseFromString(bytes)) continue;
    ++protobuf_read;
    ASSERT_TRUE(ours) << round;
    ExpectSameFrames(batch, frames);
  }
  EXPECT_GT(protobuf_read, 1000);  // the comparison was made
}

TEST(GrpcWireTest, AckBatchesReadAsProtobufWritesThemAndTheOtherWayRound) {
  std::mt19937_64 rng(11);
  for (int round = 0; round < 1000; ++round) {
    AckList acks;
    v1::AckBatch proto;
    const int n = static_cast<int>(rng() % 6);
    for (int i = 0; i < n; ++i) {
      const uint64_t seq = rng() >> (rng() % 64);
      const int code = static_cast<int>(rng() % 17);
      const std::string message = code == 0 ? "" : RandomText(rng, 40);
      acks.emplace_back(seq, code == 0 ? absl::OkStatus()
                                       : absl::Status(static_cast<absl::StatusCode>(code),
                                                      message.empty() ? "m" : message));
      v1::Ack* a = proto.add_acks();
      a->set_seq(seq);
      a->set_code(code);
      if (code != 0) a->set_message(message.empty() ? "m" : message);
    }
    std::string written(AckBatchWireSize(acks), '\0');
    auto* end = WriteAckBatch(acks, reinterpret_cast<uint8_t*>(written.data()));
    ASSERT_EQ(end, reinterpret_cast<uint8_t*>(written.data()) + written.size());
    EXPECT_EQ(written, proto.SerializeAsString()) << round;
    AckList read;
    ASSERT_TRUE(ReadAckBatch(proto.SerializeAsString(), &read)) << round;
    EXPECT_EQ(read, acks) << round;
  }
}

// Protobuf merges two occurrences of a message field; a oneof field of
// another kind replaces the one before.
TEST(GrpcWireTest, ARequestFieldThatOccursTwiceMergesAsInProtobuf) {
  v1::EnqueueRequest first, second;
  first.mutable_command()->set_id("c-1");
  first.set_queue("q-1");
  second.mutable_command()->set_type("t.v1.T/Op");
  v1::PublishRequest other;
  other.set_group("g");
  auto field = [](int number, const std::string& bytes) {
    std::string out(1, static_cast<char>(number << 3 | 2));
    out += static_cast<char>(bytes.size());
    return out + bytes;
  };
  const std::string seq = std::string("\x08\x05", 2);
  for (const std::string& frame :
       {seq + field(2, first.SerializeAsString()) + field(2, second.SerializeAsString()),
        seq + field(2, first.SerializeAsString()) + field(3, other.SerializeAsString()) +
            field(2, second.SerializeAsString())}) {
    const std::string bytes = field(1, frame);
    v1::SendBatch batch;
    ASSERT_TRUE(batch.ParseFromString(bytes));
    std::vector<FrameView> frames;
    ASSERT_TRUE(ReadSendBatch(bytes, &frames));
    ExpectSameFrames(batch, frames);
  }
}

TEST(GrpcWireTest, DamagedAckBatchesReadOnlyAsProtobufReadsThem) {
  google::protobuf::LogSilencer quiet;  // protobuf logs each string that is not UTF-8
  std::mt19937_64 rng(13);
  int protobuf_read = 0;
  for (int round = 0; round < 20000; ++round) {
    v1::AckBatch proto;
    const int n = 1 + static_cast<int>(rng() % 4);
    for (int i = 0; i < n; ++i) {
      v1::Ack* a = proto.add_acks();
      a->set_seq(rng() >> (rng() % 64));
      a->set_code(static_cast<int32_t>(rng() % 20) - 2);
      a->set_message(RandomText(rng, 20));
    }
    std::string bytes = proto.SerializeAsString();
    Damage(rng, &bytes);
    AckList read;
    const bool ours = ReadAckBatch(bytes, &read);
    v1::AckBatch parsed;
    if (!parsed.ParseFromString(bytes)) continue;  // protobuf checks UTF-8; the reader does not
    ++protobuf_read;
    ASSERT_TRUE(ours) << round;
    ASSERT_EQ(read.size(), static_cast<size_t>(parsed.acks_size())) << round;
    for (int i = 0; i < parsed.acks_size(); ++i) {
      const v1::Ack& a = parsed.acks(i);
      EXPECT_EQ(read[i].first, a.seq());
      const absl::StatusCode code = a.code() >= 0 && a.code() <= 16
                                        ? static_cast<absl::StatusCode>(a.code())
                                        : absl::StatusCode::kUnknown;
      EXPECT_EQ(read[i].second.code(), code) << round;
      if (code != absl::StatusCode::kOk && !a.message().empty()) {
        EXPECT_EQ(read[i].second.message(), a.message()) << round;
      }
    }
  }
  EXPECT_GT(protobuf_read, 1000);
}

}  // namespace
}  // namespace switchboard::grpc::wire
