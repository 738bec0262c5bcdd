// A stream of JetStream commands through a 5 s network partition between the
// producer and nats-server (FaultProxy, refusing). The producer retries a
// refused enqueue with the same message id and idempotency key (Nats-Msg-Id
// dedup); the consumer, connected directly, counts what it receives. Ends
// with: accepted commands lost 0, duplicate deliveries (side effects) 0.
#include <cstdint>
#include <memory>
#include <set>
#include <string>

#include "absl/strings/numbers.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "fault_proxy.h"
#include "gtest/gtest.h"
#include "nats_test_env.h"
#include "switchboard/clock.h"
#include "switchboard/envelope.h"
#include "switchboard/internal/strings.h"
#include "switchboard/nats/nats_transport.h"

namespace switchboard::testing {
namespace {

namespace nt = ::switchboard::nats::testing;

// "nats://127.0.0.1:4222" -> 4222; 0 when it does not parse.
uint16_t PortOf(const std::string& url) {
  size_t colon = url.rfind(':');
  uint32_t port = 0;
  if (colon == std::string::npos || !absl::SimpleAtoi(url.substr(colon + 1), &port)) return 0;
  return static_cast<uint16_t>(port);
}

TEST(NatsPartitionTest, CommandStreamThroughFiveSecondPartitionLosesAndDuplicatesNothing) {
  SB_REQUIRE_NATS();
  const uint16_t nats_port = PortOf(nt::TestNatsUrl());
  ASSERT_NE(nats_port, 0) << nt::TestNatsUrl();
  auto proxy = FaultProxy::Start("127.0.0.1", nats_port);
  ASSERT_TRUE(proxy.ok()) << proxy.status();

  const std::string prefix = Cat("fault", nt::UniqueId());
  const std::string op = "fault.v1.Partition/Apply";
  v1::TransportConfig producer_config = nt::TestConfig(true, prefix);
  producer_config.mutable_nats()->set_url(Cat("nats://", (*proxy)->address()));
  TransportEnv env;
  env.clock = &Clock::Real();
  env.source = Cat("//fault-producer/", nt::UniqueId());
  auto producer = nats::MakeNatsTransport("bus", producer_config, env);
  ASSERT_TRUE(producer.ok()) << producer.status();
  auto consumer_transport = nt::NewTestTransport(true, prefix);
  ASSERT_TRUE(consumer_transport.ok()) << consumer_transport.status();

  absl::Mutex mu;
  std::set<std::string> seen;
  int64_t duplicates = 0;
  Endpoint ep;
  ep.operation = op;
  ep.group = op;
  auto consumer = (*consumer_transport)->Consume(ep, [&](std::unique_ptr<Delivery> d) {
    {
      absl::MutexLock lock(&mu);
      if (!seen.insert(d->envelope().idempotency_key).second) ++duplicates;
    }
    d->Ack();
  });
  ASSERT_TRUE(consumer.ok()) << consumer.status();

  constexpr int kCommands = 2000;
  constexpr int kPartitionAt = 500;
  const absl::Time give_up = absl::Now() + absl::Seconds(90);
  std::set<std::string> accepted;
  int64_t refused_attempts = 0;
  absl::Time partition_end = absl::InfiniteFuture();
  absl::Duration recovery = absl::ZeroDuration();
  for (int i = 0; i < kCommands && absl::Now() < give_up; ++i) {
    if (i == kPartitionAt) {
      (*proxy)->Partition(absl::Seconds(5), FaultProxy::PartitionMode::kRefuse);
      partition_end = absl::Now() + absl::Seconds(5);
    }
    Envelope cmd;
    cmd.id = NewMessageId();
    cmd.source = env.source;
    cmd.type = op;
    cmd.time = absl::Now();
    cmd.style = Style::kCommand;
    cmd.idempotency_key = Cat("cmd-", i);
    cmd.data = Cat("payload-", i);
    // The producer's retry: same id and key until accepted (bounded).
    while (absl::Now() < give_up) {
      absl::Notification done;
      absl::Status result;
      (*producer)->Enqueue(cmd, [&](absl::Status s) {
        result = s;
        done.Notify();
      });
      if (!done.WaitForNotificationWithTimeout(absl::Seconds(30))) {
        FAIL() << "Enqueue did not call back within 30 s (command " << i << ")";
      }
      if (result.ok()) {
        accepted.insert(cmd.idempotency_key);
        if (recovery == absl::ZeroDuration() && absl::Now() > partition_end && refused_attempts > 0) {
          recovery = absl::Now() - partition_end;
        }
        break;
      }
      ++refused_attempts;
      // Not accepted: back off briefly before the same command again.
      absl::SleepFor(absl::Milliseconds(50));
    }
  }

  // Every accepted command reaches the consumer (bounded wait).
  const absl::Time drain_end = absl::Now() + absl::Seconds(30);
  int64_t lost = 0;
  while (true) {
    {
      absl::MutexLock lock(&mu);
      lost = 0;
      for (const std::string& key : accepted) lost += seen.count(key) == 0 ? 1 : 0;
    }
    if (lost == 0 || absl::Now() > drain_end) break;
    absl::SleepFor(absl::Milliseconds(50));
  }
  absl::MutexLock lock(&mu);
  std::printf("nats partition: commands %d accepted %zu refused attempts %lld lost %lld "
              "duplicates %lld recovery after partition %s\n",
              kCommands, accepted.size(), static_cast<long long>(refused_attempts),
              static_cast<long long>(lost), static_cast<long long>(duplicates),
              absl::FormatDuration(recovery).c_str());
  EXPECT_EQ(static_cast<int>(accepted.size()), kCommands);
  EXPECT_GT(refused_attempts, 0) << "the partition did not refuse anything";
  EXPECT_EQ(lost, 0);
  EXPECT_EQ(duplicates, 0);
}

}  // namespace
}  // namespace switchboard::testing
