// rollout.h: splitting an operation's calls between its binding and a second
// one (`rollout:` in the config) during a migration.
//
// The choice is a pure function of the call's idempotency key, so a retry,
// a redelivery or a caller repeating the call with the same key takes the
// same path, and the receiver's idempotency store sees one key whichever
// style carried it:
//
//   if (rollout::TakesRollout(env.idempotency_key, binding.rollout().percent())) ...
//
// The node runs the second binding as its own operation runtime under the
// key `<operation>#rollout` (RuntimeKey); DerivedBinding gives its binding.
//
// Thread safety: pure functions, except CountPath (thread-safe counters).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "switchboard/middleware.h"
#include "switchboard/v1/config.pb.h"

namespace switchboard {

class Telemetry;

namespace rollout {

// Counter; labels operation, style, transport (of the path taken) and path
// (primary|rollout): the calls each side of a rollout carried.
inline constexpr std::string_view kRolloutCalls = "switchboard_rollout_calls_total";
inline constexpr std::string_view kSuffix = "#rollout";
inline constexpr uint32_t kBuckets = 10000;

// A stable 64-bit FNV-1a of `key` modulo kBuckets: the same on every host,
// build and run.
[[nodiscard]] uint32_t Bucket(std::string_view key);

// True when the call keyed `idempotency_key` goes to the rollout binding:
// Bucket(key) < percent * 100 (percent on the 0..100 scale; 0.01% steps).
[[nodiscard]] bool TakesRollout(std::string_view idempotency_key, double percent);

// The runtime key of an operation's rollout binding.
[[nodiscard]] std::string RuntimeKey(std::string_view operation);
// The operation of a rollout runtime key; nullopt for any other name.
[[nodiscard]] std::optional<std::string_view> OperationOf(std::string_view key);

// The second binding: style, reply and transport from the rollout (its
// transport defaulting to the binding's), policy and address from the
// binding; no rollout of its own.
[[nodiscard]] v1::OperationBinding DerivedBinding(const v1::OperationBinding& binding);

// Counts one call on `site` (the path taken) in kRolloutCalls.
void CountPath(Telemetry& telemetry, const CallSite& site, bool rollout);

}  // namespace rollout
}  // namespace switchboard
