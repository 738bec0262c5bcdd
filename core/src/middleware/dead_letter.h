// dead_letter.h: what the node writes on a message it dead-letters, and the
// replay of a dead-letter queue (the public API is in switchboard/policies.h).
#pragma once

#include "absl/time/time.h"
#include "switchboard/envelope.h"

namespace switchboard::policy {

// Records on `env`, before Delivery::DeadLetter, how many deliveries were made
// and when it was dead-lettered (the transport adds reason and code).
void StampDeadLetter(Envelope* env, int attempts, absl::Time now);

// The envelope to enqueue again: attempt 1, the deadletter* attributes and
// the reply address removed, deadline `deadline`, a new span of its trace,
// and attr::kDeadLetterReplayedAt = `now`.
Envelope ReplayEnvelope(const Envelope& dead, absl::Time deadline, absl::Time now);

}  // namespace switchboard::policy
