// reconnect_backoff.h: when the AMQP transport tries to connect again.
//
// Attempts are counted from the last connection that opened (0 = the first
// attempt after the loss). Each round tries every URL once; the first round
// goes at once, and each later round waits a random time between `initial`
// and a bound that starts at `initial` and doubles per round up to `max`,
// so that the clients of one restarted broker do not all come back in the
// same millisecond.
//
// Thread safety: a pure function.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>

#include "absl/time/time.h"

namespace switchboard::amqp {

// The wait before attempt number `attempt` over `urls` URLs (>= 1);
// `random` is any uniformly random number.
inline absl::Duration ReconnectDelay(uint64_t attempt, size_t urls, absl::Duration initial,
                                     absl::Duration max, uint64_t random) {
  if (urls == 0) urls = 1;
  if (attempt < urls || attempt % urls != 0) return absl::ZeroDuration();
  const uint64_t round = attempt / urls;  // >= 1
  absl::Duration bound = initial;
  for (uint64_t i = 1; i < round && bound < max; ++i) bound *= 2;
  bound = std::min(bound, max);
  const int64_t lo = std::max<int64_t>(0, absl::ToInt64Milliseconds(initial));
  const int64_t hi = std::max(lo, absl::ToInt64Milliseconds(bound));
  return absl::Milliseconds(lo + static_cast<int64_t>(random % static_cast<uint64_t>(hi - lo + 1)));
}

}  // namespace switchboard::amqp
