// config.h: loading and validating the YAML configuration.
//
// The YAML is read into the typed schema of proto/switchboard/v1/config.proto
// and validated once; every error names the file, the line and a fix:
//
//   auto config = switchboard::LoadConfigFile("orders.yaml");
//   if (!config.ok()) { std::cerr << config.status() << "\n"; return 1; }
//   auto node = switchboard::Node::Create(*config);
//
// Validation covers unknown keys (with the closest known key as a hint),
// unknown transport types, bad durations/ratios/sizes, dangling transport and
// policy references, and impossible bindings (an operation whose reply type
// is not google.protobuf.Empty bound as an event or as a command without
// reply, when its method is in the linked descriptor pool).
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "switchboard/v1/config.pb.h"

namespace switchboard {

class TransportRegistry;

struct ConfigWarning {
  std::string location;  // "file:line"
  std::string message;
};

struct LoadedConfig {
  v1::Config config;
  std::vector<ConfigWarning> warnings;
};

struct ConfigOptions {
  // Transport types accepted; default: TransportRegistry::Default().
  const TransportRegistry* registry = nullptr;
  // Read "${NAME}" values from the environment (default true).
  bool expand_env = true;
  // Types accepted besides the registry's (those of ready transport
  // instances handed to Node::Create).
  std::vector<std::string> extra_types;
};

// InvalidArgument "file:line: message. hint" on the first error.
[[nodiscard]] absl::StatusOr<LoadedConfig> LoadConfigFile(const std::string& path,
                                                          const ConfigOptions& options = {});
// `filename` only labels errors.
[[nodiscard]] absl::StatusOr<LoadedConfig> ParseConfig(std::string_view yaml,
                                                       std::string_view filename = "<config>",
                                                       const ConfigOptions& options = {});

// Checks references and bindings of an already-typed config (ParseConfig calls
// it; Node::Create calls it for configs built in code).
[[nodiscard]] absl::Status ValidateConfig(const v1::Config& config, const ConfigOptions& options,
                                          std::vector<ConfigWarning>* warnings);

// Parses "250ms", "2s", "1.5m", "24h", "100us", "0"; InvalidArgument otherwise.
[[nodiscard]] absl::StatusOr<absl::Duration> ParseDurationText(std::string_view text);

}  // namespace switchboard
