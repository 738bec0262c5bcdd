// status.h: the error model.
//
// Every boundary returns absl::Status / absl::StatusOr<T> with canonical
// codes (numerically equal to gRPC's). `IsRetryable` is the one place that
// decides whether a failure may be retried; retries, redelivery and circuit
// breakers all ask it.
#pragma once

#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace switchboard {

// Unavailable, DeadlineExceeded (only while budget remains), ResourceExhausted,
// Aborted and Internal/Unknown raised by infrastructure are retryable; business
// outcomes (InvalidArgument, NotFound, AlreadyExists, PermissionDenied,
// FailedPrecondition, OutOfRange, Unimplemented, Unauthenticated, Cancelled)
// are not.
[[nodiscard]] bool IsRetryable(const absl::Status& status);

// Whether a failure counts against a circuit breaker: infrastructure failures
// do, business errors do not.
[[nodiscard]] bool CountsAsFailure(const absl::Status& status);

// "DEADLINE_EXCEEDED" etc.; absl::StatusCodeToString spelled like gRPC.
[[nodiscard]] std::string_view CodeName(absl::StatusCode code);

// Parses "DEADLINE_EXCEEDED" / "deadline_exceeded" / "4"; false if unknown.
[[nodiscard]] bool ParseCode(std::string_view text, absl::StatusCode* code);

// Clamps a code read from the wire into the canonical range (unknown -> kUnknown).
[[nodiscard]] absl::StatusCode CodeFromInt(int code);

}  // namespace switchboard
