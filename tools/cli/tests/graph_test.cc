#include "graph.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "switchboard/config.h"

namespace switchboard::graph {
namespace {

using ::testing::HasSubstr;

constexpr std::string_view kConfig = R"(transports:
  bus: { type: nats, url: nats://127.0.0.1:4222, jetstream: true }
  rpc: { type: grpc, listen: 127.0.0.1:0 }
policies:
  p: { timeout: 2s }
operations:
  orders.v1.Orders/PlaceOrder:
    style: request
    transport: rpc
    policy: p
    rollout: { style: command, reply: true, transport: bus, percent: 10 }
  orders.v1.OrderPlaced: { style: event, transport: bus, groups: [payment, analytics] }
)";

v1::Config Load() {
  absl::StatusOr<LoadedConfig> loaded = ParseConfig(kConfig, "g.yaml");
  EXPECT_TRUE(loaded.ok()) << loaded.status();
  return loaded.ok() ? loaded->config : v1::Config();
}

TEST(GraphTest, MermaidShowsTransportsOperationsGroupsAndRollout) {
  std::string out = Render(Load(), Format::kMermaid);
  EXPECT_EQ(out,
            "flowchart LR\n"
            "  subgraph t0[\"bus: nats (jetstream)\"]\n"
            "    o0[\"orders.v1.OrderPlaced<br/>event\"]\n"
            "    o1r[\"orders.v1.Orders/PlaceOrder (rollout)<br/>command + reply<br/>10% of calls\"]\n"
            "  end\n"
            "  subgraph t1[\"rpc: grpc\"]\n"
            "    o1[\"orders.v1.Orders/PlaceOrder<br/>request<br/>policy p<br/>90% of calls\"]\n"
            "  end\n"
            "  g0([\"group analytics\"])\n"
            "  g1([\"group payment\"])\n"
            "  o0 --> g1\n"
            "  o0 --> g0\n"
            "  o1 -. \"rollout 10%\" .-> o1r\n");
}

TEST(GraphTest, DotHasClustersAndEdges) {
  std::string out = Render(Load(), Format::kDot);
  EXPECT_THAT(out, HasSubstr("digraph switchboard {"));
  EXPECT_THAT(out, HasSubstr("subgraph cluster_t0 {\n    label=\"bus: nats (jetstream)\";"));
  EXPECT_THAT(out, HasSubstr("o0 -> g1;"));
  EXPECT_THAT(out, HasSubstr("o1 -> o1r [style=dashed, label=\"rollout 10%\"];"));
  EXPECT_THAT(out, HasSubstr("o1 [label=\"orders.v1.Orders/PlaceOrder\\nrequest\\npolicy p\\n90% of calls\"];"));
}

TEST(GraphTest, OperationWithoutTransportGoesToTheEmbeddedOne) {
  absl::StatusOr<LoadedConfig> loaded = ParseConfig(R"(operations:
  a.v1.A/Get: { style: request }
)");
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  EXPECT_THAT(Render(loaded->config, Format::kMermaid), HasSubstr("subgraph t0[\"inproc: inproc (embedded)\"]"));
}

TEST(GraphTest, ParseFormat) {
  EXPECT_EQ(*ParseFormat("mermaid"), Format::kMermaid);
  EXPECT_EQ(*ParseFormat("dot"), Format::kDot);
  EXPECT_EQ(ParseFormat("svg").status().code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace switchboard::graph
