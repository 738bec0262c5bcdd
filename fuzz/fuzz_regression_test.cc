// Replays every seed (fuzz/corpus/<name>/) and every crash input kept after
// a fix (fuzz/regressions/<name>/) through the fuzz targets' entry points, in
// the normal build: a decoder that crashes, throws or aborts on one of them
// fails `make test`. The real fuzzing runs in `make fuzz` (scripts/fuzz.sh).
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace {

using FuzzFn = int (*)(const uint8_t*, size_t);

struct Target {
  const char* name;
  FuzzFn fn;
};

}  // namespace

#define SB_DECLARE_FUZZ(name) \
  extern "C" int SwitchboardFuzz_##name(const uint8_t* data, size_t size);
SB_DECLARE_FUZZ(config)
SB_DECLARE_FUZZ(trace_context)
SB_DECLARE_FUZZ(envelope_proto)
SB_DECLARE_FUZZ(cloudevent_proto)
SB_DECLARE_FUZZ(payload)
#ifdef SWITCHBOARD_FUZZ_HAS_nats_headers
SB_DECLARE_FUZZ(nats_headers)
#endif
#ifdef SWITCHBOARD_FUZZ_HAS_grpc_metadata
SB_DECLARE_FUZZ(grpc_metadata)
#endif
#ifdef SWITCHBOARD_FUZZ_HAS_amqp_message
SB_DECLARE_FUZZ(amqp_message)
#endif

namespace {

std::vector<Target> Targets() {
  return {
      {"config", &SwitchboardFuzz_config},
      {"trace_context", &SwitchboardFuzz_trace_context},
      {"envelope_proto", &SwitchboardFuzz_envelope_proto},
      {"cloudevent_proto", &SwitchboardFuzz_cloudevent_proto},
      {"payload", &SwitchboardFuzz_payload},
#ifdef SWITCHBOARD_FUZZ_HAS_nats_headers
      {"nats_headers", &SwitchboardFuzz_nats_headers},
#endif
#ifdef SWITCHBOARD_FUZZ_HAS_grpc_metadata
      {"grpc_metadata", &SwitchboardFuzz_grpc_metadata},
#endif
#ifdef SWITCHBOARD_FUZZ_HAS_amqp_message
      {"amqp_message", &SwitchboardFuzz_amqp_message},
#endif
  };
}

std::vector<std::filesystem::path> Inputs(const std::string& kind, const std::string& name) {
  std::vector<std::filesystem::path> files;
  std::filesystem::path dir = std::filesystem::path(SWITCHBOARD_FUZZ_DIR) / kind / name;
  if (!std::filesystem::is_directory(dir)) return files;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    if (entry.is_regular_file() && entry.path().filename().string().front() != '.') {
      files.push_back(entry.path());
    }
  }
  return files;
}

std::string ReadAll(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

class FuzzReplay : public ::testing::TestWithParam<Target> {};

TEST_P(FuzzReplay, SeedCorpusIsPresentAndDecodesWithoutCrash) {
  auto seeds = Inputs("corpus", GetParam().name);
  ASSERT_FALSE(seeds.empty()) << "no seeds in fuzz/corpus/" << GetParam().name;
  for (const auto& path : seeds) {
    SCOPED_TRACE(path.string());
    std::string bytes = ReadAll(path);
    EXPECT_EQ(GetParam().fn(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size()), 0);
  }
}

TEST_P(FuzzReplay, CrashRegressionsDecodeWithoutCrash) {
  for (const auto& path : Inputs("regressions", GetParam().name)) {
    SCOPED_TRACE(path.string());
    std::string bytes = ReadAll(path);
    EXPECT_EQ(GetParam().fn(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size()), 0);
  }
}

TEST_P(FuzzReplay, EmptyAndTinyInputs) {
  const uint8_t bytes[] = {0, 1, '\n', ':', 0xff};
  EXPECT_EQ(GetParam().fn(bytes, 0), 0);
  for (size_t n = 1; n <= sizeof(bytes); ++n) EXPECT_EQ(GetParam().fn(bytes, n), 0);
}

INSTANTIATE_TEST_SUITE_P(Decoders, FuzzReplay, ::testing::ValuesIn(Targets()),
                         [](const ::testing::TestParamInfo<Target>& info) {
                           return std::string(info.param.name);
                         });

}  // namespace
