#include "switchboard/builtin_transports.h"

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

// Called once by TransportRegistry::Default() when this object is linked.
extern "C" void SwitchboardRegisterBuiltinTransports(switchboard::TransportRegistry* registry) {
#if SWITCHBOARD_HAS_GRPC
  (void)registry->Register("grpc", &switchboard::grpc::MakeGrpcTransport);
#endif
#if SWITCHBOARD_HAS_NATS
  (void)registry->Register("nats", &switchboard::nats::MakeNatsTransport);
#endif
#if SWITCHBOARD_HAS_AMQP
  (void)registry->Register("amqp", &switchboard::amqp::MakeAmqpTransport);
#endif
  (void)registry;
}

namespace switchboard {

std::vector<std::string> RegisterBuiltinTransports() { return TransportRegistry::Default().Types(); }

}  // namespace switchboard
