#include "nats_test_env.h"

#include <unistd.h>

#include <atomic>
#include <cstdlib>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "switchboard/clock.h"
#include "switchboard/nats/nats_transport.h"

namespace switchboard::nats::testing {

std::string TestNatsUrl() {
  const char* url = std::getenv("SWITCHBOARD_TEST_NATS_URL");
  return url == nullptr ? "" : url;
}

bool ServersRequired() {
  const char* v = std::getenv("SWITCHBOARD_REQUIRE_SERVERS");
  return v != nullptr && std::string(v) == "1";
}

std::string UniqueId() {
  static const std::string run =
      absl::StrCat("r", getpid(), "x", absl::ToUnixMillis(absl::Now()) % 100000000);
  static std::atomic<int> counter{0};
  return absl::StrCat(run, "n", counter.fetch_add(1));
}

v1::TransportConfig TestConfig(bool jetstream, const std::string& prefix,
                               const std::string& content_mode) {
  v1::TransportConfig config;
  config.set_type("nats");
  v1::NatsOptions* o = config.mutable_nats();
  o->set_url(TestNatsUrl());
  o->set_jetstream(jetstream);
  o->set_subject_prefix(prefix);
  o->mutable_ack_wait()->set_seconds(5);
  o->mutable_max_age()->set_seconds(3600);
  o->mutable_reconnect_wait()->set_nanos(100'000'000);
  o->set_content_mode(content_mode);
  return config;
}

absl::StatusOr<std::unique_ptr<Transport>> NewTestTransport(bool jetstream,
                                                            const std::string& prefix,
                                                            Clock* clock,
                                                            const std::string& content_mode) {
  TransportEnv env;
  env.clock = clock != nullptr ? clock : &Clock::Real();
  env.source = absl::StrCat("//nats-test/", UniqueId());
  return MakeNatsTransport("bus", TestConfig(jetstream, prefix, content_mode), env);
}

}  // namespace switchboard::nats::testing
