// The order flow under every valid (style, transport) binding of PlaceOrder,
// generated from one YAML template: the business outcome is the same
// everywhere. Invalid bindings are rejected at load with their hint. A
// rollout from a request to a command with reply over each other transport
// gives the same outcome too, split by idempotency key.
//
// inproc always runs; grpc runs when compiled in (loopback, a port chosen by
// the OS); nats and amqp need the servers of scripts/with-servers.sh
// (SWITCHBOARD_TEST_NATS_URL, SWITCHBOARD_TEST_AMQP_URL).
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <map>
#include <ostream>
#include <string>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "orders/v1/orders.switchboard.h"
#include "switchboard/builtin_transports.h"
#include "switchboard/config.h"
#include "switchboard/node.h"
#include "switchboard/telemetry.h"

namespace {

using orders::v1::OrderPlaced;
using orders::v1::OrderPlacedEvent;
using orders::v1::PlaceOrderReply;
using orders::v1::PlaceOrderRequest;
using switchboard::Context;
using ::testing::HasSubstr;

constexpr absl::Duration kWait = absl::Seconds(20);

// One template; {STYLE}, {REPLY} and {TRANSPORT} are filled per cell.
constexpr std::string_view kTemplate = R"(transports:
  t: {TRANSPORT}
policies:
  p: { timeout: 15s, max_deliveries: 3, redelivery: 20ms..200ms, idempotency: { ttl: 1h } }
operations:
  orders.v1.Orders/PlaceOrder: { style: {STYLE}, reply: {REPLY}, transport: t, policy: p }
  orders.v1.OrderPlaced: { style: event, transport: t, policy: p, groups: [payment, analytics] }
)";

std::string Fill(std::string_view style, bool reply, const std::string& transport) {
  std::string out(kTemplate);
  auto put = [&out](std::string_view key, const std::string& value) {
    size_t at = out.find(key);
    out.replace(at, key.size(), value);
  };
  put("{TRANSPORT}", transport);
  put("{STYLE}", std::string(style));
  put("{REPLY}", reply ? "true" : "false");
  return out;
}

std::string RunId() {
  static const std::string id = "mx" + switchboard::NewMessageId().substr(24, 8);
  static std::atomic<int> n{0};
  return id + std::to_string(n++);
}

#if MATRIX_HAS_GRPC
int FreePort() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  socklen_t len = sizeof addr;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  ::close(fd);
  return ntohs(addr.sin_port);
}
#endif

// The transport's YAML for this run, or "" with `skip` set.
std::string TransportYaml(const std::string& kind, std::string* skip) {
  auto server = [skip](const char* var) -> std::string {
    const char* v = std::getenv(var);
    if (v == nullptr || *v == '\0') {
      *skip = std::string(var) + " is not set; run under scripts/with-servers.sh";
      return "";
    }
    return v;
  };
  if (kind == "inproc") return "{ type: inproc, bus: " + RunId() + " }";
  if (kind == "grpc") {
#if MATRIX_HAS_GRPC
    std::string at = "127.0.0.1:" + std::to_string(FreePort());
    return "{ type: grpc, listen: \"" + at + "\", targets: { \"*\": \"" + at + "\" } }";
#else
    *skip = "the grpc transport is not in this build";
    return "";
#endif
  }
  if (kind == "nats-jetstream" || kind == "nats-core") {
#if MATRIX_HAS_NATS
    std::string url = server("SWITCHBOARD_TEST_NATS_URL");
    if (url.empty()) return "";
    return "{ type: nats, url: \"" + url + "\", jetstream: " + (kind == "nats-jetstream" ? "true" : "false") +
           ", subject_prefix: " + RunId() + " }";
#else
    *skip = "the nats transport is not in this build";
    return "";
#endif
  }
  if (kind == "amqp") {
#if MATRIX_HAS_AMQP
    std::string url = server("SWITCHBOARD_TEST_AMQP_URL");
    if (url.empty()) return "";
    // Event group queues are provisioned through the management API.
    std::string mgmt = server("SWITCHBOARD_TEST_RABBITMQ_MGMT");
    if (mgmt.empty()) return "";
    return "{ type: amqp, url: \"" + url + "\", management_url: \"" + mgmt + "\", address_prefix: " + RunId() +
           ". }";
#else
    *skip = "the amqp transport is not in this build";
    return "";
#endif
  }
  *skip = "unknown transport " + kind;
  return "";
}

