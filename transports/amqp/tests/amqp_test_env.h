// amqp_test_env.h: what the broker tests share: the broker URLs from
// scripts/with-servers.sh, unique names per run, a transport factory.
#pragma once

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "switchboard/transport.h"
#include "switchboard/v1/config.pb.h"

namespace switchboard::amqp::testing {

// SWITCHBOARD_TEST_AMQP_URL, or "" when unset.
std::string TestAmqpUrl();
// SWITCHBOARD_TEST_RABBITMQ_MGMT, or "".
std::string TestManagementUrl();
// SWITCHBOARD_TEST_AMQP_RESTART, or "".
std::string TestRestartCommand();
bool ServersRequired();
// Unique per process and call.
std::string UniqueId();
// `content_mode`: "" (the default, structured) or "binary".
v1::TransportConfig TestConfig(const std::string& prefix, const std::string& content_mode = "");
absl::StatusOr<std::unique_ptr<Transport>> NewTestTransport(const std::string& prefix,
                                                            const TransportEnv& env = {},
                                                            const std::string& content_mode = "");

}  // namespace switchboard::amqp::testing

#define SB_REQUIRE_AMQP()                                                                \
  do {                                                                                   \
    if (::switchboard::amqp::testing::TestAmqpUrl().empty()) {                           \
      if (::switchboard::amqp::testing::ServersRequired()) {                             \
        FAIL() << "SWITCHBOARD_TEST_AMQP_URL is not set (SWITCHBOARD_REQUIRE_SERVERS=1)"; \
      }                                                                                  \
      GTEST_SKIP() << "SWITCHBOARD_TEST_AMQP_URL is not set; run under "                 \
                      "scripts/with-servers.sh";                                         \
    }                                                                                    \
  } while (0)
