// Tests of the YAML configuration loader (core/src/config.cc): the full
// example loads with every short form, and each error names file:line:col,
// what is wrong and a hint.
#include "switchboard/config.h"

#include <cstdlib>
#include <filesystem>
#include <string>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "google/protobuf/descriptor.h"
#include "gtest/gtest.h"
#include "switchboard/test/v1/echo.pb.h"
#include "switchboard/transport_registry.h"

namespace switchboard {
namespace {

using ::testing::AllOf;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;
using ::testing::SizeIs;
using ::testing::StartsWith;

absl::StatusOr<std::unique_ptr<Transport>> NoTransport(std::string_view, const v1::TransportConfig&,
                                                       const TransportEnv&) {
  return absl::UnimplementedError("not in this test");
}

// A registry with the four built-in type names and a third-party one.
const TransportRegistry& TestRegistry() {
  static TransportRegistry* registry = [] {
    auto* r = new TransportRegistry;
    for (const char* type : {"inproc", "grpc", "nats", "amqp", "kafka"}) {
      (void)r->Register(type, &NoTransport);
    }
    return r;
  }();
  return *registry;
}

ConfigOptions Options() {
  ConfigOptions options;
  options.registry = &TestRegistry();
  return options;
}

absl::StatusOr<LoadedConfig> Parse(const std::string& yaml) {
  return ParseConfig(yaml, "test.yaml", Options());
}

// The message of a load that must fail with InvalidArgument.
std::string ErrorOf(const std::string& yaml) {
  auto loaded = Parse(yaml);
  EXPECT_FALSE(loaded.ok()) << "loaded without error:\n" << yaml;
  if (loaded.ok()) return "";
  EXPECT_EQ(loaded.status().code(), absl::StatusCode::kInvalidArgument) << loaded.status();
  return std::string(loaded.status().message());
}

absl::Duration ToDuration(const google::protobuf::Duration& d) {
  return absl::Seconds(d.seconds()) + absl::Nanoseconds(d.nanos());
}

std::string Fixture(const std::string& name) {
  return (std::filesystem::path(__FILE__).parent_path() / "testdata" / name).string();
}

class ConfigTest : public ::testing::Test {
 protected:
  void SetUp() override {
    // The generated pool only knows the test protos if they are linked.
    ASSERT_NE(test::v1::EchoRequest::descriptor(), nullptr);
    setenv("SB_TEST_NATS_TOKEN", "s3cr3t-token", 1);
  }
  void TearDown() override { unsetenv("SB_TEST_NATS_TOKEN"); }
};

// ---------------------------------------------------------------------------
// The full example

TEST_F(ConfigTest, FullExampleLoadsWithEveryShortForm) {
  auto loaded = LoadConfigFile(Fixture("full.yaml"), Options());
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  const v1::Config& c = loaded->config;
  EXPECT_THAT(loaded->warnings, IsEmpty());

  EXPECT_EQ(c.node().source(), "//orders/instance-1");
  EXPECT_EQ(c.node().handler_threads(), 8);
  EXPECT_EQ(c.node().handler_idle_spin().nanos(), 20'000);
  EXPECT_EQ(c.node().default_transport(), "local");
  EXPECT_EQ(c.node().default_policy(), "interactive");

  // Flat transport keys land in the sub-message named by the type.
  const v1::TransportConfig& local = c.transports().at("local");
  EXPECT_EQ(local.type(), "inproc");
  EXPECT_EQ(local.inproc().bus(), "orders");
  EXPECT_EQ(local.inproc().max_queue_depth(), 50000u);

  const v1::TransportConfig& bus = c.transports().at("bus");
  EXPECT_EQ(bus.type(), "nats");
  EXPECT_EQ(bus.nats().url(), "nats://127.0.0.1:4222");
  EXPECT_THAT(bus.nats().urls(), ElementsAre("nats://127.0.0.1:4223"));
  EXPECT_TRUE(bus.nats().jetstream());
  EXPECT_EQ(bus.nats().token(), "s3cr3t-token");  // from ${SB_TEST_NATS_TOKEN}
  EXPECT_EQ(ToDuration(bus.nats().max_age()), absl::Hours(24));
  EXPECT_EQ(ToDuration(bus.nats().ack_wait()), absl::Seconds(30));
  EXPECT_FALSE(bus.has_grpc());
  EXPECT_FALSE(bus.has_extra());

  const v1::TransportConfig& rpc = c.transports().at("rpc");
  EXPECT_EQ(rpc.grpc().listen(), "127.0.0.1:50051");
  EXPECT_EQ(rpc.grpc().targets().at("orders"), "127.0.0.1:50051");
  EXPECT_EQ(rpc.grpc().targets().at("*"), "127.0.0.1:50052");
  EXPECT_EQ(rpc.grpc().max_message_bytes(), 4u * 1024 * 1024);
  EXPECT_EQ(ToDuration(rpc.grpc().keepalive_time()), absl::Seconds(90));

  const v1::TransportConfig& mq = c.transports().at("mq");
  EXPECT_EQ(mq.amqp().url(), "amqp://127.0.0.1:5672");
  EXPECT_EQ(mq.amqp().profile(), "rabbitmq");
  EXPECT_EQ(ToDuration(mq.amqp().reconnect_initial()), absl::Milliseconds(100));

  // A third-party type: its options pass through in `extra`.
  const v1::TransportConfig& stream = c.transports().at("stream");
  EXPECT_EQ(stream.type(), "kafka");
  const auto& extra = stream.extra().fields();
  EXPECT_EQ(extra.at("acks").string_value(), "all");
  EXPECT_EQ(extra.at("linger_ms").number_value(), 5);
  ASSERT_EQ(extra.at("brokers").list_value().values_size(), 1);
  EXPECT_EQ(extra.at("brokers").list_value().values(0).string_value(), "127.0.0.1:9092");

  const v1::Policy& interactive = c.policies().at("interactive");
  EXPECT_EQ(ToDuration(interactive.timeout()), absl::Milliseconds(200));
  EXPECT_EQ(interactive.retry().attempts(), 2);
  EXPECT_EQ(ToDuration(interactive.retry().backoff().initial()), absl::Milliseconds(20));
  EXPECT_EQ(ToDuration(interactive.retry().backoff().max()), absl::Milliseconds(200));
  EXPECT_DOUBLE_EQ(interactive.retry().budget(), 0.10);
  EXPECT_DOUBLE_EQ(interactive.circuit_breaker().failure_rate(), 0.5);
  EXPECT_EQ(ToDuration(interactive.circuit_breaker().window()), absl::Seconds(10));
  EXPECT_EQ(interactive.circuit_breaker().min_calls(), 20);
  EXPECT_EQ(ToDuration(interactive.circuit_breaker().open_for()), absl::Seconds(5));

  const v1::Policy& background = c.policies().at("background");
  EXPECT_EQ(ToDuration(background.timeout()), absl::Seconds(30));
  EXPECT_EQ(background.retry().attempts(), 8);
  EXPECT_EQ(ToDuration(background.retry().backoff().initial()), absl::Milliseconds(100));
  EXPECT_EQ(ToDuration(background.retry().backoff().max()), absl::Seconds(10));
  EXPECT_DOUBLE_EQ(background.retry().backoff().multiplier(), 3);
  EXPECT_TRUE(background.dead_letter());
  EXPECT_EQ(ToDuration(background.idempotency().ttl()), absl::Hours(24));
  EXPECT_EQ(background.idempotency().store(), "sqlite:/var/lib/svc/idem.db");
  EXPECT_EQ(background.max_payload_bytes(), 512u * 1024);
  EXPECT_EQ(background.bulkhead().max_concurrent(), 64);

  const v1::OperationBinding& get = c.operations().at("profile.v1.Profiles/GetProfile");
  EXPECT_EQ(get.style(), v1::STYLE_REQUEST);
  EXPECT_EQ(get.transport(), "rpc");
  EXPECT_EQ(get.policy(), "interactive");
  const v1::OperationBinding& place = c.operations().at("orders.v1.Orders/PlaceOrder");
  EXPECT_EQ(place.style(), v1::STYLE_COMMAND);
  EXPECT_TRUE(place.reply());
  EXPECT_EQ(place.rollout().style(), v1::STYLE_REQUEST);
  EXPECT_EQ(place.rollout().transport(), "rpc");
  EXPECT_DOUBLE_EQ(place.rollout().percent(), 10);  // percent stays 0..100
  const v1::OperationBinding& placed = c.operations().at("orders.v1.OrderPlaced");
  EXPECT_EQ(placed.style(), v1::STYLE_EVENT);
  EXPECT_THAT(placed.groups(), ElementsAre("payment", "notification", "analytics"));

  EXPECT_DOUBLE_EQ(c.telemetry().sample_ratio(), 0.25);
  EXPECT_EQ(c.telemetry().spans_file(), "-");
  EXPECT_EQ(c.telemetry().log_level(), "info");
  EXPECT_EQ(c.telemetry().admin_listen(), "127.0.0.1:0");
}

TEST_F(ConfigTest, DefaultsAreNotFilledIn) {
  auto loaded = Parse(R"(
transports:
  local: { type: inproc }
policies:
  p: { retry: { attempts: 3 } }
)");
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  const v1::Policy& p = loaded->config.policies().at("p");
  EXPECT_FALSE(p.has_timeout());
  EXPECT_FALSE(p.dead_letter());
  EXPECT_EQ(p.max_deliveries(), 0);
  EXPECT_FALSE(p.retry().has_backoff());
  EXPECT_FALSE(loaded->config.transports().at("local").has_inproc());
  EXPECT_FALSE(loaded->config.has_node());
  EXPECT_FALSE(loaded->config.has_telemetry());
}


// ---------------------------------------------------------------------------
// Short forms

TEST(ParseDurationTextTest, AcceptsTheShortForms) {
  EXPECT_EQ(*ParseDurationText("250ms"), absl::Milliseconds(250));
  EXPECT_EQ(*ParseDurationText("2s"), absl::Seconds(2));
  EXPECT_EQ(*ParseDurationText("1.5m"), absl::Seconds(90));
  EXPECT_EQ(*ParseDurationText("24h"), absl::Hours(24));
  EXPECT_EQ(*ParseDurationText("100us"), absl::Microseconds(100));
  EXPECT_EQ(*ParseDurationText("10ns"), absl::Nanoseconds(10));
  EXPECT_EQ(*ParseDurationText("1h30m"), absl::Minutes(90));
  EXPECT_EQ(*ParseDurationText("0"), absl::ZeroDuration());
}

TEST(ParseDurationTextTest, RejectsWhatIsNotADuration) {
  for (const char* text : {"", "20 sec", "-1s", "5", "s", "1.5", "1x", "ms10", "1s ", "inf"}) {
    auto d = ParseDurationText(text);
    EXPECT_EQ(d.status().code(), absl::StatusCode::kInvalidArgument) << "`" << text << "`";
  }
  EXPECT_THAT(ParseDurationText("20 sec").status().message(), HasSubstr("did you mean `20s`?"));
  EXPECT_THAT(std::string(ParseDurationText("-1s").status().message()), HasSubstr("negative"));
}

TEST_F(ConfigTest, SizesAcceptUnits) {
  auto loaded = Parse(R"(
transports:
  a: { type: inproc, max_queue_depth: 10 }
  b: { type: grpc, max_message_bytes: 1MiB }
  c: { type: grpc, max_message_bytes: 4KB }
  d: { type: grpc, max_message_bytes: 4096 }
policies:
  p: { max_payload_bytes: 512KiB }
)");
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  const auto& t = loaded->config.transports();
  EXPECT_EQ(t.at("b").grpc().max_message_bytes(), 1048576u);
  EXPECT_EQ(t.at("c").grpc().max_message_bytes(), 4000u);
  EXPECT_EQ(t.at("d").grpc().max_message_bytes(), 4096u);
  EXPECT_EQ(loaded->config.policies().at("p").max_payload_bytes(), 524288u);
}

TEST_F(ConfigTest, RatiosAcceptPercentOrFraction) {
  auto loaded = Parse(R"(
policies:
  a: { retry: { attempts: 2, budget: 0.2 }, circuit_breaker: { failure_rate: 50% } }
telemetry: { sample_ratio: 1 }
)");
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  EXPECT_DOUBLE_EQ(loaded->config.policies().at("a").retry().budget(), 0.2);
  EXPECT_DOUBLE_EQ(loaded->config.policies().at("a").circuit_breaker().failure_rate(), 0.5);
  EXPECT_DOUBLE_EQ(loaded->config.telemetry().sample_ratio(), 1.0);
}

TEST_F(ConfigTest, StyleAcceptsShortAndFullEnumNames) {
  auto loaded = Parse(R"(
operations:
  a.v1.A/X: { style: STYLE_REQUEST }
  a.v1.A/Y: { style: Command }
  a.v1.Happened: { style: event }
)");
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  EXPECT_EQ(loaded->config.operations().at("a.v1.A/X").style(), v1::STYLE_REQUEST);
  EXPECT_EQ(loaded->config.operations().at("a.v1.A/Y").style(), v1::STYLE_COMMAND);
  EXPECT_EQ(loaded->config.operations().at("a.v1.Happened").style(), v1::STYLE_EVENT);
}

TEST_F(ConfigTest, TransportOptionsMayBeWrittenAsASubMessage) {
  auto loaded = Parse(R"(
transports:
  bus: { type: nats, nats: { url: "nats://h:4222", jetstream: true } }
  k: { type: kafka, extra: { brokers: "h:9092" } }
)");
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  EXPECT_EQ(loaded->config.transports().at("bus").nats().url(), "nats://h:4222");
  EXPECT_TRUE(loaded->config.transports().at("bus").nats().jetstream());
  EXPECT_EQ(loaded->config.transports().at("k").extra().fields().at("brokers").string_value(), "h:9092");
}

TEST_F(ConfigTest, EnvDefaultAndEscape) {
  unsetenv("SB_TEST_UNSET");
  auto loaded = Parse(R"(
node: { source: "${SB_TEST_UNSET:-//fallback}", default_transport: "$${literal}" }
transports:
  "${literal}": { type: inproc }
)");
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  EXPECT_EQ(loaded->config.node().source(), "//fallback");
  EXPECT_EQ(loaded->config.node().default_transport(), "${literal}");
}

TEST_F(ConfigTest, EnvIsLeftAloneWhenExpansionIsOff) {
  ConfigOptions options = Options();
  options.expand_env = false;
  auto loaded = ParseConfig("node: { source: \"${SB_TEST_NOT_SET_AT_ALL}\" }\n", "t.yaml", options);
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  EXPECT_EQ(loaded->config.node().source(), "${SB_TEST_NOT_SET_AT_ALL}");
}

// ---------------------------------------------------------------------------
// Errors: each names file:line:col, what is wrong, and a hint.

TEST_F(ConfigTest, YamlSyntaxError) {
  const std::string e = ErrorOf("transports:\n  local: { type: inproc\npolicies: {}\n");
  EXPECT_THAT(e, StartsWith("test.yaml:"));
  EXPECT_THAT(e, HasSubstr("YAML syntax error"));
  EXPECT_THAT(e, HasSubstr(". hint: "));
}

TEST_F(ConfigTest, EmptyFile) {
  EXPECT_THAT(ErrorOf(""), AllOf(StartsWith("test.yaml:1:1: the configuration is empty"), HasSubstr("hint:")));
  EXPECT_THAT(ErrorOf("# only a comment\n"), StartsWith("test.yaml:1:1: the configuration is empty"));
}

TEST_F(ConfigTest, NotAMap) {
  EXPECT_THAT(ErrorOf("- a\n- b\n"),
              AllOf(StartsWith("test.yaml:1:1: the configuration must be a map of sections, got a list"),
                    HasSubstr("hint:")));
  EXPECT_THAT(ErrorOf("just text\n"), StartsWith("test.yaml:1:1: the configuration must be a map"));
}

TEST_F(ConfigTest, UnknownTopLevelKey) {
  EXPECT_EQ(ErrorOf("node: {}\ntransport:\n  a: { type: inproc }\n"),
            "test.yaml:2:1: unknown key `transport` at the top level. hint: did you mean `transports`?");
  EXPECT_EQ(ErrorOf("zzzzzzzz: 1\n"),
            "test.yaml:1:1: unknown key `zzzzzzzz` at the top level. hint: valid keys: `node`, `transports`, "
            "`policies`, `operations`, `telemetry`");
}

TEST_F(ConfigTest, UnknownNestedKeySuggestsTheClosest) {
  EXPECT_EQ(ErrorOf("policies:\n  p:\n    timout: 2s\n"),
            "test.yaml:3:5: unknown key `timout` in `policies.p`. hint: did you mean `timeout`?");
  EXPECT_THAT(ErrorOf("policies:\n  p:\n    retry: { attempts: 2, frobnicate: 1 }\n"),
              AllOf(StartsWith("test.yaml:3:27: unknown key `frobnicate` in `policies.p.retry`"),
                    HasSubstr("hint: valid keys: `attempts`, `backoff`, `budget`, `min_retries_per_second`")));
}

TEST_F(ConfigTest, UnknownFlatTransportKey) {
  EXPECT_EQ(ErrorOf("transports:\n  bus: { type: nats, ur: x }\n"),
            "test.yaml:2:22: unknown key `ur` in transport `bus` (type `nats`). hint: did you mean `url`?");
}

TEST_F(ConfigTest, MapWhereAScalarIsExpected) {
  EXPECT_EQ(ErrorOf("policies:\n  p:\n    timeout: { seconds: 2 }\n"),
            "test.yaml:3:14: `timeout` expects a duration, got a map. hint: write `timeout: 250ms`");
  EXPECT_EQ(ErrorOf("node:\n  handler_threads: [1, 2]\n"),
            "test.yaml:2:20: `handler_threads` expects a whole number, got a list. hint: write "
            "`handler_threads: 3`");
}

TEST_F(ConfigTest, ScalarWhereAMapIsExpected) {
  EXPECT_THAT(ErrorOf("policies:\n  p:\n    retry: 3\n"),
              AllOf(StartsWith("test.yaml:3:12: `retry` expects a map (keys: attempts, backoff, budget, "
                               "min_retries_per_second), got a single value"),
                    HasSubstr("hint: write `retry: { attempts: ... }`")));
  EXPECT_EQ(ErrorOf("operations:\n  a.v1.Happened: { style: event, groups: [{ name: a }] }\n"),
            "test.yaml:2:43: `groups[0]` expects a single value, got a map. hint: write the list as `groups: [a, b]`");
  EXPECT_THAT(ErrorOf("operations:\n  a.v1.A/X: { style: request, groups: payment }\n"),
              AllOf(StartsWith("test.yaml:2:39: `groups` expects a list"), HasSubstr("hint: write `groups: [a, b]`")));
}

TEST_F(ConfigTest, BadDuration) {
  EXPECT_EQ(ErrorOf("policies:\n  p: { timeout: 20 sec }\n"),
            "test.yaml:2:17: `timeout`: `20 sec` is not a duration. hint: did you mean `20s`?");
  EXPECT_EQ(ErrorOf("policies:\n  p: { timeout: -1s }\n"),
            "test.yaml:2:17: `timeout`: `-1s` is negative; a duration cannot be negative. hint: write a positive "
            "duration such as `1s`");
  EXPECT_EQ(ErrorOf("node: { handler_idle_spin: -50us }\n"),
            "test.yaml:1:28: `handler_idle_spin`: `-50us` is negative; a duration cannot be negative. hint: "
            "write a positive duration such as `1s`");
  EXPECT_THAT(ErrorOf("policies:\n  p: { timeout: 5 }\n"),
              AllOf(StartsWith("test.yaml:2:17: `timeout`: `5` has no unit"), HasSubstr("hint: write `5s`")));
  EXPECT_THAT(ErrorOf("policies:\n  p: { retry: { attempts: 2, backoff: 20ms-200ms } }\n"),
              AllOf(StartsWith("test.yaml:2:39: `backoff`: `20ms-200ms` is not a backoff range"),
                    HasSubstr("hint: write `backoff: 20ms..200ms`")));
}

TEST_F(ConfigTest, BadRatio) {
  EXPECT_EQ(ErrorOf("policies:\n  p: { retry: { attempts: 2, budget: 150% } }\n"),
            "test.yaml:2:38: `budget`: `150%` is more than 100%; a ratio is between 0% and 100%. hint: write a "
            "percentage from 0% to 100%, e.g. `10%`");
  EXPECT_THAT(ErrorOf("telemetry: { sample_ratio: lots }\n"),
              AllOf(StartsWith("test.yaml:1:28: `sample_ratio`: `lots` is not a ratio"), HasSubstr("hint:")));
}

TEST_F(ConfigTest, BadSize) {
  EXPECT_THAT(ErrorOf("policies:\n  p: { max_payload_bytes: 12 parsecs }\n"),
              AllOf(StartsWith("test.yaml:2:27: `max_payload_bytes`: `12 parsecs` is not a size"),
                    HasSubstr("hint: write a number of bytes")));
  EXPECT_THAT(ErrorOf("policies:\n  p: { max_payload_bytes: -5 }\n"),
              StartsWith("test.yaml:2:27: `max_payload_bytes`: `-5` is negative"));
}

TEST_F(ConfigTest, BadScalars) {
  EXPECT_THAT(ErrorOf("policies:\n  p: { dead_letter: maybe }\n"),
              StartsWith("test.yaml:2:21: `dead_letter`: `maybe` is not true or false. hint:"));
  EXPECT_THAT(ErrorOf("node: { handler_threads: many }\n"),
              StartsWith("test.yaml:1:26: `handler_threads`: `many` is not a whole number"));
  EXPECT_THAT(ErrorOf("node: { handler_threads: }\n"),
              StartsWith("test.yaml:1:"));
}

TEST_F(ConfigTest, UnknownEnumValue) {
  EXPECT_EQ(ErrorOf("operations:\n  a.v1.A/X: { style: rpc }\n"),
            "test.yaml:2:22: `style`: unknown value `rpc`. hint: write one of request, command, event");
}

TEST_F(ConfigTest, UnknownTransportType) {
  EXPECT_EQ(ErrorOf("transports:\n  stream: { type: kafak }\n"),
            "test.yaml:2:19: transport `stream`: unknown transport type `kafak`. hint: did you mean `kafka`? "
            "registered transport types: `amqp`, `grpc`, `inproc`, `kafka`, `nats`");
  EXPECT_EQ(ErrorOf("transports:\n  stream: { type: zeromq }\n"),
            "test.yaml:2:19: transport `stream`: unknown transport type `zeromq`. hint: registered transport "
            "types: `amqp`, `grpc`, `inproc`, `kafka`, `nats`");
  EXPECT_THAT(ErrorOf("transports:\n  stream: { url: x }\n"),
              AllOf(StartsWith("test.yaml:2:11: transport `stream` has no `type`"), HasSubstr("`kafka`")));
}

TEST_F(ConfigTest, UnknownTransportTypeWithTheDefaultRegistry) {
  auto loaded = ParseConfig("transports:\n  stream: { type: zeromq }\n", "d.yaml");
  ASSERT_EQ(loaded.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(loaded.status().message()),
              AllOf(StartsWith("d.yaml:2:19: transport `stream`: unknown transport type `zeromq`"),
                    HasSubstr("registered transport types: "), HasSubstr("`inproc`")));
}

TEST_F(ConfigTest, OptionsOfAnotherTransportType) {
  EXPECT_THAT(ErrorOf("transports:\n  bus: { type: nats, grpc: { listen: x } }\n"),
              AllOf(StartsWith("test.yaml:2:22: `grpc` options on transport `bus` of type `nats`"),
                    HasSubstr("hint: set `type: grpc`")));
}

TEST_F(ConfigTest, KeySetTwice) {
  EXPECT_EQ(ErrorOf("transports:\n  bus: { type: nats, url: a, nats: { url: b } }\n"),
            "test.yaml:2:38: `url` is set twice (first at line 2). hint: keep only one of them");
  EXPECT_THAT(ErrorOf("policies:\n  p: { timeout: 1s }\n  p: { timeout: 2s }\n"),
              StartsWith("test.yaml:3:3: `p` is set twice (first at line 2)"));
}

TEST_F(ConfigTest, OperationWithUndefinedTransport) {
  EXPECT_EQ(ErrorOf("transports:\n  bus: { type: nats, jetstream: true }\noperations:\n"
                    "  a.v1.A/X: { style: command, transport: bsu }\n"),
            "test.yaml:4:31: operation `a.v1.A/X` uses transport `bsu`, which is not defined. hint: did you mean "
            "`bus`?");
  EXPECT_EQ(ErrorOf("operations:\n  a.v1.A/X:\n    style: request\n    transport: rpc\n"),
            "test.yaml:4:5: operation `a.v1.A/X` uses transport `rpc`, which is not defined. hint: define it "
            "under `transports:`");
}

TEST_F(ConfigTest, OperationWithUndefinedPolicy) {
  EXPECT_EQ(ErrorOf("policies:\n  fast: { timeout: 1s }\n  slow: { timeout: 1m }\noperations:\n"
                    "  a.v1.A/X: { style: request, policy: medium }\n"),
            "test.yaml:5:31: operation `a.v1.A/X` uses policy `medium`, which is not defined. hint: define it "
            "under `policies:` or use one of `fast`, `slow`");
}

TEST_F(ConfigTest, DanglingNodeDefaults) {
  EXPECT_EQ(ErrorOf("node:\n  default_transport: bus\ntransports:\n  local: { type: inproc }\n"),
            "test.yaml:2:3: `node.default_transport` names transport `bus`, which is not defined. hint: define "
            "it under `transports:` or use one of `local`");
  EXPECT_EQ(ErrorOf("node:\n  default_policy: interactve\npolicies:\n  interactive: { timeout: 1s }\n"),
            "test.yaml:2:3: `node.default_policy` names policy `interactve`, which is not defined. hint: did you "
            "mean `interactive`?");
}

TEST_F(ConfigTest, IdleSpinLongerThanATick) {
  EXPECT_EQ(ErrorOf("node:\n  handler_idle_spin: 50s\n"),
            "test.yaml:2:3: `node.handler_idle_spin` is 50s, more than 10ms; an idle handler thread would keep "
            "a CPU busy. hint: write a few tens of microseconds such as `50us`, or `0s` to sleep at once");
  auto at_the_limit = Parse("node:\n  handler_idle_spin: 10ms\n");
  EXPECT_TRUE(at_the_limit.ok()) << at_the_limit.status();
}

constexpr char kRolloutBase[] = R"(
transports:
  bus: { type: nats, jetstream: true }
  rpc: { type: grpc }
policies:
  p: { timeout: 1s }
operations:
)";

TEST_F(ConfigTest, RolloutWithUndefinedTransport) {
  EXPECT_EQ(ErrorOf(std::string(kRolloutBase) +
                    "  a.v1.A/X: { style: request, transport: rpc, policy: p,\n"
                    "              rollout: { style: command, reply: true, transport: queue, percent: 5 } }\n"),
            "test.yaml:9:55: operation `a.v1.A/X`: the rollout uses transport `queue`, which is not defined. "
            "hint: define it under `transports:` or use one of `bus`, `rpc`");
}

TEST_F(ConfigTest, RolloutSameAsTheBinding) {
  EXPECT_EQ(ErrorOf(std::string(kRolloutBase) +
                    "  a.v1.A/X: { style: request, transport: rpc, policy: p,\n"
                    "              rollout: { style: request, percent: 5 } }\n"),
            "test.yaml:9:15: operation `a.v1.A/X`: the rollout has the same style (request) and transport as "
            "the binding, so nothing would change. hint: give the rollout another `style` or `transport`, or "
            "remove it");
}

TEST_F(ConfigTest, PercentOutsideRange) {
  EXPECT_EQ(ErrorOf(std::string(kRolloutBase) +
                    "  a.v1.A/X: { style: request, transport: rpc, policy: p,\n"
                    "              rollout: { style: command, reply: true, transport: bus, percent: 150 } }\n"),
            "test.yaml:9:80: `percent`: `150` is outside 0..100. hint: write a percentage from 0 to 100, e.g. "
            "`10` or `10%`");
}

TEST_F(ConfigTest, EventWithReply) {
  EXPECT_EQ(ErrorOf("operations:\n  a.v1.Happened: { style: event, reply: true }\n"),
            "test.yaml:2:34: operation `a.v1.Happened` is bound as event with `reply: true`; events have "
            "no reply. hint: remove `reply: true`, or bind it as command with reply: true");
}

TEST_F(ConfigTest, RequestWithReply) {
  EXPECT_THAT(ErrorOf("policies: { p: { timeout: 1s } }\noperations:\n"
                      "  a.v1.A/X: { style: request, reply: true, policy: p }\n"),
              AllOf(StartsWith("test.yaml:3:31: operation `a.v1.A/X` is bound as request with `reply: true`"),
                    HasSubstr("hint: remove `reply: true`")));
}

TEST_F(ConfigTest, MethodWithAReplyBoundAsEvent) {
  EXPECT_EQ(ErrorOf("operations:\n  switchboard.test.v1.Echo/Say: { style: event }\n"),
            "test.yaml:2:35: operation `switchboard.test.v1.Echo/Say` returns switchboard.test.v1.EchoReply, "
            "which its callers wait for, but it is bound as event, so the reply would be dropped. "
            "hint: bind it as request or command with reply: true (or make the method return "
            "google.protobuf.Empty)");
}

TEST_F(ConfigTest, MethodWithAReplyBoundAsCommandWithoutReply) {
  EXPECT_THAT(ErrorOf("transports: { bus: { type: nats, jetstream: true } }\noperations:\n"
                      "  switchboard.test.v1.Echo/Say: { style: command, transport: bus }\n"),
              AllOf(StartsWith("test.yaml:3:35: operation `switchboard.test.v1.Echo/Say` returns "
                               "switchboard.test.v1.EchoReply"),
                    HasSubstr("as command without `reply: true`"),
                    HasSubstr("hint: bind it as request or command with reply: true")));
}

TEST_F(ConfigTest, MethodWithAReplyInARollout) {
  EXPECT_THAT(ErrorOf("transports: { bus: { type: nats, jetstream: true } }\npolicies: { p: { timeout: 1s } }\n"
                      "operations:\n  switchboard.test.v1.Echo/Say:\n    style: request\n    policy: p\n"
                      "    rollout: { style: command, transport: bus, percent: 10 }\n"),
              AllOf(StartsWith("test.yaml:7:16: operation `switchboard.test.v1.Echo/Say` returns"),
                    HasSubstr("its rollout binds it as command without `reply: true`")));
}

TEST_F(ConfigTest, ValidBindingsOfKnownMethods) {
  auto loaded = Parse(R"(
transports:
  bus: { type: nats, jetstream: true }
policies:
  p: { timeout: 1s }
operations:
  switchboard.test.v1.Echo/Say: { style: command, reply: true, transport: bus, policy: p }
  switchboard.test.v1.Echo/Fire: { style: event, transport: bus }
  switchboard.test.v1.Tick: { style: event, transport: bus, groups: [a, b] }
)");
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  EXPECT_THAT(loaded->warnings, IsEmpty());
  auto command = Parse(R"(
transports: { bus: { type: nats, jetstream: true } }
operations:
  switchboard.test.v1.Echo/Fire: { style: command, transport: bus }
)");
  EXPECT_TRUE(command.ok()) << command.status();
}

TEST_F(ConfigTest, RetryAttemptsBelowOne) {
  EXPECT_EQ(ErrorOf("policies:\n  p: { retry: { attempts: 0 } }\n"),
            "test.yaml:2:17: policy `p`: retry `attempts` is 0; it counts the first try too, so it is at least 1. "
            "hint: write `attempts: 1` for no retry, or more to retry");
  EXPECT_THAT(ErrorOf("policies:\n  p: { retry: { attempts: -2 } }\n"), StartsWith("test.yaml:2:17: "));
}

TEST_F(ConfigTest, ZeroTimeout) {
  EXPECT_EQ(ErrorOf("policies:\n  p: { timeout: 0 }\n"),
            "test.yaml:2:8: policy `p`: `timeout` must be positive. hint: write a timeout such as `2s`, or remove "
            "`timeout`");
}

TEST_F(ConfigTest, MissingEnvVar) {
  unsetenv("SB_TEST_MISSING_PASSWORD");
  EXPECT_EQ(ErrorOf("transports:\n  mq:\n    type: amqp\n    password: ${SB_TEST_MISSING_PASSWORD}\n"),
            "test.yaml:4:15: environment variable `SB_TEST_MISSING_PASSWORD` (for `password`) is not set. hint: "
            "set SB_TEST_MISSING_PASSWORD in the environment of the process, or give a default: "
            "`${SB_TEST_MISSING_PASSWORD:-default}`");
}

TEST_F(ConfigTest, ValuesFromTheEnvironmentAreNeverShown) {
  setenv("SB_TEST_SECRET", "hunter2", 1);
  const std::string e = ErrorOf("transports:\n  bus: { type: nats, max_reconnect: \"${SB_TEST_SECRET}\" }\n");
  EXPECT_THAT(e, AllOf(StartsWith("test.yaml:2:37: `max_reconnect`: the value of `max_reconnect` (from the "
                                  "environment) is not a whole number"),
                       Not(HasSubstr("hunter2"))));
  const std::string d = ErrorOf("policies:\n  p: { timeout: \"${SB_TEST_SECRET}\" }\n");
  EXPECT_THAT(d, AllOf(HasSubstr("the value of `timeout` (from the environment) is not a duration"),
                       Not(HasSubstr("hunter2"))));
  setenv("SB_TEST_SECRET", "77 sec", 1);
  const std::string g = ErrorOf("policies:\n  p: { timeout: \"${SB_TEST_SECRET}\" }\n");
  EXPECT_THAT(g, AllOf(HasSubstr("(from the environment) is not a duration. hint: write a number followed by a unit"),
                       Not(HasSubstr("77"))));
  unsetenv("SB_TEST_SECRET");
}

TEST_F(ConfigTest, AnEmptyValueIsReportedAtItsKey) {
  EXPECT_THAT(ErrorOf("transports:\n  local:\npolicies: {}\n"),
              StartsWith("test.yaml:2:3: transport `local` has no `type`. hint: add `type: <type>`"));
}

TEST_F(ConfigTest, RolloutNeedsAStyle) {
  EXPECT_THAT(ErrorOf(std::string(kRolloutBase) + "  a.v1.A/X: { style: request, policy: p, rollout: { percent: 5 } }\n"),
              AllOf(StartsWith("test.yaml:8:42: operation `a.v1.A/X`: the rollout has no `style`"), HasSubstr("hint:")));
}

TEST_F(ConfigTest, AnchorsAndAliasesWork) {
  auto loaded = Parse(R"(
policies:
  a: &shared { timeout: 1s, retry: { attempts: 3 } }
  b: *shared
)");
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  EXPECT_EQ(loaded->config.policies().at("b").retry().attempts(), 3);
}

TEST_F(ConfigTest, TheOnlyTransportIsTheDefault) {
  // As in Node: with no default_transport, a single transport is the default.
  auto loaded = Parse(R"(
transports:
  bus: { type: nats, jetstream: true }
operations:
  a.v1.A/X: { style: command }
)");
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  EXPECT_THAT(loaded->warnings, IsEmpty());
}

// ---------------------------------------------------------------------------
// Warnings

TEST_F(ConfigTest, WarnsAboutDurableStylesOnTransportsThatAreNot) {
  auto loaded = Parse(R"(
transports:
  local: { type: inproc }
  core: { type: nats }
  rpc: { type: grpc }
policies:
  p: { timeout: 1s }
operations:
  a.v1.A/X: { style: command, transport: local }
  a.v1.A/Y: { style: command, transport: core }
  a.v1.Happened: { style: event, transport: rpc }
  a.v1.A/Z: { style: command }
)");
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  ASSERT_THAT(loaded->warnings, SizeIs(4));
  // Operations are checked in file order.
  EXPECT_EQ(loaded->warnings[0].location, "test.yaml:9");
  EXPECT_THAT(loaded->warnings[0].message,
              AllOf(HasSubstr("operation `a.v1.A/X`"), HasSubstr("transport `local` (inproc)"),
                    HasSubstr("not durable: queued commands survive no restart"), HasSubstr("hint:")));
  EXPECT_THAT(loaded->warnings[1].message, HasSubstr("transport `core` (nats without jetstream)"));
  EXPECT_THAT(loaded->warnings[2].message,
              AllOf(HasSubstr("transport `rpc` (grpc)"), HasSubstr("not durable: queued events survive no restart")));
  EXPECT_THAT(loaded->warnings[3].message, HasSubstr("the default inproc transport"));
}

TEST_F(ConfigTest, WarnsAboutARequestWithoutTimeout) {
  auto loaded = Parse(R"(
policies:
  slow: { retry: { attempts: 3 } }
operations:
  a.v1.A/X: { style: request, policy: slow }
  a.v1.A/Y: { style: request }
)");
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  ASSERT_THAT(loaded->warnings, SizeIs(2));
  EXPECT_EQ(loaded->warnings[0].location, "test.yaml:5");
  EXPECT_THAT(loaded->warnings[0].message,
              AllOf(HasSubstr("request `a.v1.A/X` has no timeout (policy `slow` sets none)"),
                    HasSubstr("hint: set `timeout:` in policy `slow`")));
  EXPECT_THAT(loaded->warnings[1].message, HasSubstr("request `a.v1.A/Y` has no timeout"));
}

// ---------------------------------------------------------------------------
// A Config built in code: errors name the path.

TEST_F(ConfigTest, ValidateConfigBuiltInCodeNamesThePath) {
  v1::Config config;
  (*config.mutable_transports())["local"].set_type("inproc");
  v1::OperationBinding& op = (*config.mutable_operations())["a.v1.A/X"];
  op.set_style(v1::STYLE_COMMAND);
  op.set_transport("bus");
  std::vector<ConfigWarning> warnings;
  absl::Status st = ValidateConfig(config, Options(), &warnings);
  EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(st.message(),
            "operations[\"a.v1.A/X\"].transport: operation `a.v1.A/X` uses transport `bus`, which is not defined. "
            "hint: define it under `transports:` or use one of `local`");

  op.set_transport("local");
  warnings.clear();
  ASSERT_TRUE(ValidateConfig(config, Options(), &warnings).ok());
  ASSERT_THAT(warnings, SizeIs(1));
  EXPECT_EQ(warnings[0].location, "operations[\"a.v1.A/X\"]");

  (*config.mutable_policies())["p"].mutable_timeout()->set_seconds(-1);
  st = ValidateConfig(config, Options(), nullptr);
  EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(st.message()), StartsWith("policies[\"p\"].timeout: "));

  (*config.mutable_policies())["p"].mutable_timeout()->set_seconds(1);
  (*config.mutable_policies())["p"].mutable_retry()->set_budget(1.5);
  st = ValidateConfig(config, Options(), nullptr);
  EXPECT_THAT(std::string(st.message()), StartsWith("policies[\"p\"].retry.budget: `budget` is 1.5; a ratio is between 0 and 1"));

  (*config.mutable_policies())["p"].mutable_retry()->set_budget(0.1);
  (*config.mutable_transports())["odd"].set_type("zeromq");
  st = ValidateConfig(config, Options(), nullptr);
  EXPECT_THAT(std::string(st.message()), StartsWith("transports[\"odd\"].type: transport `odd`: unknown transport type `zeromq`"));
}

TEST_F(ConfigTest, LoadConfigFileThatDoesNotExist) {
  auto loaded = LoadConfigFile("/nonexistent/switchboard.yaml", Options());
  EXPECT_EQ(loaded.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(loaded.status().message()), HasSubstr("/nonexistent/switchboard.yaml"));
}

}  // namespace
}  // namespace switchboard
