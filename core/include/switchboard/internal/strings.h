// strings.h: bridging std::string_view and Debian's abseil.
//
// Debian 12 builds abseil with ABSL_OPTION_USE_STD_STRING_VIEW=0, so
// absl::string_view is its own type and absl::StrCat / absl::Status do not
// take a std::string_view. Switchboard's API speaks std::string_view; these
// helpers convert at the boundary.
//
//   absl::InvalidArgumentError(Cat("operation ", op, " has no style"));
#pragma once

#include <string>
#include <string_view>
#include <type_traits>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"

namespace switchboard {

inline absl::string_view AsAbsl(std::string_view s) { return absl::string_view(s.data(), s.size()); }
inline std::string_view AsStd(absl::string_view s) { return std::string_view(s.data(), s.size()); }

namespace internal {
template <class T>
decltype(auto) ForCat(T&& v) {
  if constexpr (std::is_same_v<std::decay_t<T>, std::string_view>) {
    return AsAbsl(v);
  } else {
    return std::forward<T>(v);
  }
}
}  // namespace internal

// absl::StrCat that also takes std::string_view.
template <class... Args>
std::string Cat(Args&&... args) {
  return absl::StrCat(internal::ForCat(std::forward<Args>(args))...);
}

}  // namespace switchboard
