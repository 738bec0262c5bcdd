// Network faults on the NATS transport (docs/reliability.md, "Transport
// scenarios"), against the nats-server of scripts/with-servers.sh. The
// producer (or the calling side) connects through a FaultProxy; the consumer
// connects directly. Every scenario ends with: accepted commands lost 0,
// duplicate side effects 0, no call past its deadline, and prints one line
// of measured results.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>

#include "absl/time/clock.h"
#include "fault_proxy.h"
#include "fault_scenarios.h"
#include "gtest/gtest.h"
#include "nats_test_env.h"
#include "switchboard/clock.h"
#include "switchboard/internal/strings.h"
#include "switchboard/nats/nats_transport.h"

namespace switchboard::testing {
namespace {

namespace nt = ::switchboard::nats::testing;

struct Producer {
  std::unique_ptr<FaultProxy> proxy;
  std::unique_ptr<Transport> transport;
};

// A transport for `prefix` connected through a new proxy; `tune` edits its
// options first.
absl::StatusOr<Producer> NewProxiedTransport(
    bool jetstream, const std::string& prefix,
    const std::function<void(v1::NatsOptions&)>& tune = nullptr) {
  Producer p;
  auto proxy = FaultProxy::Start("127.0.0.1", PortOf(nt::TestNatsUrl()));
  if (!proxy.ok()) return proxy.status();
  p.proxy = *std::move(proxy);
  v1::TransportConfig config = nt::TestConfig(jetstream, prefix);
  config.mutable_nats()->set_url(Cat("nats://", p.proxy->address()));
  if (tune) tune(*config.mutable_nats());
  TransportEnv env;
  env.clock = &Clock::Real();
  env.source = Cat("//fault-producer/", nt::UniqueId());
  auto t = nats::MakeNatsTransport("bus", config, env);
  if (!t.ok()) return t.status();
  p.transport = *std::move(t);
  return p;
}

Endpoint CommandEndpoint(const std::string& op) {
  Endpoint ep;
  ep.operation = op;
  ep.group = op;
  return ep;
}

TEST(NatsFaultTest, CommandStreamThroughFiveSecondPartition) {
  SB_REQUIRE_NATS();
  const std::string prefix = Cat("fault", nt::UniqueId());
  const std::string op = "fault.v1.Partition/Apply";
  auto producer = NewProxiedTransport(true, prefix);
  ASSERT_TRUE(producer.ok()) << producer.status();
  auto consumer_transport = nt::NewTestTransport(true, prefix);
  ASSERT_TRUE(consumer_transport.ok()) << consumer_transport.status();
  auto log = std::make_shared<EffectLog>();
  auto consumer = (*consumer_transport)->Consume(CommandEndpoint(op), log->Handler());
  ASSERT_TRUE(consumer.ok()) << consumer.status();

  StreamOptions options;
  options.commands = 10'000;
  options.before_send = [&](int i) {
    if (i == 3'000) {
      producer->proxy->Partition(absl::Seconds(5), FaultProxy::PartitionMode::kRefuse);
    }
  };
  StreamResult r = RunCommandStream(*producer->transport, op, options);
  int64_t lost = log->WaitForAll(r.accepted_keys, absl::Seconds(30));
  ExpectStreamIntact("nats", "partition 5s", r, *log, lost,
                    Cat(" recovery after the last failure ",
                        absl::FormatDuration(r.recovery)));
  EXPECT_GT(producer->proxy->stats().reset, 0) << "the partition cut nothing";
  // JetStream drops a re-sent Nats-Msg-Id itself.
  EXPECT_EQ(log->duplicate_deliveries(), 0);
}

// Restarts the shared nats-server twice: SERIAL in CMakeLists.txt.
TEST(NatsFaultTest, BrokerRestartedTwiceMidStream) {
  SB_REQUIRE_NATS();
  const char* restart = std::getenv("SWITCHBOARD_TEST_NATS_RESTART");
  if (restart == nullptr) {
    if (nt::ServersRequired()) FAIL() << "SWITCHBOARD_TEST_NATS_RESTART is not set";
    GTEST_SKIP() << "SWITCHBOARD_TEST_NATS_RESTART is not set";
  }
  const std::string prefix = Cat("fault", nt::UniqueId());
  const std::string op = "fault.v1.Restart/Apply";
  auto producer = nt::NewTestTransport(true, prefix);
  ASSERT_TRUE(producer.ok()) << producer.status();
  auto consumer_transport = nt::NewTestTransport(true, prefix);
  ASSERT_TRUE(consumer_transport.ok()) << consumer_transport.status();
  auto log = std::make_shared<EffectLog>();
  auto consumer = (*consumer_transport)->Consume(CommandEndpoint(op), log->Handler());
  ASSERT_TRUE(consumer.ok()) << consumer.status();

  std::unique_ptr<Background> restarting;
  int restarts = 0;
  StreamOptions options;
  options.commands = 10'000;
  options.callback_bound = absl::Seconds(10);
  options.before_send = [&](int i) {
    if (i != 3'000 && i != 6'000) return;
    if (restarting) {
      EXPECT_EQ(restarting->Wait(), 0) << restart;
    }
    restarting = std::make_unique<Background>(restart);
    ++restarts;
  };
  StreamResult r = RunCommandStream(**producer, op, options);
  ASSERT_NE(restarting, nullptr);
  EXPECT_EQ(restarting->Wait(), 0) << restart;
  int64_t lost = log->WaitForAll(r.accepted_keys, absl::Seconds(30));
  ExpectStreamIntact("nats", "broker restarted twice", r, *log, lost,
                    Cat(" restarts ", restarts, " recovery after the last failure ",
                        absl::FormatDuration(r.recovery)));
  EXPECT_EQ(restarts, 2);
}

TEST(NatsFaultTest, HalfOpenConnectionIsReplacedAfterMissedPings) {
  SB_REQUIRE_NATS();
  const std::string prefix = Cat("fault", nt::UniqueId());
  const std::string op = "fault.v1.HalfOpen/Apply";
  auto producer = NewProxiedTransport(true, prefix, [](v1::NatsOptions& o) {
    o.mutable_ping_interval()->set_nanos(200'000'000);
    o.set_max_pings_out(2);
  });
  ASSERT_TRUE(producer.ok()) << producer.status();
  auto consumer_transport = nt::NewTestTransport(true, prefix);
  ASSERT_TRUE(consumer_transport.ok()) << consumer_transport.status();
  auto log = std::make_shared<EffectLog>();
  auto consumer = (*consumer_transport)->Consume(CommandEndpoint(op), log->Handler());
  ASSERT_TRUE(consumer.ok()) << consumer.status();
  FaultProxy& proxy = *producer->proxy;

  const int64_t connections = proxy.stats().accepted;
  const absl::Time silent_at = absl::Now();
  proxy.SetHalfOpen(true);
  // The client gives the silent connection up and dials again.
  absl::Duration detect = absl::InfiniteDuration();
  while (absl::Now() - silent_at < absl::Seconds(5)) {
    if (proxy.stats().accepted > connections) {
      detect = absl::Now() - silent_at;
      break;
    }
    absl::SleepFor(absl::Milliseconds(10));
  }
  proxy.SetHalfOpen(false);
  const absl::Time healed_at = absl::Now();
  StreamOptions options;
  options.commands = 1'000;
  options.retry_backoff = absl::Milliseconds(20);
  options.callback_bound = absl::Seconds(10);
  StreamResult r = RunCommandStream(*producer->transport, op, options);
  const absl::Duration recover = r.first_accepted - healed_at;
  int64_t lost = log->WaitForAll(r.accepted_keys, absl::Seconds(30));
  ExpectStreamIntact("nats", "half-open", r, *log, lost,
                    Cat(" detected after ", absl::FormatDuration(detect), " recovered after ",
                        absl::FormatDuration(recover)));
  // ping_interval 200ms x (max_pings_out 2 + 1), plus scheduling slack.
  EXPECT_LT(detect, absl::Seconds(2));
  EXPECT_LT(recover, absl::Seconds(2));
}

TEST(NatsFaultTest, SlowNetworkHonoursDeadlines) {
  SB_REQUIRE_NATS();
  const std::string prefix = Cat("fault", nt::UniqueId());
  const std::string echo = "fault.v1.Slow/Echo";
  const std::string op = "fault.v1.Slow/Apply";
  auto client = NewProxiedTransport(true, prefix);
  ASSERT_TRUE(client.ok()) << client.status();
  auto server = nt::NewTestTransport(true, prefix);
  ASSERT_TRUE(server.ok()) << server.status();
  auto served = (*server)->Serve(CommandEndpoint(echo), EchoHandler());
  ASSERT_TRUE(served.ok()) << served.status();
  auto log = std::make_shared<EffectLog>();
  auto consumer = (*server)->Consume(CommandEndpoint(op), log->Handler());
  ASSERT_TRUE(consumer.ok()) << consumer.status();
  client->proxy->SetLatency(FaultProxy::Direction::kToServer, absl::Milliseconds(200));
  client->proxy->SetLatency(FaultProxy::Direction::kToClient, absl::Milliseconds(200));
  // The proxy reads a new latency at its next turn: one round trip first,
  // so that no measured call is forwarded with the old one.
  ProbeRequests(*client->transport, echo, 1, 1, absl::Seconds(5));

  // 400 ms per round trip: a 300 ms deadline cannot be met, a 2 s one can.
  DeadlineResult tight = ProbeRequests(*client->transport, echo, 20, 20, absl::Milliseconds(300));
  DeadlineResult loose = ProbeRequests(*client->transport, echo, 20, 20, absl::Seconds(2));
  StreamOptions options;
  options.commands = 1'000;
  options.callback_bound = absl::Seconds(10);
  StreamResult r = RunCommandStream(*client->transport, op, options);
  int64_t lost = log->WaitForAll(r.accepted_keys, absl::Seconds(30));
  ExpectStreamIntact(
      "nats", "200ms per hop", r, *log, lost,
      Cat(" requests 300ms: ", tight.deadline_exceeded, "/", tight.calls,
          " deadline exceeded, latest ", absl::FormatDuration(tight.worst_overrun),
          " after the deadline; requests 2s: ", loose.ok, "/", loose.calls, " ok in ",
          absl::FormatDuration(loose.fastest), "..", absl::FormatDuration(loose.slowest)));
  EXPECT_EQ(tight.deadline_exceeded, tight.calls)
      << "ok " << tight.ok << ", fastest " << tight.fastest << ", other " << tight.other << " "
      << tight.first_other;
  EXPECT_LT(tight.worst_overrun, absl::Milliseconds(100));
  EXPECT_EQ(tight.hung, 0);
  EXPECT_EQ(loose.ok, loose.calls) << loose.first_other;
  EXPECT_LT(loose.worst_overrun, absl::ZeroDuration());
  EXPECT_GE(loose.fastest, absl::Milliseconds(400)) << "the latency was not applied";
}

}  // namespace
}  // namespace switchboard::testing
