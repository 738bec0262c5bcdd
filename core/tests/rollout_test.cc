#include "../src/rollout.h"

#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "switchboard/node.h"
#include "switchboard/telemetry.h"
#include "switchboard/test/v1/echo.pb.h"

namespace switchboard {
namespace {

using test::v1::EchoReply;
using test::v1::EchoRequest;

constexpr absl::Duration kWait = absl::Seconds(10);
constexpr Operation<EchoRequest, EchoReply> kSay{"switchboard.test.v1.Echo/Say"};

TEST(RolloutTest, BucketIsStableAcrossRuns) {
  // FNV-1a 64 of the bytes, mod 10000: fixed values, so every host agrees.
  EXPECT_EQ(rollout::Bucket(""), 14695981039346656037ull % 10000);
  EXPECT_EQ(rollout::Bucket("a"), 12638187200555641996ull % 10000);
  EXPECT_EQ(rollout::Bucket("order-42"), rollout::Bucket("order-42"));
  EXPECT_LT(rollout::Bucket("anything"), rollout::kBuckets);
}

TEST(RolloutTest, PercentBoundsAndSplit) {
  EXPECT_FALSE(rollout::TakesRollout("k", 0));
  EXPECT_TRUE(rollout::TakesRollout("k", 100));
  int taken = 0;
  for (int i = 0; i < 10000; ++i) taken += rollout::TakesRollout("key-" + std::to_string(i), 10) ? 1 : 0;
  // 10% of 10000 keys, within a few standard deviations (30).
  EXPECT_GT(taken, 880);
  EXPECT_LT(taken, 1120);
  // Monotonic in percent: a key that rolls out at 10% still does at 50%.
  for (int i = 0; i < 1000; ++i) {
    std::string key = "m-" + std::to_string(i);
    if (rollout::TakesRollout(key, 10)) {
      EXPECT_TRUE(rollout::TakesRollout(key, 50)) << key;
    }
  }
}

TEST(RolloutTest, RuntimeKeyRoundTrips) {
  EXPECT_EQ(rollout::RuntimeKey("a.v1.A/X"), "a.v1.A/X#rollout");
  EXPECT_EQ(rollout::OperationOf("a.v1.A/X#rollout"), "a.v1.A/X");
  EXPECT_EQ(rollout::OperationOf("a.v1.A/X"), std::nullopt);
}

TEST(RolloutTest, DerivedBindingTakesStyleTransportAndReplyKeepsPolicy) {
  v1::OperationBinding b;
  b.set_style(v1::STYLE_REQUEST);
  b.set_transport("rpc");
  b.set_policy("p");
  b.set_address("addr");
  b.mutable_rollout()->set_style(v1::STYLE_COMMAND);
  b.mutable_rollout()->set_reply(true);
  b.mutable_rollout()->set_transport("bus");
  b.mutable_rollout()->set_percent(10);
  v1::OperationBinding d = rollout::DerivedBinding(b);
  EXPECT_EQ(d.style(), v1::STYLE_COMMAND);
  EXPECT_TRUE(d.reply());
  EXPECT_EQ(d.transport(), "bus");
  EXPECT_EQ(d.policy(), "p");
  EXPECT_EQ(d.address(), "addr");
  EXPECT_FALSE(d.has_rollout());
  b.mutable_rollout()->clear_transport();
  EXPECT_EQ(rollout::DerivedBinding(b).transport(), "rpc");
}

// request over transport `a`, 30% as command with reply over transport `b`
// (both inproc, one bus private to the test).
v1::Config SplitConfig(double percent) {
  v1::Config config;
  std::string bus = "rollout-" + NewMessageId();
  for (const char* name : {"a", "b"}) {
    auto& t = (*config.mutable_transports())[name];
    t.set_type("inproc");
    t.mutable_inproc()->set_bus(bus);
  }
  auto& p = (*config.mutable_policies())["p"];
  p.mutable_timeout()->set_seconds(10);
  auto& op = (*config.mutable_operations())[std::string(kSay.name)];
  op.set_style(v1::STYLE_REQUEST);
  op.set_transport("a");
  op.set_policy("p");
  op.mutable_rollout()->set_style(v1::STYLE_COMMAND);
  op.mutable_rollout()->set_reply(true);
  op.mutable_rollout()->set_transport("b");
  op.mutable_rollout()->set_percent(percent);
  return config;
}

uint64_t PathCount(Node& node, const char* style, const char* transport, const char* path) {
  const Counter* c = node.telemetry().metrics().FindCounter(
      rollout::kRolloutCalls,
      {{"operation", std::string(kSay.name)}, {"style", style}, {"transport", transport}, {"path", path}});
  return c == nullptr ? 0 : c->Value();
}

TEST(RolloutNodeTest, CallsSplitByKeyAndHandlerServesBothPaths) {
  absl::StatusOr<std::unique_ptr<Node>> node = Node::Create(SplitConfig(30));
  ASSERT_TRUE(node.ok()) << node.status();
  // The handler answers with the style that carried the call.
  auto reg = (*node)->HandleRaw(
      kSay.name, [](Context&, const Envelope& env, absl::AnyInvocable<void(absl::StatusOr<std::string>) &&> done) {
        EchoReply reply;
        reply.set_text(std::string(StyleName(env.style)));
        std::move(done)(reply.SerializeAsString());
      });
  ASSERT_TRUE(reg.ok()) << reg.status();

  constexpr int kCalls = 200;
  int expected_rollout = 0;
  for (int i = 0; i < kCalls; ++i) {
    std::string key = "order-" + std::to_string(i);
    bool second = rollout::TakesRollout(key, 30);
    expected_rollout += second ? 1 : 0;
    CallOptions options;
    options.idempotency_key = key;
    EchoRequest req;
    req.set_text(key);
    absl::StatusOr<EchoReply> reply = (*node)->Call(kSay, req, options).GetFor(kWait);
    ASSERT_TRUE(reply.ok()) << key << ": " << reply.status();
    EXPECT_EQ(reply->text(), second ? "command" : "request") << key;
  }
  EXPECT_GT(expected_rollout, 0);
  EXPECT_LT(expected_rollout, kCalls);
  EXPECT_EQ(PathCount(**node, "command", "b", "rollout"), static_cast<uint64_t>(expected_rollout));
  EXPECT_EQ(PathCount(**node, "request", "a", "primary"), static_cast<uint64_t>(kCalls - expected_rollout));
}

TEST(RolloutNodeTest, RepeatingAKeyTakesTheSamePath) {
  absl::StatusOr<std::unique_ptr<Node>> node = Node::Create(SplitConfig(50));
  ASSERT_TRUE(node.ok()) << node.status();
  auto reg = (*node)->HandleRaw(
      kSay.name, [](Context&, const Envelope& env, absl::AnyInvocable<void(absl::StatusOr<std::string>) &&> done) {
        EchoReply reply;
        reply.set_text(std::string(StyleName(env.style)));
        std::move(done)(reply.SerializeAsString());
      });
  ASSERT_TRUE(reg.ok()) << reg.status();
  for (int i = 0; i < 20; ++i) {
    std::string key = "retry-" + std::to_string(i);
    std::string first;
    for (int attempt = 0; attempt < 3; ++attempt) {
      CallOptions options;
      options.idempotency_key = key;
      absl::StatusOr<EchoReply> reply = (*node)->Call(kSay, EchoRequest(), options).GetFor(kWait);
      ASSERT_TRUE(reply.ok()) << reply.status();
      if (attempt == 0) first = reply->text();
      EXPECT_EQ(reply->text(), first) << key;
    }
  }
}

TEST(RolloutNodeTest, ZeroPercentNeverTakesTheRollout) {
  absl::StatusOr<std::unique_ptr<Node>> node = Node::Create(SplitConfig(0));
  ASSERT_TRUE(node.ok()) << node.status();
  auto reg = (*node)->Handle(kSay, [](Context&, const EchoRequest&) -> absl::StatusOr<EchoReply> {
    return EchoReply();
  });
  ASSERT_TRUE(reg.ok()) << reg.status();
  for (int i = 0; i < 20; ++i) {
    ASSERT_TRUE((*node)->Call(kSay, EchoRequest()).GetFor(kWait).ok());
  }
  EXPECT_EQ(PathCount(**node, "request", "a", "primary"), 20u);
  EXPECT_EQ(PathCount(**node, "command", "b", "rollout"), 0u);
}

}  // namespace
}  // namespace switchboard
