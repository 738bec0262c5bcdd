#include "builtin_middleware.h"

#include "middleware/bulkhead.h"
#include "middleware/circuit_breaker.h"
#include "middleware/deadline.h"
#include "middleware/idempotency.h"
#include "middleware/metrics.h"
#include "middleware/rate_limit.h"
#include "middleware/retry.h"
#include "middleware/tracing.h"
#include "telemetry_bridge.h"

namespace switchboard {

MiddlewareFactories BuiltinMiddleware(const std::shared_ptr<NodeServices>& services) {
  MiddlewareFactories f;
  (void)services;
  ExportPolicyCounters(services);  // the policies' counters on /metrics and /status
  // Client side, outermost first. Each factory captures `services` as needed.
  f.client.push_back([services](const CallSite& site) { return MakeClientTracing(services->telemetry, site); });
  f.client.push_back([services](const CallSite& site) { return MakeClientMetrics(services->telemetry, site); });
  // Resilience policies (middleware/deadline, rate_limit, circuit_breaker, retry).
  f.client.push_back([services](const CallSite& site) { return policy::MakeDeadlineMiddleware(site, services.get()); });
  f.client.push_back([services](const CallSite& site) { return policy::MakeCallerRateLimitMiddleware(site, services.get()); });
  f.client.push_back([services](const CallSite& site) { return policy::MakeCircuitBreakerMiddleware(site, services.get()); });
  f.client.push_back([services](const CallSite& site) { return policy::MakeRetryMiddleware(site, services.get()); });

  // Server side, outermost first.
  f.server.push_back([services](const CallSite& site) { return MakeServerTracing(services->telemetry, site); });
  f.server.push_back([services](const CallSite& site) { return MakeServerMetrics(services->telemetry, site); });
  // Resilience policies: the deadline check runs in the node before the chain;
  // then the handler-side rate limit and the bulkhead (middleware/).
  f.server.push_back([services](const CallSite& site) { return policy::MakeHandlerRateLimitMiddleware(site, services.get()); });
  f.server.push_back([services](const CallSite& site) { return policy::MakeBulkheadMiddleware(site, services.get()); });
  // Idempotency: innermost, right before the handler (keep it last).
  f.server.push_back(
      [services](const CallSite& site) { return MakeIdempotencyMiddleware(site, services); });
  return f;
}

}  // namespace switchboard
