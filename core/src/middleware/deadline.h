// deadline.h: the caller side of the deadline policy.
//
// The node turns the policy's timeout (or CallOptions, or the parent
// handler's remaining budget minus deadline.margin) into the envelope's
// absolute deadline before the chain runs. This middleware refuses a call
// whose deadline has already passed when it reaches it (after a rate limiter
// or breaker ahead of it) and counts the calls that end DeadlineExceeded. The
// receiving side's check (work whose deadline passed is not started; a
// command is dead-lettered with "deadline exceeded before start") is in the
// node, ahead of every server middleware.
//
// Thread safety: thread-safe.
#pragma once

#include <memory>

#include "switchboard/middleware.h"
#include "switchboard/policies.h"

namespace switchboard {
struct NodeServices;
}

namespace switchboard::policy {

class DeadlineMiddleware final : public ClientMiddleware {
 public:
  explicit DeadlineMiddleware(PolicyCounters* counters) : counters_(counters) {}
  void Invoke(const CallSite& site, Envelope&& envelope, ReplyCallback done,
              const ClientNext& next) override;

 private:
  PolicyCounters* counters_;
};

std::unique_ptr<ClientMiddleware> MakeDeadlineMiddleware(const CallSite& site, NodeServices* services);

}  // namespace switchboard::policy
