#include "switchboard/telemetry/exporters.h"

#include <httplib.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "switchboard/internal/strings.h"
#include "switchboard/node.h"
#include "switchboard/test/v1/echo.pb.h"

namespace switchboard::telemetry {
namespace {

using test::v1::EchoReply;
using test::v1::EchoRequest;
using ::testing::HasSubstr;
using ::testing::SizeIs;

constexpr absl::Duration kWait = absl::Seconds(10);
constexpr Operation<EchoRequest, EchoReply> kSay{"switchboard.test.v1.Echo/Say"};

std::string Unique(std::string_view base) {
  static std::atomic<int> n{0};
  return std::string(base) + "." + NewMessageId().substr(0, 8) + std::to_string(n++);
}

std::string TempPath(std::string_view name) {
  return "/tmp/" + Unique(Cat("switchboard-telemetry-", name));
}

std::vector<std::string> ReadLines(const std::string& path) {
  std::ifstream in(path);
  std::vector<std::string> lines;
  std::string line;
  while (std::getline(in, line)) lines.push_back(line);
  return lines;
}

// ---------------------------------------------------------------------------

TEST(PrometheusTextTest, WritesCountersGaugesAndCumulativeHistograms) {
  MetricsRegistry r;
  r.GetCounter("switchboard_calls_total", {{"operation", "a\"b\\c\nd"}, {"code", "OK"}},
               "Completed calls\nby code")
      .Increment(42);
  r.GetGauge("switchboard_in_flight", {{"operation", "x"}}).Set(-3);
  Histogram& h = r.GetHistogram("switchboard_call_duration_seconds", {{"operation", "x"}}, "Latency");
  h.Observe(absl::Microseconds(300));
  h.Observe(absl::Microseconds(400));
  h.Observe(absl::Milliseconds(20));
  std::string text = PrometheusText(r);
  EXPECT_THAT(text, HasSubstr("# HELP switchboard_calls_total Completed calls\\nby code\n"));
  EXPECT_THAT(text, HasSubstr("# TYPE switchboard_calls_total counter\n"));
  EXPECT_THAT(text, HasSubstr("switchboard_calls_total{operation=\"a\\\"b\\\\c\\nd\",code=\"OK\"} 42\n"));
  EXPECT_THAT(text, HasSubstr("# TYPE switchboard_in_flight gauge\nswitchboard_in_flight{operation=\"x\"} -3\n"));
  EXPECT_THAT(text, HasSubstr("# TYPE switchboard_call_duration_seconds histogram\n"));
  EXPECT_THAT(text, HasSubstr("switchboard_call_duration_seconds_bucket{operation=\"x\",le=\"0.00025\"} 0\n"));
  EXPECT_THAT(text, HasSubstr("switchboard_call_duration_seconds_bucket{operation=\"x\",le=\"0.0005\"} 2\n"));
  EXPECT_THAT(text, HasSubstr("switchboard_call_duration_seconds_bucket{operation=\"x\",le=\"0.025\"} 3\n"));
  EXPECT_THAT(text, HasSubstr("switchboard_call_duration_seconds_bucket{operation=\"x\",le=\"+Inf\"} 3\n"));
  EXPECT_THAT(text, HasSubstr("switchboard_call_duration_seconds_count{operation=\"x\"} 3\n"));
  EXPECT_THAT(text, HasSubstr("switchboard_call_duration_seconds_sum{operation=\"x\"} 0.0207"));

  // Prometheus's own linter accepts it, where Debian's prometheus is installed.
  if (access("/usr/bin/promtool", X_OK) == 0) {
    std::string path = TempPath("metrics.txt");
    std::ofstream(path) << text;
    std::string cmd = "/usr/bin/promtool check metrics < " + path + " 2>&1";
    FILE* p = popen(cmd.c_str(), "r");
    ASSERT_NE(p, nullptr);
    std::string output;
    char buf[512];
    while (fgets(buf, sizeof buf, p) != nullptr) output += buf;
    int rc = pclose(p);
    std::remove(path.c_str());
    // promtool reports lint problems (not errors) with exit code 3; parse
    // errors are 1.
    EXPECT_NE(WEXITSTATUS(rc), 1) << output;
    EXPECT_THAT(output, ::testing::Not(HasSubstr("error while linting"))) << output;
  }
}

TEST(JsonLinesSpanExporterTest, AppendsOneParsableLinePerSpan) {
  std::string path = TempPath("spans.jsonl");
  {
    auto exporter = JsonLinesSpanExporter::Open(path);
    ASSERT_TRUE(exporter.ok()) << exporter.status();
    for (int i = 0; i < 3; ++i) {
      SpanData s;
      s.kind = SpanKind::kClient;
      s.operation = "op";
      s.style = Style::kEvent;
      s.transport = "bus";
      s.trace_id = std::string(32, 'a');
      s.span_id = Cat(std::string(15, '0'), i + 1);
      s.attempt = i + 1;
      s.idempotency_key = Cat("k", i);
      (*exporter)->Export(s);
    }
  }
  std::vector<std::string> lines = ReadLines(path);
  std::remove(path.c_str());
  ASSERT_THAT(lines, SizeIs(3));
  for (int i = 0; i < 3; ++i) {
    nlohmann::json j = nlohmann::json::parse(lines[i]);
    EXPECT_EQ(j["kind"], "client");
    EXPECT_EQ(j["style"], "event");
    EXPECT_EQ(j["transport"], "bus");
    EXPECT_EQ(j["trace_id"], std::string(32, 'a'));
    EXPECT_EQ(j["attempt"], i + 1);
    EXPECT_EQ(j["idempotency_key"], Cat("k", i));
    EXPECT_EQ(j["status_code"], "OK");
  }
  EXPECT_EQ(JsonLinesSpanExporter::Open("/nonexistent-dir/x.jsonl").status().code(),
            absl::StatusCode::kInvalidArgument);
}

// ---------------------------------------------------------------------------
// The admin endpoint, started by config.

class AdminEndpointTest : public ::testing::Test {
 protected:
  void SetUp() override {
    v1::Config config;
    auto& t = (*config.mutable_transports())["local"];
    t.set_type("inproc");
    t.mutable_inproc()->set_bus(Unique("bus"));
    auto& b = (*config.mutable_operations())[std::string(kSay.name)];
    b.set_style(v1::STYLE_REQUEST);
    b.set_transport("local");
    config.mutable_telemetry()->set_admin_listen("127.0.0.1:0");
    spans_path_ = TempPath("node-spans.jsonl");
    config.mutable_telemetry()->set_spans_file(spans_path_);
    auto node = Node::Create(config);
    ASSERT_TRUE(node.ok()) << node.status();
    node_ = *std::move(node);
    address_ = node_->telemetry().admin_address();
    ASSERT_FALSE(address_.empty());
    auto reg = node_->Handle(kSay, [](Context&, const EchoRequest& req) -> absl::StatusOr<EchoReply> {
      if (req.fail_code() != 0) return absl::Status(static_cast<absl::StatusCode>(req.fail_code()), "no");
      return EchoReply();
    });
    ASSERT_TRUE(reg.ok()) << reg.status();
    reg_ = *std::move(reg);
  }
  void TearDown() override {
    reg_.Stop();
    node_.reset();
    std::remove(spans_path_.c_str());
  }

