#include "call.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "switchboard/config.h"
#include "switchboard/internal/strings.h"
#include "switchboard/node.h"
#include "switchboard/test/v1/echo.pb.h"

namespace switchboard::cli {
namespace {

using ::testing::HasSubstr;
using test::v1::EchoReply;
using test::v1::EchoRequest;

constexpr Operation<EchoRequest, EchoReply> kSay{"switchboard.test.v1.Echo/Say"};

std::unique_ptr<Node> MakeNode(std::string_view bus) {
  absl::StatusOr<LoadedConfig> loaded = ParseConfig(Cat(R"(transports:
  local: { type: inproc, bus: )", bus, R"( }
policies:
  quick: { timeout: 5s }
operations:
  switchboard.test.v1.Echo/Say: { style: request, transport: local, policy: quick }
  switchboard.test.v1.Echo/Fire: { style: command, transport: local, policy: quick }
  switchboard.test.v1.Tick: { style: event, transport: local, groups: [g] }
)"));
  EXPECT_TRUE(loaded.ok()) << loaded.status();
  absl::StatusOr<std::unique_ptr<Node>> node = Node::Create(loaded->config);
  EXPECT_TRUE(node.ok()) << node.status();
  return node.ok() ? *std::move(node) : nullptr;
}

std::unique_ptr<ProtoSource> GeneratedOnly() {
  absl::StatusOr<std::unique_ptr<ProtoSource>> protos = ProtoSource::Create({}, {});
  EXPECT_TRUE(protos.ok()) << protos.status();
  return *std::move(protos);
}

TEST(CallJsonTest, ConvertsRequestAndReply) {
  std::unique_ptr<Node> node = MakeNode("call-json-1");
  ASSERT_NE(node, nullptr);
  auto reg = node->Handle(kSay, [](Context&, const EchoRequest& req) -> absl::StatusOr<EchoReply> {
    EchoReply reply;
    reply.set_text("echo: " + req.text());
    reply.set_handled_by("h1");
    return reply;
  });
  ASSERT_TRUE(reg.ok()) << reg.status();
  absl::StatusOr<CallResult> result =
      CallJson(*node, *GeneratedOnly(), kSay.name, R"({"text": "hi"})", {}, absl::Seconds(10));
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->json, R"({"text":"echo: hi","handledBy":"h1"})");
  EXPECT_FALSE(result->info.message_id.empty());
  EXPECT_FALSE(result->info.trace_id.empty());
}

TEST(CallJsonTest, HandlerErrorComesBackAsIs) {
  std::unique_ptr<Node> node = MakeNode("call-json-2");
  ASSERT_NE(node, nullptr);
  auto reg = node->Handle(kSay, [](Context&, const EchoRequest&) -> absl::StatusOr<EchoReply> {
    return absl::NotFoundError("no such text");
  });
  ASSERT_TRUE(reg.ok()) << reg.status();
  absl::StatusOr<CallResult> result =
      CallJson(*node, *GeneratedOnly(), kSay.name, R"({"text": "hi"})", {}, absl::Seconds(10));
  EXPECT_EQ(result.status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(result.status().message(), "no such text");
}

TEST(CallJsonTest, BadJsonIsInvalidArgumentAndNothingIsSent) {
  std::unique_ptr<Node> node = MakeNode("call-json-3");
  ASSERT_NE(node, nullptr);
  int calls = 0;
  auto reg = node->Handle(kSay, [&calls](Context&, const EchoRequest&) -> absl::StatusOr<EchoReply> {
    ++calls;
    return EchoReply();
  });
  ASSERT_TRUE(reg.ok()) << reg.status();
  absl::StatusOr<CallResult> result =
      CallJson(*node, *GeneratedOnly(), kSay.name, R"({"txt": 1})", {}, absl::Seconds(10));
  EXPECT_EQ(result.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(result.status().message()), HasSubstr("switchboard.test.v1.EchoRequest"));
  EXPECT_EQ(calls, 0);
}

TEST(CallJsonTest, UnknownMethodIsNotFound) {
  std::unique_ptr<Node> node = MakeNode("call-json-4");
  ASSERT_NE(node, nullptr);
  absl::StatusOr<CallResult> result = CallJson(*node, *GeneratedOnly(), "nope.v1.X/Y", "{}");
  EXPECT_EQ(result.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(result.status().message()), HasSubstr("--proto"));
}

TEST(CallJsonTest, CommandWithoutReplyResolvesWithAcceptance) {
  std::unique_ptr<Node> node = MakeNode("call-json-5");
  ASSERT_NE(node, nullptr);
  absl::StatusOr<CallResult> result = CallJson(*node, *GeneratedOnly(), "switchboard.test.v1.Echo/Fire",
                                               R"({"text": "x"})", {}, absl::Seconds(10));
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->json, "{}");
}

TEST(CallJsonTest, PublishDeliversTheEvent) {
  std::unique_ptr<Node> node = MakeNode("call-json-6");
  ASSERT_NE(node, nullptr);
  auto [promise, future] = MakePromise<std::string>();
  auto shared = std::make_shared<Promise<std::string>>(std::move(promise));
  constexpr Operation<test::v1::Tick, google::protobuf::Empty> kTick{"switchboard.test.v1.Tick"};
  HandlerOptions options;
  options.group = "g";
  auto reg = node->Handle(
      kTick,
      [shared](Context&, const test::v1::Tick& tick) -> absl::StatusOr<google::protobuf::Empty> {
        shared->Set(tick.text() + "/" + std::to_string(tick.seq()));
        return google::protobuf::Empty();
      },
      options);
  ASSERT_TRUE(reg.ok()) << reg.status();
  absl::StatusOr<CallResult> result = PublishJson(*node, *GeneratedOnly(), "switchboard.test.v1.Tick",
                                                  R"({"text": "t", "seq": "7"})", {}, absl::Seconds(10));
  ASSERT_TRUE(result.ok()) << result.status();
  absl::StatusOr<std::string> got = std::move(future).GetFor(absl::Seconds(10));
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(*got, "t/7");
}

TEST(ProtoSourceTest, LoadsProtoFilesAtRunTime) {
  absl::StatusOr<std::unique_ptr<ProtoSource>> protos =
      ProtoSource::Create({SWITCHBOARD_SOURCE_DIR "/examples/orders/proto/orders/v1/orders.proto"},
                          {SWITCHBOARD_SOURCE_DIR "/examples/orders/proto", SWITCHBOARD_SOURCE_DIR "/proto"});
  ASSERT_TRUE(protos.ok()) << protos.status();
  const auto* method = (*protos)->FindMethod("orders.v1.Orders/PlaceOrder");
  ASSERT_NE(method, nullptr);
  EXPECT_EQ(method->input_type()->full_name(), "orders.v1.PlaceOrderRequest");
  absl::StatusOr<std::string> bytes =
      JsonToBytes(*method->input_type(), R"({"userId": "u1", "items": [{"sku": "a", "quantity": 2}]})");
  ASSERT_TRUE(bytes.ok()) << bytes.status();
  absl::StatusOr<std::string> back = BytesToJson(*method->input_type(), *bytes);
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(*back, R"({"userId":"u1","items":[{"sku":"a","quantity":2}]})");
}

TEST(ProtoSourceTest, MissingProtoIsInvalidArgument) {
  absl::StatusOr<std::unique_ptr<ProtoSource>> protos = ProtoSource::Create({"no/such.proto"}, {"/nonexistent"});
  EXPECT_EQ(protos.status().code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace switchboard::cli
