// span_tree.h: checks that spans form one trace: one trace id, unique span
// ids, exactly one root, and every other span's parent recorded in the set.
#pragma once

#include <map>
#include <set>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "switchboard/telemetry.h"

namespace switchboard::testing {

inline ::testing::AssertionResult IsOneTraceTree(const std::vector<SpanData>& spans) {
  if (spans.empty()) return ::testing::AssertionFailure() << "no spans";
  std::map<std::string, const SpanData*> by_id;
  std::string trace = spans.front().trace_id;
  int roots = 0;
  for (const SpanData& s : spans) {
    if (s.trace_id != trace) {
      return ::testing::AssertionFailure()
             << "span " << s.span_id << " (" << SpanKindName(s.kind) << " " << s.operation
             << ") has trace " << s.trace_id << ", expected " << trace;
    }
    if (s.span_id.size() != 16) return ::testing::AssertionFailure() << "bad span id " << s.span_id;
    if (!by_id.emplace(s.span_id, &s).second) {
      return ::testing::AssertionFailure() << "span id " << s.span_id << " used twice";
    }
    if (s.parent_span_id.empty()) ++roots;
  }
  if (roots != 1) return ::testing::AssertionFailure() << roots << " roots, expected exactly 1";
  for (const SpanData& s : spans) {
    if (s.parent_span_id.empty()) continue;
    if (!by_id.contains(s.parent_span_id)) {
      return ::testing::AssertionFailure()
             << SpanKindName(s.kind) << " span " << s.span_id << " of " << s.operation
             << " has parent " << s.parent_span_id << ", which is not a span of the trace";
    }
  }
  return ::testing::AssertionSuccess();
}

// The spans of `spans` whose parent is `parent` and that match kind and operation.
inline std::vector<SpanData> ChildrenOf(const std::vector<SpanData>& spans,
                                        const std::string& parent, SpanKind kind,
                                        const std::string& operation) {
  std::vector<SpanData> out;
  for (const SpanData& s : spans) {
    if (s.parent_span_id == parent && s.kind == kind && s.operation == operation) out.push_back(s);
  }
  return out;
}

}  // namespace switchboard::testing