  httplib::Result Get(const std::string& path) {
    size_t colon = address_.rfind(':');
    httplib::Client client(address_.substr(0, colon), std::stoi(address_.substr(colon + 1)));
    client.set_connection_timeout(5, 0);
    client.set_read_timeout(5, 0);
    return client.Get(path.c_str());
  }

  std::string spans_path_;
  std::unique_ptr<Node> node_;
  HandlerRegistration reg_;
  std::string address_;
};

TEST_F(AdminEndpointTest, ServesMetricsHealthzAndStatus) {
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(node_->Call(kSay, EchoRequest()).GetFor(kWait).ok());
  EchoRequest failing;
  failing.set_fail_code(static_cast<int>(absl::StatusCode::kNotFound));
  ASSERT_EQ(node_->Call(kSay, failing).GetFor(kWait).status().code(), absl::StatusCode::kNotFound);

  auto health = Get("/healthz");
  ASSERT_TRUE(health) << httplib::to_string(health.error());
  EXPECT_EQ(health->status, 200);
  EXPECT_EQ(health->body, "ok\n");

  auto metrics = Get("/metrics");
  ASSERT_TRUE(metrics);
  EXPECT_EQ(metrics->status, 200);
  EXPECT_THAT(metrics->get_header_value("Content-Type"), HasSubstr("text/plain; version=0.0.4"));
  std::string labels = Cat("operation=\"", kSay.name, "\",style=\"request\",transport=\"local\"");
  EXPECT_THAT(metrics->body, HasSubstr(Cat("switchboard_calls_total{", labels, ",side=\"client\",code=\"OK\"} 5\n")));
  EXPECT_THAT(metrics->body, HasSubstr(Cat("switchboard_calls_total{", labels, ",side=\"server\",code=\"NOT_FOUND\"} 1\n")));
  EXPECT_THAT(metrics->body, HasSubstr(Cat("switchboard_call_duration_seconds_count{", labels, ",side=\"client\"} 6\n")));
  EXPECT_THAT(metrics->body, HasSubstr("switchboard_invalid_traceparent_total 0\n"));

  auto status = Get("/status");
  ASSERT_TRUE(status);
  EXPECT_EQ(status->status, 200);
  nlohmann::json j = nlohmann::json::parse(status->body);
  EXPECT_EQ(j["status"], "ok");
  EXPECT_EQ(j["admin_address"], address_);
  ASSERT_TRUE(j["operations"].is_array());
  const nlohmann::json* say = nullptr;
  for (const auto& op : j["operations"]) {
    if (op["operation"] == kSay.name) say = &op;
  }
  ASSERT_NE(say, nullptr) << status->body;
  EXPECT_EQ((*say)["style"], "request");
  EXPECT_EQ((*say)["transport"], "local");
  EXPECT_EQ((*say)["transport_type"], "inproc");
  EXPECT_EQ((*say)["breaker_state"], "none");
  EXPECT_EQ((*say)["client"]["calls_total"], 6);
  EXPECT_EQ((*say)["client"]["calls"]["OK"], 5);
  EXPECT_EQ((*say)["server"]["calls"]["NOT_FOUND"], 1);
  EXPECT_EQ((*say)["server"]["latency"]["count"], 6);
  EXPECT_GT((*say)["server"]["latency"]["p50_ms"].get<double>(), 0);
  EXPECT_LE((*say)["server"]["latency"]["p50_ms"].get<double>(),
            (*say)["server"]["latency"]["p99_ms"].get<double>());
  EXPECT_EQ((*say)["server"]["in_flight"], 0);

  // The spans went to the configured file: client, server and reply per call.
  std::vector<std::string> lines = ReadLines(spans_path_);
  EXPECT_THAT(lines, SizeIs(18));
  for (const auto& line : lines) EXPECT_EQ(nlohmann::json::parse(line)["operation"], kSay.name);

  auto missing = Get("/nope");
  ASSERT_TRUE(missing);
  EXPECT_EQ(missing->status, 404);
}

// The policies keep their own counters; /metrics and /status show them under
// the telemetry names and labels.
TEST(PolicyCountersTest, BreakerStateTransitionsAndDedupHitsAreExported) {
  v1::Config config;
  auto& t = (*config.mutable_transports())["local"];
  t.set_type("inproc");
  t.mutable_inproc()->set_bus(Unique("bus"));
  auto& b = (*config.mutable_operations())[std::string(kSay.name)];
  b.set_style(v1::STYLE_REQUEST);
  b.set_transport("local");
  b.set_policy("guarded");
  auto& p = (*config.mutable_policies())["guarded"];
  p.mutable_timeout()->set_seconds(5);
  p.mutable_circuit_breaker()->set_consecutive_failures(3);
  p.mutable_circuit_breaker()->set_min_calls(3);
  p.mutable_circuit_breaker()->set_failure_rate(0.5);
  p.mutable_circuit_breaker()->mutable_window()->set_seconds(60);
  p.mutable_circuit_breaker()->mutable_open_for()->set_seconds(600);
  p.mutable_idempotency()->mutable_ttl()->set_seconds(600);
  auto node = Node::Create(config);
  ASSERT_TRUE(node.ok()) << node.status();
  auto reg = (*node)->Handle(kSay, [](Context&, const EchoRequest& req) -> absl::StatusOr<EchoReply> {
    if (req.fail_code() != 0) return absl::Status(static_cast<absl::StatusCode>(req.fail_code()), "down");
    return EchoReply();
  });
  ASSERT_TRUE(reg.ok()) << reg.status();

  // The same key twice: the second is answered from the idempotency store.
  CallOptions same;
  same.idempotency_key = Unique("key");
  ASSERT_TRUE((*node)->Call(kSay, EchoRequest(), same).GetFor(kWait).ok());
  ASSERT_TRUE((*node)->Call(kSay, EchoRequest(), same).GetFor(kWait).ok());
  // Failures that count against the breaker until it opens.
  EchoRequest failing;
  failing.set_fail_code(static_cast<int>(absl::StatusCode::kUnavailable));
  for (int i = 0; i < 6; ++i) (void)(*node)->Call(kSay, failing).GetFor(kWait);

  Telemetry& telemetry = (*node)->telemetry();
  std::string text = PrometheusText(telemetry.metrics());
  std::string labels = Cat("operation=\"", kSay.name, "\",style=\"request\",transport=\"local\"");
  EXPECT_THAT(text, HasSubstr(Cat("switchboard_breaker_state{", labels, "} 2\n"))) << text;
  EXPECT_THAT(text, HasSubstr(Cat("switchboard_breaker_transitions_total{", labels, ",to=\"open\"} 1\n")));
  EXPECT_THAT(text, HasSubstr(Cat("switchboard_dedup_hits_total{", labels, "} 1\n")));
  nlohmann::json status = nlohmann::json::parse(StatusJson(telemetry));
  bool found = false;
  for (const auto& op : status["operations"]) {
    if (op["operation"] != kSay.name) continue;
    found = true;
    EXPECT_EQ(op["breaker_state"], "open");
    EXPECT_EQ(op["counters"]["breaker_transitions_to_open"], 1);
    EXPECT_EQ(op["counters"]["dedup_hits"], 1);
  }
  EXPECT_TRUE(found) << status.dump();
}

TEST(AdminServerTest, RejectsBadAddressesAndTakenPorts) {
  Telemetry telemetry;
  EXPECT_EQ(AdminServer::Start(telemetry, "no-port").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(AdminServer::Start(telemetry, "127.0.0.1:99999").status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(AdminServer::Start(telemetry, "127.0.0.1:x1").status().code(),
            absl::StatusCode::kInvalidArgument);
  auto first = AdminServer::Start(telemetry, "127.0.0.1:0");
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_GT((*first)->port(), 0);
  auto second = AdminServer::Start(telemetry, Cat("127.0.0.1:", (*first)->port()));
  EXPECT_EQ(second.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(std::string(second.status().message()), HasSubstr("admin_listen"));
}

TEST(TelemetryConfigTest, ABadSpansFileFailsNodeCreation) {
  v1::Config config;
  config.mutable_telemetry()->set_spans_file("/nonexistent-dir/spans.jsonl");
  auto node = Node::Create(config);
  EXPECT_EQ(node.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(node.status().message()), HasSubstr("spans_file"));
}

}  // namespace
}  // namespace switchboard::telemetry
