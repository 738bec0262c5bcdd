// The order flow of examples/orders on each transport of this build: a shop
// looks up a profile (request), places an order (command with reply) whose
// handler publishes OrderPlaced (event, groups payment / notification /
// analytics) with CallOptions.parent. Every service is its own Node with its
// own Telemetry, as in separate processes; their spans go to one sink. All
// spans of one order must share one trace id and form one tree.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "orders/v1/orders.pb.h"
#include "span_tree.h"
#include "switchboard/builtin_transports.h"
#include "switchboard/node.h"
#include "switchboard/telemetry.h"
#include "switchboard/transport_registry.h"

namespace switchboard {
namespace {

using orders::v1::GetProfileRequest;
using orders::v1::OrderPlaced;
using orders::v1::PlaceOrderReply;
using orders::v1::PlaceOrderRequest;
using orders::v1::Profile;
using ::testing::SizeIs;

constexpr Operation<GetProfileRequest, Profile> kGetProfile{"orders.v1.Profiles/GetProfile"};
constexpr Operation<PlaceOrderRequest, PlaceOrderReply> kPlaceOrder{"orders.v1.Orders/PlaceOrder"};
constexpr Operation<OrderPlaced, google::protobuf::Empty> kOrderPlaced{"orders.v1.OrderPlaced"};
constexpr absl::Duration kWait = absl::Seconds(30);
constexpr int kOrders = 3;
// Per order: GetProfile client+server+reply, PlaceOrder client+server+reply,
// OrderPlaced client + one delivery per group.
constexpr size_t kSpansPerOrder = 3 + 3 + 1 + 3;
const std::vector<std::string> kGroups = {"payment", "notification", "analytics"};

std::string Env(const char* name) {
  const char* v = std::getenv(name);
  return v == nullptr ? "" : v;
}

bool RequireServers() { return Env("SWITCHBOARD_REQUIRE_SERVERS") == "1"; }

// Unique per test run, so that leftovers in a broker cannot pollute it.
std::string NewRunId() { return NewMessageId().substr(24, 12); }

// A port the OS considers free now (the gRPC node binds it right after).
int FreePort() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    close(fd);
    return -1;
  }
  socklen_t len = sizeof addr;
  getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  close(fd);
  return ntohs(addr.sin_port);
}

// Counts OrderPlaced deliveries per group.
class Tally {
 public:
  void Add(const std::string& group) {
    absl::MutexLock lock(&mu_);
    ++counts_[group];
  }
  bool WaitFor(int per_group, absl::Duration timeout) {
    absl::MutexLock lock(&mu_);
    auto done = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      for (const auto& g : kGroups)
        if (counts_[g] < per_group) return false;
      return true;
    };
    return mu_.AwaitWithTimeout(absl::Condition(&done), timeout);
  }

 private:
  absl::Mutex mu_;
  std::map<std::string, int> counts_ ABSL_GUARDED_BY(mu_);
};

class OrderFlowTraceTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    (void)RegisterBuiltinTransports();
    const std::string& kind = GetParam();
    if (kind == "inproc") return;
    if (!TransportRegistry::Default().Has(kind)) {
      GTEST_SKIP() << "the " << kind << " transport is not part of this build";
    }
    const char* var = kind == "nats" ? "SWITCHBOARD_TEST_NATS_URL"
                      : kind == "amqp" ? "SWITCHBOARD_TEST_AMQP_URL"
                                       : nullptr;
    if (var != nullptr && Env(var).empty()) {
      if (RequireServers()) FAIL() << var << " is not set";
      GTEST_SKIP() << var << " is not set; run under scripts/with-servers.sh";
    }
  }

  // The config of one service node. `role` names the node; for gRPC it
  // also decides what the node serves.
  v1::Config ConfigFor(const std::string& role) {
    const std::string& kind = GetParam();
    v1::Config c;
    c.mutable_node()->set_source("//order-flow-test/" + role);
    c.mutable_node()->set_handler_threads(2);
    auto& t = (*c.mutable_transports())["bus"];
    t.set_type(kind);
    if (kind == "inproc") {
      t.mutable_inproc()->set_bus("order-flow-" + run_);
    } else if (kind == "nats") {
      t.mutable_nats()->set_url(Env("SWITCHBOARD_TEST_NATS_URL"));
      t.mutable_nats()->set_jetstream(true);
      t.mutable_nats()->set_subject_prefix("sbtel" + run_ + ".");
    } else if (kind == "amqp") {
      t.mutable_amqp()->set_url(Env("SWITCHBOARD_TEST_AMQP_URL"));
      t.mutable_amqp()->set_address_prefix("sbtel." + run_ + ".");
      t.mutable_amqp()->set_management_url(Env("SWITCHBOARD_TEST_RABBITMQ_MGMT"));
      t.mutable_amqp()->mutable_close_timeout()->set_nanos(500'000'000);
      t.mutable_amqp()->mutable_connect_timeout()->set_seconds(10);
    } else if (kind == "grpc") {
      auto* g = t.mutable_grpc();
      g->set_listen("127.0.0.1:" + std::to_string(PortOf(role)));
      (*g->mutable_targets())["orders.v1.Profiles"] = "127.0.0.1:" + std::to_string(PortOf("profile"));
      (*g->mutable_targets())["orders.v1.Orders"] = "127.0.0.1:" + std::to_string(PortOf("orders"));
      for (const auto& group : kGroups) {
        (*g->mutable_event_targets())[group] = "127.0.0.1:" + std::to_string(PortOf(group));
      }
    }
    auto bind = [&](std::string_view op, v1::Style style, bool reply) {
      auto& b = (*c.mutable_operations())[std::string(op)];
      b.set_style(style);
      b.set_reply(reply);
      b.set_transport("bus");
      b.set_policy("p");
    };
    (*c.mutable_policies())["p"].mutable_timeout()->set_seconds(20);
    bind(kGetProfile.name, v1::STYLE_REQUEST, false);
    bind(kPlaceOrder.name, v1::STYLE_COMMAND, true);
    bind(kOrderPlaced.name, v1::STYLE_EVENT, false);
    for (const auto& g : kGroups) (*c.mutable_operations())[std::string(kOrderPlaced.name)].add_groups(g);
    return c;
  }

  int PortOf(const std::string& role) {
    auto it = ports_.find(role);
    if (it != ports_.end()) return it->second;
    int port = FreePort();
    ports_[role] = port;
    return port;
  }

  Node* Add(const std::string& role) {
    Node::Options options;
    auto telemetry = std::make_shared<Telemetry>();
    telemetry->AddSpanSink(spans_);
    options.telemetry = telemetry;
    auto node = Node::Create(ConfigFor(role), options);
    EXPECT_TRUE(node.ok()) << role << ": " << node.status();
    if (!node.ok()) return nullptr;
    nodes_.push_back(*std::move(node));
    return nodes_.back().get();
  }

  void Keep(absl::StatusOr<HandlerRegistration> r) {
    ASSERT_TRUE(r.ok()) << r.status();
    registrations_.push_back(*std::move(r));
  }

  void TearDown() override {
    registrations_.clear();
    nodes_.clear();
  }

  std::string run_ = NewRunId();
  std::map<std::string, int> ports_;
  std::shared_ptr<MemorySpanSink> spans_ = std::make_shared<MemorySpanSink>();
  std::vector<std::unique_ptr<Node>> nodes_;
  std::vector<HandlerRegistration> registrations_;
};

