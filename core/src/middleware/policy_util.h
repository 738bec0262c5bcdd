// policy_util.h: what the policy middleware share: duration conversion, the
// "shed, retry after" status marker, and the per-node fallback registry.
#pragma once

#include <atomic>
#include <map>
#include <optional>
#include <string>
#include <string_view>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/time/time.h"
#include "call_mutex.h"
#include "google/protobuf/duration.pb.h"
#include "switchboard/policies.h"

namespace switchboard::policy {

inline absl::Duration FromProto(const google::protobuf::Duration& d) {
  return absl::Seconds(d.seconds()) + absl::Nanoseconds(d.nanos());
}

// Proto duration, or `fallback` when unset or not positive.
inline absl::Duration DurationOr(bool has, const google::protobuf::Duration& d,
                                 absl::Duration fallback) {
  if (!has) return fallback;
  absl::Duration v = FromProto(d);
  return v > absl::ZeroDuration() ? v : fallback;
}

// "1.5s", "250ms": short human text for error messages.
std::string ShortDuration(absl::Duration d);

// A status payload that marks work refused for load (bulkhead full, handler
// rate limit): the node redelivers such a command or event after the given
// delay without counting it as a failed delivery attempt toward
// dead-lettering.
inline constexpr std::string_view kRetryAfterPayload = "switchboard/retry-after";

[[nodiscard]] absl::Status ShedStatus(absl::StatusCode code, std::string message,
                                      absl::Duration retry_after);
// The delay carried by a ShedStatus, if `status` is one.
[[nodiscard]] std::optional<absl::Duration> ShedRetryAfter(const absl::Status& status);

// Uniform in [0, 1): the jitter source (thread-local generator).
double UniformUnit();

// Per-node fallbacks of the circuit breaker, by operation.
class FallbackRegistry {
 public:
  void Set(std::string_view operation, RawFallback fallback);
  // Empty function when none.
  RawFallback Get(std::string_view operation) const;
  // Asked on every call through a breaker: no lock while no fallback is set.
  bool Has(std::string_view operation) const;

 private:
  mutable internal::CallMutex mu_;
  std::map<std::string, RawFallback, std::less<>> fallbacks_ ABSL_GUARDED_BY(mu_);
  std::atomic<size_t> size_{0};  // fallbacks_.size()
};

}  // namespace switchboard::policy
