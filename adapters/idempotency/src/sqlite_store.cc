#include "switchboard/idempotency/sqlite_store.h"

#include <signal.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <map>
#include <set>
#include <vector>

#include "absl/random/random.h"
#include "absl/strings/numbers.h"
#include "absl/synchronization/mutex.h"
#include "switchboard/clock.h"
#include "switchboard/internal/strings.h"

namespace switchboard {
namespace {

constexpr absl::Duration kBusyTimeout = absl::Seconds(10);
constexpr absl::Duration kSweepInterval = absl::Minutes(1);
// Idle connections kept per store; more are opened while calls overlap.
constexpr size_t kMaxIdleConnections = 8;

int64_t ToMicros(absl::Time t) { return absl::ToUnixMicros(t); }

// Store instances alive in this process: a claim whose owner is this pid but
// no live instance was left by a store that is gone (closed or "restarted").
struct LiveInstances {
  absl::Mutex mu;
  std::set<uint64_t> ids ABSL_GUARDED_BY(mu);
};
LiveInstances& Live() {
  static LiveInstances* live = new LiveInstances();
  return *live;
}

// Serializes this process's writers to one file, so they queue on a mutex
// instead of SQLite's sleeping busy handler. Other processes still meet the
// file lock (busy_timeout). Released by whichever thread ends the write,
// hence a flag under a mutex rather than a held mutex.
class WriteGate {
 public:
  [[nodiscard]] bool Acquire(absl::Duration timeout) {
    absl::MutexLock lock(&mu_);
    auto free = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return !held_; };
    if (!mu_.AwaitWithTimeout(absl::Condition(&free), timeout)) return false;
    held_ = true;
    return true;
  }
  void Release() {
    absl::MutexLock lock(&mu_);
    held_ = false;
  }

 private:
  absl::Mutex mu_;
  bool held_ ABSL_GUARDED_BY(mu_) = false;
};

std::shared_ptr<WriteGate> GateFor(const std::string& path) {
  static absl::Mutex mu(absl::kConstInit);
  static auto* gates = new std::map<std::string, std::weak_ptr<WriteGate>>();
  absl::MutexLock lock(&mu);
  auto& weak = (*gates)[path];
  std::shared_ptr<WriteGate> gate = weak.lock();
  if (!gate) {
    gate = std::make_shared<WriteGate>();
    weak = gate;
  }
  return gate;
}

uint64_t NewId() {
  thread_local absl::BitGen gen;
  // Positive int64 so it round-trips through SQLite's INTEGER.
  return absl::Uniform<uint64_t>(gen, 1, static_cast<uint64_t>(INT64_MAX));
}

absl::Status SqlError(sqlite3* db, std::string_view what) {
  int code = sqlite3_extended_errcode(db);
  std::string message = Cat("sqlite ", what, ": ", sqlite3_errmsg(db));
  int primary = code & 0xff;
  if (primary == SQLITE_BUSY || primary == SQLITE_LOCKED) {
    return absl::UnavailableError(
        Cat(message, " (the database file stayed locked; another process holds a long write)"));
  }
  if (primary == SQLITE_FULL || primary == SQLITE_IOERR || primary == SQLITE_CANTOPEN) {
    return absl::UnavailableError(message);
  }
  return absl::InternalError(message);
}

absl::Status Exec(sqlite3* db, const char* sql) {
  char* err = nullptr;
  if (sqlite3_exec(db, sql, nullptr, nullptr, &err) != SQLITE_OK) {
    absl::Status s = SqlError(db, sql);
    sqlite3_free(err);
    return s;
  }
  return absl::OkStatus();
}

// A prepared statement, reset on scope exit so the connection can be reused.
class Stmt {
 public:
  Stmt(sqlite3* db, const char* sql) : db_(db) {
    if (sqlite3_prepare_v3(db, sql, -1, SQLITE_PREPARE_PERSISTENT, &stmt_, nullptr) != SQLITE_OK) {
      status_ = SqlError(db, "prepare");
      stmt_ = nullptr;
    }
  }
  ~Stmt() { sqlite3_finalize(stmt_); }
  Stmt(const Stmt&) = delete;
  Stmt& operator=(const Stmt&) = delete;

