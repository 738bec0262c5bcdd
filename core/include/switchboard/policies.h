// policies.h: what the resilience policies expose beyond config: their
// counters, the circuit breaker's fallback hook, and the dead-letter queue
// (read and replay).
//
// The policies themselves (deadline, retry with a retry budget, circuit
// breaker, bulkhead, rate limit, dead-letter) are configured per operation
// under `policies:` (see docs/policies.md for every option and its default)
// and run inside the node's middleware chain; nothing here is needed to use
// them.
//
//   // Serve a cached answer while the breaker of GetProfile is open.
//   (void)switchboard::SetFallback(*node, kGetProfile,
//       [](const GetProfileRequest& req, const absl::Status& why)
//           -> absl::StatusOr<Profile> { return cache.Lookup(req.id()); });
//
//   // After fixing the bug that dead-lettered them, run the commands again.
//   absl::StatusOr<int> n = switchboard::ReplayDeadLetters(*node, "orders.v1.Orders/Ship");
//
//   for (const auto& op : switchboard::GetPolicyStats(*node).Snapshot()) ...
//
// Thread safety: every function here may be called from any thread.
// Fallbacks run on the thread that completes the call (a transport, timer or
// executor thread): they MUST NOT block. ReadDeadLetters / ReplayDeadLetters /
// ProcessDeadLetters block the calling thread until done (bounded by their
// options); do not call them from a handler.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "switchboard/envelope.h"
#include "switchboard/node.h"

namespace switchboard {

// ---------------------------------------------------------------------------
// Counters.

// The same values as telemetry.h's BreakerStateValue.
enum class BreakerState : int { kClosed = 0, kHalfOpen = 1, kOpen = 2 };
[[nodiscard]] std::string_view BreakerStateName(BreakerState state);

// What the policies of one operation did, since the node started. All are
// monotonic counts except the gauges `breaker_state` and `bulkhead_active`.
// Lock-free: read them at any time, from any thread.
struct PolicyCounters {
  // Deadline.
  std::atomic<uint64_t> deadline_exceeded{0};             // calls that ended DeadlineExceeded
  std::atomic<uint64_t> deadline_expired_before_start{0};  // received work refused (expired)
  // Retry.
  std::atomic<uint64_t> retries{0};                 // attempts after the first
  std::atomic<uint64_t> retry_budget_exhausted{0};  // retries refused by the budget
  std::atomic<uint64_t> retry_deadline_cutoff{0};   // retries skipped: backoff ends past the deadline
  std::atomic<uint64_t> retries_exhausted{0};       // calls that used every attempt and failed
  // Circuit breaker (per operation and transport; one transport per operation).
  std::atomic<int> breaker_state{0};  // BreakerState
  std::atomic<uint64_t> breaker_opened{0};
  std::atomic<uint64_t> breaker_half_opened{0};
  std::atomic<uint64_t> breaker_closed{0};
  std::atomic<uint64_t> breaker_rejections{0};  // calls failed fast
  std::atomic<uint64_t> fallbacks{0};           // calls answered by the fallback
  // Bulkhead.
  std::atomic<int64_t> bulkhead_active{0};
  std::atomic<uint64_t> bulkhead_queued{0};     // executions that waited for a slot
  std::atomic<uint64_t> bulkhead_rejections{0};  // shed (queue full)
  // Rate limit.
  std::atomic<uint64_t> rate_limited_caller{0};
  std::atomic<uint64_t> rate_limited_handler{0};
  // Dead-letter.
  std::atomic<uint64_t> dead_lettered{0};
  std::atomic<uint64_t> dead_letters_replayed{0};
};

// A plain copy of PolicyCounters, for exporters.
struct PolicyCountersSnapshot {
  std::string operation;
  uint64_t deadline_exceeded = 0;
  uint64_t deadline_expired_before_start = 0;
  uint64_t retries = 0;
  uint64_t retry_budget_exhausted = 0;
  uint64_t retry_deadline_cutoff = 0;
  uint64_t retries_exhausted = 0;
  BreakerState breaker_state = BreakerState::kClosed;
  uint64_t breaker_opened = 0;
  uint64_t breaker_half_opened = 0;
  uint64_t breaker_closed = 0;
  uint64_t breaker_rejections = 0;
  uint64_t fallbacks = 0;
  int64_t bulkhead_active = 0;
  uint64_t bulkhead_queued = 0;
  uint64_t bulkhead_rejections = 0;
  uint64_t rate_limited_caller = 0;
  uint64_t rate_limited_handler = 0;
  uint64_t dead_lettered = 0;
  uint64_t dead_letters_replayed = 0;
};

// The counters of every operation of one node. Thread-safe; the reference
// For() returns stays valid as long as the PolicyStats.
class PolicyStats {
 public:
  PolicyCounters& For(std::string_view operation);
  // Every operation that has counters, sorted by name.
  std::vector<PolicyCountersSnapshot> Snapshot() const;

