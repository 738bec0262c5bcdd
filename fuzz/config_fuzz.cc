// Fuzzes the YAML configuration loader: any bytes must give a config or an
// InvalidArgument error, never a crash, a hang or an exception.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "switchboard/config.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view yaml(reinterpret_cast<const char*>(data), size);
  switchboard::ConfigOptions options;
  options.expand_env = false;  // the result must not depend on the environment
  options.extra_types = {"inproc", "nats", "grpc", "amqp"};
  auto loaded = switchboard::ParseConfig(yaml, "fuzz.yaml", options);
  if (loaded.ok()) {
    // A config that loads must validate again the same way.
    std::vector<switchboard::ConfigWarning> warnings;
    (void)switchboard::ValidateConfig(loaded->config, options, &warnings);
  }
  return 0;
}