  const absl::Status& status() const { return status_; }
  Stmt& Text(int i, std::string_view v) {
    if (stmt_ != nullptr)
      sqlite3_bind_text(stmt_, i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT);
    return *this;
  }
  Stmt& Blob(int i, std::string_view v) {
    if (stmt_ != nullptr)
      sqlite3_bind_blob(stmt_, i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT);
    return *this;
  }
  Stmt& Int(int i, int64_t v) {
    if (stmt_ != nullptr) sqlite3_bind_int64(stmt_, i, v);
    return *this;
  }
  // SQLITE_ROW / SQLITE_DONE, or an error status.
  absl::StatusOr<int> Step() {
    if (!status_.ok()) return status_;
    int rc = sqlite3_step(stmt_);
    if (rc == SQLITE_ROW || rc == SQLITE_DONE) return rc;
    return SqlError(db_, "step");
  }
  int64_t ColInt(int i) { return sqlite3_column_int64(stmt_, i); }
  std::string ColText(int i) {
    const void* p = sqlite3_column_blob(stmt_, i);
    int n = sqlite3_column_bytes(stmt_, i);
    return p == nullptr ? std::string() : std::string(static_cast<const char*>(p), n);
  }

 private:
  sqlite3* db_;
  sqlite3_stmt* stmt_ = nullptr;
  absl::Status status_;
};

constexpr const char* kSchema = R"sql(
CREATE TABLE IF NOT EXISTS switchboard_idempotency (
  ns           TEXT    NOT NULL,
  key          TEXT    NOT NULL,
  state        INTEGER NOT NULL,   -- 0: in progress, 1: completed
  claim        INTEGER NOT NULL,
  owner        TEXT    NOT NULL,   -- "<pid>/<store instance>" of the holder
  expires_us   INTEGER NOT NULL,   -- lease end (in progress) or TTL end (completed)
  code         INTEGER NOT NULL DEFAULT 0,
  message      TEXT,
  data         BLOB,
  content_type TEXT,
  PRIMARY KEY (ns, key)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS switchboard_idempotency_expiry
  ON switchboard_idempotency (ns, state, expires_us);
)sql";

class SqliteStore;

// The handler's transaction: its own connection, BEGIN IMMEDIATE on first
// use, committed together with the completion record.
class SqliteTx final : public IdempotencyTransaction {
 public:
  SqliteTx(SqliteStore* store, std::string key, uint64_t claim)
      : store_(store), key_(std::move(key)), claim_(claim) {}
  ~SqliteTx() override { Rollback(); }

  absl::StatusOr<void*> Native() override;
  bool open() const override { return db_ != nullptr; }
  absl::Status CommitWith(const IdempotencyOutcome& outcome) override;
  void Rollback() override;

 private:
  void Close();

  SqliteStore* store_;
  std::string key_;
  uint64_t claim_;
  sqlite3* db_ = nullptr;
};

class SqliteStore final : public IdempotencyStore {
 public:
  SqliteStore(std::string path, const IdempotencyStoreOptions& options)
      : path_(std::move(path)),
        ns_(options.ns),
        clock_(options.clock != nullptr ? options.clock : &Clock::Real()),
        ttl_(options.ttl),
        counters_(options.counters ? options.counters : IdempotencyCountersFor(options.ns)),
        instance_(NewId()),
        owner_(Cat(getpid(), "/", instance_)) {
    absl::MutexLock lock(&Live().mu);
    Live().ids.insert(instance_);
  }

  ~SqliteStore() override {
    {
      absl::MutexLock lock(&Live().mu);
      Live().ids.erase(instance_);
    }
    absl::MutexLock lock(&pool_mu_);
    for (sqlite3* db : idle_) sqlite3_close_v2(db);
  }

  absl::Status Open() {
    absl::StatusOr<sqlite3*> db = Connect();
    if (!db.ok()) return db.status();
    // The first connection sets WAL (persistent in the file) and the schema;
    // concurrent openers in other processes wait on the busy timeout.
    absl::Status s = Exec(*db, "PRAGMA journal_mode=WAL");
    if (s.ok()) s = Exec(*db, kSchema);
    if (!s.ok()) {
      sqlite3_close_v2(*db);
      return s;
    }
    char resolved[PATH_MAX];
    gate_ = GateFor(realpath(path_.c_str(), resolved) != nullptr ? std::string(resolved) : path_);
    Put(*db);
    return absl::OkStatus();
  }

