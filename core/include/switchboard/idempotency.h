// idempotency.h: the receiver's store of idempotency keys.
//
// Delivery is at least once: a command is redelivered after a failure or a
// lost ack, a client retries a request whose reply was lost. The server-side
// idempotency middleware makes handling effectively once by asking an
// `IdempotencyStore`, per operation, what it knows about the call's key:
//
//   Begin(key)  -> kNew         the caller now holds a claim: run the handler
//               -> kInProgress  another holder runs it: wait or abort
//               -> kCompleted   the stored outcome: answer without running
//   Complete(key, claim, outcome)  records the reply (or a terminal error)
//   Release(key, claim)            forgets the claim after a retryable failure
//                                  so the retry runs the handler again
//
// Claims carry a lease: a holder that dies (process killed) stops blocking
// its key once the lease ends, and a store that can tell a dead holder on the
// same host (SQLite) takes over at once. A claim that was taken over can no
// longer complete: Complete answers Aborted.
//
// A store may offer an `IdempotencyTransaction` that the handler's own side
// effects share with the completion record ("transactional inbox"): the
// middleware puts it into the Context under kIdempotencyTransactionAttachment;
// on a retryable failure the transaction rolls back and the key is released,
// so a retry neither repeats nor loses the side effect. See
// docs/idempotency.md.
//
// Stores are created by scheme through `IdempotencyStoreRegistry`:
// "memory" is built into core; "sqlite:/path.db" is registered when
// switchboard::idempotency (adapters/idempotency) is linked. A shared network
// store (Redis, a SQL server) registers its own scheme the same way.
//
// Thread safety: every method of every class here may be called from any
// thread. Watch callbacks run on the thread that completes or releases the
// key (they MUST be short: post longer work to an executor).
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

namespace switchboard {

class Clock;
class Context;

// What a completed call left behind: the reply payload, or a terminal
// (non-retryable) error.
struct IdempotencyOutcome {
  absl::Status status;
  std::string data;
  std::string content_type;
};

enum class IdempotencyState { kNew, kInProgress, kCompleted };

struct IdempotencyBegin {
  IdempotencyState state = IdempotencyState::kNew;
  // kNew: the claim the caller now holds (pass it to Complete / Release).
  uint64_t claim = 0;
  // kNew: the previous holder's lease had run out or it was gone.
  bool took_over = false;
  // kInProgress: when the holder's lease ends.
  absl::Time lease_until = absl::InfinitePast();
  // kCompleted: the stored outcome.
  IdempotencyOutcome outcome;
};

// Counters of one operation's store and middleware (read by telemetry).
struct IdempotencyCounters {
  std::atomic<uint64_t> begins{0};
  // Duplicates answered from the store without running the handler.
  std::atomic<uint64_t> dedup_hits{0};
  // Duplicates that arrived while the first was running.
  std::atomic<uint64_t> in_progress_waits{0};
  std::atomic<uint64_t> in_progress_aborts{0};
  // Waits that ended at the deadline without an outcome.
  std::atomic<uint64_t> wait_timeouts{0};
  std::atomic<uint64_t> completions{0};
  // Claims released after a retryable failure.
  std::atomic<uint64_t> releases{0};
  // Claims taken over from a holder whose lease ended or that died.
  std::atomic<uint64_t> takeovers{0};
  // Completions refused because the claim had been taken over.
  std::atomic<uint64_t> claims_lost{0};
  // Entries dropped by the size cap (LRU) before their TTL.
  std::atomic<uint64_t> evictions{0};
  // Entries dropped at their TTL.
  std::atomic<uint64_t> expirations{0};
  // Store failures (each one also failed or degraded a call).
  std::atomic<uint64_t> store_errors{0};
  // Keys refused as bad input (too long).
  std::atomic<uint64_t> bad_keys{0};
};

// The counters of `operation`, shared by every node of this process (created
// on first use; never null). Telemetry lists them with ForEachIdempotencyCounters.
[[nodiscard]] std::shared_ptr<IdempotencyCounters> IdempotencyCountersFor(
    std::string_view operation);
void ForEachIdempotencyCounters(
    const std::function<void(const std::string& operation, const IdempotencyCounters&)>& fn);

// The handler's side of a store transaction, opened on first use. The
// middleware owns it and commits it together with the completion record.
class IdempotencyTransaction {
 public:
  virtual ~IdempotencyTransaction() = default;
  // Opens the transaction if needed and returns the store's native handle
  // with the transaction open (for the SQLite store: a `sqlite3*`). Use it
  // only on the handler's call path, until the handler's result is returned.
  [[nodiscard]] virtual absl::StatusOr<void*> Native() = 0;
  [[nodiscard]] virtual bool open() const = 0;
  // Records the outcome and commits. Aborted when the claim was taken over
  // (then everything rolled back).
  [[nodiscard]] virtual absl::Status CommitWith(const IdempotencyOutcome& outcome) = 0;
  virtual void Rollback() = 0;
};

// The Context attachment under which the middleware offers the transaction
// (an `IdempotencyTransaction*`), set only when the store supports them.
inline constexpr std::string_view kIdempotencyTransactionAttachment =
    "switchboard.idempotency.transaction";

// The current call's store transaction, or nullptr (no idempotency on this
// operation, or its store has no transactions).
[[nodiscard]] IdempotencyTransaction* IdempotencyTransactionOf(const Context& ctx);

class IdempotencyStore {
 public:
  virtual ~IdempotencyStore() = default;

