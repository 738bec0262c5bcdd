#include "switchboard/telemetry.h"

#include <atomic>
#include <string>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "span_tree.h"
#include "switchboard/node.h"
#include "switchboard/test/v1/echo.pb.h"
#include "switchboard/trace_context.h"

namespace switchboard {
namespace {

using test::v1::EchoReply;
using test::v1::EchoRequest;
using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::SizeIs;

constexpr absl::Duration kWait = absl::Seconds(10);
constexpr Operation<EchoRequest, EchoReply> kSay{"switchboard.test.v1.Echo/Say"};
constexpr Operation<EchoRequest, google::protobuf::Empty> kFire{"switchboard.test.v1.Echo/Fire"};

std::string UniqueName(std::string_view base) {
  static std::atomic<int> n{0};
  return std::string(base) + "." + NewMessageId().substr(0, 8) + std::to_string(n++);
}

// ---------------------------------------------------------------------------
// Metrics primitives.

TEST(HistogramTest, QuantilesFallInTheBucketOfTheirRank) {
  Histogram h;
  for (int i = 0; i < 90; ++i) h.Observe(absl::Microseconds(300));  // (250us, 500us]
  for (int i = 0; i < 9; ++i) h.Observe(absl::Milliseconds(20));   // (10ms, 25ms]
  h.Observe(absl::Seconds(2));                                      // (1s, 2.5s]
  Histogram::Snapshot s = h.Read();
  EXPECT_EQ(s.count, 100u);
  EXPECT_NEAR(s.sum_seconds, 90 * 0.0003 + 9 * 0.020 + 2, 1e-9);
  EXPECT_GT(s.Quantile(0.50), 0.00025);
  EXPECT_LE(s.Quantile(0.50), 0.0005);
  EXPECT_GT(s.Quantile(0.95), 0.010);
  EXPECT_LE(s.Quantile(0.95), 0.025);
  EXPECT_GT(s.Quantile(0.999), 1.0);
  EXPECT_LE(s.Quantile(0.999), 2.5);
  EXPECT_EQ(Histogram::Snapshot{}.Quantile(0.5), 0);
}

TEST(HistogramTest, AValueAboveTheLastBoundGoesToInf) {
  Histogram h;
  h.Observe(absl::Minutes(5));
  Histogram::Snapshot s = h.Read();
  EXPECT_EQ(s.buckets.back(), 1u);
  EXPECT_EQ(s.Quantile(0.5), Histogram::kBounds.back());
}

TEST(MetricsRegistryTest, SameNameAndLabelsIsTheSameSeries) {
  MetricsRegistry r;
  Counter& a = r.GetCounter("x_total", {{"op", "a"}}, "help");
  Counter& a2 = r.GetCounter("x_total", {{"op", "a"}});
  Counter& b = r.GetCounter("x_total", {{"op", "b"}});
  EXPECT_EQ(&a, &a2);
  EXPECT_NE(&a, &b);
  a.Increment(3);
  b.Increment();
  std::vector<MetricFamily> families = r.Collect();
  ASSERT_THAT(families, SizeIs(1));
  ASSERT_THAT(families[0].samples, SizeIs(2));
  EXPECT_EQ(families[0].help, "help");
  EXPECT_EQ(families[0].samples[0].value, 3);
}

TEST(MetricsRegistryTest, CollectSeesCountersGaugesCallbacksAndCollectors) {
  MetricsRegistry r;
  r.GetCounter("c_total", {{"op", "a"}}).Increment(3);
  r.GetGauge("g", {}).Set(-4);
  uint64_t cb = r.AddGaugeCallback("depth", {{"q", "1"}}, [] { return std::optional<double>(7); });
  r.AddGaugeCallback("silent", {}, [] { return std::optional<double>(); });
  r.AddCollector([](std::vector<MetricFamily>* out) {
    MetricFamily f;
    f.name = "c_total";
    f.type = MetricType::kCounter;
    f.samples.push_back({{{"op", "a"}}, 2, {}});  // summed into the registry's series
    f.samples.push_back({{{"op", "b"}}, 5, {}});
    out->push_back(f);
  });
  auto find = [&](std::string_view name) -> const MetricFamily* {
    static std::vector<MetricFamily> families;
    families = r.Collect();
    for (const auto& f : families)
      if (f.name == name) return &f;
    return nullptr;
  };
  const MetricFamily* c = find("c_total");
  ASSERT_NE(c, nullptr);
  ASSERT_THAT(c->samples, SizeIs(2));
  EXPECT_EQ(c->samples[0].value, 5);  // 3 + 2
  EXPECT_EQ(c->samples[1].value, 5);
  const MetricFamily* g = find("g");
  ASSERT_NE(g, nullptr);
  EXPECT_EQ(g->samples[0].value, -4);
  const MetricFamily* d = find("depth");
  ASSERT_NE(d, nullptr);
  EXPECT_EQ(d->samples[0].value, 7);
  EXPECT_EQ(find("silent"), nullptr);
  r.RemoveGaugeCallback(cb);
  EXPECT_EQ(find("depth"), nullptr);
}

TEST(MetricsRegistryTest, ANameReusedWithAnotherTypeGetsASuffix) {
  MetricsRegistry r;
  r.GetCounter("m").Increment();
  r.GetGauge("m").Set(2);
  EXPECT_NE(r.FindCounter("m", {}), nullptr);
  ASSERT_NE(r.FindGauge("m_gauge", {}), nullptr);
  EXPECT_EQ(r.FindGauge("m_gauge", {})->Value(), 2);
}

// ---------------------------------------------------------------------------
// Sampling, logs, redaction.

TelemetryOptions WithRatio(double ratio) {
  TelemetryOptions o;
  o.sample_ratio = ratio;
  return o;
}

TEST(SamplingTest, DecidedByTheTraceIdTheSameWayEverywhere) {
  Telemetry a(WithRatio(0.25));
  Telemetry b(WithRatio(0.25));
  int sampled = 0;
  constexpr int kTraces = 20000;
  for (int i = 0; i < kTraces; ++i) {
    std::string id = TraceParent::NewRoot().TraceId();
    bool s = a.Sampled(id);
    ASSERT_EQ(s, b.Sampled(id)) << id;
    ASSERT_EQ(s, a.Sampled(id)) << id;
    sampled += s ? 1 : 0;
  }
  EXPECT_NEAR(static_cast<double>(sampled) / kTraces, 0.25, 0.02);
  Telemetry none(WithRatio(0));
  Telemetry all(WithRatio(1));
  std::string id = TraceParent::NewRoot().TraceId();
  EXPECT_FALSE(none.Sampled(id));
  EXPECT_TRUE(all.Sampled(id));
  // The decision reads the random low half of the id.
  Telemetry half(WithRatio(0.5));
  EXPECT_TRUE(half.Sampled("ffffffffffffffff0000000000000001"));
  EXPECT_FALSE(half.Sampled("0000000000000000ffffffffffffffff"));
}

TEST(TelemetryCreateTest, RejectsABadLevelAndRatio) {
  v1::TelemetryConfig c;
  c.set_log_level("verbose");
  EXPECT_EQ(Telemetry::Create(c).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(Telemetry::Create(c).status().message()), HasSubstr("log_level"));
  c.set_log_level("info");
  c.set_sample_ratio(1.5);
  EXPECT_EQ(Telemetry::Create(c).status().code(), absl::StatusCode::kInvalidArgument);
  c.set_sample_ratio(0);  // unset: everything
  absl::StatusOr<std::shared_ptr<Telemetry>> t = Telemetry::Create(c);
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_EQ((*t)->sample_ratio(), 1);
  EXPECT_EQ((*t)->log_level(), LogLevel::kInfo);
}

TEST(RedactSecretsTest, RemovesCredentials) {
  std::string text =
      "connect amqp://guest:hunter2@127.0.0.1:5672 failed; password=s3cret, token: abc123 "
      "Authorization: Bearer eyJhbGciOi; api_key=K-99 nats://tok@127.0.0.1";
  std::string redacted = RedactSecrets(text);
  for (const char* secret : {"hunter2", "guest:", "s3cret", "abc123", "eyJhbGciOi", "K-99", "tok@"}) {
    EXPECT_THAT(redacted, Not(HasSubstr(secret))) << redacted;
  }
  EXPECT_THAT(redacted, HasSubstr("amqp://***@127.0.0.1:5672"));
  EXPECT_THAT(redacted, HasSubstr("password=***"));
  // Ordinary words that merely contain a secret word stay.
  EXPECT_EQ(RedactSecrets("passenger tokens=none? no: bypass"), "passenger tokens=none? no: bypass");
}

TEST(SpanToJsonTest, HasEveryFieldAndEscapes) {
  SpanData s;
  s.kind = SpanKind::kServer;
  s.operation = "a\"b\n";
  s.style = Style::kCommand;
  s.transport = "local";
  s.trace_id = std::string(32, 'a');
  s.span_id = std::string(16, 'b');
  s.parent_span_id = std::string(16, 'c');
  s.start = absl::FromUnixMillis(1'800'000'000'123);
  s.duration = absl::Microseconds(1500);
  s.code = absl::StatusCode::kUnavailable;
  s.attempt = 3;
  s.idempotency_key = "k-1";
  std::string json = SpanToJson(s);
  EXPECT_THAT(json, HasSubstr(R"("kind":"server")"));
  EXPECT_THAT(json, HasSubstr(R"("operation":"a\"b\n")"));
  EXPECT_THAT(json, HasSubstr(R"("style":"command")"));
  EXPECT_THAT(json, HasSubstr(R"("parent_span_id":"cccccccccccccccc")"));
  EXPECT_THAT(json, HasSubstr(R"("start":"2027-01-15T08:00:00.123Z")"));
  EXPECT_THAT(json, HasSubstr(R"("duration_us":1500)"));
  EXPECT_THAT(json, HasSubstr(R"("status_code":"UNAVAILABLE")"));
  EXPECT_THAT(json, HasSubstr(R"("attempt":3)"));
  EXPECT_THAT(json, HasSubstr(R"("idempotency_key":"k-1")"));
  EXPECT_EQ(json.find('\n'), std::string::npos);
}

// ---------------------------------------------------------------------------
// Through a node: spans, metrics, logs, malformed traceparents.

class Lines {
 public:
  LogSink Sink() {
    return [this](std::string_view line) {
      absl::MutexLock lock(&mu_);
      lines_.emplace_back(line);
    };
  }
  std::vector<std::string> Get() {
    absl::MutexLock lock(&mu_);
    return lines_;
  }

 private:
  absl::Mutex mu_;
  std::vector<std::string> lines_;
};

class NodeTelemetryTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto& t = (*config_.mutable_transports())["local"];
    t.set_type("inproc");
    t.mutable_inproc()->set_bus(UniqueName("bus"));
    auto& say = (*config_.mutable_operations())[std::string(kSay.name)];
    say.set_style(v1::STYLE_REQUEST);
    say.set_transport("local");
    auto& fire = (*config_.mutable_operations())[std::string(kFire.name)];
    fire.set_style(v1::STYLE_COMMAND);
    fire.set_transport("local");
    TelemetryOptions telemetry_options;
    telemetry_options.log_level = LogLevel::kInfo;
    telemetry_options.log_sink = lines_.Sink();
    telemetry_ = std::make_shared<Telemetry>(std::move(telemetry_options));
    telemetry_->AddSpanSink(spans_);
    Node::Options options;
    options.clock = &clock_;
    options.telemetry = telemetry_;
    auto node = Node::Create(config_, options);
    ASSERT_TRUE(node.ok()) << node.status();
    node_ = *std::move(node);
  }

