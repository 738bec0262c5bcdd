// conformance.h: the transport conformance suite.
//
// One GoogleTest suite that every transport, ours or a third party's, runs to
// prove it keeps the contract written in switchboard/transport.h. A transport
// provides a `Harness` and instantiates the suite in one line:
//
//   SWITCHBOARD_CONFORMANCE(Nats, [] { return std::make_unique<NatsHarness>(); });
//
// Each case builds Nodes on transports from the harness, with operation names
// unique to the run, so leftovers in a real broker cannot pollute a run.
// Cases a transport's Features do not claim are skipped with the feature
// named. At the end the suite prints a capability matrix (transport x case:
// pass / skip / FAIL).
#pragma once

#include <functional>
#include <memory>
#include <ostream>
#include <string>

#include "absl/status/statusor.h"
#include "gtest/gtest.h"
#include "switchboard/transport.h"

namespace switchboard::conformance {

class Harness {
 public:
  virtual ~Harness() = default;
  // Features of the transports this harness makes.
  virtual Features features() const = 0;
  // A new transport instance, as a separate process would create it. All
  // instances of one harness share one backend (bus, server, broker) and
  // reach each other's endpoints. Called several times per test.
  virtual absl::StatusOr<std::shared_ptr<Transport>> NewTransport() = 0;
  // Restarts the broker, if the harness can (for the reconnect case).
  virtual absl::Status RestartBroker() {
    return absl::UnimplementedError("harness cannot restart its broker");
  }
};

using HarnessFactory = std::function<std::unique_ptr<Harness>()>;

struct TransportCase {
  std::string name;
  HarnessFactory make;
};

// Names the parameter in test listings (instead of its bytes).
inline void PrintTo(const TransportCase& c, std::ostream* os) { *os << c.name; }

class ConformanceTest : public ::testing::TestWithParam<TransportCase> {};

// Registers the case for the matrix printed at exit. The suite's test
// listener calls it for every ConformanceTest case as it ends (pass, skip or
// FAIL); a harness need not call it.
void RecordResult(const std::string& transport, const std::string& test_case,
                  const std::string& outcome);

}  // namespace switchboard::conformance

// Usable at global scope or inside a namespace. The using-declaration gives
// INSTANTIATE_TEST_SUITE_P the unqualified suite name it needs.
#define SWITCHBOARD_CONFORMANCE(Name, ...)                                               \
  using ::switchboard::conformance::ConformanceTest;                                    \
  INSTANTIATE_TEST_SUITE_P(                                                             \
      Name, ConformanceTest,                                                            \
      ::testing::Values(::switchboard::conformance::TransportCase{#Name, __VA_ARGS__}), \
      [](const ::testing::TestParamInfo<::switchboard::conformance::TransportCase>& i) { \
        return i.param.name;                                                            \
      })
