// The store registry, the per-operation counters and the in-memory store.

#include <algorithm>
#include <list>

#include "absl/container/flat_hash_map.h"
#include "absl/hash/hash.h"
#include "absl/random/random.h"
#include "absl/strings/str_join.h"
#include "call_mutex.h"
#include "switchboard/clock.h"
#include "switchboard/context.h"
#include "switchboard/idempotency.h"
#include "switchboard/internal/strings.h"

// Defined by switchboard::idempotency (adapters/idempotency) when linked.
extern "C" __attribute__((weak)) void SwitchboardRegisterIdempotencyStores(
    switchboard::IdempotencyStoreRegistry* registry);

namespace switchboard {
namespace {

struct CountersTable {
  absl::Mutex mu;
  std::map<std::string, std::shared_ptr<IdempotencyCounters>, std::less<>> by_op
      ABSL_GUARDED_BY(mu);
};

CountersTable& Counters() {
  static CountersTable* table = new CountersTable();
  return *table;
}

uint64_t NewClaim() {
  thread_local absl::BitGen gen;
  // Never 0: 0 means "no claim".
  return absl::Uniform<uint64_t>(gen, 1, UINT64_MAX);
}

// One shard: a hash index into an LRU list (front = most recently used).
// Completed entries expire at their TTL; in-progress ones at their lease.
class MemoryStore final : public IdempotencyStore {
 public:
  explicit MemoryStore(const IdempotencyStoreOptions& options)
      : clock_(options.clock != nullptr ? options.clock : &Clock::Real()),
        ttl_(options.ttl),
        counters_(options.counters ? options.counters : IdempotencyCountersFor(options.ns)) {
    uint64_t max_entries = std::max<uint64_t>(1, options.max_entries);
    // Small caps get one shard so the LRU order is exact; large ones spread
    // the lock over up to 16 shards.
    size_t shards = static_cast<size_t>(std::clamp<uint64_t>(max_entries / 4096, 1, 16));
    // Rounded down: the store never holds more than max_entries.
    shard_cap_ = std::max<uint64_t>(1, max_entries / shards);
    shards_ = std::vector<Shard>(shards);
  }

  absl::StatusOr<IdempotencyBegin> Begin(std::string_view key, absl::Time lease_until) override {
    counters_->begins.fetch_add(1, std::memory_order_relaxed);
    absl::Time now = clock_->Now();
    Shard& shard = ShardOf(key);
    IdempotencyBegin result;
    std::vector<std::function<void()>> evicted_watchers;
    {
      internal::CallMutexLock lock(&shard.mu);
      auto it = shard.index.find(key);
      if (it != shard.index.end()) {
        auto entry = it->second;
        if (entry->expires > now) {
          shard.lru.splice(shard.lru.begin(), shard.lru, entry);
          if (entry->completed) {
            result.state = IdempotencyState::kCompleted;
            result.outcome = entry->outcome;
          } else {
            result.state = IdempotencyState::kInProgress;
            result.lease_until = entry->expires;
          }
          return result;
        }
        if (entry->completed) {
          counters_->expirations.fetch_add(1, std::memory_order_relaxed);
          Erase(shard, entry, &evicted_watchers);
        } else {
          // The holder's lease ran out: the key is ours now; its Complete
          // will be refused.
          counters_->takeovers.fetch_add(1, std::memory_order_relaxed);
          entry->claim = NewClaim();
          entry->expires = lease_until;
          shard.lru.splice(shard.lru.begin(), shard.lru, entry);
          result.claim = entry->claim;
          result.took_over = true;
          return result;
        }
      }
      shard.lru.emplace_front();
      Entry& e = shard.lru.front();
      e.key = std::string(key);
      e.claim = NewClaim();
      e.expires = lease_until;
      shard.index.emplace(std::string_view(e.key), shard.lru.begin());
      result.claim = e.claim;
      EvictOverCap(shard, now, &evicted_watchers);
    }
    for (auto& fn : evicted_watchers) fn();
    return result;
  }

