// nats_test_env.h: what the NATS server tests share: the server URL from
// scripts/with-servers.sh, a run id for unique names, a transport factory.
#pragma once

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "switchboard/transport.h"
#include "switchboard/v1/config.pb.h"

namespace switchboard::nats::testing {

// SWITCHBOARD_TEST_NATS_URL, or "" when unset.
std::string TestNatsUrl();
// SWITCHBOARD_REQUIRE_SERVERS=1: a missing server fails instead of skipping.
bool ServersRequired();
// Unique per process and call: "r<pid>x<time>n<counter>".
std::string UniqueId();
// A config for the test server with a unique subject prefix.
// `content_mode`: "" (the default, structured) or "binary".
v1::TransportConfig TestConfig(bool jetstream, const std::string& prefix,
                               const std::string& content_mode = "");
// `clock` null = the real clock.
absl::StatusOr<std::unique_ptr<Transport>> NewTestTransport(
    bool jetstream, const std::string& prefix, Clock* clock = nullptr,
    const std::string& content_mode = "");

}  // namespace switchboard::nats::testing

// Skips (or fails, when servers are required) a test without a NATS server.
#define SB_REQUIRE_NATS()                                                              \
  do {                                                                                 \
    if (::switchboard::nats::testing::TestNatsUrl().empty()) {                         \
      if (::switchboard::nats::testing::ServersRequired()) {                           \
        FAIL() << "SWITCHBOARD_TEST_NATS_URL is not set (SWITCHBOARD_REQUIRE_SERVERS=1)"; \
      }                                                                                \
      GTEST_SKIP() << "SWITCHBOARD_TEST_NATS_URL is not set; run under "               \
                      "scripts/with-servers.sh";                                       \
    }                                                                                  \
  } while (0)
