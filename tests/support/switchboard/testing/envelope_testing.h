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

}  // namespace switchboard::testing
