// graph.h: the topology diagram of `switchboard graph`.
//
// Draws what a config declares: each transport as a box holding the
// operations bound to it (labelled with style, reply and policy), the
// subscriber groups of every event, and a rollout as a dashed edge to the
// second binding. Mermaid (renders in Markdown on most forges) or Graphviz dot.
//
//   std::cout << switchboard::graph::Render(config, switchboard::graph::Format::kMermaid);
//
// Thread safety: pure functions.
#pragma once

#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "switchboard/v1/config.pb.h"

namespace switchboard::graph {

enum class Format { kMermaid, kDot };

// "mermaid" or "dot"; InvalidArgument otherwise.
[[nodiscard]] absl::StatusOr<Format> ParseFormat(std::string_view name);

// The diagram; deterministic (sorted by name) so it can be diffed.
[[nodiscard]] std::string Render(const v1::Config& config, Format format);

}  // namespace switchboard::graph