  // Waits (bounded) for `n` spans.
  std::vector<SpanData> WaitForSpans(size_t n) {
    absl::Time give_up = absl::Now() + kWait;
    while (spans_->Spans().size() < n && absl::Now() < give_up) absl::SleepFor(absl::Milliseconds(1));
    return spans_->Spans();
  }

  MetricLabels Labels(std::string_view op, std::string_view style, MetricLabels extra = {}) {
    MetricLabels l = {{"operation", std::string(op)}, {"style", std::string(style)}, {"transport", "local"}};
    for (auto& e : extra) l.push_back(std::move(e));
    return l;
  }

  FakeClock clock_;
  v1::Config config_;
  Lines lines_;
  std::shared_ptr<MemorySpanSink> spans_ = std::make_shared<MemorySpanSink>();
  std::shared_ptr<Telemetry> telemetry_;
  std::unique_ptr<Node> node_;
};

TEST_F(NodeTelemetryTest, ARequestHasAClientServerAndReplySpanInOneTree) {
  auto reg = node_->Handle(kSay, [&](Context& ctx, const EchoRequest& req) -> absl::StatusOr<EchoReply> {
    clock_.Advance(absl::Milliseconds(7));  // the handler "takes" 7ms of fake time
    EchoReply r;
    r.set_text(req.text());
    r.set_handled_by(ctx.trace_id());
    return r;
  });
  ASSERT_TRUE(reg.ok()) << reg.status();
  EchoRequest req;
  req.set_text("hi");
  auto call = node_->Call(kSay, req);
  std::string trace = call.info().trace_id;
  auto reply = std::move(call).GetFor(kWait);
  ASSERT_TRUE(reply.ok()) << reply.status();
  EXPECT_EQ(reply->handled_by(), trace);

  std::vector<SpanData> spans = WaitForSpans(3);
  ASSERT_THAT(spans, SizeIs(3));
  EXPECT_TRUE(testing::IsOneTraceTree(spans));
  const SpanData* client = nullptr;
  const SpanData* server = nullptr;
  const SpanData* reply_span = nullptr;
  for (const auto& s : spans) {
    if (s.kind == SpanKind::kClient) client = &s;
    if (s.kind == SpanKind::kServer) server = &s;
    if (s.kind == SpanKind::kReply) reply_span = &s;
  }
  ASSERT_TRUE(client && server && reply_span);
  EXPECT_EQ(client->trace_id, trace);
  EXPECT_EQ(client->parent_span_id, "");  // created at the edge
  EXPECT_EQ(server->parent_span_id, client->span_id);
  EXPECT_EQ(reply_span->parent_span_id, server->span_id);
  EXPECT_EQ(server->operation, kSay.name);
  EXPECT_EQ(server->style, Style::kRequest);
  EXPECT_EQ(server->transport, "local");
  EXPECT_EQ(server->transport_type, "inproc");
  EXPECT_EQ(server->code, absl::StatusCode::kOk);
  EXPECT_EQ(server->attempt, 1);
  EXPECT_FALSE(server->idempotency_key.empty());
  EXPECT_EQ(server->idempotency_key, client->idempotency_key);
  EXPECT_EQ(server->duration, absl::Milliseconds(7));
  EXPECT_EQ(client->duration, absl::Milliseconds(7));

  // Metrics: one OK call on each side, latency 7ms, nothing in flight.
  const Counter* client_ok = telemetry_->metrics().FindCounter(
      metric::kCalls, Labels(kSay.name, "request", {{"side", "client"}, {"code", "OK"}}));
  const Counter* server_ok = telemetry_->metrics().FindCounter(
      metric::kCalls, Labels(kSay.name, "request", {{"side", "server"}, {"code", "OK"}}));
  ASSERT_NE(client_ok, nullptr);
  ASSERT_NE(server_ok, nullptr);
  EXPECT_EQ(client_ok->Value(), 1u);
  EXPECT_EQ(server_ok->Value(), 1u);
  const Histogram* latency =
      telemetry_->metrics().FindHistogram(metric::kLatency, Labels(kSay.name, "request", {{"side", "server"}}));
  ASSERT_NE(latency, nullptr);
  Histogram::Snapshot snap = latency->Read();
  EXPECT_EQ(snap.count, 1u);
  EXPECT_NEAR(snap.sum_seconds, 0.007, 1e-9);
  EXPECT_GT(snap.Quantile(0.99), 0.005);
  EXPECT_LE(snap.Quantile(0.99), 0.010);
  const Gauge* in_flight =
      telemetry_->metrics().FindGauge(metric::kInFlight, Labels(kSay.name, "request", {{"side", "client"}}));
  ASSERT_NE(in_flight, nullptr);
  EXPECT_EQ(in_flight->Value(), 0);

  // Logs: one line per completed call and delivery, with the trace id.
  std::vector<std::string> lines = lines_.Get();
  ASSERT_THAT(lines, SizeIs(2));
  for (const auto& line : lines) {
    EXPECT_THAT(line, HasSubstr("\"trace_id\":\"" + trace + "\""));
    EXPECT_THAT(line, HasSubstr("\"level\":\"info\""));
    EXPECT_THAT(line, HasSubstr("\"status_code\":\"OK\""));
    EXPECT_THAT(line, Not(HasSubstr("hi")));  // no payload
  }
}

// A raw handler that drops its call without an answer: the call is answered
// Cancelled, as a dropped Promise is, and the command is dead-lettered (not
// left unsettled, which would hold the registration open forever). The dead
// letter is the message as it arrived: its id, its payload, and the sender's
// span as its parent, not the span of the handler that dropped it.
TEST_F(NodeTelemetryTest, ADroppedCallIsAnsweredCancelledAndDeadLetteredAsItArrived) {
  auto reg = node_->HandleRaw(kFire.name, [](Context&, const Envelope&,
                                             absl::AnyInvocable<void(absl::StatusOr<std::string>) &&>) {
    // `done` is dropped unanswered.
  });
  ASSERT_TRUE(reg.ok()) << reg.status();
  absl::Mutex mu;
  std::vector<Envelope> dead;
  auto dlq = node_->HandleRaw(
      DeadLetterAddress(kFire.name),
      [&](Context&, const Envelope& env, absl::AnyInvocable<void(absl::StatusOr<std::string>) &&> done) {
        {
          absl::MutexLock lock(&mu);
          dead.push_back(env);
        }
        std::move(done)(std::string());
      });
  ASSERT_TRUE(dlq.ok()) << dlq.status();
  EchoRequest req;
  req.set_text("dropped");
  auto call = node_->Call(kFire, req);
  const std::string id = call.info().message_id;
  ASSERT_TRUE(std::move(call).GetFor(kWait).ok());

  std::vector<SpanData> spans = WaitForSpans(3);
  ASSERT_THAT(spans, SizeIs(3));
  const SpanData* client = nullptr;
  const SpanData* dropped = nullptr;
  const SpanData* dead_letter = nullptr;
  for (const auto& s : spans) {
    if (s.kind == SpanKind::kClient) client = &s;
    if (s.kind == SpanKind::kServer && s.operation == kFire.name) dropped = &s;
    if (s.kind == SpanKind::kServer && s.operation == DeadLetterAddress(kFire.name)) {
      dead_letter = &s;
    }
  }
  ASSERT_TRUE(client && dropped && dead_letter);
  EXPECT_EQ(dropped->code, absl::StatusCode::kCancelled);
  EXPECT_EQ(dropped->parent_span_id, client->span_id);
  EXPECT_EQ(dead_letter->parent_span_id, client->span_id);
  EXPECT_EQ(dead_letter->trace_id, client->trace_id);

  absl::MutexLock lock(&mu);
  ASSERT_THAT(dead, SizeIs(1));
  EXPECT_EQ(dead[0].id, id);
  EXPECT_EQ(dead[0].data, req.SerializeAsString());
  EXPECT_EQ(dead[0].extensions[std::string(attr::kDeadLetterCode)], "CANCELLED");
  EXPECT_THAT(dead[0].extensions[std::string(attr::kDeadLetterReason)],
              HasSubstr("the handler dropped the call without an answer"));
}

TEST_F(NodeTelemetryTest, AFailedCallIsLoggedAtErrorWithoutSecretsAndCountedByCode) {
  telemetry_->SetLogLevel(LogLevel::kError);
  auto reg = node_->Handle(kSay, [](Context&, const EchoRequest&) -> absl::StatusOr<EchoReply> {
    return absl::UnavailableError("cannot reach amqp://svc:hunter2@127.0.0.1:5672 with token=abc123");
  });
  ASSERT_TRUE(reg.ok());
  CallOptions o;
  o.extensions["authorization"] = "Bearer very-secret";
  o.tracestate = "vendor=secretish";
  auto reply = node_->Call(kSay, EchoRequest(), o).GetFor(kWait);
  ASSERT_EQ(reply.status().code(), absl::StatusCode::kUnavailable);
  WaitForSpans(3);
  std::vector<std::string> lines = lines_.Get();
  ASSERT_THAT(lines, SizeIs(2));  // client and server; the reply is debug
  for (const auto& line : lines) {
    EXPECT_THAT(line, HasSubstr("\"level\":\"error\""));
    EXPECT_THAT(line, HasSubstr("\"status_code\":\"UNAVAILABLE\""));
    EXPECT_THAT(line, HasSubstr("amqp://***@127.0.0.1:5672"));
    for (const char* secret : {"hunter2", "abc123", "very-secret", "secretish"}) {
      EXPECT_THAT(line, Not(HasSubstr(secret))) << line;
    }
  }
  const Counter* unavailable = telemetry_->metrics().FindCounter(
      metric::kCalls, Labels(kSay.name, "request", {{"side", "client"}, {"code", "UNAVAILABLE"}}));
  ASSERT_NE(unavailable, nullptr);
  EXPECT_EQ(unavailable->Value(), 1u);
}

TEST_F(NodeTelemetryTest, ACallFromAHandlerContinuesTheTrace) {
  auto fire = node_->Handle(kFire, [&](Context&, const EchoRequest&) -> absl::StatusOr<google::protobuf::Empty> {
    return google::protobuf::Empty();
  });
  ASSERT_TRUE(fire.ok());
  auto say = node_->Handle(kSay, [&](Context& ctx, const EchoRequest& req) -> absl::StatusOr<EchoReply> {
    CallOptions o;
    o.parent = &ctx;
    auto accepted = node_->Call(kFire, req, o).GetFor(kWait);
    if (!accepted.ok()) return accepted.status();
    return EchoReply();
  });
  ASSERT_TRUE(say.ok());
  auto call = node_->Call(kSay, EchoRequest());
  std::string trace = call.info().trace_id;
  ASSERT_TRUE(std::move(call).GetFor(kWait).ok());
  // client+server+reply of Say, client+server of Fire.
  std::vector<SpanData> spans = WaitForSpans(5);
  ASSERT_THAT(spans, SizeIs(5));
  EXPECT_TRUE(testing::IsOneTraceTree(spans));
  EXPECT_EQ(spans.front().trace_id, trace);
  std::string say_server;
  for (const auto& s : spans)
    if (s.kind == SpanKind::kServer && s.operation == kSay.name) say_server = s.span_id;
  auto fire_client = testing::ChildrenOf(spans, say_server, SpanKind::kClient, std::string(kFire.name));
  ASSERT_THAT(fire_client, SizeIs(1));
  EXPECT_THAT(testing::ChildrenOf(spans, fire_client[0].span_id, SpanKind::kServer, std::string(kFire.name)),
              SizeIs(1));
}

TEST_F(NodeTelemetryTest, AMalformedTraceparentAtTheEdgeIsReplacedAndCounted) {
  auto reg = node_->Handle(kSay, [](Context& ctx, const EchoRequest&) -> absl::StatusOr<EchoReply> {
    EchoReply r;
    r.set_handled_by(ctx.envelope().traceparent);
    r.set_text(ctx.tracestate());
    return r;
  });
  ASSERT_TRUE(reg.ok());
  const std::vector<std::string> bad = {
      "garbage",
      "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331",           // truncated
      "00-00000000000000000000000000000000-b7ad6b7169203331-01",        // zero trace id
      "00-0af7651916cd43dd8448eb211c80319c-0000000000000000-01",        // zero span id
      "ff-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",        // forbidden version
      "00-0AF7651916CD43DD8448EB211C80319C-b7ad6b7169203331-01",        // upper case
      "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01\n-x",    // trailing garbage
  };
  for (size_t i = 0; i < bad.size(); ++i) {
    spans_->Clear();
    CallOptions o;
    o.traceparent = bad[i];
    o.tracestate = "vendor=1";
    auto call = node_->Call(kSay, EchoRequest(), o);
    std::string trace = call.info().trace_id;
    auto reply = std::move(call).GetFor(kWait);
    ASSERT_TRUE(reply.ok()) << reply.status();
    EXPECT_EQ(telemetry_->invalid_traceparent().Value(), i + 1) << bad[i];
    EXPECT_THAT(trace, Not(HasSubstr("0af7651916cd43dd8448eb211c80319c")));
    EXPECT_EQ(trace.size(), 32u);
    TraceParent got;
    ASSERT_TRUE(TraceParent::Parse(reply->handled_by(), &got)) << reply->handled_by();
    EXPECT_EQ(got.TraceId(), trace);
    EXPECT_EQ(reply->text(), "") << "tracestate of an untrusted header must not pass";
    std::vector<SpanData> spans = WaitForSpans(3);
    EXPECT_TRUE(testing::IsOneTraceTree(spans)) << bad[i];
  }
  // A valid one is continued, with its tracestate.
  spans_->Clear();
  CallOptions o;
  o.traceparent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
  o.tracestate = "vendor=1";
  auto call = node_->Call(kSay, EchoRequest(), o);
  EXPECT_EQ(call.info().trace_id, "0af7651916cd43dd8448eb211c80319c");
  auto reply = std::move(call).GetFor(kWait);
  ASSERT_TRUE(reply.ok());
  EXPECT_EQ(reply->text(), "vendor=1");
  EXPECT_EQ(telemetry_->invalid_traceparent().Value(), bad.size());
  std::vector<SpanData> spans = WaitForSpans(3);
  for (const auto& s : spans) {
    if (s.kind == SpanKind::kClient) {
      EXPECT_EQ(s.parent_span_id, "b7ad6b7169203331");
    }
  }
}

TEST_F(NodeTelemetryTest, AMalformedTraceparentFromTheWireIsReplacedAndCounted) {
  auto reg = node_->Handle(kSay, [](Context& ctx, const EchoRequest&) -> absl::StatusOr<EchoReply> {
    EchoReply r;
    r.set_handled_by(ctx.envelope().traceparent);
    r.set_text(ctx.tracestate());
    return r;
  });
  ASSERT_TRUE(reg.ok());
  // A message written by another client, straight onto the transport.
  Transport* transport = node_->FindTransport("local");
  ASSERT_NE(transport, nullptr);
  Envelope env;
  env.id = NewMessageId();
  env.source = "//elsewhere";
  env.type = std::string(kSay.name);
  env.style = Style::kRequest;
  env.traceparent = "00-not-a-trace-context";
  env.tracestate = "vendor=untrusted";
  env.deadline = clock_.Now() + absl::Seconds(30);
  absl::Notification done;
  absl::StatusOr<Envelope> result;
  transport->Request(env, [&](absl::StatusOr<Envelope> r) {
    result = std::move(r);
    done.Notify();
  });
  ASSERT_TRUE(done.WaitForNotificationWithTimeout(kWait));
  ASSERT_TRUE(result.ok()) << result.status();
  ASSERT_TRUE(result->status.ok()) << result->status;
  EchoReply reply;
  ASSERT_TRUE(reply.ParseFromString(result->data));
  TraceParent server_span;
  ASSERT_TRUE(TraceParent::Parse(reply.handled_by(), &server_span)) << reply.handled_by();
  EXPECT_EQ(reply.text(), "");
  EXPECT_EQ(telemetry_->invalid_traceparent().Value(), 1u);
  // The reply carries a new span of the new trace.
  TraceParent reply_span;
  ASSERT_TRUE(TraceParent::Parse(result->traceparent, &reply_span));
  EXPECT_EQ(reply_span.TraceId(), server_span.TraceId());
  EXPECT_NE(reply_span.SpanId(), server_span.SpanId());
  std::vector<SpanData> spans = WaitForSpans(2);  // server (root) and reply
  ASSERT_THAT(spans, SizeIs(2));
  EXPECT_TRUE(testing::IsOneTraceTree(spans));
}

TEST_F(NodeTelemetryTest, AnUnsampledTraceRecordsNoSpans) {
  telemetry_->SetSampleRatio(0);
  auto reg = node_->Handle(kSay, [](Context&, const EchoRequest&) -> absl::StatusOr<EchoReply> {
    return EchoReply();
  });
  ASSERT_TRUE(reg.ok());
  ASSERT_TRUE(node_->Call(kSay, EchoRequest()).GetFor(kWait).ok());
  EXPECT_THAT(spans_->Spans(), SizeIs(0));
  // Metrics and logs do not depend on sampling.
  EXPECT_THAT(lines_.Get(), SizeIs(2));
}

TEST_F(NodeTelemetryTest, ACommandIsOneDeliverySpanAndAServerCallCount) {
  absl::Notification handled;
  auto reg = node_->Handle(kFire, [&](Context&, const EchoRequest&) -> absl::StatusOr<google::protobuf::Empty> {
    handled.Notify();
    return google::protobuf::Empty();
  });
  ASSERT_TRUE(reg.ok());
  CallOptions o;
  o.idempotency_key = "fire-1";
  ASSERT_TRUE(node_->Call(kFire, EchoRequest(), o).GetFor(kWait).ok());
  ASSERT_TRUE(handled.WaitForNotificationWithTimeout(kWait));
  std::vector<SpanData> spans = WaitForSpans(2);
  ASSERT_THAT(spans, SizeIs(2));
  EXPECT_TRUE(testing::IsOneTraceTree(spans));
  for (const auto& s : spans) {
    EXPECT_EQ(s.style, Style::kCommand);
    EXPECT_EQ(s.idempotency_key, "fire-1");
    EXPECT_NE(s.kind, SpanKind::kReply);  // no reply address, no reply hop
  }
  std::vector<OperationInfo> ops = telemetry_->Operations();
  bool found = false;
  for (const auto& op : ops) {
    if (op.operation == kFire.name) {
      found = true;
      EXPECT_EQ(op.style, Style::kCommand);
      EXPECT_EQ(op.transport, "local");
      EXPECT_EQ(op.transport_type, "inproc");
    }
  }
  EXPECT_TRUE(found);
}

TEST_F(NodeTelemetryTest, QueueDepthIsReportedWhileTheHandlerIsRegistered) {
  absl::Notification release;
  std::atomic<int> started{0};
  HandlerOptions options;
  options.max_in_flight = 1;
  auto reg = node_->Handle(
      kFire,
      [&](Context&, const EchoRequest&) -> absl::StatusOr<google::protobuf::Empty> {
        ++started;
        release.WaitForNotificationWithTimeout(kWait);
        return google::protobuf::Empty();
      },
      options);
  ASSERT_TRUE(reg.ok());
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(node_->Call(kFire, EchoRequest()).GetFor(kWait).ok());
  absl::Time give_up = absl::Now() + kWait;
  while (started.load() == 0 && absl::Now() < give_up) absl::SleepFor(absl::Milliseconds(1));
  ASSERT_EQ(started.load(), 1);
  auto depth = [&]() -> std::optional<double> {
    for (const MetricFamily& f : telemetry_->metrics().Collect()) {
      if (f.name != metric::kQueueDepth) continue;
      for (const auto& sample : f.samples) {
        if (sample.labels == Labels(kFire.name, "command", {{"group", std::string(kFire.name)}})) {
          return sample.value;
        }
      }
    }
    return std::nullopt;
  };
  EXPECT_EQ(depth(), 2);  // one being handled (max_in_flight 1), two waiting
  release.Notify();
  give_up = absl::Now() + kWait;
  while (depth() != 0 && absl::Now() < give_up) absl::SleepFor(absl::Milliseconds(1));
  EXPECT_EQ(depth(), 0);
  reg->Stop();
  EXPECT_EQ(depth(), std::nullopt);
}

// A retrying middleware that follows the TraceAttempt contract: the trace
// stays one tree, each delivery a child of its attempt's span.
class RetryOnce final : public ClientMiddleware {
 public:
  explicit RetryOnce(Telemetry* telemetry) : telemetry_(telemetry) {}
  void Invoke(const CallSite& site, Envelope&& envelope, ReplyCallback done,
              const ClientNext& next) override {
    Envelope first_attempt = envelope;
    next(std::move(first_attempt), [this, &site, envelope = std::move(envelope),
                                    done = std::move(done), &next](
                       absl::StatusOr<Envelope> first) mutable {
      absl::Status s = first.ok() ? first->status : first.status();
      if (s.code() != absl::StatusCode::kUnavailable) {
        std::move(done)(std::move(first));
        return;
      }
      Envelope again = envelope;
      ++again.attempt;
      ReplyCallback d = TraceAttempt(*telemetry_, site, again, std::move(done));
      next(std::move(again), std::move(d));
    });
  }