  // Looks `key` up and claims it when new (or when the holder's lease ended
  // before `now`). `lease_until` bounds the new claim.
  [[nodiscard]] virtual absl::StatusOr<IdempotencyBegin> Begin(std::string_view key,
                                                               absl::Time lease_until) = 0;
  // Stores the outcome for the store's TTL. Aborted if `claim` is no longer
  // the key's holder.
  [[nodiscard]] virtual absl::Status Complete(std::string_view key, uint64_t claim,
                                              const IdempotencyOutcome& outcome) = 0;
  // Forgets the claim so the key is new again. OK when already gone.
  [[nodiscard]] virtual absl::Status Release(std::string_view key, uint64_t claim) = 0;

  // A transaction bound to this claim, or nullptr when the store has none.
  [[nodiscard]] virtual std::unique_ptr<IdempotencyTransaction> NewTransaction(std::string_view key,
                                                                               uint64_t claim) {
    (void)key;
    (void)claim;
    return nullptr;
  }

  // Calls `fn` at most once when `key` is completed or released through this
  // store object. Returns a function that cancels the watch. Stores that
  // cannot tell (another process completed it) never call: waiters also poll.
  [[nodiscard]] virtual std::function<void()> Watch(std::string_view key,
                                                    std::function<void()> fn) {
    (void)key;
    (void)fn;
    return [] {};
  }

  // Drops entries whose TTL has passed; returns how many.
  virtual size_t Sweep() { return 0; }
};

struct IdempotencyStoreOptions {
  // Keys of different namespaces (operations) never collide.
  std::string ns;
  // How long a completed key is remembered.
  absl::Duration ttl = absl::Hours(24);
  // Entries kept before least-recently-used eviction (memory store).
  uint64_t max_entries = 100'000;
  // Default: Clock::Real().
  const Clock* clock = nullptr;
  // Default: IdempotencyCountersFor(ns).
  std::shared_ptr<IdempotencyCounters> counters;
};

// `location` is the part of the store spec after "scheme:" ("" for "memory").
using IdempotencyStoreFactory = std::function<absl::StatusOr<std::unique_ptr<IdempotencyStore>>(
    std::string_view location, const IdempotencyStoreOptions& options)>;

class IdempotencyStoreRegistry {
 public:
  // "memory", plus every scheme the linked adapters register.
  static IdempotencyStoreRegistry& Default();

  // AlreadyExists if `scheme` is taken.
  [[nodiscard]] absl::Status Register(std::string scheme, IdempotencyStoreFactory factory);
  [[nodiscard]] bool Has(std::string_view scheme) const;
  // `spec` is "scheme" or "scheme:location"; "" means "memory". NotFound
  // naming the known schemes when the scheme is unknown.
  [[nodiscard]] absl::StatusOr<std::unique_ptr<IdempotencyStore>> Create(
      std::string_view spec, const IdempotencyStoreOptions& options) const;

 private:
  mutable absl::Mutex mu_;
  std::map<std::string, IdempotencyStoreFactory, std::less<>> factories_ ABSL_GUARDED_BY(mu_);
};

// The in-memory store: sharded, one short lock per shard, TTL, LRU cap.
// Lives and dies with the process.
[[nodiscard]] std::unique_ptr<IdempotencyStore> MakeMemoryIdempotencyStore(
    const IdempotencyStoreOptions& options);

}  // namespace switchboard
