#include "switchboard/status.h"

#include <array>
#include <cctype>
#include <string>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"

namespace switchboard {
namespace {

constexpr std::array<std::string_view, 17> kNames = {
    "OK",        "CANCELLED",          "UNKNOWN",           "INVALID_ARGUMENT",
    "DEADLINE_EXCEEDED", "NOT_FOUND",  "ALREADY_EXISTS",    "PERMISSION_DENIED",
    "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION", "ABORTED", "OUT_OF_RANGE",
    "UNIMPLEMENTED", "INTERNAL",       "UNAVAILABLE",       "DATA_LOSS",
    "UNAUTHENTICATED"};

}  // namespace

bool IsRetryable(const absl::Status& status) {
  switch (status.code()) {
    case absl::StatusCode::kUnavailable:
    case absl::StatusCode::kDeadlineExceeded:
    case absl::StatusCode::kResourceExhausted:
    case absl::StatusCode::kAborted:
      return true;
    default:
      return false;
  }
}

bool CountsAsFailure(const absl::Status& status) {
  switch (status.code()) {
    case absl::StatusCode::kUnavailable:
    case absl::StatusCode::kDeadlineExceeded:
    case absl::StatusCode::kResourceExhausted:
    case absl::StatusCode::kAborted:
    case absl::StatusCode::kInternal:
    case absl::StatusCode::kUnknown:
    case absl::StatusCode::kDataLoss:
      return true;
    default:
      return false;
  }
}

std::string_view CodeName(absl::StatusCode code) {
  int i = static_cast<int>(code);
  if (i < 0 || i >= static_cast<int>(kNames.size())) return "UNKNOWN";
  return kNames[i];
}

bool ParseCode(std::string_view text, absl::StatusCode* code) {
  int n;
  if (absl::SimpleAtoi(absl::string_view(text.data(), text.size()), &n)) {
    if (n < 0 || n >= static_cast<int>(kNames.size())) return false;
    *code = static_cast<absl::StatusCode>(n);
    return true;
  }
  std::string upper = absl::AsciiStrToUpper(absl::string_view(text.data(), text.size()));
  for (size_t i = 0; i < kNames.size(); ++i) {
    if (kNames[i] == upper) {
      *code = static_cast<absl::StatusCode>(i);
      return true;
    }
  }
  return false;
}

absl::StatusCode CodeFromInt(int code) {
  if (code < 0 || code >= static_cast<int>(kNames.size())) return absl::StatusCode::kUnknown;
  return static_cast<absl::StatusCode>(code);
}

}  // namespace switchboard