  absl::Status Complete(std::string_view key, uint64_t claim,
                        const IdempotencyOutcome& outcome) override {
    absl::Time now = clock_->Now();
    Shard& shard = ShardOf(key);
    std::vector<std::function<void()>> watchers;
    {
      internal::CallMutexLock lock(&shard.mu);
      auto it = shard.index.find(key);
      if (it == shard.index.end() || it->second->completed || it->second->claim != claim) {
        counters_->claims_lost.fetch_add(1, std::memory_order_relaxed);
        return absl::AbortedError(
            Cat("idempotency key \"", key,
                "\" is no longer held by this call (its lease ended or it was evicted); raise "
                "`idempotency.in_progress_lease` or `idempotency.max_entries`"));
      }
      auto entry = it->second;
      entry->completed = true;
      entry->outcome = outcome;
      entry->expires = now + ttl_;
      shard.lru.splice(shard.lru.begin(), shard.lru, entry);
      for (auto& [id, fn] : entry->watchers) watchers.push_back(std::move(fn));
      entry->watchers.clear();
    }
    counters_->completions.fetch_add(1, std::memory_order_relaxed);
    for (auto& fn : watchers) fn();
    return absl::OkStatus();
  }

  absl::Status Release(std::string_view key, uint64_t claim) override {
    Shard& shard = ShardOf(key);
    std::vector<std::function<void()>> watchers;
    {
      internal::CallMutexLock lock(&shard.mu);
      auto it = shard.index.find(key);
      if (it == shard.index.end() || it->second->completed || it->second->claim != claim) {
        return absl::OkStatus();
      }
      Erase(shard, it->second, &watchers);
    }
    counters_->releases.fetch_add(1, std::memory_order_relaxed);
    for (auto& fn : watchers) fn();
    return absl::OkStatus();
  }

  std::function<void()> Watch(std::string_view key, std::function<void()> fn) override {
    Shard& shard = ShardOf(key);
    uint64_t id;
    {
      internal::CallMutexLock lock(&shard.mu);
      auto it = shard.index.find(key);
      if (it == shard.index.end() || it->second->completed) {
        id = 0;
      } else {
        id = ++shard.next_watch;
        it->second->watchers.emplace_back(id, std::move(fn));
      }
    }
    if (id == 0) {
      fn();
      return [] {};
    }
    return [&shard, key = std::string(key), id] {
      internal::CallMutexLock lock(&shard.mu);
      auto it = shard.index.find(key);
      if (it == shard.index.end()) return;
      auto& w = it->second->watchers;
      w.erase(std::remove_if(w.begin(), w.end(), [id](const auto& p) { return p.first == id; }),
              w.end());
    };
  }

  size_t Sweep() override {
    absl::Time now = clock_->Now();
    size_t dropped = 0;
    for (Shard& shard : shards_) {
      std::vector<std::function<void()>> watchers;
      {
        internal::CallMutexLock lock(&shard.mu);
        for (auto it = shard.lru.begin(); it != shard.lru.end();) {
          auto next = std::next(it);
          if (it->completed && it->expires <= now) {
            Erase(shard, it, &watchers);
            ++dropped;
          }
          it = next;
        }
      }
      for (auto& fn : watchers) fn();
    }
    counters_->expirations.fetch_add(dropped, std::memory_order_relaxed);
    return dropped;
  }

 private:
  struct Entry {
    std::string key;
    bool completed = false;
    uint64_t claim = 0;
    absl::Time expires;
    IdempotencyOutcome outcome;
    std::vector<std::pair<uint64_t, std::function<void()>>> watchers;
  };
  using Lru = std::list<Entry>;
  struct Shard {
    internal::CallMutex mu;  // taken twice per call (call_mutex.h)
    Lru lru ABSL_GUARDED_BY(mu);
    // Keys point into the list nodes, which never move. Open addressing: a
    // lookup in a store of 100,000 keys touches one group of slots, and an
    // insert allocates nothing until the table grows.
    absl::flat_hash_map<std::string_view, Lru::iterator> index ABSL_GUARDED_BY(mu);
    uint64_t next_watch ABSL_GUARDED_BY(mu) = 0;
  };

  // By the hash's top bits: the table in the shard places keys by its low
  // bits, which would otherwise be the same for every key of a shard.
  Shard& ShardOf(std::string_view key) {
    return shards_[(absl::Hash<std::string_view>()(key) >> 48) % shards_.size()];
  }

  static void Erase(Shard& shard, Lru::iterator entry, std::vector<std::function<void()>>* watchers)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(shard.mu) {
    for (auto& [id, fn] : entry->watchers) watchers->push_back(std::move(fn));
    shard.index.erase(std::string_view(entry->key));
    shard.lru.erase(entry);
  }

