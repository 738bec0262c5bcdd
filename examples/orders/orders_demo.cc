// orders_demo: the order flow from end to end, on whatever transports the
// config names (default: config/inproc.yaml beside the source, compiled in).
//
//   orders_demo [--config FILE] [--orders N]
//
// Services run as separate Nodes in this process, as they would in separate
// processes: a profile service, two instances of the order service (competing
// consumers of PlaceOrder), and subscribers of OrderPlaced in the groups
// payment (two instances), notification and analytics. The caller looks up a
// profile, places orders, and the demo prints, for each step, its style,
// transport, trace id and which instance handled it.
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <map>
#include <string>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "orders/v1/orders.switchboard.h"
#include "switchboard/builtin_transports.h"
#include "switchboard/config.h"
#include "switchboard/node.h"

namespace {

using orders::v1::GetProfileRequest;
using orders::v1::OrderPlaced;
using orders::v1::OrderPlacedEvent;
using orders::v1::PlaceOrderReply;
using orders::v1::PlaceOrderRequest;
using orders::v1::Profile;
using switchboard::Context;
using switchboard::Node;

constexpr char kDefaultConfig[] = R"(
node: { source: //orders-demo }
transports:
  local: { type: inproc }
policies:
  interactive: { timeout: 2s }
  background:  { timeout: 10s, max_deliveries: 5, redelivery: 50ms..2s }
operations:
  orders.v1.Profiles/GetProfile: { style: request, transport: local, policy: interactive }
  orders.v1.Orders/PlaceOrder:   { style: command, reply: true, transport: local, policy: background }
  orders.v1.OrderPlaced:         { style: event, transport: local, policy: background,
                                   groups: [payment, notification, analytics] }
)";

// The account of what happened, printed as it happens.
class Journal {
 public:
  void Step(std::string_view what, const Context& ctx, std::string_view handled_by,
            std::string_view detail) {
    absl::MutexLock lock(&mu_);
    std::string style(switchboard::StyleName(ctx.style()));
    std::printf("  %-28.*s %-8s via %-10.*s trace %s  handled by %-16.*s attempt %d  %.*s\n",
                static_cast<int>(what.size()), what.data(), style.c_str(),
                static_cast<int>(ctx.transport().size()), ctx.transport().data(),
                ctx.trace_id().c_str(), static_cast<int>(handled_by.size()), handled_by.data(),
                ctx.attempt(), static_cast<int>(detail.size()), detail.data());
    std::fflush(stdout);
  }

 private:
  absl::Mutex mu_;
};

// Counts deliveries of OrderPlaced per group so the demo knows when it is done.
class Tally {
 public:
  void Add(const std::string& group) {
    absl::MutexLock lock(&mu_);
    ++counts_[group];
  }
  bool WaitFor(int per_group, const std::vector<std::string>& groups, absl::Duration timeout) {
    absl::MutexLock lock(&mu_);
    auto done = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      for (const auto& g : groups)
        if (counts_[g] < per_group) return false;
      return true;
    };
    return mu_.AwaitWithTimeout(absl::Condition(&done), timeout);
  }
  std::map<std::string, int> counts() {
    absl::MutexLock lock(&mu_);
    return counts_;
  }

 private:
  absl::Mutex mu_;
  std::map<std::string, int> counts_ ABSL_GUARDED_BY(mu_);
};

// Serves orders.v1.Profiles.
class ProfileService final : public orders::v1::ProfilesHandler {
 public:
  explicit ProfileService(Journal& journal) : journal_(journal) {}

  absl::StatusOr<Profile> GetProfile(Context& ctx, const GetProfileRequest& req) override {
    if (req.user_id().empty()) return absl::InvalidArgumentError("user_id is empty");
    Profile p;
    p.set_user_id(req.user_id());
    p.set_name("Ada Lovelace");
    p.set_email("ada@example.com");
    p.set_tier("gold");
    journal_.Step("GetProfile", ctx, "profile-service", "tier=gold");
    return p;
  }

