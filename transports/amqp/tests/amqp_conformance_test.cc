// The conformance suite against RabbitMQ 3.10 through the AMQP transport.
// Every harness gets an address prefix of its own, so cases never see each
// other's queues. Needs SWITCHBOARD_TEST_AMQP_URL and
// SWITCHBOARD_TEST_RABBITMQ_MGMT (scripts/with-servers.sh).
#include <cstdlib>
#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "amqp_test_env.h"
#include "conformance.h"
#include "switchboard/amqp/amqp_transport.h"
#include "switchboard/clock.h"

namespace switchboard::conformance {
namespace {

class AmqpHarness : public Harness {
 public:
  explicit AmqpHarness(std::string content_mode = "")
      : content_mode_(std::move(content_mode)),
        prefix_(absl::StrCat("sbc.", amqp::testing::UniqueId(), ".")) {}

  Features features() const override { return amqp::AmqpFeatures(); }

  absl::StatusOr<std::shared_ptr<Transport>> NewTransport() override {
    if (amqp::testing::TestAmqpUrl().empty()) {
      return absl::FailedPreconditionError(
          "SWITCHBOARD_TEST_AMQP_URL is not set; run under scripts/with-servers.sh");
    }
    TransportEnv env;
    env.clock = &Clock::Real();
    env.source = "//conformance/amqp";
    auto t = amqp::testing::NewTestTransport(prefix_, env, content_mode_);
    if (!t.ok()) return t.status();
    return std::shared_ptr<Transport>(*std::move(t));
  }

  absl::Status RestartBroker() override {
    const std::string cmd = amqp::testing::TestRestartCommand();
    if (cmd.empty()) return absl::UnimplementedError("SWITCHBOARD_TEST_AMQP_RESTART is not set");
    if (std::system(cmd.c_str()) != 0) return absl::InternalError("broker restart failed");
    return absl::OkStatus();
  }

 private:
  std::string content_mode_;
  std::string prefix_;
};

// Without a broker every case is skipped (or fails when servers are
// required), instead of failing in the harness.
class BrokerEnvironment : public ::testing::Environment {
 public:
  void SetUp() override {
    if (!amqp::testing::TestAmqpUrl().empty()) return;
    if (amqp::testing::ServersRequired()) {
      FAIL() << "SWITCHBOARD_TEST_AMQP_URL is not set (SWITCHBOARD_REQUIRE_SERVERS=1)";
    }
    GTEST_SKIP() << "SWITCHBOARD_TEST_AMQP_URL is not set; run under scripts/with-servers.sh";
  }
};

[[maybe_unused]] ::testing::Environment* const kBrokerEnvironment =
    ::testing::AddGlobalTestEnvironment(new BrokerEnvironment);

}  // namespace

SWITCHBOARD_CONFORMANCE(Amqp, []() -> std::unique_ptr<Harness> {
  return std::make_unique<AmqpHarness>();
});
SWITCHBOARD_CONFORMANCE(AmqpBinary, []() -> std::unique_ptr<Harness> {
  return std::make_unique<AmqpHarness>("binary");
});

}  // namespace switchboard::conformance
