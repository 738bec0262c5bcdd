#include "rollout.h"

#include <cmath>

#include "switchboard/internal/strings.h"
#include "switchboard/telemetry.h"

namespace switchboard::rollout {

uint32_t Bucket(std::string_view key) {
  uint64_t h = 14695981039346656037ull;
  for (unsigned char c : key) {
    h ^= c;
    h *= 1099511628211ull;
  }
  return static_cast<uint32_t>(h % kBuckets);
}

bool TakesRollout(std::string_view idempotency_key, double percent) {
  if (!(percent > 0)) return false;
  if (percent >= 100) return true;
  auto threshold = static_cast<uint32_t>(std::lround(percent * (kBuckets / 100)));
  return Bucket(idempotency_key) < threshold;
}

std::string RuntimeKey(std::string_view operation) { return Cat(operation, kSuffix); }

std::optional<std::string_view> OperationOf(std::string_view key) {
  if (!key.ends_with(kSuffix)) return std::nullopt;
  return key.substr(0, key.size() - kSuffix.size());
}

v1::OperationBinding DerivedBinding(const v1::OperationBinding& binding) {
  v1::OperationBinding derived = binding;
  derived.clear_rollout();
  derived.set_style(binding.rollout().style());
  derived.set_reply(binding.rollout().reply());
  if (!binding.rollout().transport().empty()) derived.set_transport(binding.rollout().transport());
  return derived;
}

void CountPath(Telemetry& telemetry, const CallSite& site, bool rollout) {
  telemetry
      .GetCounter(kRolloutCalls, OperationLabels(site, {{"path", rollout ? "rollout" : "primary"}}),
                  "Calls of an operation under rollout, by the path they took")
      .Increment();
}

}  // namespace switchboard::rollout
