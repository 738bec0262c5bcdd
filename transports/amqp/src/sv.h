// sv.h: Debian's abseil has its own absl::string_view (not
// std::string_view), so std::string_view values passed to absl string
// functions go through Sv().
#pragma once

#include <string_view>

#include "absl/strings/string_view.h"

namespace switchboard::amqp {

inline absl::string_view Sv(std::string_view s) { return absl::string_view(s.data(), s.size()); }

}  // namespace switchboard::amqp
