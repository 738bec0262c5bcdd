#include "switchboard/internal/cloudevent_wire.h"

#include <cstdint>
#include <random>
#include <string>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "google/protobuf/io/coded_stream.h"
#include "google/protobuf/io/zero_copy_stream_impl_lite.h"
#include "google/protobuf/stubs/common.h"
#include "google/protobuf/stubs/logging.h"
#include "gtest/gtest.h"
#include "io/cloudevents/v1/cloudevents.pb.h"
#include "switchboard/testing/envelope_testing.h"
#include "switchboard/testing/proto_wire_testing.h"

namespace switchboard::internal {
namespace {

using io::cloudevents::v1::CloudEvent;
using Value = CloudEvent::CloudEventAttributeValue;

// ---- the reference: the mapping of cloudevent_wire.h, through protobuf ----

void SetTime(absl::Time t, google::protobuf::Timestamp* ts) {
  timespec spec = absl::ToTimespec(t);
  ts->set_seconds(spec.tv_sec);
  ts->set_nanos(static_cast<int32_t>(spec.tv_nsec));
}

bool IsName(const std::string& name) {
  if (name.empty()) return false;
  for (char c : name) {
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'))) return false;
  }
  return true;
}

bool IsMapped(const std::string& name) {
  for (const char* n : {"id", "source", "specversion", "type", "time", "datacontenttype", "subject",
                        "traceparent", "tracestate", "idempotencykey", "expirytime",
                        "correlationid", "replyto", "attempt", "style", "statuscode",
                        "statusmessage"}) {
    if (name == n) return true;
  }
  return false;
}

CloudEvent ToCloudEventProto(const Envelope& env) {
  CloudEvent ce;
  ce.set_id(env.id);
  ce.set_source(env.source);
  ce.set_spec_version(env.spec_version);
  ce.set_type(env.type);
  auto& attrs = *ce.mutable_attributes();
  auto text = [&attrs](const char* name, const std::string& v) {
    if (!v.empty()) attrs[name].set_ce_string(v);
  };
  if (env.attempt != 1) attrs["attempt"].set_ce_integer(env.attempt);
  text("correlationid", env.correlation_id);
  text("datacontenttype", env.data_content_type);
  if (env.has_deadline()) SetTime(env.deadline, attrs["expirytime"].mutable_ce_timestamp());
  if (env.idempotency_key != env.id) text("idempotencykey", env.idempotency_key);
  text("replyto", env.reply_to);
  if (!env.status.ok()) {
    attrs["statuscode"].set_ce_integer(static_cast<int32_t>(env.status.code()));
    text("statusmessage", std::string(env.status.message()));
  }
  if (env.style != Style::kUnspecified) text("style", std::string(StyleName(env.style)));
  text("subject", env.subject);
  if (env.time != absl::UnixEpoch()) SetTime(env.time, attrs["time"].mutable_ce_timestamp());
  text("traceparent", env.traceparent);
  text("tracestate", env.tracestate);
  for (const auto& [name, value] : env.extensions) {
    if (IsName(name) && !IsMapped(name)) attrs[name].set_ce_string(value);
  }
  const bool text_type = absl::StartsWithIgnoreCase(env.data_content_type, "text/") ||
                         absl::StartsWithIgnoreCase(env.data_content_type, "application/json");
  if (text_type && google::protobuf::internal::IsStructurallyValidUTF8(
                       env.data.data(), static_cast<int>(env.data.size()))) {
    ce.set_text_data(env.data);
  } else {
    ce.set_binary_data(env.data);
  }
  return ce;
}

std::string Serialized(const CloudEvent& ce) {
  std::string bytes;
  {
    google::protobuf::io::StringOutputStream stream(&bytes);
    google::protobuf::io::CodedOutputStream coded(&stream);
    coded.SetSerializationDeterministic(true);
    EXPECT_TRUE(ce.SerializeToCodedStream(&coded));
  }
  return bytes;
}

absl::Status FromCloudEventProto(const CloudEvent& ce, Envelope* env) {
  *env = Envelope{};
  env->id = ce.id();
  env->source = ce.source();
  env->spec_version = ce.spec_version();
  env->type = ce.type();
  env->data_content_type.clear();
  int32_t code = 0;
  std::string message;
  for (const auto& [name, v] : ce.attributes()) {
    if (v.attr_case() == Value::ATTR_NOT_SET) continue;
    const bool is_text = v.has_ce_string() || v.has_ce_uri() || v.has_ce_uri_ref();
    const std::string text =
        v.has_ce_string() ? v.ce_string() : v.has_ce_uri() ? v.ce_uri() : v.ce_uri_ref();
    auto integer = [&](int32_t* out) {
      if (v.has_ce_integer()) {
        *out = v.ce_integer();
        return true;
      }
      return is_text && absl::SimpleAtoi(text, out);
    };
    auto time = [&](absl::Time* out) {
      if (v.has_ce_timestamp()) {
        *out = absl::FromUnixSeconds(v.ce_timestamp().seconds()) +
               absl::Nanoseconds(v.ce_timestamp().nanos());
        return true;
      }
      if (!is_text) return false;
      absl::StatusOr<absl::Time> t = ParseRfc3339(text);
      if (t.ok()) *out = *t;
      return t.ok();
    };
    auto bad = [] { return absl::InvalidArgumentError("bad attribute"); };
    if (name == "time") {
      if (!time(&env->time)) return bad();
    } else if (name == "expirytime") {
      if (!time(&env->deadline)) return bad();
    } else if (name == "attempt") {
      if (!integer(&env->attempt) || env->attempt < 1) return bad();
    } else if (name == "statuscode") {
      if (!integer(&code) || code < 0 || code > 16) return bad();
    } else if (name == "style") {
      if (!is_text || !ParseStyle(text, &env->style) || env->style == Style::kUnspecified) {
        return bad();
      }
    } else if (IsMapped(name) && name != "id" && name != "source" && name != "specversion" &&
               name != "type") {
      if (!is_text) return bad();
      if (name == "statusmessage") message = text;
      if (name == "datacontenttype") env->data_content_type = text;
      if (name == "subject") env->subject = text;
      if (name == "traceparent") env->traceparent = text;
      if (name == "tracestate") env->tracestate = text;
      if (name == "idempotencykey") env->idempotency_key = text;
      if (name == "correlationid") env->correlation_id = text;
      if (name == "replyto") env->reply_to = text;
    } else if (IsName(name) && !IsMapped(name)) {
      std::string& out = env->extensions[name];
      if (v.has_ce_boolean()) out = v.ce_boolean() ? "true" : "false";
      if (v.has_ce_integer()) out = absl::StrCat(v.ce_integer());
      if (v.has_ce_bytes()) out = absl::Base64Escape(v.ce_bytes());
      if (v.has_ce_timestamp()) {
        out = FormatRfc3339(absl::FromUnixSeconds(v.ce_timestamp().seconds()) +
                            absl::Nanoseconds(v.ce_timestamp().nanos()));
      }
      if (is_text) out = text;
    }
  }
  if (code != 0) env->status = absl::Status(static_cast<absl::StatusCode>(code), message);
  if (env->data_content_type.empty()) env->data_content_type = kContentTypeProtobuf;
  switch (ce.data_case()) {
    case CloudEvent::kBinaryData: env->data = ce.binary_data(); break;
    case CloudEvent::kTextData: env->data = ce.text_data(); break;
    case CloudEvent::kProtoData: env->data = ce.proto_data().value(); break;
    default: break;
  }
  RestoreOmittedAttributes(env);
  return ValidateEnvelope(*env);
}

// ---- envelopes ----

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
  e.reply_to = "_INBOX.abc";
  e.attempt = 3;
  e.style = Style::kCommand;
  e.status = absl::NotFoundError("order 9 not found");
  // Sorted among the mapped attributes: before, between and after them.
  e.extensions["aaa"] = "first";
  e.extensions["deadletterreason"] = "between datacontenttype and expirytime";
  e.extensions["tenant"] = "acme";
  e.extensions["zzz"] = "";
  e.data = R"({"order": 9})";
  return e;
}

// What reads back: the extensions a CloudEvent can carry.
Envelope Sendable(Envelope env) {
  for (auto it = env.extensions.begin(); it != env.extensions.end();) {
    it = IsName(it->first) && !IsMapped(it->first) ? std::next(it) : env.extensions.erase(it);
  }
  return env;
}

TEST(CloudEventWireTest, WritesTheBytesProtobufWritesAndReadsThemBack) {
  std::vector<std::pair<std::string, Envelope>> cases;
  Envelope e = Full();
  cases.emplace_back("full", e);
  e.data_content_type = std::string(kContentTypeProtobuf);
  e.data = std::string("\0\1\2\xFFpayload", 11);
  cases.emplace_back("binary data", e);
  e = Full();
  e.data = "\xFF not UTF-8";  // JSON by its type, but not text: binary_data
  cases.emplace_back("text type, bytes not UTF-8", e);
  e = Full();
  e.data_content_type = "text/plain; charset=utf-8";
  e.data.clear();
  cases.emplace_back("empty text", e);
  e = Full();
  e.idempotency_key = e.id;  // left out: the reader restores it
  e.attempt = 1;             // left out
  e.status = absl::OkStatus();
  e.style = Style::kUnspecified;
  e.extensions.clear();
  cases.emplace_back("defaults left out", e);
  e = Full();
  e.status = absl::Status(absl::StatusCode::kUnavailable, "");
  e.time = absl::FromUnixNanos(-1'500'000'000);  // before 1970
  e.deadline = absl::FromUnixSeconds(7);          // nanos 0: left out of the timestamp
  cases.emplace_back("status without message, old times", e);
  e = Full();
  e.attempt = 300;  // a two-byte varint
  e.data.assign(200'000, 'x');
  e.extensions["long"] = std::string(300, 'v');
  cases.emplace_back("long lengths", e);
  e = Full();
  e.extensions["Upper"] = "not a CloudEvents name";
  e.extensions["time"] = "clashes with an attribute";
  e.extensions[""] = "no name";
  cases.emplace_back("extensions that are not sent", e);

  for (const auto& [name, env] : cases) {
    const std::string direct = EnvelopeToCloudEvent(env);
    EXPECT_EQ(direct, Serialized(ToCloudEventProto(env))) << name;
    EXPECT_EQ(direct.size(), CloudEventWireSize(env)) << name;
    Envelope back = Full();
    ASSERT_TRUE(ReadCloudEventWire(direct, &back).ok()) << name;
    EXPECT_TRUE(testing::EnvelopesEqual(back, Sendable(env))) << name;
  }
}

TEST(CloudEventWireTest, TextDataIsTextAndProtobufDataIsBinary) {
  CloudEvent ce;
  Envelope e = Full();
  ASSERT_TRUE(ce.ParseFromString(EnvelopeToCloudEvent(e)));
  EXPECT_EQ(ce.data_case(), CloudEvent::kTextData);
  EXPECT_EQ(ce.text_data(), R"({"order": 9})");
  EXPECT_EQ(ce.attributes().at("datacontenttype").ce_string(), "application/json");
  EXPECT_EQ(ce.attributes().at("time").ce_timestamp().nanos(), 123'456'789);
  EXPECT_EQ(ce.attributes().at("attempt").ce_integer(), 3);
  EXPECT_EQ(ce.attributes().at("statuscode").ce_integer(), 5);

  e.data_content_type = std::string(kContentTypeProtobuf);
  ASSERT_TRUE(ce.ParseFromString(EnvelopeToCloudEvent(e)));
  EXPECT_EQ(ce.data_case(), CloudEvent::kBinaryData);
  EXPECT_EQ(ce.attributes().at("datacontenttype").ce_string(), "application/protobuf");
}

TEST(CloudEventWireTest, RandomEnvelopesMatchProtobufAndReadBack) {
  std::mt19937_64 rng(20261124);
  for (int i = 0; i < 2000; ++i) {
    const Envelope env = testing::RandomEnvelope(rng);
    const std::string direct = EnvelopeToCloudEvent(env);
    ASSERT_EQ(direct, Serialized(ToCloudEventProto(env))) << "envelope " << i;
    Envelope read;
    ASSERT_TRUE(ReadCloudEventWire(direct, &read).ok()) << "envelope " << i;
    ASSERT_TRUE(testing::EnvelopesEqual(read, Sendable(env))) << "envelope " << i;
  }
}

// Protobuf's parser and the reference mapping against ReadCloudEventWire on
// the same bytes: both accept or both refuse (with InvalidArgument), and
// what they accept reads the same.
::testing::AssertionResult ReadsAsProtobufDoes(std::string_view bytes) {
  google::protobuf::LogSilencer quiet;  // protobuf logs each string that is not UTF-8
  CloudEvent ce;
  const bool parsed = ce.ParseFromArray(bytes.data(), static_cast<int>(bytes.size()));
  Envelope want;
  const absl::Status want_status =
      parsed ? FromCloudEventProto(ce, &want) : absl::InvalidArgumentError("not protobuf");
  Envelope got = Full();  // every attribute must be replaced
  const absl::Status read = ReadCloudEventWire(bytes, &got);
  if (read.ok() != want_status.ok()) {
    return ::testing::AssertionFailure() << "protobuf parsed: " << parsed << ", reference: "
                                         << want_status << ", ReadCloudEventWire: " << read;
  }
  if (!read.ok()) {
    if (read.code() != absl::StatusCode::kInvalidArgument) {
      return ::testing::AssertionFailure() << "refused with " << read;
    }
    return ::testing::AssertionSuccess();
  }
  return testing::EnvelopesEqual(got, want);
}

using testing::Key;
using testing::Len;
using testing::Varint;
// An `attributes` entry.
std::string Attr(std::string_view name, std::string_view value_message) {
  return Len(5, Len(1, name) + Len(2, value_message));
}
std::string Str(std::string_view v) { return Len(3, v); }
std::string Int(uint64_t v) { return Key(2, 0) + Varint(v); }
std::string Ts(int64_t seconds, int32_t nanos) {
  return Len(7, Key(1, 0) + Varint(uint64_t(seconds)) + Key(2, 0) + Varint(uint64_t(nanos)));
}

TEST(CloudEventWireTest, ReadsEdgeCasesAsProtobufDoes) {
  const std::string valid = Len(1, "id-1") + Len(3, "1.0") + Len(4, "t.v1.T/Op");
  std::vector<std::pair<std::string, std::string>> cases = {
      {"valid", valid},
      {"empty", ""},
      {"no spec version", Len(1, "id-1") + Len(4, "t")},
      {"spec version 0.3", Len(1, "id-1") + Len(3, "0.3") + Len(4, "t")},
      {"no type", Len(1, "id-1") + Len(3, "1.0")},
      {"surrogate in id", Len(1, "\xED\xA0\x80") + Len(3, "1.0") + Len(4, "t")},
      {"binary data", valid + Len(6, "\xFF\x00")},
      {"text data not UTF-8", valid + Len(7, "\xFF")},
      {"text data", valid + Len(7, "hello")},
      {"proto data", valid + Len(8, Len(1, "type.googleapis.com/x.Y") + Len(2, "\x08\x01"))},
      {"proto data merged", valid + Len(8, Len(2, "ab")) + Len(8, Len(1, "type/x"))},
      {"proto data after binary", valid + Len(6, "bin") + Len(8, Len(1, "type/x"))},
      {"binary after proto data", valid + Len(8, Len(2, "v")) + Len(6, "bin")},
      {"proto data with a bad type url", valid + Len(8, Len(1, "\xFF"))},
      {"data twice", valid + Len(6, "one") + Len(7, "two")},
      {"time as timestamp", valid + Attr("time", Ts(1'700'000'000, 5))},
      {"time as string", valid + Attr("time", Str("2024-01-02T03:04:05.5Z"))},
      {"time as a bad string", valid + Attr("time", Str("yesterday"))},
      {"time as integer", valid + Attr("time", Int(5))},
      {"timestamp merged",
       valid + Attr("expirytime", Len(7, Key(1, 0) + Varint(100)) + Len(7, Key(2, 0) + Varint(9)))},
      {"timestamp after string",
       valid + Attr("time", Str("x") + Len(7, Key(1, 0) + Varint(100)))},
      {"timestamp, string, timestamp",
       valid + Attr("time", Len(7, Key(1, 0) + Varint(100)) + Str("x") +
                                Len(7, Key(2, 0) + Varint(9)))},
      {"attempt as integer", valid + Attr("attempt", Int(4))},
      {"attempt as string", valid + Attr("attempt", Str("4"))},
      {"attempt 0", valid + Attr("attempt", Int(0))},
      {"attempt negative", valid + Attr("attempt", Int(uint64_t(-3)))},
      {"attempt over 32 bits", valid + Attr("attempt", Int((uint64_t(1) << 32) + 2))},
      {"attempt as boolean", valid + Attr("attempt", Key(1, 0) + Varint(1))},
      {"status", valid + Attr("statuscode", Int(14)) + Attr("statusmessage", Str("down"))},
      {"status 17", valid + Attr("statuscode", Int(17))},
      {"status message alone", valid + Attr("statusmessage", Str("ignored"))},
      {"style", valid + Attr("style", Str("event"))},
      {"style unknown", valid + Attr("style", Str("sometimes"))},
      {"style unspecified", valid + Attr("style", Str("unspecified"))},
      {"reply to as URI reference", valid + Attr("replyto", Len(6, "_INBOX.x"))},
      {"reply to as URI", valid + Attr("replyto", Len(5, "nats://x"))},
      {"subject as bytes", valid + Attr("subject", Len(4, "s"))},
      {"content type", valid + Attr("datacontenttype", Str("text/plain")) + Len(7, "hi")},
      {"extension boolean", valid + Attr("flag", Key(1, 0) + Varint(2))},
      {"extension integer", valid + Attr("count", Int(uint64_t(-7)))},
      {"extension bytes", valid + Attr("blob", Len(4, "\x00\xFF\x10"))},
      {"extension timestamp", valid + Attr("seen", Ts(86'400, 0))},
      {"extension uri", valid + Attr("link", Len(5, "https://x/y"))},
      {"extension string not UTF-8", valid + Attr("bad", Str("\xC3"))},
      {"extension bytes not UTF-8", valid + Attr("raw", Len(4, "\xC3"))},
      {"extension not a name", valid + Attr("Upper", Str("x"))},
      {"extension name not UTF-8", valid + Attr("\xFF", Str("x"))},
      {"extension without value", valid + Len(5, Len(1, "novalue"))},
      {"entry without key", valid + Len(5, Len(2, Str("x")))},
      {"empty entry", valid + Len(5, "")},
      {"empty value", valid + Attr("empty", "")},
      {"value members in turn", valid + Attr("turn", Str("a") + Int(3))},
      {"value merged", valid + Len(5, Len(1, "m") + Len(2, Str("a")) + Len(2, ""))},
      {"same name twice", valid + Attr("twice", Str("1")) + Attr("twice", Str("2"))},
      {"name replaced in entry", valid + Len(5, Len(1, "a") + Len(1, "b") + Len(2, Str("v")))},
      {"bad name replaced in entry",
       valid + Len(5, Len(1, "\xFF") + Len(1, "b") + Len(2, Str("v")))},
      {"id in attributes", valid + Attr("id", Str("other"))},
      {"value with unknown fields", valid + Attr("u", Key(9, 0) + Varint(1) + Str("v"))},
      {"value field with a wrong wire type", valid + Attr("w", Key(3, 0) + Varint(1))},
      {"attributes as a varint", valid + Key(5, 0) + Varint(1)},
      {"unknown fields", valid + Key(60, 1) + "12345678" + Len(61, "x")},
      {"group", valid + Key(70, 3) + Key(1, 0) + Varint(1) + Key(70, 4)},
      {"group not ended", valid + Key(70, 3)},
      {"length beyond the end", valid + Key(2, 2) + Varint(50) + "abc"},
      // A length takes at most five bytes in protobuf's parser.
      {"six-byte length", valid + Key(2, 2) + std::string("\x83\x80\x80\x80\x80\x00", 6) + "abc"},
      {"six-byte length of unknown bytes",
       valid + Key(60, 2) + std::string("\x80\x80\x80\x80\x80\x00", 6)},
      {"idempotency key", valid + Attr("idempotencykey", Str("k-1"))},
      {"trace context", valid + Attr("traceparent", Str("00-ab-cd-01")) +
                            Attr("tracestate", Str("a=b"))},
  };
  for (int depth : {97, 98, 99}) {
    std::string groups;
    for (int i = 0; i < depth; ++i) groups += Key(70, 3);
    for (int i = 0; i < depth; ++i) groups += Key(70, 4);
    cases.emplace_back("groups nested in a value " + std::to_string(depth),
                       valid + Attr("deep", groups + Str("v")));
  }
  for (const auto& [name, bytes] : cases) EXPECT_TRUE(ReadsAsProtobufDoes(bytes)) << name;
}

TEST(CloudEventWireTest, OtherFormsOfAnAttributeReadAsTheirValues) {
  const std::string valid = Len(1, "id-1") + Len(3, "1.0") + Len(4, "t.v1.T/Op");
  Envelope env;
  ASSERT_TRUE(ReadCloudEventWire(valid + Attr("time", Str("2024-01-02T03:04:05.5Z")) +
                                     Attr("attempt", Str("4")) + Attr("replyto", Len(6, "_I.x")) +
                                     Attr("flag", Key(1, 0) + Varint(1)) +
                                     Attr("blob", Len(4, std::string("\0\xFF", 2))) +
                                     Attr("count", Int(uint64_t(-7))) +
                                     Len(8, Len(1, "type.googleapis.com/x.Y") + Len(2, "pb")),
                                 &env)
                  .ok());
  EXPECT_EQ(env.time, absl::FromUnixMillis(1'704'164'645'500));
  EXPECT_EQ(env.attempt, 4);
  EXPECT_EQ(env.reply_to, "_I.x");
  EXPECT_EQ(env.extensions.at("flag"), "true");
  EXPECT_EQ(env.extensions.at("blob"), "AP8=");
  EXPECT_EQ(env.extensions.at("count"), "-7");
  EXPECT_EQ(env.data, "pb");
  EXPECT_EQ(env.data_content_type, kContentTypeProtobuf);
  EXPECT_EQ(env.idempotency_key, "id-1");  // restored

  absl::Status s = ReadCloudEventWire(valid + Attr("expirytime", Int(5)), &env);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(absl::StrContains(s.message(), "`expirytime` must be a timestamp")) << s;
  s = ReadCloudEventWire(valid + Attr("statuscode", Int(99)), &env);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(absl::StrContains(s.message(), "`statuscode`")) << s;
  s = ReadCloudEventWire(valid + Len(7, "\xFF"), &env);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(absl::StrContains(s.message(), "`text_data` does not read")) << s;
  s = ReadCloudEventWire(Len(1, "id-1") + Len(4, "t"), &env);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(absl::StrContains(s.message(), "specversion")) << s;
}

TEST(CloudEventWireTest, ReadsDamagedBytesAsProtobufDoes) {
  std::mt19937_64 rng(424243);
  Envelope full = Full();
  full.extensions["count"] = "7";
  const std::string base = EnvelopeToCloudEvent(full);
  int accepted = 0;
  for (int i = 0; i < 20000; ++i) {
    const std::string bytes = testing::DamagedCopy(base, rng);
    ::testing::AssertionResult same = ReadsAsProtobufDoes(bytes);
    ASSERT_TRUE(same) << "damaged copy " << i;
    Envelope env;
    if (ReadCloudEventWire(bytes, &env).ok()) ++accepted;
  }
  // Both outcomes were exercised.
  EXPECT_GT(accepted, 1000);
  EXPECT_LT(accepted, 19000);
}

}  // namespace
}  // namespace switchboard::internal
