// middleware.h: the policy chain around every call and every handler.
//
// Client side, outermost first: tracing -> metrics -> deadline -> rate limit
// -> circuit breaker -> retry -> idempotency key stamping -> transport.
// Server side: tracing -> metrics -> deadline check -> bulkhead ->
// idempotency -> handler. Each policy is one `ClientMiddleware` or
// `ServerMiddleware`; the node builds one chain per operation from its
// policy when the node is created, so a call pays only for what is on.
//
// A middleware calls `next` zero or more times (a retry calls it again with
// attempt + 1) and MUST call `done` exactly once.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "switchboard/envelope.h"
#include "switchboard/transport.h"
#include "switchboard/v1/config.pb.h"

namespace switchboard {

class Clock;
class Context;

// What a middleware knows about the operation it wraps. Lives as long as the
// node.
struct CallSite {
  std::string operation;
  Style style = Style::kRequest;
  bool reply = false;  // command with reply
  std::string transport_name;
  std::string transport_type;
  v1::OperationBinding binding;
  v1::Policy policy;
  Clock* clock = nullptr;
};

// Client side. `envelope` is complete (id, trace, deadline, key) when the
// chain starts; `done` gets the reply envelope (for fire-and-forget styles,
// an empty envelope with OK status once accepted) or an error.
//
// The envelope travels down the chain by rvalue reference: a middleware
// reads or edits it in place and passes it on with std::move, which moves
// nothing; only the transport at the end takes it over. A middleware that
// needs it after `next` (a retry) keeps its own copy.
using ClientNext = std::function<void(Envelope&& envelope, ReplyCallback done)>;

class ClientMiddleware {
 public:
  virtual ~ClientMiddleware() = default;
  virtual void Invoke(const CallSite& site, Envelope&& envelope, ReplyCallback done,
                      const ClientNext& next) = 0;
};

// Server side. `request` is the delivered envelope, the same object as
// `ctx.envelope()`; it lives until `done` has been called, so a middleware
// may hold a reference to it (and to `next`, which lives as long as the
// handler's registration) until then. `done` gets the reply envelope or the
// error that decides the delivery's outcome (retryable -> redelivery, else
// dead-letter).
using ServerNext = std::function<void(Context& ctx, const Envelope& request, ReplyCallback done)>;

class ServerMiddleware {
 public:
  virtual ~ServerMiddleware() = default;
  virtual void Invoke(const CallSite& site, Context& ctx, const Envelope& request,
                      ReplyCallback done, const ServerNext& next) = 0;
};

// Builds the middleware a policy asks for. Factories return nullptr when the
// policy does not enable them.
struct MiddlewareFactories {
  std::vector<std::function<std::unique_ptr<ClientMiddleware>(const CallSite&)>> client;
  std::vector<std::function<std::unique_ptr<ServerMiddleware>(const CallSite&)>> server;
};

}  // namespace switchboard
