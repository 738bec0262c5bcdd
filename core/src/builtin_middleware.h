// builtin_middleware.h: the policy chain every Node builds, in order.
//
// Client side, outermost first: tracing -> metrics -> deadline -> rate limit
// -> circuit breaker -> retry -> idempotency key stamping -> transport.
// Server side: tracing -> metrics -> deadline check -> bulkhead ->
// idempotency -> handler. Each policy lives in its own file under
// core/src/middleware/ (or adapters/ for stores and exporters) and adds its
// factory to BuiltinMiddleware(); a factory returns nullptr when the
// operation's policy leaves it off, so a call pays only for what is on.
#pragma once

#include <memory>
#include <string>

#include "middleware/policy_util.h"
#include "switchboard/middleware.h"
#include "switchboard/policies.h"
#include "switchboard/telemetry.h"

namespace switchboard {

class Clock;

// What the middleware of one node shares (one instance per Node).
struct NodeServices {
  Clock* clock = nullptr;
  std::string source;
  // Metrics, spans and call logs (never null). Policies resolve their
  // counters from it once per operation: see telemetry.h.
  std::shared_ptr<Telemetry> telemetry = std::make_shared<Telemetry>();
  // Resilience policies: per-operation counters and the breaker fallbacks
  // (see switchboard/policies.h).
  std::shared_ptr<PolicyStats> policy_stats = std::make_shared<PolicyStats>();
  std::shared_ptr<policy::FallbackRegistry> fallbacks = std::make_shared<policy::FallbackRegistry>();
};

// The services of `node` (defined in node.cc).
std::shared_ptr<NodeServices> NodeServicesOf(const Node& node);

// The built-in factories, in chain order (outermost first).
MiddlewareFactories BuiltinMiddleware(const std::shared_ptr<NodeServices>& services);

}  // namespace switchboard
