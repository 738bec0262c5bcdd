// percent_encoding.h: the percent-encoding of the CloudEvents header
// bindings, shared by the transports that carry attributes in text headers
// (gRPC metadata, NATS headers).
//
// Escaped: space, '"', '%' and every byte outside U+0021..U+007E, as %XY with
// upper-case hex digits. Decoding differs per binding (quoting, strictness)
// and stays with each transport.
#pragma once

#include <string>
#include <string_view>

namespace switchboard::internal {

// Whether PercentEncode would change `value`.
[[nodiscard]] bool NeedsPercentEncoding(std::string_view value);
// Appends the encoding of `value` to `out`: one append when nothing needs
// escaping, else one resize to the exact size.
void AppendPercentEncoded(std::string_view value, std::string* out);
[[nodiscard]] std::string PercentEncode(std::string_view value);

}  // namespace switchboard::internal