 private:
  Journal& journal_;
};

// Serves orders.v1.Orders: stores the order and publishes OrderPlaced in the
// same trace, within the remaining deadline.
class OrderService final : public orders::v1::OrdersHandler {
 public:
  OrderService(Node& node, std::string name, Journal& journal, std::atomic<int>& next_order)
      : node_(node), name_(std::move(name)), journal_(journal), next_order_(next_order) {}

  absl::StatusOr<PlaceOrderReply> PlaceOrder(Context& ctx, const PlaceOrderRequest& req) override {
    if (req.items().empty()) return absl::InvalidArgumentError("an order needs items");
    int64_t total = 0;
    for (const auto& item : req.items()) total += item.quantity() * item.unit_price_cents();
    PlaceOrderReply reply;
    reply.set_order_id("ord-" + std::to_string(next_order_++));
    reply.set_total_cents(total);
    reply.set_status("accepted");
    journal_.Step("PlaceOrder", ctx, name_, reply.order_id());
    OrderPlaced event;
    event.set_order_id(reply.order_id());
    event.set_user_id(req.user_id());
    event.set_total_cents(total);
    switchboard::CallOptions o;
    o.parent = &ctx;  // same trace, remaining deadline
    o.idempotency_key = "placed-" + reply.order_id();
    auto published = OrderPlacedEvent::Publish(node_, event, o).GetFor(absl::Seconds(10));
    if (!published.ok()) return published.status();
    return reply;
  }

 private:
  Node& node_;
  std::string name_;
  Journal& journal_;
  std::atomic<int>& next_order_;
};

absl::StatusOr<std::unique_ptr<Node>> NewService(const switchboard::v1::Config& config,
                                                 const std::string& name) {
  switchboard::v1::Config c = config;
  c.mutable_node()->set_source("//orders-demo/" + name);
  c.mutable_node()->set_handler_threads(2);
  return Node::Create(c);
}