  absl::StatusOr<IdempotencyBegin> Begin(std::string_view key, absl::Time lease_until) override {
    counters_->begins.fetch_add(1, std::memory_order_relaxed);
    absl::Time now = clock_->Now();
    MaybeSweep(now);
    absl::StatusOr<sqlite3*> db = Get();
    if (!db.ok()) return db.status();
    Lease conn(this, *db);
    // A plain read answers duplicates of completed calls without a write lock.
    {
      absl::StatusOr<IdempotencyBegin> read = Read(*db, key, now, /*for_write=*/false);
      if (!read.ok() || read->claim == 0) return read;
    }
    if (!gate_->Acquire(kBusyTimeout)) return GateTimeout();
    Gated gated(gate_.get());
    if (absl::Status s = Exec(*db, "BEGIN IMMEDIATE"); !s.ok()) return s;
    absl::StatusOr<IdempotencyBegin> result = Read(*db, key, now, /*for_write=*/true);
    if (!result.ok() || result->claim == 0) {
      (void)Exec(*db, "ROLLBACK");
      return result;
    }
    Stmt put(*db,
             "INSERT OR REPLACE INTO switchboard_idempotency "
             "(ns, key, state, claim, owner, expires_us) VALUES (?1, ?2, 0, ?3, ?4, ?5)");
    put.Text(1, ns_)
        .Text(2, key)
        .Int(3, static_cast<int64_t>(result->claim))
        .Text(4, owner_)
        .Int(5, ToMicros(lease_until));
    if (absl::StatusOr<int> rc = put.Step(); !rc.ok()) {
      (void)Exec(*db, "ROLLBACK");
      return rc.status();
    }
    if (absl::Status s = Exec(*db, "COMMIT"); !s.ok()) {
      (void)Exec(*db, "ROLLBACK");
      return s;
    }
    if (result->took_over) counters_->takeovers.fetch_add(1, std::memory_order_relaxed);
    return result;
  }

  absl::Status Complete(std::string_view key, uint64_t claim,
                        const IdempotencyOutcome& outcome) override {
    absl::StatusOr<sqlite3*> db = Get();
    if (!db.ok()) return db.status();
    Lease conn(this, *db);
    if (!gate_->Acquire(kBusyTimeout)) return GateTimeout();
    absl::Status s;
    {
      Gated gated(gate_.get());
      s = WriteCompletion(*db, key, claim, outcome);
    }
    if (s.ok()) Completed(key);
    return s;
  }

  absl::Status Release(std::string_view key, uint64_t claim) override {
    absl::StatusOr<sqlite3*> db = Get();
    if (!db.ok()) return db.status();
    Lease conn(this, *db);
    if (!gate_->Acquire(kBusyTimeout)) return GateTimeout();
    int changes = 0;
    {
      Gated gated(gate_.get());
      Stmt del(*db,
               "DELETE FROM switchboard_idempotency "
               "WHERE ns = ?1 AND key = ?2 AND state = 0 AND claim = ?3");
      del.Text(1, ns_).Text(2, key).Int(3, static_cast<int64_t>(claim));
      if (absl::StatusOr<int> rc = del.Step(); !rc.ok()) return rc.status();
      changes = sqlite3_changes(*db);
    }
    if (changes > 0) counters_->releases.fetch_add(1, std::memory_order_relaxed);
    Notify(key);
    return absl::OkStatus();
  }

  std::unique_ptr<IdempotencyTransaction> NewTransaction(std::string_view key,
                                                         uint64_t claim) override {
    return std::make_unique<SqliteTx>(this, std::string(key), claim);
  }

  std::function<void()> Watch(std::string_view key, std::function<void()> fn) override {
    uint64_t id;
    {
      absl::MutexLock lock(&watch_mu_);
      id = ++next_watch_;
      watchers_[std::string(key)].emplace_back(id, std::move(fn));
    }
    // The holder may have finished between the caller's Begin and now.
    bool settled = true;
    if (absl::StatusOr<sqlite3*> db = Get(); db.ok()) {
      Lease conn(this, *db);
      Stmt q(*db, "SELECT state FROM switchboard_idempotency WHERE ns = ?1 AND key = ?2");
      q.Text(1, ns_).Text(2, key);
      absl::StatusOr<int> rc = q.Step();
      settled = !rc.ok() || *rc == SQLITE_DONE || q.ColInt(0) != 0;
    }
    if (settled) Notify(key);
    return [this, key = std::string(key), id] {
      absl::MutexLock lock(&watch_mu_);
      auto it = watchers_.find(key);
      if (it == watchers_.end()) return;
      auto& w = it->second;
      w.erase(std::remove_if(w.begin(), w.end(), [id](const auto& p) { return p.first == id; }),
              w.end());
      if (w.empty()) watchers_.erase(it);
    };
  }

