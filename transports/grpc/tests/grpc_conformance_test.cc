// The conformance suite against the gRPC transport.
//
// How the harness makes "an operation served on one instance is reachable
// from every other instance" true, the way a deployment would:
//   - Every instance listens on 127.0.0.1:0 (its own server: inboxes,
//     commands and requests it serves arrive there).
//   - The harness owns one more instance, the hub: every instance's
//     targets["*"] is the hub. Event types resolve to it, so subscribers open
//     their Subscribe streams there and publishers publish there; an
//     operation nobody serves resolves to it too (and gets UNAVAILABLE "no
//     handler").
//   - A shared directory (op -> addresses of the instances that serve or
//     consume it) plays service discovery: when an instance starts serving
//     or consuming an operation, every instance gets targets[op] = those
//     addresses ("ipv4:a,b,c" when several: gRPC round robin, which makes
//     competing consumers across nodes); when it stops, the address leaves.
// Every call therefore crosses a real gRPC channel, also when caller and
// server are the same instance (it calls its own server).
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/str_join.h"
#include "absl/synchronization/mutex.h"
#include "conformance.h"
#include "switchboard/clock.h"
#include "switchboard/grpc/grpc_transport.h"
#include "switchboard/v1/config.pb.h"

namespace switchboard::grpc {
namespace {

class Directory {
 public:
  explicit Directory(std::string hub) : hub_(std::move(hub)) {}

  const std::string& hub() const { return hub_; }

  void Join(const std::shared_ptr<GrpcTransport>& t) {
    absl::MutexLock lock(&mu_);
    for (const auto& [op, addresses] : served_) t->SetTarget(op, TargetLocked(op));
    instances_.push_back(t);
  }

  void Add(const std::string& op, const std::string& address) {
    absl::MutexLock lock(&mu_);
    served_[op].insert(address);
    PublishLocked(op);
  }

  void Remove(const std::string& op, const std::string& address) {
    absl::MutexLock lock(&mu_);
    auto it = served_.find(op);
    if (it == served_.end()) return;
    auto a = it->second.find(address);
    if (a != it->second.end()) it->second.erase(a);
    PublishLocked(op);
  }

 private:
  std::string TargetLocked(const std::string& op) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    const std::multiset<std::string>& addresses = served_[op];
    std::set<std::string> distinct(addresses.begin(), addresses.end());
    if (distinct.empty()) return hub_;
    return absl::StrJoin(distinct, ",");
  }

  void PublishLocked(const std::string& op) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    const std::string target = TargetLocked(op);
    for (auto it = instances_.begin(); it != instances_.end();) {
      if (std::shared_ptr<GrpcTransport> t = it->lock()) {
        t->SetTarget(op, target);
        ++it;
      } else {
        it = instances_.erase(it);
      }
    }
  }

  const std::string hub_;
  absl::Mutex mu_;
  std::map<std::string, std::multiset<std::string>> served_ ABSL_GUARDED_BY(mu_);
  std::vector<std::weak_ptr<GrpcTransport>> instances_ ABSL_GUARDED_BY(mu_);
};

// Announces what an instance serves; everything else goes straight through.
class AnnouncedSubscription final : public Subscription {
 public:
  AnnouncedSubscription(std::unique_ptr<Subscription> inner, std::shared_ptr<Directory> dir,
                        std::string op, std::string address)
      : inner_(std::move(inner)), dir_(std::move(dir)), op_(std::move(op)),
        address_(std::move(address)) {
    dir_->Add(op_, address_);
  }
  ~AnnouncedSubscription() override {
    dir_->Remove(op_, address_);
    inner_.reset();
  }

 private:
  std::unique_ptr<Subscription> inner_;
  std::shared_ptr<Directory> dir_;
  std::string op_;
  std::string address_;
};

class AnnouncingTransport final : public Transport {
 public:
  AnnouncingTransport(std::shared_ptr<GrpcTransport> inner, std::shared_ptr<Directory> dir)
      : inner_(std::move(inner)), dir_(std::move(dir)) {}

  std::string_view name() const override { return inner_->name(); }
  std::string_view type() const override { return inner_->type(); }
  const Features& features() const override { return inner_->features(); }

