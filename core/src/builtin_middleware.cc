#include "builtin_middleware.h"

namespace switchboard {

MiddlewareFactories BuiltinMiddleware(const std::shared_ptr<NodeServices>& services) {
  MiddlewareFactories f;
  (void)services;
  // Client side, outermost first. Each factory captures `services` as needed.

  // Server side, outermost first.
  return f;
}

}  // namespace switchboard
