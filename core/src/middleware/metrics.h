// metrics.h: calls by status code, latency and in-flight per operation,
// style, transport and side (client | server); redeliveries on the server
// side. Second outermost on both sides, after tracing.
//
// Every series an operation uses is resolved when its chain is built (the
// per-code counters on the first call that ends with that code), so a call
// costs a clock read and a few relaxed atomic adds.
//
// Thread safety: the middleware objects are shared by every call of their
// operation; all per-call state is in atomics.
#pragma once

#include <memory>

#include "switchboard/middleware.h"
#include "switchboard/telemetry.h"

namespace switchboard {

std::unique_ptr<ClientMiddleware> MakeClientMetrics(std::shared_ptr<Telemetry> telemetry,
                                                    const CallSite& site);
// Both also register the operation for /status.
std::unique_ptr<ServerMiddleware> MakeServerMetrics(std::shared_ptr<Telemetry> telemetry,
                                                    const CallSite& site);

// For the node, where a delivery is dead-lettered (rare: looks the counter
// up by name).
void CountDeadLetter(Telemetry& telemetry, const CallSite& site);

// Reports the queue depth of a served endpoint while the returned id is
// registered (remove it with metrics().RemoveGaugeCallback). The transport is
// held weakly: a closed transport reports nothing.
uint64_t RegisterQueueDepth(Telemetry& telemetry, const CallSite& site,
                            std::weak_ptr<Transport> transport, Endpoint endpoint);

}  // namespace switchboard
