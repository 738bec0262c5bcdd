// envelope_testing.h: test support for transports and codecs.
//
// `EnvelopesEqual(got, want)` compares every attribute of two envelopes and,
// on a mismatch, names each attribute that differs with both values, so a
// wire-mapping round-trip test is one line:
//
//   EXPECT_TRUE(switchboard::testing::EnvelopesEqual(decoded, original));
//
// Link switchboard::testing (header-only; needs GoogleTest).
#pragma once

#include <cstdint>
#include <random>
#include <sstream>
#include <string>

#include "gtest/gtest.h"
#include "switchboard/envelope.h"

namespace switchboard::testing {

inline ::testing::AssertionResult EnvelopesEqual(const Envelope& got, const Envelope& want) {
  std::ostringstream diff;
  auto check = [&diff](const char* name, const auto& g, const auto& w) {
    if (!(g == w)) diff << "\n  " << name << ": got \"" << g << "\", want \"" << w << "\"";
  };
  check("id", got.id, want.id);
  check("source", got.source, want.source);
  check("specversion", got.spec_version, want.spec_version);
  check("type", got.type, want.type);
  check("time", absl::FormatTime(got.time), absl::FormatTime(want.time));
  check("datacontenttype", got.data_content_type, want.data_content_type);
  check("subject", got.subject, want.subject);
  check("traceparent", got.traceparent, want.traceparent);
  check("tracestate", got.tracestate, want.tracestate);
  check("idempotencykey", got.idempotency_key, want.idempotency_key);
  check("expirytime", absl::FormatTime(got.deadline), absl::FormatTime(want.deadline));
  check("correlationid", got.correlation_id, want.correlation_id);
  check("replyto", got.reply_to, want.reply_to);
  check("attempt", got.attempt, want.attempt);
  check("style", StyleName(got.style), StyleName(want.style));
  check("status", got.status.ToString(), want.status.ToString());
  check("data (bytes)", got.data.size(), want.data.size());
  if (got.data != want.data) diff << "\n  data: contents differ";
  for (const auto& [key, value] : want.extensions) {
    auto it = got.extensions.find(key);
    if (it == got.extensions.end()) {
      diff << "\n  extension " << key << ": missing, want \"" << value << "\"";
    } else {
      check(("extension " + key).c_str(), it->second, value);
    }
  }
  for (const auto& [key, value] : got.extensions) {
    if (!want.extensions.contains(key)) diff << "\n  extension " << key << ": unexpected \"" << value << "\"";
  }
  std::string text = diff.str();
  if (text.empty()) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << "envelopes differ:" << text;
}

// A random valid envelope for round-trip tests of the wire forms: printable
// attributes of varied lengths (the id and type never empty), times before
// and after 1970, every style, some with a failed status. Extensions are
// lower-case CloudEvents names, one in five any printable name; the content
// type is JSON, protobuf or another; the data is printable text, one in
// three a run of a byte that is not UTF-8 on its own.
inline Envelope RandomEnvelope(std::mt19937_64& rng) {
  auto pick = [&](int n) { return static_cast<int>(rng() % static_cast<uint64_t>(n)); };
  auto text = [&](int max) {
    std::string s(static_cast<size_t>(pick(max + 1)), ' ');
    for (char& c : s) c = static_cast<char>('!' + pick(94));
    return s;
  };
  auto name = [&](int max) {
    std::string s(static_cast<size_t>(1 + pick(max)), ' ');
    for (char& c : s) c = static_cast<char>(pick(4) == 0 ? '0' + pick(10) : 'a' + pick(26));
    return s;
  };
  Envelope env;
  env.id = "id-" + text(40);
  env.source = text(20);
  env.type = "t." + text(60);
  if (pick(2)) {
    env.time = absl::FromUnixNanos(static_cast<int64_t>(rng() >> 2) - (int64_t{1} << 61));
  }
  const int type = pick(3);
  env.data_content_type = type == 0   ? std::string(kContentTypeJson)
                          : type == 1 ? std::string(kContentTypeProtobuf)
                                      : "type/" + text(30);
  env.subject = text(10);
  env.traceparent = text(55);
  env.tracestate = text(200);
  env.idempotency_key = pick(2) ? env.id : "key-" + text(40);
  if (pick(2)) {
    env.deadline = absl::FromUnixMicros(static_cast<int64_t>(rng() % (int64_t{1} << 52)));
  }
  env.correlation_id = text(40);
  env.reply_to = text(40);
  env.attempt = 1 + pick(5);
  env.style = static_cast<Style>(pick(4));
  if (pick(2)) env.status = absl::Status(static_cast<absl::StatusCode>(1 + pick(16)), text(100));
  for (int n = pick(5); n > 0; --n) env.extensions[pick(5) == 0 ? text(8) : name(16)] = text(20);
  env.data = pick(3) == 0 ? std::string(static_cast<size_t>(pick(100)), '\xC3') : text(5000);
  return env;
}

}  // namespace switchboard::testing
