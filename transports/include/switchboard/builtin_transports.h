// builtin_transports.h: the transports compiled into this build.
//
// Linking switchboard::transports (directly, from the executable) registers
// grpc, nats and amqp, as enabled by their CMake options, in
// TransportRegistry::Default() the first time it is used.
#pragma once

#include <string>
#include <vector>

namespace switchboard {

// Every registered type name: "inproc" plus the built-in transports.
std::vector<std::string> RegisterBuiltinTransports();

}  // namespace switchboard