bool ServersRequired() {
  const char* v = std::getenv("SWITCHBOARD_REQUIRE_SERVERS");
  return v != nullptr && std::string(v) == "1";
}

// The order service: computes the total, publishes OrderPlaced in the same
// trace, counts how many times it ran.
class OrderService final : public orders::v1::OrdersHandler {
 public:
  explicit OrderService(switchboard::Node& node) : node_(node) {}
  absl::StatusOr<PlaceOrderReply> PlaceOrder(Context& ctx, const PlaceOrderRequest& req) override {
    int64_t total = 0;
    for (const auto& item : req.items()) total += item.quantity() * item.unit_price_cents();
    PlaceOrderReply reply;
    reply.set_order_id("ord-" + req.user_id());
    reply.set_total_cents(total);
    reply.set_status("accepted");
    OrderPlaced event;
    event.set_order_id(reply.order_id());
    event.set_total_cents(total);
    switchboard::CallOptions o;
    o.parent = &ctx;
    o.idempotency_key = "placed-" + reply.order_id();
    auto published = OrderPlacedEvent::Publish(node_, event, o).GetFor(kWait);
    if (!published.ok()) {
      ADD_FAILURE() << "publishing OrderPlaced: " << published.status();
      return published.status();
    }
    runs_.fetch_add(1);
    return reply;
  }
  int runs() const { return runs_.load(); }

 private:
  switchboard::Node& node_;
  std::atomic<int> runs_{0};
};

class Tally {
 public:
  void Add(const std::string& group, int64_t total) {
    absl::MutexLock lock(&mu_);
    ++counts_[group];
    totals_[group] += total;
  }
  bool WaitFor(int n, absl::Duration timeout) {
    absl::MutexLock lock(&mu_);
    auto done = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      return counts_["payment"] >= n && counts_["analytics"] >= n;
    };
    return mu_.AwaitWithTimeout(absl::Condition(&done), timeout);
  }
  std::map<std::string, int> counts() {
    absl::MutexLock lock(&mu_);
    return counts_;
  }
  std::map<std::string, int64_t> totals() {
    absl::MutexLock lock(&mu_);
    return totals_;
  }

 private:
  absl::Mutex mu_;
  std::map<std::string, int> counts_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, int64_t> totals_ ABSL_GUARDED_BY(mu_);
};

struct Cell {
  std::string transport;
  std::string style;  // "request" or "command"
  bool reply;
};

// Shown by ctest as "# GetParam() = nats style=command reply=true".
void PrintTo(const Cell& cell, std::ostream* os) {
  *os << cell.transport << " style=" << cell.style << " reply=" << (cell.reply ? "true" : "false");
}

std::string CellName(const ::testing::TestParamInfo<Cell>& info) {
  std::string name = info.param.transport + "_" + info.param.style + (info.param.reply ? "_reply" : "");
  for (char& c : name) {
    if (c == '-') c = '_';
  }
  return name;
}

class MatrixTest : public ::testing::TestWithParam<Cell> {};

// Places `orders` orders through `node` and checks the outcome: each reply,
// one handler run per order, OrderPlaced once per group. With `key_prefix`,
// order i has the idempotency key key_prefix + i.
constexpr int kOrders = 3;

