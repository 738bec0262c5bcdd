// builtin_transports.h: registers every transport compiled into this build
// (grpc, nats, amqp as enabled by their CMake options) with
// TransportRegistry::Default(). Idempotent; thread-safe.
#pragma once

#include <string>
#include <vector>

namespace switchboard {

// Returns the type names registered by this call or earlier ones.
std::vector<std::string> RegisterBuiltinTransports();

}  // namespace switchboard
