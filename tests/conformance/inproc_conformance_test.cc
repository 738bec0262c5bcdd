// The conformance suite against the inproc transport: every harness gets a
// bus of its own, so cases never see each other's queues.
#include <unistd.h>

#include <atomic>
#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "conformance.h"
#include "switchboard/clock.h"
#include "switchboard/inproc_transport.h"
#include "switchboard/v1/config.pb.h"

namespace switchboard::conformance {
namespace {

class InprocHarness : public Harness {
 public:
  InprocHarness() {
    static std::atomic<int> n{0};
    bus_ = absl::StrCat("conformance-", getpid(), "-", n.fetch_add(1));
  }

  Features features() const override { return InprocFeatures(); }

  absl::StatusOr<std::shared_ptr<Transport>> NewTransport() override {
    v1::TransportConfig config;
    config.set_type("inproc");
    config.mutable_inproc()->set_bus(bus_);
    TransportEnv env;
    env.clock = &Clock::Real();
    env.source = "//conformance/inproc";
    absl::StatusOr<std::unique_ptr<Transport>> t = MakeInprocTransport("t", config, env);
    if (!t.ok()) return t.status();
    return std::shared_ptr<Transport>(*std::move(t));
  }

 private:
  std::string bus_;
};

}  // namespace
}  // namespace switchboard::conformance

SWITCHBOARD_CONFORMANCE(Inproc, [] {
  return std::make_unique<switchboard::conformance::InprocHarness>();
});
