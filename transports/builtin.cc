#include "switchboard/builtin_transports.h"

#include <mutex>

#include "switchboard/transport_registry.h"

#if SWITCHBOARD_HAS_GRPC
#include "switchboard/grpc/grpc_transport.h"
#endif
#if SWITCHBOARD_HAS_NATS
#include "switchboard/nats/nats_transport.h"
#endif
#if SWITCHBOARD_HAS_AMQP
#include "switchboard/amqp/amqp_transport.h"
#endif

namespace switchboard {

std::vector<std::string> RegisterBuiltinTransports() {
  static std::once_flag once;
  std::call_once(once, [] {
    TransportRegistry& registry = TransportRegistry::Default();
#if SWITCHBOARD_HAS_GRPC
    (void)registry.Register("grpc", &grpc::MakeGrpcTransport);
#endif
#if SWITCHBOARD_HAS_NATS
    (void)registry.Register("nats", &nats::MakeNatsTransport);
#endif
#if SWITCHBOARD_HAS_AMQP
    (void)registry.Register("amqp", &amqp::MakeAmqpTransport);
#endif
    (void)registry;
  });
  return TransportRegistry::Default().Types();
}

}  // namespace switchboard