int Fail(const absl::Status& s) {
  std::cerr << "orders_demo: " << s << "\n";
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  std::string config_path;
  int orders = 3;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--config" && i + 1 < argc) {
      config_path = argv[++i];
    } else if (arg == "--orders" && i + 1 < argc) {
      orders = std::atoi(argv[++i]);
    } else {
      std::cerr << "usage: orders_demo [--config FILE] [--orders N]\n";
      return 2;
    }
  }
  switchboard::RegisterBuiltinTransports();
  auto loaded = config_path.empty() ? switchboard::ParseConfig(kDefaultConfig, "<built-in inproc config>")
                                    : switchboard::LoadConfigFile(config_path);
  if (!loaded.ok()) return Fail(loaded.status());
  for (const auto& w : loaded->warnings) std::cerr << "warning: " << w.location << ": " << w.message << "\n";
  const switchboard::v1::Config& config = loaded->config;

  Journal journal;
  Tally tally;
  std::vector<std::unique_ptr<Node>> services;
  std::vector<switchboard::HandlerRegistration> registrations;
  auto add = [&](const std::string& name) -> Node* {
    auto node = NewService(config, name);
    if (!node.ok()) {
      std::cerr << "orders_demo: " << name << ": " << node.status() << "\n";
      std::exit(1);
    }
    services.push_back(*std::move(node));
    return services.back().get();
  };
  auto keep = [&](absl::StatusOr<switchboard::HandlerRegistration> r, std::string_view what) {
    if (!r.ok()) {
      std::cerr << "orders_demo: cannot serve " << what << ": " << r.status() << "\n";
      std::exit(1);
    }
    registrations.push_back(*std::move(r));
  };
  auto keepAll = [&](absl::StatusOr<std::vector<switchboard::HandlerRegistration>> r,
                     std::string_view what) {
    if (!r.ok()) {
      std::cerr << "orders_demo: cannot serve " << what << ": " << r.status() << "\n";
      std::exit(1);
    }
    for (auto& reg : *r) registrations.push_back(std::move(reg));
  };

  // The profile service.
  ProfileService profile_service(journal);
  Node* profiles = add("profile-service");
  keepAll(orders::v1::RegisterProfiles(*profiles, profile_service), "Profiles");

  // Two instances of the order service compete for PlaceOrder.
  std::atomic<int> next_order{1000};
  std::vector<std::unique_ptr<OrderService>> order_services;
  for (int i = 1; i <= 2; ++i) {
    std::string name = "orders-service#" + std::to_string(i);
    Node* node = add(name);
    order_services.push_back(std::make_unique<OrderService>(*node, name, journal, next_order));
    keepAll(orders::v1::RegisterOrders(*node, *order_services.back()), "Orders");
  }

  // Subscribers of OrderPlaced: payment has two instances (one gets each event).
  struct Subscriber {
    std::string group;
    std::string instance;
  };
  std::vector<Subscriber> subscribers = {{"payment", "payment#1"},
                                         {"payment", "payment#2"},
                                         {"notification", "notification#1"},
                                         {"analytics", "analytics#1"}};
  for (const auto& s : subscribers) {
    Node* node = add(s.instance);
    keep(OrderPlacedEvent::Subscribe(
             *node, s.group,
             [&, s](Context& ctx, const OrderPlaced& e) -> absl::StatusOr<google::protobuf::Empty> {
               journal.Step("OrderPlaced -> " + s.group, ctx, s.instance, e.order_id());
               tally.Add(s.group);
               return google::protobuf::Empty();
             }),
         "OrderPlaced");
  }

  // The caller.
  Node* shop = add("shop-frontend");
  orders::v1::ProfilesClient profile_client(*shop);
  orders::v1::OrdersClient order_client(*shop);
  std::printf("Switchboard order flow: %d order(s)\n", orders);
  for (const auto& [op, b] : config.operations()) {
    std::printf("  binding %-32s style=%s%s transport=%s\n", op.c_str(),
                std::string(switchboard::StyleName(static_cast<switchboard::Style>(b.style()))).c_str(),
                b.reply() ? "+reply" : "", b.transport().c_str());
  }
  std::printf("\n");
  GetProfileRequest who;
  who.set_user_id("u-42");
  auto profile_call = profile_client.GetProfile(who);
  std::string trace = profile_call.info().trace_id;
  auto profile = std::move(profile_call).GetFor(absl::Seconds(10));
  if (!profile.ok()) return Fail(profile.status());
  std::printf("  -> profile of %s: %s <%s> (trace %s)\n\n", profile->user_id().c_str(),
              profile->name().c_str(), profile->email().c_str(), trace.c_str());

  const std::vector<std::string> groups = {"payment", "notification", "analytics"};
  int placed = 0;
  for (int i = 0; i < orders; ++i) {
    PlaceOrderRequest order;
    order.set_user_id(profile->user_id());
    auto* item = order.add_items();
    item->set_sku("book-" + std::to_string(i));
    item->set_quantity(i + 1);
    item->set_unit_price_cents(1250);
    auto call = order_client.PlaceOrder(order);
    std::string order_trace = call.info().trace_id;
    auto reply = std::move(call).GetFor(absl::Seconds(20));
    if (!reply.ok()) return Fail(reply.status());
    ++placed;
    std::printf("  -> %s %s, total %.2f (trace %s)\n", reply->order_id().c_str(), reply->status().c_str(),
                reply->total_cents() / 100.0, order_trace.c_str());
    // Let every group see this order before the next one, so the account reads in order.
    if (!tally.WaitFor(placed, groups, absl::Seconds(20))) {
      std::cerr << "orders_demo: not every group saw OrderPlaced of " << reply->order_id() << "\n";
      return 1;
    }
    std::printf("\n");
  }

  std::printf("Done: %d order(s) placed;", placed);
  for (const auto& [group, n] : tally.counts()) std::printf(" %s got %d,", group.c_str(), n);
  std::printf(" each event once per group.\n");
  registrations.clear();
  services.clear();
  return 0;
}