TEST_P(OrderFlowTraceTest, EveryOrderIsOneTraceWithAParentChain) {
  Tally tally;
  std::atomic<int> next_order{1000};

  Node* profiles = Add("profile");
  ASSERT_NE(profiles, nullptr);
  Keep(profiles->Handle(kGetProfile, [](Context&, const GetProfileRequest& req) -> absl::StatusOr<Profile> {
    Profile p;
    p.set_user_id(req.user_id());
    p.set_tier("gold");
    return p;
  }));
  Node* orders = Add("orders");
  ASSERT_NE(orders, nullptr);
  Keep(orders->Handle(kPlaceOrder, [&, orders](Context& ctx, const PlaceOrderRequest& req)
                                       -> absl::StatusOr<PlaceOrderReply> {
    PlaceOrderReply reply;
    reply.set_order_id("ord-" + std::to_string(next_order++));
    reply.set_status("accepted");
    OrderPlaced event;
    event.set_order_id(reply.order_id());
    event.set_user_id(req.user_id());
    CallOptions o;
    o.parent = &ctx;
    o.idempotency_key = "placed-" + reply.order_id();
    auto published = orders->Call(kOrderPlaced, event, o).GetFor(kWait);
    if (!published.ok()) return published.status();
    return reply;
  }));
  for (const auto& group : kGroups) {
    Node* node = Add(group);
    ASSERT_NE(node, nullptr);
    HandlerOptions options;
    options.group = group;
    Keep(node->Handle(
        kOrderPlaced,
        [&tally, group](Context&, const OrderPlaced&) -> absl::StatusOr<google::protobuf::Empty> {
          tally.Add(group);
          return google::protobuf::Empty();
        },
        options));
  }
  Node* shop = Add("shop");
  ASSERT_NE(shop, nullptr);

  std::vector<std::string> traces;
  for (int i = 0; i < kOrders; ++i) {
    GetProfileRequest who;
    who.set_user_id("u-42");
    auto profile_call = shop->Call(kGetProfile, who);
    std::string trace = profile_call.info().trace_id;
    std::string traceparent = profile_call.info().traceparent;
    auto profile = std::move(profile_call).GetFor(kWait);
    ASSERT_TRUE(profile.ok()) << profile.status();

    PlaceOrderRequest order;
    order.set_user_id(profile->user_id());
    auto* item = order.add_items();
    item->set_sku("book");
    item->set_quantity(1);
    item->set_unit_price_cents(1250);
    CallOptions o;
    o.traceparent = traceparent;  // the order continues the lookup's trace
    auto call = shop->Call(kPlaceOrder, order, o);
    EXPECT_EQ(call.info().trace_id, trace);
    auto reply = std::move(call).GetFor(kWait);
    ASSERT_TRUE(reply.ok()) << reply.status();
    ASSERT_TRUE(tally.WaitFor(i + 1, kWait)) << "not every group saw order " << i;
    traces.push_back(trace);
  }

  for (const std::string& trace : traces) {
    absl::Time give_up = absl::Now() + kWait;
    while (spans_->Trace(trace).size() < kSpansPerOrder && absl::Now() < give_up) {
      absl::SleepFor(absl::Milliseconds(5));
    }
    std::vector<SpanData> spans = spans_->Trace(trace);
    ASSERT_THAT(spans, SizeIs(kSpansPerOrder)) << "trace " << trace;
    EXPECT_TRUE(testing::IsOneTraceTree(spans)) << "trace " << trace;

    // The chain, hop by hop.
    std::string root;
    for (const auto& s : spans) {
      if (s.parent_span_id.empty()) root = s.span_id;
      EXPECT_EQ(s.transport_type, GetParam());
      EXPECT_EQ(s.code, absl::StatusCode::kOk) << SpanToJson(s);
    }
    auto one = [&](const std::string& parent, SpanKind kind, std::string_view op) -> SpanData {
      auto found = testing::ChildrenOf(spans, parent, kind, std::string(op));
      EXPECT_THAT(found, SizeIs(1)) << SpanKindName(kind) << " " << op << " under " << parent;
      return found.empty() ? SpanData{} : found[0];
    };
    SpanData lookup = one("", SpanKind::kClient, kGetProfile.name);
    SpanData lookup_server = one(lookup.span_id, SpanKind::kServer, kGetProfile.name);
    one(lookup_server.span_id, SpanKind::kReply, kGetProfile.name);
    SpanData place = one(lookup.span_id, SpanKind::kClient, kPlaceOrder.name);
    SpanData place_server = one(place.span_id, SpanKind::kServer, kPlaceOrder.name);
    EXPECT_EQ(place_server.style, Style::kCommand);
    one(place_server.span_id, SpanKind::kReply, kPlaceOrder.name);
    SpanData publish = one(place_server.span_id, SpanKind::kClient, kOrderPlaced.name);
    EXPECT_EQ(publish.idempotency_key.rfind("placed-ord-", 0), 0u) << publish.idempotency_key;
    auto deliveries =
        testing::ChildrenOf(spans, publish.span_id, SpanKind::kServer, std::string(kOrderPlaced.name));
    EXPECT_THAT(deliveries, SizeIs(kGroups.size()));
    for (const auto& d : deliveries) {
      EXPECT_EQ(d.style, Style::kEvent);
      EXPECT_EQ(d.idempotency_key, publish.idempotency_key);
    }
  }
  // Different orders are different traces.
  EXPECT_NE(traces[0], traces[1]);
}

INSTANTIATE_TEST_SUITE_P(Transports, OrderFlowTraceTest,
                         ::testing::Values("inproc", "nats", "amqp", "grpc"),
                         [](const auto& info) { return info.param; });

}  // namespace
}  // namespace switchboard
