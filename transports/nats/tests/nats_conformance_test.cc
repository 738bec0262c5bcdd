// The transport conformance suite on NATS: JetStream and core NATS in the
// default (structured) content mode, and core NATS in binary mode.
// Each harness uses its own subject prefix (run id + counter), so runs and
// cases never share a subject, stream or consumer.
#include <cstdlib>
#include <memory>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "conformance.h"
#include "nats_test_env.h"
#include "switchboard/nats/nats_transport.h"

namespace switchboard::nats {
namespace {

class NatsHarness final : public conformance::Harness {
 public:
  explicit NatsHarness(bool jetstream, std::string content_mode = "")
      : jetstream_(jetstream),
        content_mode_(std::move(content_mode)),
        prefix_(absl::StrCat("sbconf.", jetstream ? "js." : "core.", testing::UniqueId())) {}

  Features features() const override { return NatsFeatures(jetstream_); }

  absl::StatusOr<std::shared_ptr<Transport>> NewTransport() override {
    if (testing::TestNatsUrl().empty()) {
      return absl::FailedPreconditionError(
          "SWITCHBOARD_TEST_NATS_URL is not set; run under scripts/with-servers.sh");
    }
    absl::StatusOr<std::unique_ptr<Transport>> t =
        testing::NewTestTransport(jetstream_, prefix_, nullptr, content_mode_);
    if (!t.ok()) return t.status();
    return std::shared_ptr<Transport>(*std::move(t));
  }

  absl::Status RestartBroker() override {
    const char* cmd = std::getenv("SWITCHBOARD_TEST_NATS_RESTART");
    if (cmd == nullptr) return absl::UnimplementedError("SWITCHBOARD_TEST_NATS_RESTART is not set");
    if (std::system(cmd) != 0) return absl::UnavailableError("restarting nats-server failed");
    return absl::OkStatus();
  }

 private:
  bool jetstream_;
  std::string content_mode_;
  std::string prefix_;
};

// Without a server every case is skipped (or fails when servers are required).
class RequireNats : public ::testing::Environment {
 public:
  void SetUp() override { SB_REQUIRE_NATS(); }
};
[[maybe_unused]] ::testing::Environment* const kRequireNats =
    ::testing::AddGlobalTestEnvironment(new RequireNats);

}  // namespace
}  // namespace switchboard::nats

SWITCHBOARD_CONFORMANCE(NatsJetStream,
                        [] { return std::make_unique<switchboard::nats::NatsHarness>(true); });
SWITCHBOARD_CONFORMANCE(NatsCore,
                        [] { return std::make_unique<switchboard::nats::NatsHarness>(false); });
SWITCHBOARD_CONFORMANCE(NatsCoreBinary, [] {
  return std::make_unique<switchboard::nats::NatsHarness>(false, "binary");
});