  size_t Sweep() override {
    absl::Time now = clock_->Now();
    absl::StatusOr<sqlite3*> db = Get();
    if (!db.ok()) {
      counters_->store_errors.fetch_add(1, std::memory_order_relaxed);
      return 0;
    }
    Lease conn(this, *db);
    if (!gate_->Acquire(kBusyTimeout)) return 0;
    Gated gated(gate_.get());
    // Completed keys at their TTL; claims abandoned for a whole TTL.
    Stmt del(*db,
             "DELETE FROM switchboard_idempotency WHERE ns = ?1 AND "
             "((state = 1 AND expires_us <= ?2) OR (state = 0 AND expires_us <= ?3))");
    del.Text(1, ns_).Int(2, ToMicros(now)).Int(3, ToMicros(now - ttl_));
    if (absl::StatusOr<int> rc = del.Step(); !rc.ok()) {
      counters_->store_errors.fetch_add(1, std::memory_order_relaxed);
      return 0;
    }
    size_t n = static_cast<size_t>(sqlite3_changes(*db));
    counters_->expirations.fetch_add(n, std::memory_order_relaxed);
    return n;
  }

  // ---- for SqliteTx ----

  absl::StatusOr<sqlite3*> BeginTx() {
    if (!gate_->Acquire(kBusyTimeout)) return GateTimeout();
    absl::StatusOr<sqlite3*> db = Get();
    if (!db.ok()) {
      gate_->Release();
      return db.status();
    }
    if (absl::Status s = Exec(*db, "BEGIN IMMEDIATE"); !s.ok()) {
      Put(*db);
      gate_->Release();
      return s;
    }
    return *db;
  }

  // Ends the transaction on `db` (commit if `commit`) and gives the
  // connection and the gate back.
  absl::Status EndTx(sqlite3* db, std::string_view key, uint64_t claim,
                     const IdempotencyOutcome* outcome) {
    absl::Status s;
    if (outcome != nullptr) {
      s = WriteCompletion(db, key, claim, *outcome);
      if (s.ok()) s = Exec(db, "COMMIT");
    }
    if (outcome == nullptr || !s.ok()) (void)Exec(db, "ROLLBACK");
    Put(db);
    gate_->Release();
    if (outcome != nullptr && s.ok()) Completed(key);
    return s;
  }

  const std::string& ns() const { return ns_; }

 private:
  // Gives a connection back to the pool at scope exit.
  struct Lease {
    SqliteStore* store;
    sqlite3* db;
    ~Lease() { store->Put(db); }
  };
  struct Gated {
    WriteGate* gate;
    ~Gated() { gate->Release(); }
  };

  absl::Status GateTimeout() const {
    counters_->store_errors.fetch_add(1, std::memory_order_relaxed);
    return absl::UnavailableError(
        Cat("sqlite idempotency store ", path_, ": no write turn within ",
            absl::FormatDuration(kBusyTimeout),
            "; a handler holds its transaction too long (keep transactional handlers short)"));
  }

  absl::StatusOr<sqlite3*> Connect() const {
    sqlite3* db = nullptr;
    int rc =
        sqlite3_open_v2(path_.c_str(), &db,
                        SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, nullptr);
    if (rc != SQLITE_OK) {
      std::string message = db != nullptr ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
      sqlite3_close_v2(db);
      return absl::UnavailableError(Cat("sqlite idempotency store: cannot open \"", path_, "\": ",
                                        message, "; check `idempotency.store` and the directory"));
    }
    sqlite3_busy_timeout(db, static_cast<int>(absl::ToInt64Milliseconds(kBusyTimeout)));
    sqlite3_extended_result_codes(db, 1);
    // WAL + NORMAL: a commit is durable against a process crash; an OS crash
    // may lose the last commits, which at-least-once redelivery covers.
    absl::Status s = Exec(db, "PRAGMA synchronous=NORMAL");
    if (!s.ok()) {
      sqlite3_close_v2(db);
      return s;
    }
    return db;
  }