  // Drops from the cold end: expired entries first (they cost nothing), then
  // completed ones (counted as evictions). A running call's claim is kept:
  // dropping it would let a duplicate run beside it.
  void EvictOverCap(Shard& shard, absl::Time now, std::vector<std::function<void()>>* watchers)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(shard.mu) {
    constexpr int kMaxScan = 32;
    int scanned = 0;
    auto it = shard.lru.end();
    while (shard.lru.size() > shard_cap_ && it != shard.lru.begin() && scanned < kMaxScan) {
      --it;
      ++scanned;
      if (!it->completed && it->expires > now) continue;
      auto victim = it;
      it = std::next(it);
      if (victim->expires <= now) {
        counters_->expirations.fetch_add(1, std::memory_order_relaxed);
      } else {
        counters_->evictions.fetch_add(1, std::memory_order_relaxed);
      }
      Erase(shard, victim, watchers);
    }
  }

  const Clock* clock_;
  absl::Duration ttl_;
  std::shared_ptr<IdempotencyCounters> counters_;
  size_t shard_cap_ = 1;
  std::vector<Shard> shards_;
};

absl::StatusOr<std::unique_ptr<IdempotencyStore>> MakeMemoryFromSpec(
    std::string_view location, const IdempotencyStoreOptions& options) {
  if (!location.empty()) {
    return absl::InvalidArgumentError(Cat("idempotency store \"memory:", location,
                                          "\": the memory store takes no location; "
                                          "write `store: memory`"));
  }
  return MakeMemoryIdempotencyStore(options);
}

}  // namespace

std::shared_ptr<IdempotencyCounters> IdempotencyCountersFor(std::string_view operation) {
  CountersTable& t = Counters();
  absl::MutexLock lock(&t.mu);
  auto it = t.by_op.find(operation);
  if (it != t.by_op.end()) return it->second;
  auto counters = std::make_shared<IdempotencyCounters>();
  t.by_op.emplace(std::string(operation), counters);
  return counters;
}

void ForEachIdempotencyCounters(
    const std::function<void(const std::string& operation, const IdempotencyCounters&)>& fn) {
  std::vector<std::pair<std::string, std::shared_ptr<IdempotencyCounters>>> all;
  {
    CountersTable& t = Counters();
    absl::MutexLock lock(&t.mu);
    all.assign(t.by_op.begin(), t.by_op.end());
  }
  for (const auto& [op, c] : all) fn(op, *c);
}

IdempotencyTransaction* IdempotencyTransactionOf(const Context& ctx) {
  return static_cast<IdempotencyTransaction*>(ctx.attachment(kIdempotencyTransactionAttachment));
}

std::unique_ptr<IdempotencyStore> MakeMemoryIdempotencyStore(
    const IdempotencyStoreOptions& options) {
  return std::make_unique<MemoryStore>(options);
}

IdempotencyStoreRegistry& IdempotencyStoreRegistry::Default() {
  static IdempotencyStoreRegistry* registry = [] {
    auto* r = new IdempotencyStoreRegistry();
    (void)r->Register("memory", &MakeMemoryFromSpec);
    if (SwitchboardRegisterIdempotencyStores != nullptr) SwitchboardRegisterIdempotencyStores(r);
    return r;
  }();
  return *registry;
}

absl::Status IdempotencyStoreRegistry::Register(std::string scheme,
                                                IdempotencyStoreFactory factory) {
  absl::MutexLock lock(&mu_);
  if (!factories_.emplace(scheme, std::move(factory)).second) {
    return absl::AlreadyExistsError(
        Cat("idempotency store scheme \"", scheme, "\" is already registered"));
  }
  return absl::OkStatus();
}

bool IdempotencyStoreRegistry::Has(std::string_view scheme) const {
  absl::MutexLock lock(&mu_);
  return factories_.find(scheme) != factories_.end();
}

absl::StatusOr<std::unique_ptr<IdempotencyStore>> IdempotencyStoreRegistry::Create(
    std::string_view spec, const IdempotencyStoreOptions& options) const {
  if (spec.empty()) spec = "memory";
  size_t colon = spec.find(':');
  std::string_view scheme = spec.substr(0, colon);
  std::string_view location = colon == std::string_view::npos ? "" : spec.substr(colon + 1);
  IdempotencyStoreFactory factory;
  {
    absl::MutexLock lock(&mu_);
    auto it = factories_.find(scheme);
    if (it == factories_.end()) {
      std::vector<std::string> known;
      for (const auto& [s, _] : factories_) known.push_back(s);
      return absl::NotFoundError(Cat("idempotency store \"", spec, "\": unknown scheme \"", scheme,
                                     "\"; this build knows: ", absl::StrJoin(known, ", "),
                                     " (link switchboard::idempotency for sqlite)"));
    }
    factory = it->second;
  }
  return factory(location, options);
}

}  // namespace switchboard
