// Fuzzes the W3C Trace Context parsers. The first line is a traceparent, the
// rest a tracestate. A traceparent that parses must re-emit as a version-00
// header that parses to the same ids.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "switchboard/trace_context.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);
  size_t eol = in.find('\n');
  std::string_view traceparent = in.substr(0, eol);
  std::string_view tracestate =
      eol == std::string_view::npos ? std::string_view() : in.substr(eol + 1);

  switchboard::TraceParent tp;
  if (switchboard::TraceParent::Parse(traceparent, &tp)) {
    std::string again = tp.ToString();
    switchboard::TraceParent reparsed;
    if (!switchboard::TraceParent::Parse(again, &reparsed) ||
        reparsed.TraceId() != tp.TraceId() || reparsed.SpanId() != tp.SpanId() ||
        again.size() != 55 || !tp.valid()) {
      std::abort();
    }
    switchboard::TraceParent child = tp.Child();
    if (child.TraceId() != tp.TraceId()) std::abort();
  }
  (void)switchboard::IsValidTracestate(tracestate);
  (void)switchboard::IsValidTracestate(in);
  return 0;
}
