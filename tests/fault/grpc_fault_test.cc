// Network faults on the gRPC transport (docs/reliability.md, "Transport
// scenarios"). A client node calls a server node through a FaultProxy, all
// in this process on 127.0.0.1. A gRPC command is accepted when the server
// node has put it into its local queue (not durable, so there is no broker
// to restart and no killed-consumer scenario: Features::durable is false).
// Every scenario ends with: accepted commands lost 0, duplicate side effects
// 0, no call past its deadline, and prints one line of measured results.
#include <cstdint>
#include <cstdio>
#include <memory>
#include <string>

#include "absl/time/clock.h"
#include "fault_proxy.h"
#include "fault_scenarios.h"
#include "gtest/gtest.h"
#include "switchboard/clock.h"
#include "switchboard/grpc/grpc_transport.h"
#include "switchboard/internal/strings.h"
#include "switchboard/v1/config.pb.h"

namespace switchboard::testing {
namespace {

struct Nodes {
  std::unique_ptr<grpc::GrpcTransport> server;
  std::unique_ptr<FaultProxy> proxy;
  std::unique_ptr<grpc::GrpcTransport> client;
};

absl::StatusOr<std::unique_ptr<grpc::GrpcTransport>> Create(const std::string& name,
                                                            const v1::TransportConfig& config) {
  TransportEnv env;
  env.clock = &Clock::Real();
  env.source = Cat("//fault-", name, "/", NewMessageId());
  return grpc::CreateGrpcTransport(name, config, env);
}

// A listening server node, a proxy in front of it and a client node whose
// every target is the proxy; `tune` edits both nodes' options.
absl::StatusOr<Nodes> NewNodes(const std::function<void(v1::GrpcOptions&)>& tune = nullptr) {
  Nodes n;
  v1::TransportConfig server_config;
  server_config.set_type("grpc");
  server_config.mutable_grpc()->set_listen("127.0.0.1:0");
  if (tune) tune(*server_config.mutable_grpc());
  auto server = Create("server", server_config);
  if (!server.ok()) return server.status();
  n.server = *std::move(server);
  auto proxy = FaultProxy::Start("127.0.0.1", static_cast<uint16_t>(n.server->bound_port()));
  if (!proxy.ok()) return proxy.status();
  n.proxy = *std::move(proxy);
  v1::TransportConfig client_config;
  client_config.set_type("grpc");
  (*client_config.mutable_grpc()->mutable_targets())["*"] = n.proxy->address();
  if (tune) tune(*client_config.mutable_grpc());
  auto client = Create("client", client_config);
  if (!client.ok()) return client.status();
  n.client = *std::move(client);
  return n;
}

Endpoint CommandEndpoint(const std::string& op) {
  Endpoint ep;
  ep.operation = op;
  ep.group = op;
  return ep;
}

std::string RunOp(const std::string& name) {
  static const std::string run = NewMessageId().substr(24, 8);
  return Cat("fault.v1.", name, run, "/Apply");
}

TEST(GrpcFaultTest, CommandStreamThroughFiveSecondPartition) {
  auto nodes = NewNodes();
  ASSERT_TRUE(nodes.ok()) << nodes.status();
  const std::string op = RunOp("Partition");
  auto log = std::make_shared<EffectLog>();
  auto consumer = nodes->server->Consume(CommandEndpoint(op), log->Handler());
  ASSERT_TRUE(consumer.ok()) << consumer.status();

  StreamOptions options;
  options.commands = 10'000;
  options.before_send = [&](int i) {
    if (i == 3'000) nodes->proxy->Partition(absl::Seconds(5), FaultProxy::PartitionMode::kRefuse);
  };
  StreamResult r = RunCommandStream(*nodes->client, op, options);
  int64_t lost = log->WaitForAll(r.accepted_keys, absl::Seconds(30));
  ExpectStreamIntact("grpc", "partition 5s", r, *log, lost,
                     Cat(" recovery after the last failure ", absl::FormatDuration(r.recovery),
                         " failures seen for ",
                         absl::FormatDuration(r.last_failure - r.first_failure)));
  EXPECT_GT(r.failed_attempts, 0) << "the partition refused nothing";
  EXPECT_GT(nodes->proxy->stats().reset, 0);
}

TEST(GrpcFaultTest, HalfOpenConnectionIsReplacedAfterKeepaliveTimeout) {
  auto nodes = NewNodes([](v1::GrpcOptions& o) {
    o.mutable_keepalive_time()->set_nanos(200'000'000);
    o.mutable_keepalive_timeout()->set_nanos(500'000'000);
  });
  ASSERT_TRUE(nodes.ok()) << nodes.status();
  const std::string op = RunOp("HalfOpen");
  const std::string echo = RunOp("HalfOpenEcho");
  auto log = std::make_shared<EffectLog>();
  auto consumer = nodes->server->Consume(CommandEndpoint(op), log->Handler());
  ASSERT_TRUE(consumer.ok()) << consumer.status();
  auto served = nodes->server->Serve(CommandEndpoint(echo), EchoHandler());
  ASSERT_TRUE(served.ok()) << served.status();
  // A connection to replace.
  DeadlineResult warm = ProbeRequests(*nodes->client, echo, 1, 1, absl::Seconds(5));
  ASSERT_EQ(warm.ok, 1) << warm.first_other;
  FaultProxy& proxy = *nodes->proxy;

  const int64_t connections = proxy.stats().accepted;
  const absl::Time silent_at = absl::Now();
  proxy.SetHalfOpen(true);
  // Calls keep coming while the connection is silent: each must end by its
  // deadline, and one of them makes the channel dial again once keepalive
  // gave the old connection up.
  absl::Duration detect = absl::InfiniteDuration();
  DeadlineResult during;
  while (absl::Now() - silent_at < absl::Seconds(5)) {
    DeadlineResult d = ProbeRequests(*nodes->client, echo, 1, 1, absl::Milliseconds(200));
    during.calls += d.calls;
    during.ok += d.ok;
    during.hung += d.hung;
    during.worst_overrun = std::max(during.worst_overrun, d.worst_overrun);
    if (proxy.stats().accepted > connections) {
      detect = absl::Now() - silent_at;
      break;
    }
  }
  proxy.SetHalfOpen(false);
  const absl::Time healed_at = absl::Now();
  StreamOptions options;
  options.commands = 1'000;
  options.retry_backoff = absl::Milliseconds(20);
  options.callback_bound = absl::Seconds(10);
  StreamResult r = RunCommandStream(*nodes->client, op, options);
  const absl::Duration recover = r.first_accepted - healed_at;
  int64_t lost = log->WaitForAll(r.accepted_keys, absl::Seconds(30));
  ExpectStreamIntact("grpc", "half-open", r, *log, lost,
                     Cat(" detected after ", absl::FormatDuration(detect), " recovered after ",
                         absl::FormatDuration(recover), "; calls while silent ", during.calls,
                         ", latest ", absl::FormatDuration(during.worst_overrun),
                         " after the deadline"));
  // keepalive_time 200ms + keepalive_timeout 500ms, plus scheduling slack.
  EXPECT_LT(detect, absl::Seconds(2));
  EXPECT_LT(recover, absl::Seconds(2));
  EXPECT_EQ(during.hung, 0);
  EXPECT_LT(during.worst_overrun, absl::Milliseconds(100));
}

TEST(GrpcFaultTest, SlowNetworkHonoursDeadlines) {
  auto nodes = NewNodes();
  ASSERT_TRUE(nodes.ok()) << nodes.status();
  const std::string op = RunOp("Slow");
  const std::string echo = RunOp("SlowEcho");
  auto log = std::make_shared<EffectLog>();
  auto consumer = nodes->server->Consume(CommandEndpoint(op), log->Handler());
  ASSERT_TRUE(consumer.ok()) << consumer.status();
  auto served = nodes->server->Serve(CommandEndpoint(echo), EchoHandler());
  ASSERT_TRUE(served.ok()) << served.status();
  // Connected before the latency, as a long-lived client is.
  DeadlineResult warm = ProbeRequests(*nodes->client, echo, 1, 1, absl::Seconds(5));
  ASSERT_EQ(warm.ok, 1) << warm.first_other;
  nodes->proxy->SetLatency(FaultProxy::Direction::kToServer, absl::Milliseconds(200));
  nodes->proxy->SetLatency(FaultProxy::Direction::kToClient, absl::Milliseconds(200));
  // The proxy reads a new latency at its next turn: one round trip first,
  // so that no measured call is forwarded with the old one.
  ProbeRequests(*nodes->client, echo, 1, 1, absl::Seconds(5));

  DeadlineResult tight = ProbeRequests(*nodes->client, echo, 20, 20, absl::Milliseconds(300));
  DeadlineResult loose = ProbeRequests(*nodes->client, echo, 20, 20, absl::Seconds(2));
  StreamOptions options;
  options.commands = 1'000;
  options.callback_bound = absl::Seconds(10);
  StreamResult r = RunCommandStream(*nodes->client, op, options);
  int64_t lost = log->WaitForAll(r.accepted_keys, absl::Seconds(30));
  ExpectStreamIntact(
      "grpc", "200ms per hop", r, *log, lost,
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