  absl::StatusOr<sqlite3*> Get() {
    {
      absl::MutexLock lock(&pool_mu_);
      if (!idle_.empty()) {
        sqlite3* db = idle_.back();
        idle_.pop_back();
        return db;
      }
    }
    absl::StatusOr<sqlite3*> db = Connect();
    if (!db.ok()) counters_->store_errors.fetch_add(1, std::memory_order_relaxed);
    return db;
  }

  void Put(sqlite3* db) {
    {
      absl::MutexLock lock(&pool_mu_);
      if (idle_.size() < kMaxIdleConnections) {
        idle_.push_back(db);
        return;
      }
    }
    sqlite3_close_v2(db);
  }

  // What Begin should answer for `key`; `claim != 0` means "claim it" (new,
  // expired or abandoned), in which case `took_over` tells which.
  absl::StatusOr<IdempotencyBegin> Read(sqlite3* db, std::string_view key, absl::Time now,
                                        bool for_write) {
    Stmt q(db,
           "SELECT state, claim, owner, expires_us, code, message, data, content_type "
           "FROM switchboard_idempotency WHERE ns = ?1 AND key = ?2");
    q.Text(1, ns_).Text(2, key);
    absl::StatusOr<int> rc = q.Step();
    if (!rc.ok()) return rc.status();
    IdempotencyBegin result;
    if (*rc == SQLITE_ROW) {
      bool completed = q.ColInt(0) == 1;
      absl::Time expires = absl::FromUnixMicros(q.ColInt(3));
      if (completed && expires > now) {
        result.state = IdempotencyState::kCompleted;
        result.outcome.status =
            absl::Status(static_cast<absl::StatusCode>(q.ColInt(4)), AsAbsl(q.ColText(5)));
        result.outcome.data = q.ColText(6);
        result.outcome.content_type = q.ColText(7);
        return result;
      }
      if (!completed && expires > now && OwnerAlive(q.ColText(2))) {
        result.state = IdempotencyState::kInProgress;
        result.lease_until = expires;
        return result;
      }
      if (completed) {
        if (for_write) counters_->expirations.fetch_add(1, std::memory_order_relaxed);
      } else {
        result.took_over = true;
      }
    }
    result.state = IdempotencyState::kNew;
    result.claim = NewId();
    return result;
  }

  absl::Status WriteCompletion(sqlite3* db, std::string_view key, uint64_t claim,
                               const IdempotencyOutcome& outcome) {
    Stmt up(db,
            "UPDATE switchboard_idempotency SET state = 1, expires_us = ?1, code = ?2, "
            "message = ?3, data = ?4, content_type = ?5 "
            "WHERE ns = ?6 AND key = ?7 AND state = 0 AND claim = ?8");
    up.Int(1, ToMicros(clock_->Now() + ttl_))
        .Int(2, static_cast<int64_t>(outcome.status.code()))
        .Text(3, AsStd(outcome.status.message()))
        .Blob(4, outcome.data)
        .Text(5, outcome.content_type)
        .Text(6, ns_)
        .Text(7, key)
        .Int(8, static_cast<int64_t>(claim));
    if (absl::StatusOr<int> rc = up.Step(); !rc.ok()) return rc.status();
    if (sqlite3_changes(db) == 0) {
      counters_->claims_lost.fetch_add(1, std::memory_order_relaxed);
      return absl::AbortedError(
          Cat("idempotency key \"", key,
              "\" is no longer held by this call (its lease ended and another consumer took it "
              "over); raise `idempotency.in_progress_lease`"));
    }
    return absl::OkStatus();
  }

  void Completed(std::string_view key) {
    counters_->completions.fetch_add(1, std::memory_order_relaxed);
    Notify(key);
  }

  void Notify(std::string_view key) {
    std::vector<std::pair<uint64_t, std::function<void()>>> fire;
    {
      absl::MutexLock lock(&watch_mu_);
      auto it = watchers_.find(std::string(key));
      if (it == watchers_.end()) return;
      fire = std::move(it->second);
      watchers_.erase(it);
    }
    for (auto& [id, fn] : fire) fn();
  }