void PlaceOrders(switchboard::Node& node, int orders, const std::string& key_prefix = "") {
  OrderService service(node);
  Tally tally;
  auto served = orders::v1::RegisterOrders(node, service);
  ASSERT_TRUE(served.ok()) << served.status();
  std::vector<switchboard::HandlerRegistration> subscribers;
  for (std::string group : {"payment", "analytics"}) {
    switchboard::HandlerOptions options;
    options.group = group;
    auto sub = node.Handle(
        OrderPlacedEvent::kOperation,
        [&tally, group](Context&, const OrderPlaced& e) -> absl::StatusOr<google::protobuf::Empty> {
          tally.Add(group, e.total_cents());
          return google::protobuf::Empty();
        },
        options);
    ASSERT_TRUE(sub.ok()) << sub.status();
    subscribers.push_back(*std::move(sub));
  }

  orders::v1::OrdersClient client(node);
  int64_t expected_total = 0;
  for (int i = 0; i < orders; ++i) {
    PlaceOrderRequest order;
    order.set_user_id("u" + std::to_string(i));
    auto* a = order.add_items();
    a->set_sku("book");
    a->set_quantity(i + 1);
    a->set_unit_price_cents(1250);
    auto* b = order.add_items();
    b->set_sku("pen");
    b->set_quantity(2);
    b->set_unit_price_cents(100);
    int64_t total = (i + 1) * 1250 + 200;
    expected_total += total;
    switchboard::CallOptions options;
    if (!key_prefix.empty()) options.idempotency_key = key_prefix + std::to_string(i);
    auto reply = client.PlaceOrder(order, options).GetFor(kWait);
    ASSERT_TRUE(reply.ok()) << reply.status();
    EXPECT_EQ(reply->order_id(), "ord-u" + std::to_string(i));
    EXPECT_EQ(reply->total_cents(), total);
    EXPECT_EQ(reply->status(), "accepted");
  }
  ASSERT_TRUE(tally.WaitFor(orders, kWait)) << "payment " << tally.counts()["payment"] << ", analytics "
                                             << tally.counts()["analytics"];
  EXPECT_EQ(service.runs(), orders);
  EXPECT_EQ(tally.counts()["payment"], orders);
  EXPECT_EQ(tally.counts()["analytics"], orders);
  EXPECT_EQ(tally.totals()["payment"], expected_total);
  subscribers.clear();
  served->clear();
}

TEST_P(MatrixTest, OrdersFlowGivesTheSameOutcome) {
  const Cell& cell = GetParam();
  std::string skip;
  std::string transport = TransportYaml(cell.transport, &skip);
  if (transport.empty()) {
    if (ServersRequired() && skip.find("not set") != std::string::npos) FAIL() << skip;
    GTEST_SKIP() << skip;
  }
  std::string yaml = Fill(cell.style, cell.reply, transport);
  auto loaded = switchboard::ParseConfig(yaml, "matrix.yaml");
  ASSERT_TRUE(loaded.ok()) << loaded.status() << "\n" << yaml;
  auto node = switchboard::Node::Create(loaded->config);
  ASSERT_TRUE(node.ok()) << node.status();
  PlaceOrders(**node, kOrders);
}

std::vector<Cell> Cells() {
  std::vector<Cell> cells;
  for (std::string t : {"inproc", "grpc", "nats-jetstream", "nats-core", "amqp"}) {
    cells.push_back({t, "request", false});
    cells.push_back({t, "command", true});
  }
  return cells;
}

INSTANTIATE_TEST_SUITE_P(EveryValidBinding, MatrixTest, ::testing::ValuesIn(Cells()), CellName);

// A migration in progress: PlaceOrder is a request over inproc and half of
// the calls go as a command with reply over another transport. The outcome
// is the same, the one handler serves both paths, and the rollout counter
// shows the split.
class RolloutMatrixTest : public ::testing::TestWithParam<std::string> {};

uint64_t RolloutCount(switchboard::Node& node, const char* style, const char* transport, const char* path) {
  const switchboard::Counter* c = node.telemetry().metrics().FindCounter(
      "switchboard_rollout_calls_total",
      {{"operation", "orders.v1.Orders/PlaceOrder"}, {"style", style}, {"transport", transport}, {"path", path}});
  return c == nullptr ? 0 : c->Value();
}

