// trace_context.h: W3C Trace Context (traceparent / tracestate).
//
// A `TraceParent` is parsed from an incoming header, or created at the edge
// when absent or invalid; each hop takes a child with a new span id.
//
//   TraceParent tp;
//   if (!TraceParent::Parse(header, &tp)) tp = TraceParent::NewRoot();
//   TraceParent hop = tp.Child();
//   env.traceparent = hop.ToString();
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

namespace switchboard {

class TraceParent {
 public:
  // Parses version 00 strictly; a higher version is read at its fixed
  // positions and re-emitted as 00; "ff", bad hex, upper case, all-zero ids
  // are rejected.
  [[nodiscard]] static bool Parse(std::string_view header, TraceParent* out);
  [[nodiscard]] static TraceParent NewRoot(bool sampled = true);

  // Same trace, new span id, this span as the parent.
  [[nodiscard]] TraceParent Child() const;

  [[nodiscard]] std::string ToString() const;
  // The same text as ToString(), written into `out` (reusing its buffer).
  void AssignTo(std::string* out) const;
  [[nodiscard]] std::string TraceId() const;  // 32 hex
  [[nodiscard]] std::string SpanId() const;   // 16 hex
  // SpanId() without a heap allocation (16 hex characters, no terminator).
  [[nodiscard]] std::array<char, 16> SpanIdChars() const;
  [[nodiscard]] bool sampled() const { return (flags_ & 1) != 0; }
  [[nodiscard]] bool valid() const;

 private:
  std::array<uint8_t, 16> trace_id_{};
  std::array<uint8_t, 8> span_id_{};
  uint8_t flags_ = 0;
};

// Returns true if `tracestate` is well-formed enough to pass on (at most 32
// members, each key=value, no control characters).
[[nodiscard]] bool IsValidTracestate(std::string_view tracestate);

// Fast random bits for ids (thread-local generator).
uint64_t RandomU64();

}  // namespace switchboard
