#include "switchboard/transport_registry.h"

#include "switchboard/internal/strings.h"
#include "absl/strings/str_join.h"
#include "switchboard/inproc_transport.h"
#include "switchboard/v1/config.pb.h"

// Defined by switchboard::transports (transports/builtin.cc) when linked.
extern "C" __attribute__((weak)) void SwitchboardRegisterBuiltinTransports(
    switchboard::TransportRegistry* registry);

namespace switchboard {

TransportRegistry& TransportRegistry::Default() {
  static TransportRegistry* registry = [] {
    auto* r = new TransportRegistry();
    (void)r->Register("inproc", &MakeInprocTransport);
    if (SwitchboardRegisterBuiltinTransports != nullptr) SwitchboardRegisterBuiltinTransports(r);
    return r;
  }();
  return *registry;
}

absl::Status TransportRegistry::Register(std::string type, TransportFactory factory) {
  absl::MutexLock lock(&mu_);
  if (!factories_.emplace(type, std::move(factory)).second) {
    return absl::AlreadyExistsError(Cat("transport type \"", type, "\" is already registered"));
  }
  return absl::OkStatus();
}

bool TransportRegistry::Has(std::string_view type) const {
  absl::MutexLock lock(&mu_);
  return factories_.find(type) != factories_.end();
}

std::vector<std::string> TransportRegistry::Types() const {
  absl::MutexLock lock(&mu_);
  std::vector<std::string> out;
  for (const auto& [type, _] : factories_) out.push_back(type);
  return out;
}

absl::StatusOr<std::unique_ptr<Transport>> TransportRegistry::Create(
    std::string_view name, const v1::TransportConfig& config, const TransportEnv& env) const {
  TransportFactory factory;
  {
    absl::MutexLock lock(&mu_);
    auto it = factories_.find(config.type());
    if (it == factories_.end()) {
      std::vector<std::string> known;
      for (const auto& [type, _] : factories_) known.push_back(type);
      return absl::NotFoundError(Cat("transport \"", name, "\": unknown type \"", config.type(),
                                              "\"; this build knows: ", absl::StrJoin(known, ", ")));
    }
    factory = it->second;
  }
  return factory(name, config, env);
}

}  // namespace switchboard