TEST_P(RolloutMatrixTest, HalfTheOrdersTakeTheRolloutWithTheSameOutcome) {
  std::string skip;
  std::string second = TransportYaml(GetParam(), &skip);
  if (second.empty()) {
    if (ServersRequired() && skip.find("not set") != std::string::npos) FAIL() << skip;
    GTEST_SKIP() << skip;
  }
  std::string yaml = R"(transports:
  a: { type: inproc, bus: )" + RunId() + R"( }
  b: )" + second + R"(
policies:
  p: { timeout: 15s, max_deliveries: 3, redelivery: 20ms..200ms, idempotency: { ttl: 1h } }
operations:
  orders.v1.Orders/PlaceOrder:
    style: request
    transport: a
    policy: p
    rollout: { style: command, reply: true, transport: b, percent: 50 }
  orders.v1.OrderPlaced: { style: event, transport: a, policy: p, groups: [payment, analytics] }
)";
  auto loaded = switchboard::ParseConfig(yaml, "rollout.yaml");
  ASSERT_TRUE(loaded.ok()) << loaded.status() << "\n" << yaml;
  auto node = switchboard::Node::Create(loaded->config);
  ASSERT_TRUE(node.ok()) << node.status();
  constexpr int kRolloutOrders = 20;
  PlaceOrders(**node, kRolloutOrders, "order-");
  uint64_t primary = RolloutCount(**node, "request", "a", "primary");
  uint64_t rolled = RolloutCount(**node, "command", "b", "rollout");
  EXPECT_EQ(primary + rolled, static_cast<uint64_t>(kRolloutOrders));
  // The keys are fixed, so the split is too: the hash of the key is stable
  // (FNV-1a modulo 10000 < 5000 for 8 of order-0 .. order-19).
  EXPECT_EQ(rolled, 8u);
  EXPECT_EQ(primary, 12u);
}

INSTANTIATE_TEST_SUITE_P(SecondTransport, RolloutMatrixTest,
                         ::testing::Values("grpc", "nats-jetstream", "amqp"),
                         [](const ::testing::TestParamInfo<std::string>& info) {
                           std::string name = info.param;
                           for (char& c : name) {
                             if (c == '-') c = '_';
                           }
                           return name;
                         });

// PlaceOrder returns PlaceOrderReply: every binding that drops or cannot
// carry the reply is refused when the file loads, whatever the transport.
struct Invalid {
  std::string style;
  bool reply;
  std::string hint;
};

TEST(MatrixInvalidTest, RejectedAtLoadWithTheirHint) {
  const std::vector<Invalid> invalid = {
      {"command", false, "hint: bind it as request or command with reply: true"},
      {"event", false, "hint: bind it as request or command with reply: true"},
      {"request", true, "hint: remove `reply: true`, or bind it as command with reply: true"},
      {"event", true, "hint: remove `reply: true`, or bind it as command with reply: true"},
  };
  for (const std::string transport :
       {"{ type: inproc }", "{ type: grpc, listen: \"127.0.0.1:0\" }",
        "{ type: nats, url: \"nats://127.0.0.1:4222\", jetstream: true }",
        "{ type: amqp, url: \"amqp://127.0.0.1:5672\" }"}) {
    for (const Invalid& bad : invalid) {
      std::string yaml = Fill(bad.style, bad.reply, transport);
      auto loaded = switchboard::ParseConfig(yaml, "matrix.yaml");
      ASSERT_FALSE(loaded.ok()) << bad.style << " reply=" << bad.reply << " on " << transport;
      EXPECT_EQ(loaded.status().code(), absl::StatusCode::kInvalidArgument);
      EXPECT_THAT(std::string(loaded.status().message()), HasSubstr("matrix.yaml:6:"));
      EXPECT_THAT(std::string(loaded.status().message()), HasSubstr(bad.hint))
          << bad.style << " reply=" << bad.reply << " on " << transport;
    }
  }
}

}  // namespace
