// attribute_names.h: which CloudEvents attribute names an envelope's wire
// forms carry as extensions.
#pragma once

#include <string_view>

namespace switchboard::internal {

// A CloudEvents attribute name: lower-case ASCII letters and digits, not
// empty. Extensions with other names are not sent.
[[nodiscard]] constexpr bool IsAttributeName(std::string_view name) {
  if (name.empty()) return false;
  for (char c : name) {
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'))) return false;
  }
  return true;
}

// Attributes with a field of their own in `Envelope`; an extension with one
// of these names would be ambiguous on the wire and is not sent.
[[nodiscard]] constexpr bool IsMappedAttribute(std::string_view name) {
  constexpr std::string_view kNames[] = {
      "id",         "source",        "specversion", "type",           "time",
      "datacontenttype", "subject",  "traceparent", "tracestate",     "idempotencykey",
      "expirytime", "correlationid", "replyto",     "attempt",        "style",
      "statuscode", "statusmessage"};
  for (std::string_view n : kNames) {
    if (n == name) return true;
  }
  return false;
}

}  // namespace switchboard::internal
