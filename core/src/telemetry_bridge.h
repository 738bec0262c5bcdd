// telemetry_bridge.h: exports the counters the policies keep in their own
// structs (switchboard/policies.h, switchboard/idempotency.h) through a
// node's Telemetry, under the metric names of telemetry.h, labelled like
// the calls of the same operation.
#pragma once

#include <memory>

namespace switchboard {

struct NodeServices;

// Registers, on services->telemetry, a collector that reads
// services->policy_stats (held weakly: nothing once the node is gone) and,
// once per Telemetry, the process-wide idempotency counters.
void ExportPolicyCounters(const std::shared_ptr<NodeServices>& services);

}  // namespace switchboard