  // Whether the holder `owner` ("<pid>/<instance>") may still be running.
  static bool OwnerAlive(const std::string& owner) {
    size_t slash = owner.find('/');
    int64_t pid = 0;
    uint64_t instance = 0;
    if (slash == std::string::npos ||
        !absl::SimpleAtoi(absl::string_view(owner.data(), slash), &pid) ||
        !absl::SimpleAtoi(absl::string_view(owner.data() + slash + 1, owner.size() - slash - 1),
                          &instance)) {
      return true;  // unknown writer: trust its lease
    }
    if (pid == getpid()) {
      absl::MutexLock lock(&Live().mu);
      return Live().ids.contains(instance);
    }
    return kill(static_cast<pid_t>(pid), 0) == 0 || errno == EPERM;
  }

  void MaybeSweep(absl::Time now) {
    {
      absl::MutexLock lock(&sweep_mu_);
      if (now < next_sweep_) return;
      next_sweep_ = now + kSweepInterval;
    }
    Sweep();
  }

  const std::string path_;
  const std::string ns_;
  const Clock* clock_;
  const absl::Duration ttl_;
  std::shared_ptr<IdempotencyCounters> counters_;
  const uint64_t instance_;
  const std::string owner_;
  std::shared_ptr<WriteGate> gate_;

  absl::Mutex pool_mu_;
  std::vector<sqlite3*> idle_ ABSL_GUARDED_BY(pool_mu_);

  absl::Mutex watch_mu_;
  uint64_t next_watch_ ABSL_GUARDED_BY(watch_mu_) = 0;
  std::map<std::string, std::vector<std::pair<uint64_t, std::function<void()>>>> watchers_
      ABSL_GUARDED_BY(watch_mu_);

  absl::Mutex sweep_mu_;
  absl::Time next_sweep_ ABSL_GUARDED_BY(sweep_mu_) = absl::InfinitePast();
};

absl::StatusOr<void*> SqliteTx::Native() {
  if (db_ == nullptr) {
    absl::StatusOr<sqlite3*> db = store_->BeginTx();
    if (!db.ok()) return db.status();
    db_ = *db;
  }
  return static_cast<void*>(db_);
}

absl::Status SqliteTx::CommitWith(const IdempotencyOutcome& outcome) {
  if (db_ == nullptr) {
    return absl::FailedPreconditionError("no transaction is open: call Native() first");
  }
  sqlite3* db = std::exchange(db_, nullptr);
  return store_->EndTx(db, key_, claim_, &outcome);
}

void SqliteTx::Rollback() {
  if (db_ == nullptr) return;
  sqlite3* db = std::exchange(db_, nullptr);
  (void)store_->EndTx(db, key_, claim_, nullptr);
}

absl::StatusOr<std::unique_ptr<IdempotencyStore>> FromSpec(std::string_view location,
                                                           const IdempotencyStoreOptions& options) {
  if (location.empty()) {
    return absl::InvalidArgumentError(
        "the sqlite idempotency store needs a file: write `store: sqlite:/path/to/file.db`");
  }
  return MakeSqliteIdempotencyStore(std::string(location), options);
}

}  // namespace

absl::StatusOr<std::unique_ptr<IdempotencyStore>> MakeSqliteIdempotencyStore(
    const std::string& path, const IdempotencyStoreOptions& options) {
  auto store = std::make_unique<SqliteStore>(path, options);
  if (absl::Status s = store->Open(); !s.ok()) return s;
  return std::unique_ptr<IdempotencyStore>(std::move(store));
}

absl::Status RegisterSqliteIdempotencyStore(IdempotencyStoreRegistry& registry) {
  return registry.Register("sqlite", &FromSpec);
}

absl::StatusOr<sqlite3*> SqliteTransaction(const Context& ctx) {
  auto* tx = dynamic_cast<SqliteTx*>(IdempotencyTransactionOf(ctx));
  if (tx == nullptr) {
    return absl::FailedPreconditionError(
        Cat("operation ", ctx.operation(),
            " has no SQLite idempotency store for this call; set its policy's "
            "`idempotency.store` to sqlite:/path/to/file.db"));
  }
  absl::StatusOr<void*> db = tx->Native();
  if (!db.ok()) return db.status();
  return static_cast<sqlite3*>(*db);
}

}  // namespace switchboard