 private:
  Telemetry* telemetry_;
};

TEST_F(NodeTelemetryTest, ARetriedCallStaysOneTreeWithAnAttemptSpan) {
  Node::Options options;
  options.clock = &clock_;
  options.telemetry = telemetry_;
  options.middleware.client.push_back(
      [t = telemetry_.get()](const CallSite&) { return std::make_unique<RetryOnce>(t); });
  v1::Config config = config_;
  (*config.mutable_transports())["local"].mutable_inproc()->set_bus(UniqueName("bus"));
  auto node = Node::Create(config, options);
  ASSERT_TRUE(node.ok()) << node.status();
  std::atomic<int> calls{0};
  auto reg = (*node)->Handle(kSay, [&](Context& ctx, const EchoRequest&) -> absl::StatusOr<EchoReply> {
    if (calls++ == 0) return absl::UnavailableError("first attempt fails");
    EchoReply r;
    r.set_attempt(ctx.attempt());
    return r;
  });
  ASSERT_TRUE(reg.ok());
  auto reply = (*node)->Call(kSay, EchoRequest()).GetFor(kWait);
  ASSERT_TRUE(reply.ok()) << reply.status();
  EXPECT_EQ(reply->attempt(), 2);
  // client, attempt; server+reply for each of the two deliveries.
  std::vector<SpanData> spans = WaitForSpans(6);
  ASSERT_THAT(spans, SizeIs(6));
  EXPECT_TRUE(testing::IsOneTraceTree(spans));
  std::string client, attempt;
  for (const auto& s : spans) {
    if (s.kind == SpanKind::kClient) client = s.span_id;
    if (s.kind == SpanKind::kAttempt) attempt = s.span_id;
  }
  auto first = testing::ChildrenOf(spans, client, SpanKind::kServer, std::string(kSay.name));
  ASSERT_THAT(first, SizeIs(1));
  EXPECT_EQ(first[0].attempt, 1);
  EXPECT_EQ(first[0].code, absl::StatusCode::kUnavailable);
  auto second = testing::ChildrenOf(spans, attempt, SpanKind::kServer, std::string(kSay.name));
  ASSERT_THAT(second, SizeIs(1));
  EXPECT_EQ(second[0].attempt, 2);
  EXPECT_EQ(second[0].code, absl::StatusCode::kOk);
  for (const auto& s : spans) {
    if (s.kind == SpanKind::kClient) {
      EXPECT_EQ(s.attempt, 2);  // the call took two attempts
      EXPECT_EQ(s.code, absl::StatusCode::kOk);
    }
  }
}

TEST(TraceAttemptTest, EachAttemptIsAChildSpanOfTheCall) {
  FakeClock clock;
  Telemetry telemetry;
  auto sink = std::make_shared<MemorySpanSink>();
  telemetry.AddSpanSink(sink);
  CallSite site;
  site.operation = "op";
  site.style = Style::kRequest;
  site.transport_name = "local";
  site.clock = &clock;
  TraceParent call = TraceParent::NewRoot();
  Envelope env;
  env.traceparent = call.ToString();
  env.attempt = 2;
  bool called = false;
  ReplyCallback done = TraceAttempt(telemetry, site, env, [&](absl::StatusOr<Envelope>) { called = true; });
  TraceParent attempt;
  ASSERT_TRUE(TraceParent::Parse(env.traceparent, &attempt));
  EXPECT_EQ(attempt.TraceId(), call.TraceId());
  EXPECT_NE(attempt.SpanId(), call.SpanId());
  clock.Advance(absl::Milliseconds(3));
  std::move(done)(absl::UnavailableError("down"));
  EXPECT_TRUE(called);
  std::vector<SpanData> spans = sink->Spans();
  ASSERT_THAT(spans, SizeIs(1));
  EXPECT_EQ(spans[0].kind, SpanKind::kAttempt);
  EXPECT_EQ(spans[0].span_id, attempt.SpanId());
  EXPECT_EQ(spans[0].parent_span_id, call.SpanId());
  EXPECT_EQ(spans[0].attempt, 2);
  EXPECT_EQ(spans[0].duration, absl::Milliseconds(3));
  EXPECT_EQ(spans[0].code, absl::StatusCode::kUnavailable);
}

}  // namespace
}  // namespace switchboard
