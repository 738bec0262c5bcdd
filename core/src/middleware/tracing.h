// tracing.h: the outermost policy on both sides: one span and one log line
// per call, delivery and reply.
//
// Client side: the span is the one Node::StartCall stamped on the envelope
// (a child of the caller's context); it runs from the call until its result.
// Server side: the span is the Context's (a child of the incoming
// traceparent); it runs from the start of the chain until the handler's
// outcome. A reply leaving the handler gets its own span, a child of the
// server span, stamped on the reply envelope.
//
// The parent of a client or server span is not on the envelope (the node has
// already replaced the traceparent by this hop's span), so the node hands it
// over with a `HopParentScope` around the synchronous start of the chain.
//
// Thread safety: the middleware objects are immutable after construction and
// shared by every call of their operation.
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "switchboard/middleware.h"
#include "switchboard/telemetry.h"

namespace switchboard {

// Tells the outermost middleware of a chain started on this thread the span
// id of the hop's parent ("" for a root). Lives on the stack around the
// call that starts the chain; the chain's first step is synchronous.
class HopParentScope {
 public:
  explicit HopParentScope(std::string_view parent_span_id);
  ~HopParentScope();
  HopParentScope(const HopParentScope&) = delete;
  HopParentScope& operator=(const HopParentScope&) = delete;

  // The parent span id of the innermost live scope on this thread, or "".
  [[nodiscard]] static std::string_view Current();

 private:
  std::string_view previous_;
};

std::unique_ptr<ClientMiddleware> MakeClientTracing(std::shared_ptr<Telemetry> telemetry,
                                                    const CallSite& site);
std::unique_ptr<ServerMiddleware> MakeServerTracing(std::shared_ptr<Telemetry> telemetry,
                                                    const CallSite& site);

}  // namespace switchboard
