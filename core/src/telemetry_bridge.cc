#include "telemetry_bridge.h"

#include <map>
#include <string>
#include <utility>
#include <vector>

#include "builtin_middleware.h"
#include "switchboard/idempotency.h"
#include "switchboard/policies.h"
#include "switchboard/telemetry.h"

namespace switchboard {
namespace {

// Labels of `operation` as its call metrics have them (style and transport
// from the operations this Telemetry has seen; empty when it saw none).
class LabelMaker {
 public:
  explicit LabelMaker(const Telemetry& telemetry) {
    for (OperationInfo& op : telemetry.Operations()) ops_.emplace(op.operation, std::move(op));
  }
  MetricLabels For(const std::string& operation, MetricLabels extra = {}) const {
    MetricLabels labels;
    auto it = ops_.find(operation);
    labels.emplace_back("operation", operation);
    labels.emplace_back("style", it == ops_.end() ? "" : std::string(StyleName(it->second.style)));
    labels.emplace_back("transport", it == ops_.end() ? "" : it->second.transport);
    for (auto& l : extra) labels.push_back(std::move(l));
    return labels;
  }

 private:
  std::map<std::string, OperationInfo> ops_;
};

class Families {
 public:
  void Add(std::string_view name, MetricType type, std::string_view help, MetricLabels labels,
           double value) {
    auto it = index_.find(std::string(name));
    if (it == index_.end()) {
      MetricFamily f;
      f.name = std::string(name);
      f.type = type;
      f.help = std::string(help);
      it = index_.emplace(f.name, families_.size()).first;
      families_.push_back(std::move(f));
    }
    MetricSample s;
    s.labels = std::move(labels);
    s.value = value;
    families_[it->second].samples.push_back(std::move(s));
  }
  void MoveTo(std::vector<MetricFamily>* out) {
    for (auto& f : families_) out->push_back(std::move(f));
  }

 private:
  std::map<std::string, size_t> index_;
  std::vector<MetricFamily> families_;
};

void CollectPolicyStats(const Telemetry& telemetry, const PolicyStats& stats,
                        std::vector<MetricFamily>* out) {
  LabelMaker labels(telemetry);
  Families f;
  constexpr MetricType kC = MetricType::kCounter;
  constexpr MetricType kG = MetricType::kGauge;
  for (const PolicyCountersSnapshot& s : stats.Snapshot()) {
    auto l = [&](MetricLabels extra = {}) { return labels.For(s.operation, std::move(extra)); };
    auto d = [](auto v) { return static_cast<double>(v); };
    f.Add("switchboard_deadline_exceeded_total", kC, "Calls that ended DeadlineExceeded", l(),
          d(s.deadline_exceeded));
    f.Add("switchboard_expired_before_start_total", kC,
          "Received work refused because its deadline had passed", l(),
          d(s.deadline_expired_before_start));
    f.Add(metric::kRetries, kC, "Attempts after the first (client retries)", l(), d(s.retries));
    f.Add("switchboard_retry_budget_exhausted_total", kC, "Retries refused by the retry budget",
          l(), d(s.retry_budget_exhausted));
    f.Add("switchboard_retries_exhausted_total", kC, "Calls that used every attempt and failed",
          l(), d(s.retries_exhausted));
    f.Add(metric::kBreakerState, kG, "Circuit breaker state: 0 closed, 1 half-open, 2 open", l(),
          d(static_cast<int>(s.breaker_state)));
    f.Add(metric::kBreakerTransitions, kC, "Circuit breaker state changes", l({{"to", "open"}}),
          d(s.breaker_opened));
    f.Add(metric::kBreakerTransitions, kC, "", l({{"to", "half_open"}}), d(s.breaker_half_opened));
    f.Add(metric::kBreakerTransitions, kC, "", l({{"to", "closed"}}), d(s.breaker_closed));
    f.Add("switchboard_breaker_rejections_total", kC, "Calls failed fast by an open breaker", l(),
          d(s.breaker_rejections));
    f.Add("switchboard_fallbacks_total", kC, "Calls answered by the breaker's fallback", l(),
          d(s.fallbacks));
    f.Add("switchboard_bulkhead_active", kG, "Handler executions holding a bulkhead slot", l(),
          d(s.bulkhead_active));
    f.Add("switchboard_bulkhead_queued_total", kC, "Executions that waited for a bulkhead slot",
          l(), d(s.bulkhead_queued));
    f.Add(metric::kBulkheadRejections, kC, "Executions shed by a full bulkhead", l(),
          d(s.bulkhead_rejections));
    f.Add(metric::kRateLimitRejections, kC, "Calls refused by a rate limit",
          l({{"side", "client"}}), d(s.rate_limited_caller));
    f.Add(metric::kRateLimitRejections, kC, "", l({{"side", "server"}}), d(s.rate_limited_handler));
    f.Add(metric::kDeadLetters, kC, "Deliveries moved to the dead-letter address", l(),
          d(s.dead_lettered));
    f.Add("switchboard_dead_letters_replayed_total", kC, "Dead letters sent again", l(),
          d(s.dead_letters_replayed));
  }
  f.MoveTo(out);
}

void CollectIdempotency(const Telemetry& telemetry, std::vector<MetricFamily>* out) {
  LabelMaker labels(telemetry);
  Families f;
  constexpr MetricType kC = MetricType::kCounter;
  ForEachIdempotencyCounters([&](const std::string& op, const IdempotencyCounters& c) {
    auto v = [](const std::atomic<uint64_t>& a) {
      return static_cast<double>(a.load(std::memory_order_relaxed));
    };
    f.Add(metric::kDedupHits, kC, "Duplicates answered from the idempotency store", labels.For(op),
          v(c.dedup_hits));
    f.Add("switchboard_idempotency_in_progress_waits_total", kC,
          "Duplicates that arrived while the first was running", labels.For(op),
          v(c.in_progress_waits));
    f.Add("switchboard_idempotency_store_errors_total", kC, "Idempotency store failures",
          labels.For(op), v(c.store_errors));
    f.Add("switchboard_idempotency_evictions_total", kC,
          "Idempotency entries dropped by the size cap before their TTL", labels.For(op),
          v(c.evictions));
  });
  f.MoveTo(out);
}

}  // namespace

void ExportPolicyCounters(const std::shared_ptr<NodeServices>& services) {
  Telemetry* telemetry = services->telemetry.get();
  std::weak_ptr<PolicyStats> stats = services->policy_stats;
  // The collector lives in telemetry's registry, so `telemetry` outlives it.
  telemetry->metrics().AddCollector([telemetry, stats](std::vector<MetricFamily>* out) {
    if (std::shared_ptr<PolicyStats> s = stats.lock()) CollectPolicyStats(*telemetry, *s, out);
  });
  if (!telemetry->MarkOnce("idempotency-counters")) return;
  telemetry->metrics().AddCollector(
      [telemetry](std::vector<MetricFamily>* out) { CollectIdempotency(*telemetry, out); });
}

}  // namespace switchboard
