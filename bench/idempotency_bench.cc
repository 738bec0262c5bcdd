// Idempotency stores: the in-memory store's lookups/s (a duplicate answered
// from the store) and claim+complete/s, the SQLite store's begin+complete/s
// (two commits per call) and a transactional-inbox call (begin, handler
// write in the store's transaction, commit with the completion).
//
//   build/bench/idempotency_bench --benchmark_counters_tabular=true

#include <sqlite3.h>

#include <atomic>
#include <filesystem>
#include <string>
#include <vector>

#include "benchmark/benchmark.h"
#include "switchboard/envelope.h"
#include "switchboard/idempotency.h"
#include "switchboard/idempotency/sqlite_store.h"

namespace switchboard {
namespace {

constexpr int kPrefilled = 100'000;
constexpr absl::Duration kLease = absl::Seconds(60);

IdempotencyOutcome Outcome() {
  IdempotencyOutcome o;
  o.data = std::string(64, 'r');
  o.content_type = "application/protobuf";
  return o;
}

std::string Key(int i) { return "order-" + std::to_string(i); }

IdempotencyStoreOptions Options() {
  IdempotencyStoreOptions o;
  o.ns = "bench.v1.Orders/Place";
  o.max_entries = 1'000'000;
  o.counters = std::make_shared<IdempotencyCounters>();
  return o;
}

std::string TempDb() {
  auto dir = std::filesystem::temp_directory_path() / ("sb-idem-bench-" + NewMessageId());
  std::filesystem::create_directories(dir);
  return (dir / "idem.db").string();
}

void Fill(IdempotencyStore& store, int n) {
  for (int i = 0; i < n; ++i) {
    auto b = store.Begin(Key(i), absl::Now() + kLease);
    if (b.ok() && b->state == IdempotencyState::kNew)
      (void)store.Complete(Key(i), b->claim, Outcome());
  }
}

// ---- memory ----

IdempotencyStore* MemoryPrefilled() {
  static IdempotencyStore* store = [] {
    auto s = MakeMemoryIdempotencyStore(Options()).release();
    Fill(*s, kPrefilled);
    return s;
  }();
  return store;
}

void BM_MemoryLookupCompleted(benchmark::State& state) {
  IdempotencyStore* store = MemoryPrefilled();
  std::vector<std::string> keys;
  for (int i = 0; i < 4096; ++i)
    keys.push_back(Key((i * 7919 + state.thread_index()) % kPrefilled));
  absl::Time lease = absl::Now() + kLease;
  size_t i = 0;
  for (auto _ : state) {
    auto b = store->Begin(keys[i++ & 4095], lease);
    benchmark::DoNotOptimize(b);
  }
  state.counters["lookups/s"] =
      benchmark::Counter(static_cast<double>(state.iterations()), benchmark::Counter::kIsRate);
}
BENCHMARK(BM_MemoryLookupCompleted)->Threads(1)->Threads(2)->UseRealTime();

void BM_MemoryBeginComplete(benchmark::State& state) {
  static std::atomic<int> next{kPrefilled};
  IdempotencyStore* store = MemoryPrefilled();
  for (auto _ : state) {
    std::string key = Key(next.fetch_add(1, std::memory_order_relaxed));
    auto b = store->Begin(key, absl::Now() + kLease);
    (void)store->Complete(key, b->claim, Outcome());
  }
  state.counters["calls/s"] =
      benchmark::Counter(static_cast<double>(state.iterations()), benchmark::Counter::kIsRate);
}
BENCHMARK(BM_MemoryBeginComplete)->Threads(1)->Threads(2)->UseRealTime();

// ---- SQLite (WAL, synchronous=NORMAL) ----

struct SqliteFixture {
  std::string path = TempDb();
  std::unique_ptr<IdempotencyStore> store;
  SqliteFixture() {
    auto s = MakeSqliteIdempotencyStore(path, Options());
    if (s.ok()) store = *std::move(s);
  }
  ~SqliteFixture() {
    store.reset();
    std::filesystem::remove_all(std::filesystem::path(path).parent_path());
  }
};

void BM_SqliteLookupCompleted(benchmark::State& state) {
  SqliteFixture f;
  if (!f.store) {
    state.SkipWithError("cannot open the SQLite store");
    return;
  }
  constexpr int kKeys = 10'000;
  Fill(*f.store, kKeys);
  absl::Time lease = absl::Now() + kLease;
  int i = 0;
  for (auto _ : state) {
    auto b = f.store->Begin(Key(i++ % kKeys), lease);
    benchmark::DoNotOptimize(b);
  }
  state.counters["lookups/s"] =
      benchmark::Counter(static_cast<double>(state.iterations()), benchmark::Counter::kIsRate);
}
BENCHMARK(BM_SqliteLookupCompleted)->UseRealTime();

void BM_SqliteBeginComplete(benchmark::State& state) {
  SqliteFixture f;
  if (!f.store) {
    state.SkipWithError("cannot open the SQLite store");
    return;
  }
  int i = 0;
  for (auto _ : state) {
    std::string key = Key(i++);
    auto b = f.store->Begin(key, absl::Now() + kLease);
    if (!b.ok() || !f.store->Complete(key, b->claim, Outcome()).ok()) {
      state.SkipWithError("store error");
      return;
    }
  }
  state.counters["calls/s"] =
      benchmark::Counter(static_cast<double>(state.iterations()), benchmark::Counter::kIsRate);
}
BENCHMARK(BM_SqliteBeginComplete)->UseRealTime();

void BM_SqliteTransactionalInbox(benchmark::State& state) {
  SqliteFixture f;
  if (!f.store) {
    state.SkipWithError("cannot open the SQLite store");
    return;
  }
  {
    sqlite3* db = nullptr;
    sqlite3_open(f.path.c_str(), &db);
    sqlite3_exec(db, "CREATE TABLE counter (n INTEGER); INSERT INTO counter VALUES (0);", nullptr,
                 nullptr, nullptr);
    sqlite3_close(db);
  }
  int i = 0;
  for (auto _ : state) {
    std::string key = Key(i++);
    auto b = f.store->Begin(key, absl::Now() + kLease);
    auto tx = f.store->NewTransaction(key, b->claim);
    auto native = tx->Native();
    if (!native.ok()) {
      state.SkipWithError("no transaction");
      return;
    }
    sqlite3_exec(static_cast<sqlite3*>(*native), "UPDATE counter SET n = n + 1", nullptr, nullptr,
                 nullptr);
    if (!tx->CommitWith(Outcome()).ok()) {
      state.SkipWithError("commit failed");
      return;
    }
  }
  state.counters["calls/s"] =
      benchmark::Counter(static_cast<double>(state.iterations()), benchmark::Counter::kIsRate);
}
BENCHMARK(BM_SqliteTransactionalInbox)->UseRealTime();

}  // namespace
}  // namespace switchboard

BENCHMARK_MAIN();
