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

#include "switchboard/middleware.h"

namespace switchboard {

class Clock;

// What the middleware of one node shares (one instance per Node).
struct NodeServices {
  Clock* clock = nullptr;
  std::string source;
};

// The built-in factories, in chain order (outermost first).
MiddlewareFactories BuiltinMiddleware(const std::shared_ptr<NodeServices>& services);

}  // namespace switchboard
