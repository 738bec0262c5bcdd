// idempotency.h: the server-side idempotency middleware.
//
// Runs after the bulkhead, right before the handler, for operations whose
// policy has an `idempotency` block. Per call it asks the operation's store
// (policy `idempotency.store`, default memory) about the envelope's
// idempotency key (the message id when a foreign sender set none):
//
//   new          run the handler; a reply or a terminal error is stored, a
//                retryable failure releases the key (and rolls back the
//                store transaction the handler used) so the retry runs again
//   completed    answer with the stored outcome; the handler does not run
//                (a command or event is then acked)
//   in progress  `on_in_progress: wait` (default): wait for the outcome until
//                the deadline or the holder's lease ends, without holding a
//                thread; `abort`: answer Aborted at once (retryable: a
//                command is redelivered later)
//
// A store that fails makes the call fail with Unavailable (retryable) rather
// than run unguarded. Counters: IdempotencyCountersFor(operation).
//
// Thread safety: one instance per operation, called concurrently from handler
// threads. Waits resume on the node's executor.
#pragma once

#include <memory>

#include "builtin_middleware.h"
#include "switchboard/middleware.h"

namespace switchboard {

// nullptr when `site.policy` has no idempotency block.
[[nodiscard]] std::unique_ptr<ServerMiddleware> MakeIdempotencyMiddleware(
    const CallSite& site, const std::shared_ptr<NodeServices>& services);

}  // namespace switchboard
