// The IdempotencyStore contract, checked on every store: memory and SQLite.

#include <sqlite3.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <thread>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "switchboard/clock.h"
#include "switchboard/envelope.h"
#include "switchboard/idempotency.h"
#include "switchboard/idempotency/sqlite_store.h"

namespace switchboard {
namespace {

using ::testing::HasSubstr;

constexpr absl::Duration kLease = absl::Seconds(30);
constexpr absl::Duration kTtl = absl::Hours(1);

std::string TempDbPath() {
  std::string dir =
      (std::filesystem::temp_directory_path() / ("sb-idem-" + NewMessageId())).string();
  std::filesystem::create_directories(dir);
  return dir + "/idem.db";
}

IdempotencyOutcome Reply(std::string data) {
  IdempotencyOutcome o;
  o.data = std::move(data);
  o.content_type = "application/protobuf";
  return o;
}

enum class Kind { kMemory, kSqlite };

class StoreTest : public ::testing::TestWithParam<Kind> {
 protected:
  void SetUp() override { path_ = TempDbPath(); }
  void TearDown() override {
    std::filesystem::remove_all(std::filesystem::path(path_).parent_path());
  }

  std::unique_ptr<IdempotencyStore> Open(std::string ns = "ops.v1.Op/Do",
                                         uint64_t max_entries = 1000) {
    IdempotencyStoreOptions options;
    options.ns = std::move(ns);
    options.ttl = kTtl;
    options.max_entries = max_entries;
    options.clock = &clock_;
    options.counters = counters_;
    if (GetParam() == Kind::kMemory) return MakeMemoryIdempotencyStore(options);
    auto store = MakeSqliteIdempotencyStore(path_, options);
    EXPECT_TRUE(store.ok()) << store.status();
    return store.ok() ? *std::move(store) : nullptr;
  }

  absl::Time Lease() const { return clock_.Now() + kLease; }

