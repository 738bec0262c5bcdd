// Helpers shared by the gRPC transport tests: configs, bounded synchronous
// wrappers over the asynchronous SPI, and a delivery collector.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"
#include "switchboard/envelope.h"
#include "switchboard/grpc/grpc_transport.h"
#include "switchboard/transport.h"
#include "switchboard/v1/config.pb.h"

namespace switchboard::grpc::testing {

// Every wait in these tests is bounded by this.
inline constexpr absl::Duration kWait = absl::Seconds(10);

inline v1::TransportConfig GrpcConfig(const std::string& listen,
                                      const std::string& default_target = "") {
  v1::TransportConfig config;
  config.set_type("grpc");
  if (!listen.empty()) config.mutable_grpc()->set_listen(listen);
  if (!default_target.empty()) (*config.mutable_grpc()->mutable_targets())["*"] = default_target;
  return config;
}

inline std::unique_ptr<GrpcTransport> MustCreate(const std::string& name,
                                                 const v1::TransportConfig& config) {
  TransportEnv env;
  env.source = "//test/" + name;
  absl::StatusOr<std::unique_ptr<GrpcTransport>> t = CreateGrpcTransport(name, config, env);
  if (!t.ok()) {
    ADD_FAILURE() << "creating transport " << name << ": " << t.status();
    return nullptr;
  }
  return *std::move(t);
}

inline Envelope NewEnvelope(const std::string& type, const std::string& data = "") {
  Envelope env;
  env.id = NewMessageId();
  env.source = "//test";
  env.type = type;
  env.time = absl::Now();
  env.data = data;
  return env;
}

inline absl::StatusOr<Envelope> RequestSync(Transport& t, Envelope request) {
  auto done = std::make_shared<absl::Notification>();
  auto result = std::make_shared<absl::StatusOr<Envelope>>(absl::UnknownError("no reply"));
  t.Request(std::move(request), [done, result](absl::StatusOr<Envelope> r) mutable {
    *result = std::move(r);
    done->Notify();
  });
  if (!done->WaitForNotificationWithTimeout(kWait + absl::Seconds(5))) {
    return absl::DeadlineExceededError("test: Request never called back");
  }
  return *result;
}

// The status a call resolves with: the transport's error, or the one the
// reply envelope carries.
inline absl::Status RequestStatus(Transport& t, Envelope request) {
  absl::StatusOr<Envelope> r = RequestSync(t, std::move(request));
  if (!r.ok()) return r.status();
  return r->status;
}

template <class Fn>
absl::Status DoneSync(Fn start) {
  auto done = std::make_shared<absl::Notification>();
  auto result = std::make_shared<absl::Status>(absl::UnknownError("no answer"));
  start([done, result](absl::Status s) mutable {
    *result = std::move(s);
    done->Notify();
  });
  if (!done->WaitForNotificationWithTimeout(kWait)) {
    return absl::DeadlineExceededError("test: callback never called");
  }
  return *result;
}

inline absl::Status EnqueueSync(Transport& t, Envelope env) {
  return DoneSync([&](DoneCallback cb) { t.Enqueue(std::move(env), std::move(cb)); });
}
inline absl::Status PublishSync(Transport& t, Envelope env) {
  return DoneSync([&](DoneCallback cb) { t.Publish(std::move(env), std::move(cb)); });
}

// Collects deliveries; `settle` decides what to do with each.
class Collector {
 public:
  using Settle = std::function<void(Delivery&)>;
  explicit Collector(Settle settle = [](Delivery& d) { d.Ack(); }) : settle_(std::move(settle)) {}

  DeliveryHandler Handler() {
    return [this](std::unique_ptr<Delivery> d) {
      Envelope env = d->envelope();
      settle_(*d);
      absl::MutexLock lock(&mu_);
      got_.push_back(std::move(env));
    };
  }

  // Waits until at least `n` deliveries arrived (bounded); returns them.
  std::vector<Envelope> WaitFor(size_t n, absl::Duration timeout = kWait) {
    absl::MutexLock lock(&mu_);
    auto enough = [this, n]() ABSL_NO_THREAD_SAFETY_ANALYSIS { return got_.size() >= n; };
    mu_.AwaitWithTimeout(absl::Condition(&enough), timeout);
    return got_;
  }

  size_t size() {
    absl::MutexLock lock(&mu_);
    return got_.size();
  }

 private:
  Settle settle_;
  absl::Mutex mu_;
  std::vector<Envelope> got_ ABSL_GUARDED_BY(mu_);
};

}  // namespace switchboard::grpc::testing
