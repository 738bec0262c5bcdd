#include "middleware/policy_util.h"

#include <cmath>

#include "absl/strings/cord.h"
#include "absl/strings/numbers.h"
#include "switchboard/internal/strings.h"
#include "switchboard/trace_context.h"

namespace switchboard {
namespace policy {

std::string ShortDuration(absl::Duration d) {
  if (d < absl::Milliseconds(1) && d > absl::ZeroDuration()) {
    return Cat(absl::ToInt64Microseconds(d), "us");
  }
  if (d < absl::Seconds(1)) return Cat(absl::ToInt64Milliseconds(d), "ms");
  double s = absl::ToDoubleSeconds(d);
  return Cat(std::round(s * 10) / 10, "s");
}

absl::Status ShedStatus(absl::StatusCode code, std::string message, absl::Duration retry_after) {
  absl::Status s(code, message);
  s.SetPayload(AsAbsl(kRetryAfterPayload),
               absl::Cord(Cat(absl::ToInt64Nanoseconds(std::max(retry_after, absl::ZeroDuration())))));
  return s;
}

std::optional<absl::Duration> ShedRetryAfter(const absl::Status& status) {
  auto p = status.GetPayload(AsAbsl(kRetryAfterPayload));
  if (!p.has_value()) return std::nullopt;
  int64_t nanos = 0;
  if (!absl::SimpleAtoi(std::string(*p), &nanos) || nanos < 0) return absl::ZeroDuration();
  return absl::Nanoseconds(nanos);
}

double UniformUnit() {
  // 53 random bits -> [0, 1).
  return static_cast<double>(RandomU64() >> 11) * (1.0 / 9007199254740992.0);
}

void FallbackRegistry::Set(std::string_view operation, RawFallback fallback) {
  internal::CallMutexLock lock(&mu_);
  if (!fallback) {
    auto it = fallbacks_.find(operation);
    if (it != fallbacks_.end()) fallbacks_.erase(it);
  } else {
    fallbacks_.insert_or_assign(std::string(operation), std::move(fallback));
  }
  size_.store(fallbacks_.size(), std::memory_order_release);
}

RawFallback FallbackRegistry::Get(std::string_view operation) const {
  if (size_.load(std::memory_order_acquire) == 0) return RawFallback();
  internal::CallMutexLock lock(&mu_);
  auto it = fallbacks_.find(operation);
  return it == fallbacks_.end() ? RawFallback() : it->second;
}

bool FallbackRegistry::Has(std::string_view operation) const {
  if (size_.load(std::memory_order_acquire) == 0) return false;
  internal::CallMutexLock lock(&mu_);
  return fallbacks_.find(operation) != fallbacks_.end();
}

}  // namespace policy

std::string_view BreakerStateName(BreakerState state) {
  switch (state) {
    case BreakerState::kClosed:
      return "closed";
    case BreakerState::kOpen:
      return "open";
    case BreakerState::kHalfOpen:
      return "half-open";
  }
  return "unknown";
}

PolicyCounters& PolicyStats::For(std::string_view operation) {
  absl::MutexLock lock(&mu_);
  auto it = ops_.find(operation);
  if (it == ops_.end()) {
    it = ops_.emplace(std::string(operation), std::make_unique<PolicyCounters>()).first;
  }
  return *it->second;
}

std::vector<PolicyCountersSnapshot> PolicyStats::Snapshot() const {
  std::vector<PolicyCountersSnapshot> out;
  absl::MutexLock lock(&mu_);
  out.reserve(ops_.size());
  for (const auto& [name, c] : ops_) {
    PolicyCountersSnapshot s;
    s.operation = name;
    s.deadline_exceeded = c->deadline_exceeded.load();
    s.deadline_expired_before_start = c->deadline_expired_before_start.load();
    s.retries = c->retries.load();
    s.retry_budget_exhausted = c->retry_budget_exhausted.load();
    s.retry_deadline_cutoff = c->retry_deadline_cutoff.load();
    s.retries_exhausted = c->retries_exhausted.load();
    s.breaker_state = static_cast<BreakerState>(c->breaker_state.load());
    s.breaker_opened = c->breaker_opened.load();
    s.breaker_half_opened = c->breaker_half_opened.load();
    s.breaker_closed = c->breaker_closed.load();
    s.breaker_rejections = c->breaker_rejections.load();
    s.fallbacks = c->fallbacks.load();
    s.bulkhead_active = c->bulkhead_active.load();
    s.bulkhead_queued = c->bulkhead_queued.load();
    s.bulkhead_rejections = c->bulkhead_rejections.load();
    s.rate_limited_caller = c->rate_limited_caller.load();
    s.rate_limited_handler = c->rate_limited_handler.load();
    s.dead_lettered = c->dead_lettered.load();
    s.dead_letters_replayed = c->dead_letters_replayed.load();
    out.push_back(std::move(s));
  }
  return out;
}

}  // namespace switchboard
