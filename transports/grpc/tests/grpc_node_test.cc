// The gRPC transport as users meet it: created from YAML by name through the
// transport registry, under Node, with typed operations.
#include <string>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "switchboard/builtin_transports.h"
#include "switchboard/config.h"
#include "switchboard/grpc/grpc_transport.h"
#include "switchboard/node.h"
#include "switchboard/test/v1/echo.pb.h"

namespace switchboard::grpc {
namespace {

using test::v1::EchoReply;
using test::v1::EchoRequest;

constexpr Operation<EchoRequest, EchoReply> kSay{"switchboard.test.v1.Echo/Say"};
constexpr absl::Duration kWait = absl::Seconds(10);

std::unique_ptr<Node> NodeFromYaml(const std::string& yaml) {
  absl::StatusOr<LoadedConfig> config = ParseConfig(yaml, "test.yaml");
  if (!config.ok()) {
    ADD_FAILURE() << config.status();
    return nullptr;
  }
  absl::StatusOr<std::unique_ptr<Node>> node = Node::Create(config->config);
  if (!node.ok()) {
    ADD_FAILURE() << node.status();
    return nullptr;
  }
  return *std::move(node);
}

TEST(GrpcNodeTest, RequestAndCommandWithReplyBetweenTwoNodes) {
  RegisterBuiltinTransports();
  const std::string ops =
      "operations:\n"
      "  switchboard.test.v1.Echo/Say: { style: request, transport: rpc }\n"
      "  switchboard.test.v1.Echo/Place: { style: command, reply: true, transport: rpc }\n";
  std::unique_ptr<Node> server = NodeFromYaml(
      "transports:\n"
      "  rpc: { type: grpc, listen: \"127.0.0.1:0\" }\n" + ops);
  ASSERT_NE(server, nullptr);
  auto* transport = dynamic_cast<GrpcTransport*>(server->FindTransport("rpc"));
  ASSERT_NE(transport, nullptr);
  ASSERT_GT(transport->bound_port(), 0);
  std::unique_ptr<Node> client = NodeFromYaml(absl::StrCat(
      "transports:\n"
      "  rpc: { type: grpc, listen: \"127.0.0.1:0\", targets: { \"*\": \"127.0.0.1:",
      transport->bound_port(), "\" } }\n", ops));
  ASSERT_NE(client, nullptr);

  auto handler = [](Context& ctx, const EchoRequest& req) -> absl::StatusOr<EchoReply> {
    if (req.fail_code() != 0) {
      return absl::Status(static_cast<absl::StatusCode>(req.fail_code()), req.fail_message());
    }
    EchoReply rep;
    rep.set_text(req.text());
    rep.set_attempt(ctx.attempt());
    return rep;
  };
  auto say = server->Handle(kSay, handler);
  ASSERT_TRUE(say.ok()) << say.status();
  constexpr Operation<EchoRequest, EchoReply> kPlace{"switchboard.test.v1.Echo/Place"};
  auto place = server->Handle(kPlace, handler);
  ASSERT_TRUE(place.ok()) << place.status();

  EchoRequest req;
  req.set_text("via node");
  absl::StatusOr<EchoReply> reply = client->Call(kSay, req).GetFor(kWait);
  ASSERT_TRUE(reply.ok()) << reply.status();
  EXPECT_EQ(reply->text(), "via node");

  req.set_text("queued");
  reply = client->Call(kPlace, req).GetFor(kWait);
  ASSERT_TRUE(reply.ok()) << reply.status();
  EXPECT_EQ(reply->text(), "queued");
  EXPECT_EQ(reply->attempt(), 1);

  EchoRequest bad;
  bad.set_fail_code(static_cast<int>(absl::StatusCode::kNotFound));
  bad.set_fail_message("no order 3");
  reply = client->Call(kSay, bad).GetFor(kWait);
  EXPECT_EQ(reply.status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(reply.status().message(), "no order 3");
}

}  // namespace
}  // namespace switchboard::grpc