 private:
  mutable absl::Mutex mu_;
  std::map<std::string, std::unique_ptr<PolicyCounters>, std::less<>> ops_ ABSL_GUARDED_BY(mu_);
};

// The policy counters of `node` (valid while the node lives).
PolicyStats& GetPolicyStats(const Node& node);

// ---------------------------------------------------------------------------
// Circuit breaker fallback.

// Gets the request and why the call did not succeed (the breaker's
// Unavailable, or the failure the breaker counted) and returns the
// serialized reply to give the caller instead, or an error (which the caller
// then gets).
using RawFallback =
    std::function<absl::StatusOr<std::string>(const Envelope& request, const absl::Status& error)>;

// Registers the fallback of `operation` on `node`, replacing any earlier one
// (nullptr removes it). It runs when the breaker fails a call fast and when a
// call fails with an error that counts against the breaker (see
// CountsAsFailure); business errors reach the caller unchanged.
// FailedPrecondition when the operation's policy has no `circuit_breaker`.
[[nodiscard]] absl::Status SetFallback(Node& node, std::string_view operation,
                                       RawFallback fallback);

// Typed: `fallback` is `(const Req&, const absl::Status&) -> absl::StatusOr<Rep>`.
template <class Req, class Rep, class Fn>
[[nodiscard]] absl::Status SetFallback(Node& node, const Operation<Req, Rep>& op, Fn fallback) {
  return SetFallback(node, op.name,
                     [fallback = std::move(fallback)](const Envelope& env, const absl::Status& error)
                         -> absl::StatusOr<std::string> {
                       Req request;
                       if (absl::Status s = internal::ParsePayload(env, &request); !s.ok()) return s;
                       absl::StatusOr<Rep> reply = fallback(request, error);
                       if (!reply.ok()) return reply.status();
                       return internal::SerializePayload(*reply, env.data_content_type);
                     });
}

// ---------------------------------------------------------------------------
// Dead letters.

// Extension attributes set on a dead-lettered envelope, besides
// attr::kDeadLetterReason and attr::kDeadLetterCode.
namespace attr {
// Deliveries made before the message was dead-lettered ("5").
inline constexpr std::string_view kDeadLetterAttempts = "deadletterattempts";
// When it was dead-lettered (RFC 3339, UTC).
inline constexpr std::string_view kDeadLetteredAt = "deadletteredat";
// Set on a replayed message: when it was replayed (RFC 3339, UTC). A
// transport whose broker drops repeated ids (Features::broker_dedup) MUST
// make it part of the id it dedups on, or the broker drops the replay as a
// duplicate of the original.
inline constexpr std::string_view kDeadLetterReplayedAt = "deadletterreplayedat";
}  // namespace attr

// One message read from the dead-letter queue of an operation.
struct DeadLetter {
  Envelope envelope;       // as dead-lettered, with the deadletter* extensions
  std::string operation;   // the operation it was meant for (envelope.type)
  int attempts = 0;        // deliveries before it was dead-lettered
  absl::Status last_error;  // the reason: code and message
  absl::Time dead_lettered_at = absl::InfinitePast();  // InfinitePast if not recorded
};

// Reads the dead-letter attributes of `envelope`.
[[nodiscard]] DeadLetter DeadLetterFromEnvelope(Envelope envelope);

enum class DeadLetterAction {
  kReplay,   // enqueue it again to its operation (attempt 1, same idempotency key)
  kDiscard,  // remove it from the dead-letter queue
  kKeep,     // leave it in the dead-letter queue
};

struct DeadLetterOptions {
  // Messages to take from the queue, at most.
  int max = 1000;
  // The queue counts as drained after this long without a message.
  absl::Duration idle = absl::Milliseconds(300);
  // The whole pass ends after this long, drained or not.
  absl::Duration timeout = absl::Seconds(30);
};

struct DeadLetterReport {
  int seen = 0;
  int replayed = 0;
  int discarded = 0;
  int kept = 0;
  // Replays the transport refused (left in the queue); the first error.
  int failed = 0;
  absl::Status first_error;
};

// Consumes the dead-letter queue of `operation` (a command or event
// operation; the queue is DeadLetterAddress(operation) on the operation's
// transport) and applies `decide` to each message. A replayed message keeps
// its id and idempotency key, gets attempt 1, no reply address, a fresh
// deadline from the operation's policy timeout (none if it has none) and a
// new span of its original trace; the deadletter* attributes are removed.
// Replaying an event publishes it to every subscriber group again: groups
// that had processed it rely on the idempotency key to skip it.
// InvalidArgument for a request operation; the transport's error if it
// cannot consume the queue.
[[nodiscard]] absl::StatusOr<DeadLetterReport> ProcessDeadLetters(
    Node& node, std::string_view operation,
    const std::function<DeadLetterAction(const DeadLetter&)>& decide,
    DeadLetterOptions options = {});

// Replays up to `max` dead letters of `operation`; returns how many.
[[nodiscard]] absl::StatusOr<int> ReplayDeadLetters(Node& node, std::string_view operation,
                                                    int max = 1000);

// Reads up to `max` dead letters of `operation` and leaves them in the queue
// (each is redelivered to the queue, so its delivery count there grows).
[[nodiscard]] absl::StatusOr<std::vector<DeadLetter>> ReadDeadLetters(Node& node,
                                                                      std::string_view operation,
                                                                      int max = 1000);

}  // namespace switchboard
