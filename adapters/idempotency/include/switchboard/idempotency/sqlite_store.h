// sqlite_store.h: the SQLite idempotency store ("sqlite:/path/to/file.db").
//
// Keys live in one table of a SQLite file in WAL mode, so they survive a
// process restart, and several processes on one host can share the file
// (SQLite's file locks serialize writers; readers never block). Completed
// keys are kept for the TTL and swept periodically; an in-progress claim
// whose holder process is gone (same host: its pid no longer exists) is
// taken over at once, one whose lease ended likewise.
//
// Transactional inbox: the store offers a transaction per call. A handler
// that writes its side effects through it commits them together with the
// completion record, and a retryable failure rolls both back:
//
//   node->Handle(kPlaceOrder, [](Context& ctx, const PlaceOrder& req)
//       -> absl::StatusOr<PlaceOrderReply> {
//     absl::StatusOr<sqlite3*> db = switchboard::SqliteTransaction(ctx);
//     if (!db.ok()) return db.status();
//     ... sqlite3_exec(*db, "UPDATE stock SET n = n - 1 ...") ...
//     return reply;   // committed with the key; an error rolls back
//   });
//
// The transaction holds the file's write lock from first use until the
// handler's result is recorded: keep such handlers short and do not wait on
// other calls that use the same file inside them.
//
// Linking switchboard::idempotency registers the "sqlite" scheme in
// IdempotencyStoreRegistry::Default(); switchboard::idempotency_sqlite alone
// does not (call RegisterSqliteIdempotencyStore).
//
// Thread safety: the store is thread-safe. SqliteTransaction's connection
// belongs to the calling handler until its result is returned.
#pragma once

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "switchboard/context.h"
#include "switchboard/idempotency.h"

struct sqlite3;

namespace switchboard {

// `path` is the database file (created if missing, with its directory's
// permissions). Fails with Unavailable when the file cannot be opened.
[[nodiscard]] absl::StatusOr<std::unique_ptr<IdempotencyStore>> MakeSqliteIdempotencyStore(
    const std::string& path, const IdempotencyStoreOptions& options);

// Adds the "sqlite" scheme to `registry`.
[[nodiscard]] absl::Status RegisterSqliteIdempotencyStore(IdempotencyStoreRegistry& registry);

// The connection of the current call's store transaction, opened on first use
// (BEGIN IMMEDIATE). FailedPrecondition when the operation's idempotency store
// is not SQLite; Unavailable when the write lock cannot be had in time.
[[nodiscard]] absl::StatusOr<sqlite3*> SqliteTransaction(const Context& ctx);

// The table the store keeps its keys in (handlers keep their own tables).
inline constexpr const char* kSqliteIdempotencyTable = "switchboard_idempotency";

}  // namespace switchboard
