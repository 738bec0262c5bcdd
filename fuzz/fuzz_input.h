// fuzz_input.h: splits a fuzz input into header pairs and a body, shared by
// the targets whose decoder reads name/value pairs (NATS headers, gRPC
// metadata, AMQP application-properties).
//
// Format (readable, so seed corpora are plain text): lines "name: value"
// separated by '\n' (a line without ':' is a name with an empty value); an
// empty line ends the headers and everything after it is the body.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace switchboard::fuzz {

struct HeaderInput {
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
};

inline HeaderInput SplitHeaders(const uint8_t* data, size_t size) {
  HeaderInput out;
  std::string_view rest(reinterpret_cast<const char*>(data), size);
  while (!rest.empty()) {
    size_t eol = rest.find('\n');
    std::string_view line = rest.substr(0, eol);
    rest = eol == std::string_view::npos ? std::string_view() : rest.substr(eol + 1);
    if (line.empty()) {
      out.body = std::string(rest);
      break;
    }
    size_t colon = line.find(':');
    std::string_view name = line.substr(0, colon);
    std::string_view value;
    if (colon != std::string_view::npos) {
      value = line.substr(colon + 1);
      if (!value.empty() && value.front() == ' ') value.remove_prefix(1);
    }
    out.headers.emplace_back(std::string(name), std::string(value));
  }
  return out;
}

}  // namespace switchboard::fuzz