  void Request(Envelope request, ReplyCallback on_reply) override {
    inner_->Request(std::move(request), std::move(on_reply));
  }
  absl::StatusOr<std::unique_ptr<Subscription>> Serve(const Endpoint& endpoint,
                                                      RequestHandler handler) override {
    return Announce(endpoint.operation, inner_->Serve(endpoint, std::move(handler)));
  }
  void Enqueue(Envelope command, DoneCallback on_accepted) override {
    inner_->Enqueue(std::move(command), std::move(on_accepted));
  }
  absl::StatusOr<std::unique_ptr<Subscription>> Consume(const Endpoint& endpoint,
                                                        DeliveryHandler handler) override {
    return Announce(endpoint.operation, inner_->Consume(endpoint, std::move(handler)));
  }
  void Publish(Envelope event, DoneCallback on_published) override {
    inner_->Publish(std::move(event), std::move(on_published));
  }
  absl::StatusOr<std::unique_ptr<Subscription>> Subscribe(const Endpoint& endpoint,
                                                          DeliveryHandler handler) override {
    return inner_->Subscribe(endpoint, std::move(handler));
  }
  absl::StatusOr<std::unique_ptr<ReplyInbox>> OpenInbox(ReplyHandler on_reply) override {
    return inner_->OpenInbox(std::move(on_reply));
  }
  void SendReply(const std::string& reply_to, Envelope reply, DoneCallback on_sent) override {
    inner_->SendReply(reply_to, std::move(reply), std::move(on_sent));
  }
  absl::StatusOr<int64_t> QueueDepth(const Endpoint& endpoint) override {
    return inner_->QueueDepth(endpoint);
  }

 private:
  absl::StatusOr<std::unique_ptr<Subscription>> Announce(
      const std::string& op, absl::StatusOr<std::unique_ptr<Subscription>> sub) {
    if (!sub.ok()) return sub;
    return std::unique_ptr<Subscription>(std::make_unique<AnnouncedSubscription>(
        *std::move(sub), dir_, op, inner_->advertised_address()));
  }

  std::shared_ptr<GrpcTransport> inner_;
  std::shared_ptr<Directory> dir_;
};

v1::TransportConfig Listening() {
  v1::TransportConfig config;
  config.set_type("grpc");
  config.mutable_grpc()->set_listen("127.0.0.1:0");
  return config;
}

TransportEnv Env(const std::string& who) {
  TransportEnv env;
  env.clock = &Clock::Real();
  env.source = "//conformance/grpc/" + who;
  return env;
}

class GrpcHarness : public conformance::Harness {
 public:
  GrpcHarness() {
    absl::StatusOr<std::unique_ptr<GrpcTransport>> hub =
        CreateGrpcTransport("hub", Listening(), Env("hub"));
    if (!hub.ok()) {
      ADD_FAILURE() << "hub: " << hub.status();
      return;
    }
    hub_ = std::shared_ptr<GrpcTransport>(*std::move(hub));
    dir_ = std::make_shared<Directory>(hub_->advertised_address());
  }

  Features features() const override { return GrpcFeatures(); }

  absl::StatusOr<std::shared_ptr<Transport>> NewTransport() override {
    if (hub_ == nullptr) return absl::FailedPreconditionError("the harness has no hub");
    v1::TransportConfig config = Listening();
    (*config.mutable_grpc()->mutable_targets())["*"] = dir_->hub();
    absl::StatusOr<std::unique_ptr<GrpcTransport>> t =
        CreateGrpcTransport("t", config, Env("node" + std::to_string(++count_)));
    if (!t.ok()) return t.status();
    auto inner = std::shared_ptr<GrpcTransport>(*std::move(t));
    dir_->Join(inner);
    return std::shared_ptr<Transport>(std::make_shared<AnnouncingTransport>(inner, dir_));
  }

 private:
  std::shared_ptr<GrpcTransport> hub_;
  std::shared_ptr<Directory> dir_;
  int count_ = 0;
};

}  // namespace
}  // namespace switchboard::grpc

SWITCHBOARD_CONFORMANCE(Grpc, [] { return std::make_unique<switchboard::grpc::GrpcHarness>(); });
