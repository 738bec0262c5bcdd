// transport_registry.h: transport types by name.
//
// `TransportRegistry::Default()` knows every transport compiled into this
// build (inproc always; grpc, nats, amqp when their CMake options are on).
// A third-party transport registers its factory under a new type name:
//
//   TransportRegistry::Default().Register("kafka", &MakeKafkaTransport);
//
// Thread safety: all methods may be called from any thread.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "switchboard/transport.h"

namespace switchboard {

class TransportRegistry {
 public:
  // The registry with every built-in transport of this build.
  static TransportRegistry& Default();

  // AlreadyExists if `type` is taken.
  [[nodiscard]] absl::Status Register(std::string type, TransportFactory factory);
  [[nodiscard]] bool Has(std::string_view type) const;
  [[nodiscard]] std::vector<std::string> Types() const;
  // NotFound naming the known types when `config.type()` is not registered.
  [[nodiscard]] absl::StatusOr<std::unique_ptr<Transport>> Create(
      std::string_view name, const v1::TransportConfig& config, const TransportEnv& env) const;

 private:
  mutable absl::Mutex mu_;
  std::map<std::string, TransportFactory, std::less<>> factories_ ABSL_GUARDED_BY(mu_);
};

}  // namespace switchboard
