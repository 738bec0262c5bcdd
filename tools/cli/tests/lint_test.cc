#include "lint.h"

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "switchboard/config.h"

namespace switchboard::lint {
namespace {

using ::testing::Contains;
using ::testing::IsEmpty;
using ::testing::Not;

std::vector<Finding> LintText(const std::string& yaml) {
  absl::StatusOr<LoadedConfig> loaded = ParseConfig(yaml, "t.yaml");
  EXPECT_TRUE(loaded.ok()) << loaded.status();
  if (!loaded.ok()) return {};
  absl::StatusOr<std::vector<Finding>> findings = Lint(loaded->config, yaml, "t.yaml");
  EXPECT_TRUE(findings.ok()) << findings.status();
  return findings.ok() ? *findings : std::vector<Finding>{};
}

std::vector<std::string> Ids(const std::vector<Finding>& findings) {
  std::vector<std::string> ids;
  for (const auto& f : findings) ids.push_back(f.rule);
  return ids;
}

long Count(const std::vector<Finding>& findings, std::string_view id) {
  return std::count_if(findings.begin(), findings.end(), [&](const Finding& f) { return f.rule == id; });
}

const Finding* Find(const std::vector<Finding>& findings, std::string_view id) {
  for (const auto& f : findings) {
    if (f.rule == id) return &f;
  }
  return nullptr;
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

TEST(LintTest, CleanConfigHasNoFindings) {
  std::vector<Finding> findings = LintText(ReadFile(SWITCHBOARD_CLI_TESTDATA "/clean.yaml"));
  for (const auto& f : findings) ADD_FAILURE() << Format(f);
  EXPECT_THAT(findings, IsEmpty());
}

TEST(LintTest, EveryRuleHasIdSeverityAndSummary) {
  ASSERT_GE(Rules().size(), 17u);
  for (size_t i = 0; i < Rules().size(); ++i) {
    const Rule& r = Rules()[i];
    EXPECT_EQ(r.id, "SB" + std::string(i + 1 < 10 ? "00" : "0") + std::to_string(i + 1));
    EXPECT_FALSE(r.name.empty());
    EXPECT_FALSE(r.summary.empty());
  }
  EXPECT_EQ(FindRule("SB001")->severity, Severity::kError);
  EXPECT_EQ(FindRule("SB999"), nullptr);
}

TEST(LintTest, FormatIsFileLineIdSeverityMessageFix) {
  Finding f{"SB001", Severity::kError, "a.yaml", 7, "no timeout", "add `timeout:`"};
  EXPECT_EQ(Format(f), "a.yaml:7: SB001 error: no timeout. fix: add `timeout:`");
  EXPECT_TRUE(HasErrors({f}));
  f.severity = Severity::kWarning;
  EXPECT_FALSE(HasErrors({f}));
}

TEST(LintTest, SB001RequestWithoutTimeout) {
  std::vector<Finding> findings = LintText(R"(policies:
  p: { max_payload_bytes: 1MiB }
operations:
  a.v1.A/Get: { style: request, policy: p }
)");
  const Finding* f = Find(findings, "SB001");
  ASSERT_NE(f, nullptr);
  EXPECT_EQ(f->severity, Severity::kError);
  EXPECT_EQ(f->line, 4);
  EXPECT_EQ(f->file, "t.yaml");
  EXPECT_THAT(f->fix, ::testing::HasSubstr("timeout"));
}

TEST(LintTest, SB001CommandWithReplyWithoutPolicy) {
  std::vector<Finding> findings = LintText(R"(transports:
  mq: { type: amqp, url: amqp://127.0.0.1:5672 }
operations:
  a.v1.A/Do: { style: command, reply: true, transport: mq }
)");
  EXPECT_THAT(Ids(findings), Contains("SB001"));
}

TEST(LintTest, SB002RetriedMutationWithoutIdempotency) {
  std::vector<Finding> findings = LintText(R"(policies:
  p: { timeout: 2s, retry: { attempts: 3, backoff: 10ms..20ms, budget: 10% } }
operations:
  a.v1.A/CreateThing: { style: request, policy: p }
  a.v1.A/GetThing: { style: request, policy: p }
)");
  const Finding* f = Find(findings, "SB002");
  ASSERT_NE(f, nullptr);
  EXPECT_EQ(f->line, 4);  // CreateThing only: a read is safe to repeat
  EXPECT_EQ(Count(findings, "SB002"), 1);
}

TEST(LintTest, SB002CommandIsRedeliveredWithoutIdempotency) {
  std::vector<Finding> findings = LintText(R"(transports:
  mq: { type: amqp, url: amqp://127.0.0.1:5672 }
policies:
  p: { timeout: 2s }
operations:
  a.v1.A/Notify: { style: command, transport: mq, policy: p }
)");
  EXPECT_THAT(Ids(findings), Contains("SB002"));
}

TEST(LintTest, SB003DeadLetterOff) {
  std::vector<Finding> findings = LintText(R"(transports:
  mq: { type: amqp, url: amqp://127.0.0.1:5672 }
policies:
  p: { timeout: 2s, dead_letter: false }
operations:
  a.v1.A/Do: { style: command, transport: mq, policy: p }
)");
  const Finding* f = Find(findings, "SB003");
  ASSERT_NE(f, nullptr);
  EXPECT_EQ(f->severity, Severity::kWarning);
  EXPECT_THAT(f->message, ::testing::HasSubstr("dead_letter: false"));
}

TEST(LintTest, SB004UnboundedPayload) {
  std::vector<Finding> findings = LintText(R"(policies:
  p: { timeout: 2s }
operations:
  a.v1.A/Get: { style: request, policy: p }
)");
  EXPECT_THAT(Ids(findings), Contains("SB004"));
}

TEST(LintTest, SB005RetryWithoutBudget) {
  std::vector<Finding> findings = LintText(R"(policies:
  p:
    timeout: 2s
    retry: { attempts: 3, backoff: 10ms..20ms }
operations:
  a.v1.A/Get: { style: request, policy: p }
)");
  const Finding* f = Find(findings, "SB005");
  ASSERT_NE(f, nullptr);
  EXPECT_EQ(f->line, 4);  // the `retry` key
}

TEST(LintTest, SB006BreakerMissingOnCrossServiceRequest) {
  std::vector<Finding> findings = LintText(R"(transports:
  rpc: { type: grpc, targets: { a: 127.0.0.1:50051 } }
  local: { type: inproc }
policies:
  p: { timeout: 2s }
operations:
  a.v1.A/Get: { style: request, transport: rpc, policy: p }
  a.v1.A/Local: { style: request, transport: local, policy: p }
)");
  const Finding* f = Find(findings, "SB006");
  ASSERT_NE(f, nullptr);
  EXPECT_EQ(f->line, 7);  // in-process calls need no breaker
  EXPECT_EQ(Count(findings, "SB006"), 1);
}

TEST(LintTest, SB007RetryWithoutBackoff) {
  std::vector<Finding> findings = LintText(R"(policies:
  p: { timeout: 2s, retry: { attempts: 3, budget: 10% } }
operations:
  a.v1.A/Get: { style: request, policy: p }
)");
  EXPECT_THAT(Ids(findings), Contains("SB007"));
}

TEST(LintTest, SB008MaxDeliveriesWithoutRedeliveryBackoff) {
  std::vector<Finding> findings = LintText(R"(policies:
  p:
    timeout: 2s
    max_deliveries: 8
operations:
  a.v1.A/Get: { style: request, policy: p }
)");
  const Finding* f = Find(findings, "SB008");
  ASSERT_NE(f, nullptr);
  EXPECT_EQ(f->line, 4);
}

TEST(LintTest, SB009TimeoutShorterThanRetryBackoff) {
  // 3 waits of 50ms, 100ms, 200ms = 350ms > 100ms.
  std::vector<Finding> findings = LintText(R"(policies:
  p: { timeout: 100ms, retry: { attempts: 4, backoff: 50ms..1s, budget: 10% } }
operations:
  a.v1.A/Get: { style: request, policy: p }
)");
  const Finding* f = Find(findings, "SB009");
  ASSERT_NE(f, nullptr);
  EXPECT_THAT(f->message, ::testing::HasSubstr("350ms"));
  // Enough time: no finding.
  EXPECT_THAT(Ids(LintText(R"(policies:
  p: { timeout: 2s, retry: { attempts: 4, backoff: 50ms..1s, budget: 10% } }
operations:
  a.v1.A/Get: { style: request, policy: p }
)")),
              Not(Contains("SB009")));
}

TEST(LintTest, SB010EventWithoutGroups) {
  std::vector<Finding> findings = LintText(R"(transports:
  mq: { type: amqp, url: amqp://127.0.0.1:5672 }
operations:
  a.v1.Happened: { style: event, transport: mq }
)");
  EXPECT_THAT(Ids(findings), Contains("SB010"));
}

TEST(LintTest, SB011DurableStyleOnNonDurableTransport) {
  std::vector<Finding> findings = LintText(R"(transports:
  core: { type: nats, url: nats://127.0.0.1:4222 }
  js: { type: nats, url: nats://127.0.0.1:4222, jetstream: true }
operations:
  a.v1.Happened: { style: event, transport: core, groups: [g] }
  a.v1.Other: { style: event, transport: js, groups: [g] }
)");
  const Finding* f = Find(findings, "SB011");
  ASSERT_NE(f, nullptr);
  EXPECT_EQ(f->line, 5);
  EXPECT_EQ(Count(findings, "SB011"), 1);
}

TEST(LintTest, SB012LiteralSecrets) {
  std::vector<Finding> findings = LintText(R"(transports:
  bus: { type: nats, url: nats://127.0.0.1:4222, token: hunter2 }
  mq: { type: amqp, url: "amqp://svc:hunter2@127.0.0.1:5672" }
operations:
  a.v1.Happened: { style: event, transport: bus, groups: [g] }
  a.v1.Other: { style: event, transport: mq, groups: [g] }
)");
  std::vector<std::string> ids = Ids(findings);
  EXPECT_EQ(std::count(ids.begin(), ids.end(), "SB012"), 2);
  for (const auto& f : findings) EXPECT_THAT(Format(f), Not(::testing::HasSubstr("hunter2")));
}

TEST(LintTest, SB012SecretFromEnvironmentIsFine) {
  ::setenv("SB_LINT_TEST_TOKEN", "hunter2", 1);
  std::vector<Finding> findings = LintText(R"(transports:
  bus: { type: nats, url: nats://127.0.0.1:4222, token: "${SB_LINT_TEST_TOKEN}" }
  mq: { type: amqp, url: "amqp://svc:${SB_LINT_TEST_TOKEN}@127.0.0.1:5672" }
operations:
  a.v1.Happened: { style: event, transport: bus, groups: [g] }
  a.v1.Other: { style: event, transport: mq, groups: [g] }
)");
  EXPECT_THAT(Ids(findings), Not(Contains("SB012")));
}

TEST(LintTest, SB013RolloutToSameBinding) {
  std::vector<Finding> findings = LintText(R"(transports:
  bus: { type: nats, url: nats://127.0.0.1:4222, jetstream: true }
  bus2: { type: nats, url: nats://127.0.0.1:4222, jetstream: true }
policies:
  p: { timeout: 2s }
operations:
  a.v1.A/Get:
    style: request
    transport: bus
    policy: p
    rollout: { style: request, transport: bus2, percent: 10 }
)");
  const Finding* f = Find(findings, "SB013");
  ASSERT_NE(f, nullptr);
  EXPECT_EQ(f->severity, Severity::kError);
  EXPECT_EQ(f->line, 11);
}

TEST(LintTest, SB014RolloutWithoutSplit) {
  std::vector<Finding> findings = LintText(R"(transports:
  bus: { type: nats, url: nats://127.0.0.1:4222, jetstream: true }
policies:
  p: { timeout: 2s }
operations:
  a.v1.A/Get:
    style: request
    transport: bus
    policy: p
    rollout: { style: command, reply: true, percent: 100 }
)");
  EXPECT_THAT(Ids(findings), Contains("SB014"));
}

TEST(LintTest, SB015GroupsOnNonEvent) {
  std::vector<Finding> findings = LintText(R"(policies:
  p: { timeout: 2s }
operations:
  a.v1.A/Get: { style: request, policy: p, groups: [x] }
)");
  EXPECT_THAT(Ids(findings), Contains("SB015"));
}

TEST(LintTest, SB016BulkheadMissing) {
  std::vector<Finding> findings = LintText(R"(policies:
  p: { timeout: 2s }
operations:
  a.v1.A/Get: { style: request, policy: p }
)");
  const Finding* f = Find(findings, "SB016");
  ASSERT_NE(f, nullptr);
  EXPECT_EQ(f->severity, Severity::kInfo);
}

TEST(LintTest, SB017UnusedPolicyAndTransport) {
  std::vector<Finding> findings = LintText(R"(transports:
  a: { type: inproc }
  b: { type: inproc }
policies:
  used: { timeout: 2s }
  spare: { timeout: 2s }
operations:
  a.v1.A/Get: { style: request, transport: a, policy: used }
)");
  std::vector<std::string> ids = Ids(findings);
  EXPECT_EQ(std::count(ids.begin(), ids.end(), "SB017"), 2);
}

TEST(LintTest, LintFileReportsLoadErrors) {
  absl::StatusOr<std::vector<Finding>> findings = LintFile(SWITCHBOARD_CLI_TESTDATA "/broken.yaml");
  ASSERT_FALSE(findings.ok());
  EXPECT_EQ(findings.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(findings.status().message()), ::testing::HasSubstr("timeout"));
}

}  // namespace
}  // namespace switchboard::lint

namespace switchboard::lint {
namespace {

TEST(LintTest, RolloutBindingIsCheckedToo) {
  // A command over JetStream rolled out as a request over gRPC: the rollout
  // waits for a reply (SB001) and crosses services without a breaker (SB006).
  std::vector<Finding> findings = LintText(R"(transports:
  bus: { type: nats, url: nats://127.0.0.1:4222, jetstream: true }
  rpc: { type: grpc, targets: { "*": 127.0.0.1:50051 } }
policies:
  p: { max_deliveries: 1, max_payload_bytes: 1MiB }
operations:
  a.v1.A/Notify:
    style: command
    transport: bus
    policy: p
    rollout: { style: request, transport: rpc, percent: 5 }
)");
  const Finding* timeout = Find(findings, "SB001");
  ASSERT_NE(timeout, nullptr);
  EXPECT_EQ(timeout->line, 11);
  EXPECT_THAT(timeout->message, ::testing::HasSubstr("rolled out"));
  const Finding* breaker = Find(findings, "SB006");
  ASSERT_NE(breaker, nullptr);
  EXPECT_EQ(breaker->line, 11);
}

}  // namespace
}  // namespace switchboard::lint
