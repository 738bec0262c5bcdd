// migration: the PlaceOrder service and its caller, as two processes, to walk
// a call from `request` over gRPC to `command` with `reply: true` over NATS
// or AMQP by editing only the YAML (see README.md).
//
//   migration --role service --config FILE [--orders N] [--for 60s]
//   migration --role caller  --config FILE [--orders N] [--deadline 20s]
//
// The service serves orders.v1.Orders/PlaceOrder until it has handled
// --orders orders (0: until --for elapses or SIGINT/SIGTERM). The caller
// places --orders orders one after the other, each with --deadline as its
// timeout, and prints for each how long it waited and how it ended; it exits
// 0 when every order was placed, 1 otherwise.
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <string>

#include "absl/synchronization/mutex.h"
#include "orders/v1/orders.switchboard.h"
#include "switchboard/builtin_transports.h"
#include "switchboard/config.h"
#include "switchboard/node.h"

namespace {

using orders::v1::PlaceOrderReply;
using orders::v1::PlaceOrderRequest;
using switchboard::Context;

constexpr std::string_view kPlaceOrder = "orders.v1.Orders/PlaceOrder";

volatile std::sig_atomic_t g_stop = 0;
void OnSignal(int) { g_stop = 1; }

struct Flags {
  std::string role;
  std::string config;
  int orders = 1;
  absl::Duration deadline = absl::Seconds(20);
  absl::Duration lifetime = absl::Seconds(60);
};

int Usage(const std::string& why) {
  std::cerr << "migration: " << why << "\n"
            << "usage: migration --role service|caller --config FILE [--orders N] [--deadline 20s] [--for 60s]\n";
  return 2;
}

// Counts handled orders so the service can stop after --orders.
class OrderService final : public orders::v1::OrdersHandler {
 public:
  absl::StatusOr<PlaceOrderReply> PlaceOrder(Context& ctx, const PlaceOrderRequest& req) override {
    if (req.items().empty()) return absl::InvalidArgumentError("an order needs items");
    int64_t total = 0;
    for (const auto& item : req.items()) total += item.quantity() * item.unit_price_cents();
    PlaceOrderReply reply;
    // The id derives from the idempotency key: a redelivered or retried
    // order gets the same id.
    const std::string& key = ctx.idempotency_key();
    reply.set_order_id("ord-" + key.substr(key.size() > 8 ? key.size() - 8 : 0));
    reply.set_total_cents(total);
    reply.set_status("accepted");
    std::printf("service: placed %s for %s as %s via %.*s (attempt %d)\n", reply.order_id().c_str(),
                req.user_id().c_str(), std::string(switchboard::StyleName(ctx.style())).c_str(),
                static_cast<int>(ctx.transport().size()), ctx.transport().data(), ctx.attempt());
    std::fflush(stdout);
    absl::MutexLock lock(&mu_);
    ++handled_;
    return reply;
  }

  int handled() {
    absl::MutexLock lock(&mu_);
    return handled_;
  }

 private:
  absl::Mutex mu_;
  int handled_ ABSL_GUARDED_BY(mu_) = 0;
};

void PrintBinding(const switchboard::Node& node, std::string_view who) {
  auto b = node.Binding(kPlaceOrder);
  if (!b.ok()) return;
  std::printf("%.*s: PlaceOrder is bound as %s%s over transport %s\n", static_cast<int>(who.size()), who.data(),
              std::string(switchboard::StyleName(static_cast<switchboard::Style>(b->style()))).c_str(),
              b->reply() ? " with reply" : "", b->transport().c_str());
  std::fflush(stdout);
}

int Service(switchboard::Node& node, const Flags& flags) {
  OrderService service;
  auto registrations = orders::v1::RegisterOrders(node, service);
  if (!registrations.ok()) {
    std::cerr << "service: cannot serve PlaceOrder: " << registrations.status() << "\n";
    return 1;
  }
  PrintBinding(node, "service");
  std::printf("service: ready\n");
  std::fflush(stdout);
  absl::Time until = absl::Now() + flags.lifetime;
  while (!g_stop && absl::Now() < until && (flags.orders == 0 || service.handled() < flags.orders)) {
    absl::SleepFor(absl::Milliseconds(20));
  }
  // Let the last reply leave before the registrations stop.
  registrations->clear();
  std::printf("service: stopping after %d order(s)\n", service.handled());
  return 0;
}

int Caller(switchboard::Node& node, const Flags& flags) {
  PrintBinding(node, "caller");
  orders::v1::OrdersClient client(node);
  int placed = 0;
  for (int i = 0; i < flags.orders; ++i) {
    PlaceOrderRequest order;
    order.set_user_id("u-42");
    auto* item = order.add_items();
    item->set_sku("book-" + std::to_string(i));
    item->set_quantity(i + 1);
    item->set_unit_price_cents(1250);
    switchboard::CallOptions options;
    options.timeout = flags.deadline;
    absl::Time start = absl::Now();
    auto reply = client.PlaceOrder(order, options).GetFor(flags.deadline + absl::Seconds(5));
    int64_t waited = absl::ToInt64Milliseconds(absl::Now() - start);
    if (!reply.ok()) {
      std::printf("caller: order %d failed after %lld ms: %s\n", i + 1, static_cast<long long>(waited),
                  reply.status().ToString().c_str());
      std::fflush(stdout);
      continue;
    }
    ++placed;
    std::printf("caller: order %d placed: %s total %.2f after %lld ms\n", i + 1, reply->order_id().c_str(),
                reply->total_cents() / 100.0, static_cast<long long>(waited));
    std::fflush(stdout);
  }
  std::printf("caller: %d of %d order(s) placed\n", placed, flags.orders);
  return placed == flags.orders ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  Flags flags;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (i + 1 >= argc) return Usage(a + " needs a value");
    std::string v = argv[++i];
    if (a == "--role") {
      flags.role = v;
    } else if (a == "--config") {
      flags.config = v;
    } else if (a == "--orders") {
      flags.orders = std::atoi(v.c_str());
    } else if (a == "--deadline" || a == "--for") {
      auto d = switchboard::ParseDurationText(v);
      if (!d.ok()) return Usage(a + ": " + std::string(d.status().message()));
      (a == "--deadline" ? flags.deadline : flags.lifetime) = *d;
    } else {
      return Usage("unknown flag " + a);
    }
  }
  if (flags.role != "service" && flags.role != "caller") return Usage("--role must be service or caller");
  if (flags.config.empty()) return Usage("--config is required");
  std::signal(SIGINT, OnSignal);
  std::signal(SIGTERM, OnSignal);

  auto loaded = switchboard::LoadConfigFile(flags.config);
  if (!loaded.ok()) {
    std::cerr << loaded.status().message() << "\n";
    return 2;
  }
  for (const auto& w : loaded->warnings) std::cerr << "warning: " << w.location << ": " << w.message << "\n";
  auto node = switchboard::Node::Create(loaded->config);
  if (!node.ok()) {
    std::cerr << flags.role << ": " << node.status() << "\n";
    return 1;
  }
  return flags.role == "service" ? Service(**node, flags) : Caller(**node, flags);
}
