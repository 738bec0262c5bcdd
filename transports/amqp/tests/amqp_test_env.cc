#include "amqp_test_env.h"

#include <unistd.h>

#include <atomic>
#include <cstdlib>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "switchboard/amqp/amqp_transport.h"

namespace switchboard::amqp::testing {
namespace {
std::string Env(const char* name) {
  const char* v = std::getenv(name);
  return v == nullptr ? "" : v;
}
}  // namespace

std::string TestAmqpUrl() { return Env("SWITCHBOARD_TEST_AMQP_URL"); }
std::string TestManagementUrl() { return Env("SWITCHBOARD_TEST_RABBITMQ_MGMT"); }
std::string TestRestartCommand() { return Env("SWITCHBOARD_TEST_AMQP_RESTART"); }
bool ServersRequired() { return Env("SWITCHBOARD_REQUIRE_SERVERS") == "1"; }

std::string UniqueId() {
  static std::atomic<int> counter{0};
  return absl::StrCat("r", getpid(), "x", absl::ToUnixMicros(absl::Now()) % 1000000000, "n",
                      counter.fetch_add(1));
}

v1::TransportConfig TestConfig(const std::string& prefix, const std::string& content_mode) {
  v1::TransportConfig cfg;
  cfg.set_type("amqp");
  auto* a = cfg.mutable_amqp();
  a->set_url(TestAmqpUrl());
  a->set_management_url(TestManagementUrl());
  a->set_address_prefix(prefix);
  a->mutable_close_timeout()->set_nanos(500'000'000);
  a->mutable_connect_timeout()->set_seconds(10);
  a->mutable_reconnect_initial()->set_nanos(100'000'000);
  a->mutable_reconnect_max()->set_seconds(1);
  a->set_content_mode(content_mode);
  return cfg;
}

absl::StatusOr<std::unique_ptr<Transport>> NewTestTransport(const std::string& prefix,
                                                            const TransportEnv& env,
                                                            const std::string& content_mode) {
  return MakeAmqpTransport("mq", TestConfig(prefix, content_mode), env);
}

}  // namespace switchboard::amqp::testing
