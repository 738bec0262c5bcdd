// sv.h: Debian's abseil is built with its own absl::string_view (not
// std::string_view), so std::string_view arguments to absl string functions
// need this conversion.
#pragma once

#include <string_view>

#include "absl/strings/string_view.h"

namespace switchboard::nats {

inline absl::string_view Sv(std::string_view s) { return absl::string_view(s.data(), s.size()); }

}  // namespace switchboard::nats
