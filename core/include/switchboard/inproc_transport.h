// inproc_transport.h: the embedded transport (type "inproc").
//
// All three styles inside one process, with real queue semantics: competing
// consumers in a group, ack / retry with redelivery and attempt count, delayed
// redelivery on the transport's clock, dead-letter with the reason, fan-out of
// events to every group and one consumer per group, request/reply with
// deadlines. It is the default transport, the reference implementation of the
// SPI and the test double for everything above it.
//
// Transports created with the same bus name (InprocOptions.bus, default
// "default") share queues, so several Nodes in one process talk as separate
// services would. Queues live as long as the bus has a transport or a queued
// message: commands enqueued before any consumer wait for one (features:
// durable = false, because nothing survives the process).
//
// Threads: handlers are called on the thread that sent, enqueued, published
// or settled (or the clock's timer thread for a delayed redelivery), never
// under an internal lock; they MUST NOT block (the Node posts work to its
// executor). Timers (redelivery delay, request deadlines) run on the env's
// clock.
#pragma once

#include <memory>
#include <string_view>

#include "absl/status/statusor.h"
#include "switchboard/transport.h"

namespace switchboard {

[[nodiscard]] absl::StatusOr<std::unique_ptr<Transport>> MakeInprocTransport(
    std::string_view name, const v1::TransportConfig& config, const TransportEnv& env);

// Features the inproc transport declares.
[[nodiscard]] Features InprocFeatures();

}  // namespace switchboard