  FakeClock clock_;
  std::shared_ptr<IdempotencyCounters> counters_ = std::make_shared<IdempotencyCounters>();
  std::string path_;
};

TEST_P(StoreTest, NewThenInProgressThenCompletedWithTheStoredReply) {
  auto store = Open();
  auto first = store->Begin("k1", Lease());
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_EQ(first->state, IdempotencyState::kNew);
  EXPECT_NE(first->claim, 0u);

  auto second = store->Begin("k1", Lease());
  ASSERT_TRUE(second.ok());
  EXPECT_EQ(second->state, IdempotencyState::kInProgress);
  EXPECT_EQ(second->lease_until, clock_.Now() + kLease);

  ASSERT_TRUE(store->Complete("k1", first->claim, Reply("reply-bytes")).ok());
  auto third = store->Begin("k1", Lease());
  ASSERT_TRUE(third.ok());
  EXPECT_EQ(third->state, IdempotencyState::kCompleted);
  EXPECT_TRUE(third->outcome.status.ok());
  EXPECT_EQ(third->outcome.data, "reply-bytes");
  EXPECT_EQ(third->outcome.content_type, "application/protobuf");
  EXPECT_EQ(counters_->completions.load(), 1u);
}

TEST_P(StoreTest, TerminalErrorIsStoredWithItsCode) {
  auto store = Open();
  auto b = store->Begin("bad", Lease());
  ASSERT_TRUE(b.ok());
  IdempotencyOutcome o;
  o.status = absl::InvalidArgumentError("quantity must be positive");
  ASSERT_TRUE(store->Complete("bad", b->claim, o).ok());
  auto again = store->Begin("bad", Lease());
  ASSERT_TRUE(again.ok());
  ASSERT_EQ(again->state, IdempotencyState::kCompleted);
  EXPECT_EQ(again->outcome.status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(again->outcome.status.message(), "quantity must be positive");
}

TEST_P(StoreTest, ReleaseMakesTheKeyNewAgain) {
  auto store = Open();
  auto b = store->Begin("k", Lease());
  ASSERT_TRUE(b.ok());
  ASSERT_TRUE(store->Release("k", b->claim).ok());
  EXPECT_EQ(counters_->releases.load(), 1u);
  auto again = store->Begin("k", Lease());
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->state, IdempotencyState::kNew);
  EXPECT_NE(again->claim, b->claim);
  // The old claim can neither release nor complete the new one.
  ASSERT_TRUE(store->Release("k", b->claim).ok());
  auto still = store->Begin("k", Lease());
  ASSERT_TRUE(still.ok());
  EXPECT_EQ(still->state, IdempotencyState::kInProgress);
  absl::Status stale = store->Complete("k", b->claim, Reply("x"));
  EXPECT_EQ(stale.code(), absl::StatusCode::kAborted);
  EXPECT_THAT(std::string(stale.message()), HasSubstr("no longer held"));
}

TEST_P(StoreTest, CompletedKeyExpiresAtItsTtl) {
  auto store = Open();
  auto b = store->Begin("k", Lease());
  ASSERT_TRUE(b.ok());
  ASSERT_TRUE(store->Complete("k", b->claim, Reply("r")).ok());
  clock_.Advance(kTtl - absl::Seconds(1));
  auto before = store->Begin("k", Lease());
  ASSERT_TRUE(before.ok());
  EXPECT_EQ(before->state, IdempotencyState::kCompleted);
  clock_.Advance(absl::Seconds(2));
  auto after = store->Begin("k", Lease());
  ASSERT_TRUE(after.ok());
  EXPECT_EQ(after->state, IdempotencyState::kNew);
  EXPECT_GE(counters_->expirations.load(), 1u);
}

TEST_P(StoreTest, SweepDropsExpiredKeys) {
  auto store = Open();
  for (int i = 0; i < 10; ++i) {
    std::string key = "k" + std::to_string(i);
    auto b = store->Begin(key, Lease());
    ASSERT_TRUE(b.ok());
    ASSERT_TRUE(store->Complete(key, b->claim, Reply("r")).ok());
  }
  EXPECT_EQ(store->Sweep(), 0u);
  clock_.Advance(kTtl + absl::Seconds(1));
  EXPECT_EQ(store->Sweep(), 10u);
}

TEST_P(StoreTest, ExpiredLeaseIsTakenOverAndTheOldClaimCannotComplete) {
  auto store = Open();
  auto holder = store->Begin("k", clock_.Now() + absl::Seconds(5));
  ASSERT_TRUE(holder.ok());
  clock_.Advance(absl::Seconds(6));
  auto taker = store->Begin("k", Lease());
  ASSERT_TRUE(taker.ok());
  EXPECT_EQ(taker->state, IdempotencyState::kNew);
  EXPECT_TRUE(taker->took_over);
  EXPECT_EQ(counters_->takeovers.load(), 1u);
  EXPECT_EQ(store->Complete("k", holder->claim, Reply("late")).code(), absl::StatusCode::kAborted);
  EXPECT_EQ(counters_->claims_lost.load(), 1u);
  ASSERT_TRUE(store->Complete("k", taker->claim, Reply("taker")).ok());
  auto done = store->Begin("k", Lease());
  ASSERT_TRUE(done.ok());
  EXPECT_EQ(done->outcome.data, "taker");
}

TEST_P(StoreTest, NamespacesNeverCollide) {
  auto a = Open("ops.v1.A/Do");
  auto b = Open("ops.v1.B/Do");
  auto ba = a->Begin("same-key", Lease());
  ASSERT_TRUE(ba.ok());
  ASSERT_TRUE(a->Complete("same-key", ba->claim, Reply("from A")).ok());
  auto bb = b->Begin("same-key", Lease());
  ASSERT_TRUE(bb.ok());
  EXPECT_EQ(bb->state, IdempotencyState::kNew);
}

TEST_P(StoreTest, WatchFiresOnCompleteAndOnRelease) {
  auto store = Open();
  auto b = store->Begin("k", Lease());
  ASSERT_TRUE(b.ok());
  int fired = 0;
  auto cancel = store->Watch("k", [&] { ++fired; });
  EXPECT_EQ(fired, 0);
  ASSERT_TRUE(store->Complete("k", b->claim, Reply("r")).ok());
  EXPECT_EQ(fired, 1);

  auto c = store->Begin("k2", Lease());
  ASSERT_TRUE(c.ok());
  int released = 0;
  auto cancel2 = store->Watch("k2", [&] { ++released; });
  ASSERT_TRUE(store->Release("k2", c->claim).ok());
  EXPECT_EQ(released, 1);

  // Cancelled watches stay silent; a watch on a settled key fires at once.
  auto d = store->Begin("k3", Lease());
  ASSERT_TRUE(d.ok());
  int cancelled = 0;
  auto cancel3 = store->Watch("k3", [&] { ++cancelled; });
  cancel3();
  ASSERT_TRUE(store->Complete("k3", d->claim, Reply("r")).ok());
  EXPECT_EQ(cancelled, 0);
  int at_once = 0;
  auto cancel4 = store->Watch("k3", [&] { ++at_once; });
  EXPECT_EQ(at_once, 1);
}

TEST_P(StoreTest, ConcurrentBeginOfOneKeyHasExactlyOneWinner) {
  auto store = Open();
  for (int round = 0; round < 20; ++round) {
    std::string key = "race-" + std::to_string(round);
    std::atomic<int> winners{0};
    std::atomic<int> errors{0};
    std::atomic<bool> go{false};
    std::vector<std::thread> threads;
    for (int t = 0; t < 8; ++t) {
      threads.emplace_back([&] {
        while (!go.load()) std::this_thread::yield();
        auto b = store->Begin(key, Lease());
        if (!b.ok()) {
          ++errors;
        } else if (b->state == IdempotencyState::kNew) {
          ++winners;
        }
      });
    }
    go = true;
    for (auto& t : threads) t.join();
    EXPECT_EQ(errors.load(), 0);
    EXPECT_EQ(winners.load(), 1) << key;
  }
}

INSTANTIATE_TEST_SUITE_P(Stores, StoreTest, ::testing::Values(Kind::kMemory, Kind::kSqlite),
                         [](const auto& info) {
                           return info.param == Kind::kMemory ? "Memory" : "Sqlite";
                         });

// ---- memory only ----

TEST(MemoryStoreTest, LruCapEvictsTheLeastRecentlyUsedAndCountsIt) {
  FakeClock clock;
  auto counters = std::make_shared<IdempotencyCounters>();
  IdempotencyStoreOptions options;
  options.ns = "op";
  options.max_entries = 3;
  options.clock = &clock;
  options.counters = counters;
  auto store = MakeMemoryIdempotencyStore(options);
  auto complete = [&](const std::string& key) {
    auto b = store->Begin(key, clock.Now() + kLease);
    ASSERT_TRUE(b.ok());
    ASSERT_EQ(b->state, IdempotencyState::kNew) << key;
    ASSERT_TRUE(store->Complete(key, b->claim, Reply(key)).ok());
  };
  complete("a");
  complete("b");
  complete("c");
  // Touch "a": "b" is now the coldest.
  ASSERT_EQ(store->Begin("a", clock.Now() + kLease)->state, IdempotencyState::kCompleted);
  complete("d");
  EXPECT_EQ(counters->evictions.load(), 1u);
  EXPECT_EQ(store->Begin("a", clock.Now() + kLease)->state, IdempotencyState::kCompleted);
  EXPECT_EQ(store->Begin("c", clock.Now() + kLease)->state, IdempotencyState::kCompleted);
  EXPECT_EQ(store->Begin("d", clock.Now() + kLease)->state, IdempotencyState::kCompleted);
  EXPECT_EQ(store->Begin("b", clock.Now() + kLease)->state, IdempotencyState::kNew);
}

TEST(MemoryStoreTest, RunningClaimsAreNotEvicted) {
  FakeClock clock;
  auto counters = std::make_shared<IdempotencyCounters>();
  IdempotencyStoreOptions options;
  options.ns = "op";
  options.max_entries = 2;
  options.clock = &clock;
  options.counters = counters;
  auto store = MakeMemoryIdempotencyStore(options);
  auto a = store->Begin("a", clock.Now() + kLease);
  auto b = store->Begin("b", clock.Now() + kLease);
  auto c = store->Begin("c", clock.Now() + kLease);
  ASSERT_TRUE(a.ok() && b.ok() && c.ok());
  EXPECT_EQ(counters->evictions.load(), 0u);
  // All three still hold their keys.
  EXPECT_EQ(store->Begin("a", clock.Now() + kLease)->state, IdempotencyState::kInProgress);
  EXPECT_TRUE(store->Complete("a", a->claim, Reply("a")).ok());
  EXPECT_TRUE(store->Complete("c", c->claim, Reply("c")).ok());
}

TEST(MemoryStoreTest, ManyKeysStayWithinTheCap) {
  FakeClock clock;
  auto counters = std::make_shared<IdempotencyCounters>();
  IdempotencyStoreOptions options;
  options.ns = "op";
  options.max_entries = 50'000;  // several shards
  options.clock = &clock;
  options.counters = counters;
  auto store = MakeMemoryIdempotencyStore(options);
  for (int i = 0; i < 60'000; ++i) {
    std::string key = "k" + std::to_string(i);
    auto b = store->Begin(key, clock.Now() + kLease);
    ASSERT_TRUE(b.ok());
    ASSERT_TRUE(store->Complete(key, b->claim, Reply("r")).ok());
  }
  EXPECT_GE(counters->evictions.load(), 10'000u);
  EXPECT_LE(counters->evictions.load(), 10'016u);
  EXPECT_EQ(store->Begin("k59999", clock.Now() + kLease)->state, IdempotencyState::kCompleted);
}

// ---- registry ----

TEST(IdempotencyStoreRegistryTest, MemoryIsBuiltInAndUnknownSchemesAreNamed) {
  IdempotencyStoreOptions options;
  options.ns = "op";
  auto& registry = IdempotencyStoreRegistry::Default();
  EXPECT_TRUE(registry.Has("memory"));
  EXPECT_TRUE(registry.Create("", options).ok());
  EXPECT_TRUE(registry.Create("memory", options).ok());
  auto bad = registry.Create("redis://127.0.0.1", options);
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(bad.status().message()), HasSubstr("unknown scheme \"redis\""));
  EXPECT_THAT(std::string(bad.status().message()), HasSubstr("memory"));
  EXPECT_EQ(registry.Create("memory:/x", options).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(IdempotencyStoreRegistryTest, LinkingTheAdapterRegistersSqlite) {
  auto& registry = IdempotencyStoreRegistry::Default();
  ASSERT_TRUE(registry.Has("sqlite"));
  IdempotencyStoreOptions options;
  options.ns = "op";
  std::string path = TempDbPath();
  auto store = registry.Create("sqlite:" + path, options);
  ASSERT_TRUE(store.ok()) << store.status();
  EXPECT_EQ(registry.Create("sqlite", options).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(registry.Register("sqlite", nullptr).code(), absl::StatusCode::kAlreadyExists);
  store->reset();
  std::filesystem::remove_all(std::filesystem::path(path).parent_path());
}

// ---- SQLite only ----

class SqliteStoreTest : public ::testing::Test {
 protected:
  void SetUp() override { path_ = TempDbPath(); }
  void TearDown() override {
    std::filesystem::remove_all(std::filesystem::path(path_).parent_path());
  }
  std::unique_ptr<IdempotencyStore> Open(const Clock* clock = nullptr) {
    IdempotencyStoreOptions options;
    options.ns = "ops.v1.Op/Do";
    options.ttl = kTtl;
    options.clock = clock;
    options.counters = counters_;
    auto store = MakeSqliteIdempotencyStore(path_, options);
    EXPECT_TRUE(store.ok()) << store.status();
    return store.ok() ? *std::move(store) : nullptr;
  }
  std::shared_ptr<IdempotencyCounters> counters_ = std::make_shared<IdempotencyCounters>();
  std::string path_;
};

TEST_F(SqliteStoreTest, CompletedKeySurvivesARestart) {
  FakeClock clock;
  {
    auto store = Open(&clock);
    auto b = store->Begin("order-1", clock.Now() + kLease);
    ASSERT_TRUE(b.ok());
    ASSERT_TRUE(store->Complete("order-1", b->claim, Reply("accepted")).ok());
  }
  auto reopened = Open(&clock);
  auto again = reopened->Begin("order-1", clock.Now() + kLease);
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(again->state, IdempotencyState::kCompleted);
  EXPECT_EQ(again->outcome.data, "accepted");
}

TEST_F(SqliteStoreTest, FileIsInWalMode) {
  auto store = Open();
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(path_.c_str(), &db), SQLITE_OK);
  sqlite3_stmt* stmt = nullptr;
  ASSERT_EQ(sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &stmt, nullptr), SQLITE_OK);
  ASSERT_EQ(sqlite3_step(stmt), SQLITE_ROW);
  EXPECT_STREQ(reinterpret_cast<const char*>(sqlite3_column_text(stmt, 0)), "wal");
  sqlite3_finalize(stmt);
  sqlite3_close(db);
}

TEST_F(SqliteStoreTest, ClaimOfAStoreThatIsGoneIsTakenOverAtOnce) {
  FakeClock clock;
  uint64_t old_claim;
  {
    auto crashed = Open(&clock);
    auto b = crashed->Begin("k", clock.Now() + kLease);
    ASSERT_TRUE(b.ok());
    old_claim = b->claim;
    // Destroyed without Complete or Release, as a killed process would.
  }
  auto store = Open(&clock);
  auto b = store->Begin("k", clock.Now() + kLease);
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(b->state, IdempotencyState::kNew);
  EXPECT_TRUE(b->took_over);
  EXPECT_NE(b->claim, old_claim);
}

TEST_F(SqliteStoreTest, ClaimOfADeadProcessIsTakenOverAtOnce) {
  FakeClock clock;
  pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    auto store = Open(&clock);
    auto b = store->Begin("k", clock.Now() + kLease);
    _exit(b.ok() && b->state == IdempotencyState::kNew ? 0 : 1);
  }
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  auto store = Open(&clock);
  auto b = store->Begin("k", clock.Now() + kLease);
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(b->state, IdempotencyState::kNew);
  EXPECT_TRUE(b->took_over);
}

// Two processes claim the same 500 keys at the same time through one file:
// every key is won exactly once, and each sees the other's completions.
TEST_F(SqliteStoreTest, TwoProcessesShareOneFile) {
  constexpr int kKeys = 500;
  { auto create = Open(); }  // schema and WAL before the race
  int pipefd[2];
  ASSERT_EQ(pipe(pipefd), 0);
  auto run = [&]() -> int {
    auto store = Open();
    if (!store) return -1;
    int won = 0;
    for (int i = 0; i < kKeys; ++i) {
      std::string key = "shared-" + std::to_string(i);
      auto b = store->Begin(key, absl::Now() + kLease);
      if (!b.ok()) return -1;
      if (b->state == IdempotencyState::kNew) {
        ++won;
        if (!store->Complete(key, b->claim, Reply(std::to_string(getpid()))).ok()) return -1;
      }
    }
    return won;
  };
  pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    close(pipefd[0]);
    int won = run();
    ssize_t n = write(pipefd[1], &won, sizeof won);
    _exit(n == sizeof won ? 0 : 1);
  }
  close(pipefd[1]);
  int parent_won = run();
  int child_won = -1;
  ASSERT_EQ(read(pipefd[0], &child_won, sizeof child_won), static_cast<ssize_t>(sizeof child_won));
  close(pipefd[0]);
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  ASSERT_GE(parent_won, 0);
  ASSERT_GE(child_won, 0);
  EXPECT_EQ(parent_won + child_won, kKeys);

  // Every key is completed, by one of the two.
  auto store = Open();
  int by_child = 0;
  for (int i = 0; i < kKeys; ++i) {
    auto b = store->Begin("shared-" + std::to_string(i), absl::Now() + kLease);
    ASSERT_TRUE(b.ok());
    ASSERT_EQ(b->state, IdempotencyState::kCompleted);
    if (b->outcome.data == std::to_string(child)) ++by_child;
  }
  EXPECT_EQ(by_child, child_won);
}

TEST_F(SqliteStoreTest, TransactionCommitsSideEffectsWithTheCompletion) {
  auto store = Open();
  auto b = store->Begin("k", absl::Now() + kLease);
  ASSERT_TRUE(b.ok());
  auto tx = store->NewTransaction("k", b->claim);
  ASSERT_NE(tx, nullptr);
  EXPECT_FALSE(tx->open());
  auto native = tx->Native();
  ASSERT_TRUE(native.ok()) << native.status();
  auto* db = static_cast<sqlite3*>(*native);
  ASSERT_EQ(sqlite3_exec(db,
                         "CREATE TABLE IF NOT EXISTS effects (k TEXT PRIMARY KEY);"
                         "INSERT INTO effects VALUES ('k')",
                         nullptr, nullptr, nullptr),
            SQLITE_OK);
  ASSERT_TRUE(tx->CommitWith(Reply("done")).ok());
  EXPECT_FALSE(tx->open());
  EXPECT_EQ(store->Begin("k", absl::Now() + kLease)->state, IdempotencyState::kCompleted);

  // Rolled back: neither the effect nor the completion remains.
  auto c = store->Begin("k2", absl::Now() + kLease);
  ASSERT_TRUE(c.ok());
  auto tx2 = store->NewTransaction("k2", c->claim);
  auto native2 = tx2->Native();
  ASSERT_TRUE(native2.ok());
  ASSERT_EQ(sqlite3_exec(static_cast<sqlite3*>(*native2), "INSERT INTO effects VALUES ('k2')",
                         nullptr, nullptr, nullptr),
            SQLITE_OK);
  tx2->Rollback();
  ASSERT_TRUE(store->Release("k2", c->claim).ok());
  EXPECT_EQ(store->Begin("k2", absl::Now() + kLease)->state, IdempotencyState::kNew);

  sqlite3* check = nullptr;
  ASSERT_EQ(sqlite3_open(path_.c_str(), &check), SQLITE_OK);
  sqlite3_stmt* stmt = nullptr;
  ASSERT_EQ(sqlite3_prepare_v2(check, "SELECT group_concat(k) FROM effects", -1, &stmt, nullptr),
            SQLITE_OK);
  ASSERT_EQ(sqlite3_step(stmt), SQLITE_ROW);
  EXPECT_STREQ(reinterpret_cast<const char*>(sqlite3_column_text(stmt, 0)), "k");
  sqlite3_finalize(stmt);
  sqlite3_close(check);
}

TEST_F(SqliteStoreTest, TransactionWhoseClaimWasTakenOverRollsBack) {
  FakeClock clock;
  auto store = Open(&clock);
  auto holder = store->Begin("k", clock.Now() + absl::Seconds(1));
  ASSERT_TRUE(holder.ok());
  auto tx = store->NewTransaction("k", holder->claim);
  clock.Advance(absl::Seconds(2));
  auto taker = store->Begin("k", clock.Now() + kLease);
  ASSERT_TRUE(taker.ok());
  ASSERT_TRUE(taker->took_over);
  auto native = tx->Native();
  ASSERT_TRUE(native.ok());
  ASSERT_EQ(sqlite3_exec(static_cast<sqlite3*>(*native),
                         "CREATE TABLE effects (k TEXT); INSERT INTO effects VALUES ('late')",
                         nullptr, nullptr, nullptr),
            SQLITE_OK);
  absl::Status s = tx->CommitWith(Reply("late"));
  EXPECT_EQ(s.code(), absl::StatusCode::kAborted);
  EXPECT_EQ(counters_->claims_lost.load(), 1u);
  // The table the late holder created went with its transaction.
  sqlite3* check = nullptr;
  ASSERT_EQ(sqlite3_open(path_.c_str(), &check), SQLITE_OK);
  EXPECT_NE(sqlite3_exec(check, "SELECT * FROM effects", nullptr, nullptr, nullptr), SQLITE_OK);
  sqlite3_close(check);
}

TEST_F(SqliteStoreTest, UnopenablePathIsUnavailableAndNamesTheSetting) {
  IdempotencyStoreOptions options;
  options.ns = "op";
  auto store = MakeSqliteIdempotencyStore("/nonexistent-dir-for-sure/x/idem.db", options);
  ASSERT_FALSE(store.ok());
  EXPECT_EQ(store.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(std::string(store.status().message()), HasSubstr("idempotency.store"));
}

TEST_F(SqliteStoreTest, GarbageFileIsAClearError) {
  {
    FILE* f = fopen(path_.c_str(), "w");
    ASSERT_NE(f, nullptr);
    fputs("this is not a database, just text long enough to fill a header.....................", f);
    fclose(f);
  }
  IdempotencyStoreOptions options;
  options.ns = "op";
  auto store = MakeSqliteIdempotencyStore(path_, options);
  ASSERT_FALSE(store.ok());
  EXPECT_THAT(std::string(store.status().message()), HasSubstr("sqlite"));
}

}  // namespace
}  // namespace switchboard
