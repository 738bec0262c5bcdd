// The resilience policies through real nodes: on inproc, and on every other
// transport of this build whose server scripts/with-servers.sh provides
// (SWITCHBOARD_TEST_NATS_URL, SWITCHBOARD_TEST_AMQP_URL; gRPC listens on
// 127.0.0.1). Real clock, every wait bounded.
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <thread>
#include <vector>

#include "absl/synchronization/notification.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "google/protobuf/empty.pb.h"
#include "absl/strings/match.h"
#include "switchboard/internal/strings.h"
#include "switchboard/node.h"
#include "switchboard/policies.h"
#include "switchboard/test/v1/echo.pb.h"
#include "switchboard/transport_registry.h"

namespace switchboard {
namespace {

using test::v1::EchoReply;
using test::v1::EchoRequest;
using ::testing::HasSubstr;

constexpr absl::Duration kWait = absl::Seconds(20);

std::string UniqueId() {
  static std::atomic<int> n{0};
  return Cat("r", getpid(), "x", NewMessageId().substr(0, 8), "n", n++);
}

void SetDuration(google::protobuf::Duration* out, absl::Duration d) {
  int64_t s = absl::ToInt64Seconds(d);
  out->set_seconds(s);
  out->set_nanos(static_cast<int32_t>(absl::ToInt64Nanoseconds(d - absl::Seconds(s))));
}

// A port the OS considers free now (gRPC servers listen on it).
int FreePort() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  socklen_t len = sizeof addr;
  if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
      getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    close(fd);
    return 0;
  }
  close(fd);
  return ntohs(addr.sin_port);
}

bool ServersRequired() {
  const char* v = std::getenv("SWITCHBOARD_REQUIRE_SERVERS");
  return v != nullptr && std::string(v) == "1";
}

// Transport configs for a "server" node (runs handlers) and a "client" node
// (calls), talking to each other.
struct Endpoints {
  v1::TransportConfig server;
  v1::TransportConfig client;
};

// Fills `setup` for `type`; returns a reason to skip when it cannot run.
std::string MakeSetup(const std::string& type, Endpoints* setup) {
  std::vector<std::string> types = TransportRegistry::Default().Types();
  if (type != "inproc" && std::find(types.begin(), types.end(), type) == types.end()) {
    return Cat("transport ", type, " is not in this build");
  }
  std::string id = UniqueId();
  v1::TransportConfig t;
  t.set_type(type);
  if (type == "inproc") {
    t.mutable_inproc()->set_bus(Cat("policies-", id));
    setup->server = setup->client = t;
  } else if (type == "nats") {
    const char* url = std::getenv("SWITCHBOARD_TEST_NATS_URL");
    if (url == nullptr || *url == 0) return "SWITCHBOARD_TEST_NATS_URL is not set";
    t.mutable_nats()->set_url(url);
    t.mutable_nats()->set_jetstream(true);
    t.mutable_nats()->set_subject_prefix(Cat("pol", id));
    SetDuration(t.mutable_nats()->mutable_ack_wait(), absl::Seconds(5));
    setup->server = setup->client = t;
  } else if (type == "amqp") {
    const char* url = std::getenv("SWITCHBOARD_TEST_AMQP_URL");
    if (url == nullptr || *url == 0) return "SWITCHBOARD_TEST_AMQP_URL is not set";
    t.mutable_amqp()->set_url(url);
    t.mutable_amqp()->set_address_prefix(Cat("pol", id, "."));
    setup->server = setup->client = t;
  } else if (type == "grpc") {
    int port = FreePort();
    if (port == 0) return "no free port on 127.0.0.1";
    setup->server = t;
    setup->server.mutable_grpc()->set_listen(Cat("127.0.0.1:", port));
    setup->client = t;
    (*setup->client.mutable_grpc()->mutable_targets())["*"] = Cat("127.0.0.1:", port);
  } else {
    return Cat("unknown transport ", type);
  }
  return "";
}

v1::Config ConfigFor(const v1::TransportConfig& transport, const std::string& op, v1::Style style,
                     const v1::Policy& policy, int handler_threads = 8) {
  v1::Config config;
  (*config.mutable_transports())["t"] = transport;
  (*config.mutable_policies())["p"] = policy;
  auto& b = (*config.mutable_operations())[op];
  b.set_style(style);
  b.set_transport("t");
  b.set_policy("p");
  config.mutable_node()->set_handler_threads(handler_threads);
  return config;
}

class PolicyIntegrationTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    std::string skip = MakeSetup(GetParam(), &setup_);
    if (!skip.empty()) {
      if (ServersRequired() && skip.find("not set") != std::string::npos) {
        FAIL() << skip << " (SWITCHBOARD_REQUIRE_SERVERS=1)";
      }
      GTEST_SKIP() << skip << "; run under scripts/with-servers.sh";
    }
  }
  bool IsGrpc() const { return GetParam() == "grpc"; }
  Endpoints setup_;
};

// Calls `op` until it succeeds (the server may take a moment to be
// reachable); false after `limit`.
bool WaitUntilServing(Node& client, const Operation<EchoRequest, EchoReply>& op,
                      absl::Duration limit = kWait) {
  absl::Time give_up = absl::Now() + limit;
  while (absl::Now() < give_up) {
    if (client.Call(op, EchoRequest()).GetFor(absl::Seconds(5)).ok()) return true;
    absl::SleepFor(absl::Milliseconds(20));
  }
  return false;
}

absl::StatusOr<HandlerRegistration> ServeEcho(Node& node, const Operation<EchoRequest, EchoReply>& op) {
  return node.Handle(op, [](Context& ctx, const EchoRequest& req) -> absl::StatusOr<EchoReply> {
    EchoReply r;
    r.set_text(req.text());
    r.set_attempt(ctx.attempt());
    return r;
  });
}

// With the handler's node gone, the breaker opens within its window, calls
// then fail fast (< 1 ms each), and once the handler is back it half-opens
// and closes again.
TEST_P(PolicyIntegrationTest, BreakerOpensFailsFastAndRecovers) {
  std::string name = Cat("pol.Echo", UniqueId(), "/Say");
  Operation<EchoRequest, EchoReply> op{name};
  v1::Policy policy;
  SetDuration(policy.mutable_timeout(), absl::Seconds(2));
  auto* cb = policy.mutable_circuit_breaker();
  cb->set_failure_rate(0.5);
  SetDuration(cb->mutable_window(), absl::Seconds(5));
  cb->set_min_calls(5);
  SetDuration(cb->mutable_open_for(), absl::Milliseconds(500));
  cb->set_half_open_probes(1);

  auto server = Node::Create(ConfigFor(setup_.server, name, v1::STYLE_REQUEST, policy));
  ASSERT_TRUE(server.ok()) << server.status();
  auto client = Node::Create(ConfigFor(setup_.client, name, v1::STYLE_REQUEST, policy));
  ASSERT_TRUE(client.ok()) << client.status();
  auto reg = ServeEcho(**server, op);
  ASSERT_TRUE(reg.ok()) << reg.status();
  ASSERT_TRUE(WaitUntilServing(**client, op));
  for (int i = 0; i < 5; ++i) ASSERT_TRUE((*client)->Call(op, EchoRequest()).GetFor(kWait).ok());

  // The handler's process goes away.
  reg->Stop();
  server->reset();
  absl::Time killed = absl::Now();
  int failed_calls = 0;
  bool open = false;
  // Concurrent rounds, as traffic would come: a transport that only notices
  // the missing server at the deadline (a broker queue keeps the request)
  // still fills the window with failures.
  while (!open && absl::Now() - killed < absl::Seconds(5) && failed_calls < 100) {
    std::vector<Future<EchoReply>> round;
    for (int i = 0; i < 10; ++i) round.push_back((*client)->Call(op, EchoRequest()));
    for (auto& f : round) {
      absl::Status s = std::move(f).GetFor(kWait).status();
      ASSERT_FALSE(s.ok());
      if (absl::StrContains(s.message(), "circuit breaker")) {
        open = true;
      } else {
        ++failed_calls;
      }
    }
  }
  ASSERT_TRUE(open) << "breaker did not open within its 5s window after " << failed_calls
                    << " failed calls";
  absl::Duration to_open = absl::Now() - killed;
  EXPECT_LE(failed_calls, 10);

  // Open: every call fails fast, without touching the transport.
  absl::Duration slowest = absl::ZeroDuration();
  for (int i = 0; i < 100; ++i) {
    absl::Time t0 = absl::Now();
    absl::Status s = (*client)->Call(op, EchoRequest()).GetFor(kWait).status();
    slowest = std::max(slowest, absl::Now() - t0);
    ASSERT_EQ(s.code(), absl::StatusCode::kUnavailable) << s;
    ASSERT_THAT(std::string(s.message()), HasSubstr(Cat("circuit breaker of operation ", name)));
  }
  EXPECT_LT(slowest, absl::Milliseconds(1)) << "fail-fast calls must take < 1 ms";
  std::cerr << "[ " << GetParam() << " ] opened " << absl::FormatDuration(to_open)
            << " after the kill (" << failed_calls << " failed calls); slowest fail-fast call "
            << absl::FormatDuration(slowest) << "\n";

  // The handler comes back: after open_for the breaker lets a probe through
  // and closes when it succeeds.
  server = Node::Create(ConfigFor(setup_.server, name, v1::STYLE_REQUEST, policy));
  ASSERT_TRUE(server.ok()) << server.status();
  reg = ServeEcho(**server, op);
  ASSERT_TRUE(reg.ok()) << reg.status();
  absl::Time back = absl::Now();
  bool closed = false;
  while (!closed && absl::Now() - back < kWait) {
    closed = (*client)->Call(op, EchoRequest()).GetFor(kWait).ok();
    if (!closed) absl::SleepFor(absl::Milliseconds(20));
  }
  ASSERT_TRUE(closed);
  PolicyCounters& c = GetPolicyStats(**client).For(name);
  EXPECT_GE(c.breaker_opened.load(), 1u);
  EXPECT_GE(c.breaker_half_opened.load(), 1u);
  EXPECT_GE(c.breaker_closed.load(), 1u);
  EXPECT_EQ(c.breaker_state.load(), static_cast<int>(BreakerState::kClosed));
  EXPECT_GE(c.breaker_rejections.load(), 100u);
  for (int i = 0; i < 5; ++i) EXPECT_TRUE((*client)->Call(op, EchoRequest()).GetFor(kWait).ok());
}

// 100 concurrent callers against an always-failing handler: the retry budget
// keeps the attempts within (1 + budget) x calls + the per-second allowance.
TEST_P(PolicyIntegrationTest, RetryBudgetBoundsAttemptsOfConcurrentCallers) {
  std::string name = Cat("pol.Echo", UniqueId(), "/Say");
  Operation<EchoRequest, EchoReply> op{name};
  constexpr double kBudget = 0.2;
  constexpr double kMinPerSecond = 1;  // x 10 s window = 10 retries
  v1::Policy policy;
  SetDuration(policy.mutable_timeout(), absl::Seconds(10));
  auto* retry = policy.mutable_retry();
  retry->set_attempts(5);
  SetDuration(retry->mutable_backoff()->mutable_initial(), absl::Milliseconds(2));
  SetDuration(retry->mutable_backoff()->mutable_max(), absl::Milliseconds(20));
  retry->set_budget(kBudget);
  retry->set_min_retries_per_second(kMinPerSecond);

  auto server = Node::Create(ConfigFor(setup_.server, name, v1::STYLE_REQUEST, policy));
  ASSERT_TRUE(server.ok()) << server.status();
  auto client = Node::Create(ConfigFor(setup_.client, name, v1::STYLE_REQUEST, policy));
  ASSERT_TRUE(client.ok()) << client.status();
  std::atomic<int> attempts{0};
  auto reg = (*server)->Handle(op, [&](Context&, const EchoRequest& req) -> absl::StatusOr<EchoReply> {
    if (req.text() == "ready") return EchoReply();
    attempts.fetch_add(1);
    return absl::UnavailableError("always failing");
  });
  ASSERT_TRUE(reg.ok()) << reg.status();
  // Reachable first (the warm-up call succeeds and counts as one call).
  EchoRequest ready;
  ready.set_text("ready");
  absl::Time give_up = absl::Now() + kWait;
  while (!(*client)->Call(op, ready).GetFor(kWait).ok()) {
    ASSERT_LT(absl::Now(), give_up) << "server never became reachable";
    absl::SleepFor(absl::Milliseconds(20));
  }

  constexpr int kCallers = 100;
  std::vector<std::thread> callers;
  std::atomic<int> unavailable{0}, other{0};
  absl::Notification go;
  for (int i = 0; i < kCallers; ++i) {
    callers.emplace_back([&] {
      go.WaitForNotification();
      absl::Status s = (*client)->Call(op, EchoRequest()).GetFor(kWait).status();
      (s.code() == absl::StatusCode::kUnavailable ? unavailable : other).fetch_add(1);
    });
  }
  go.Notify();
  for (auto& t : callers) t.join();
  EXPECT_EQ(unavailable.load(), kCallers);
  EXPECT_EQ(other.load(), 0);
  const double bound = (1 + kBudget) * (kCallers + 1) + kMinPerSecond * 10;
  std::cerr << "[ " << GetParam() << " ] " << attempts.load() << " attempts for " << kCallers
            << " calls (bound " << bound << ", without a budget up to " << 5 * kCallers << ")\n";
  EXPECT_LE(attempts.load(), bound);
  EXPECT_GT(attempts.load(), kCallers) << "some retries were expected";
  PolicyCounters& c = GetPolicyStats(**client).For(name);
  EXPECT_GT(c.retry_budget_exhausted.load(), 0u);
  EXPECT_EQ(static_cast<int>(c.retries.load()), attempts.load() - kCallers);
}

// A bulkhead of 4 with 100 slow calls never runs more than 4 at once (and
// every call completes: the rest wait in its queue).
TEST_P(PolicyIntegrationTest, BulkheadOfFourNeverRunsMoreThanFour) {
  std::string name = Cat("pol.Echo", UniqueId(), "/Say");
  Operation<EchoRequest, EchoReply> op{name};
  v1::Policy policy;
  SetDuration(policy.mutable_timeout(), absl::Seconds(30));
  policy.mutable_bulkhead()->set_max_concurrent(4);
  policy.mutable_bulkhead()->set_max_queue(200);
  auto server = Node::Create(ConfigFor(setup_.server, name, v1::STYLE_REQUEST, policy, 16));
  ASSERT_TRUE(server.ok()) << server.status();
  auto client = Node::Create(ConfigFor(setup_.client, name, v1::STYLE_REQUEST, policy));
  ASSERT_TRUE(client.ok()) << client.status();
  std::atomic<int> running{0}, most{0}, handled{0};
  auto reg = (*server)->Handle(op, [&](Context&, const EchoRequest& req) -> absl::StatusOr<EchoReply> {
    if (req.text() == "ready") return EchoReply();
    int now = running.fetch_add(1) + 1;
    int seen = most.load();
    while (now > seen && !most.compare_exchange_weak(seen, now)) {
    }
    absl::SleepFor(absl::Milliseconds(10));
    running.fetch_sub(1);
    handled.fetch_add(1);
    return EchoReply();
  });
  ASSERT_TRUE(reg.ok()) << reg.status();
  EchoRequest ready;
  ready.set_text("ready");
  absl::Time give_up = absl::Now() + kWait;
  while (!(*client)->Call(op, ready).GetFor(kWait).ok()) {
    ASSERT_LT(absl::Now(), give_up) << "server never became reachable";
    absl::SleepFor(absl::Milliseconds(20));
  }
  std::vector<Future<EchoReply>> calls;
  for (int i = 0; i < 100; ++i) calls.push_back((*client)->Call(op, EchoRequest()));
  int ok = 0;
  for (auto& f : calls) {
    absl::StatusOr<EchoReply> r = std::move(f).GetFor(kWait);
    if (r.ok()) {
      ++ok;
    } else {
      ADD_FAILURE() << r.status();
    }
  }
  EXPECT_EQ(ok, 100);
  EXPECT_EQ(handled.load(), 100);
  EXPECT_LE(most.load(), 4);
  EXPECT_GE(most.load(), 2) << "the calls were meant to overlap";
  PolicyCounters& c = GetPolicyStats(**server).For(name);
  EXPECT_GT(c.bulkhead_queued.load(), 0u);
  EXPECT_EQ(c.bulkhead_rejections.load(), 0u);
  EXPECT_EQ(c.bulkhead_active.load(), 0);
  std::cerr << "[ " << GetParam() << " ] at most " << most.load() << " running; "
            << c.bulkhead_queued.load() << " waited in the queue\n";
}

// A command that keeps failing is dead-lettered with operation, attempts,
// last error and time; after the fix, ReplayDeadLetters runs it again with
// attempt 1 and the same idempotency key.
TEST_P(PolicyIntegrationTest, DeadLetterCarriesDetailsAndReplays) {
  std::string name = Cat("pol.Echo", UniqueId(), "/Fire");
  Operation<EchoRequest, google::protobuf::Empty> op{name};
  v1::Policy policy;
  policy.set_max_deliveries(2);
  SetDuration(policy.mutable_redelivery()->mutable_initial(), absl::Milliseconds(10));
  auto server = Node::Create(ConfigFor(setup_.server, name, v1::STYLE_COMMAND, policy));
  ASSERT_TRUE(server.ok()) << server.status();
  std::atomic<bool> fixed{false};
  absl::Mutex mu;
  std::vector<std::pair<std::string, int>> handled;  // idempotency key, attempt
  auto reg = (*server)->Handle(op, [&](Context& ctx, const EchoRequest&)
                                       -> absl::StatusOr<google::protobuf::Empty> {
    if (!fixed.load()) return absl::UnavailableError("inventory service is down");
    absl::MutexLock lock(&mu);
    handled.emplace_back(ctx.idempotency_key(), ctx.attempt());
    return google::protobuf::Empty();
  });
  ASSERT_TRUE(reg.ok()) << reg.status();
  CallOptions options;
  options.idempotency_key = Cat("key-", UniqueId());
  absl::Time sent = absl::Now();
  ASSERT_TRUE((*server)->Call(op, EchoRequest(), options).GetFor(kWait).ok());
  PolicyCounters& c = GetPolicyStats(**server).For(name);
  absl::Time give_up = absl::Now() + kWait;
  while (c.dead_lettered.load() == 0 && absl::Now() < give_up) absl::SleepFor(absl::Milliseconds(10));
  ASSERT_EQ(c.dead_lettered.load(), 1u);

  absl::StatusOr<std::vector<DeadLetter>> letters = ReadDeadLetters(**server, name);
  ASSERT_TRUE(letters.ok()) << letters.status();
  ASSERT_EQ(letters->size(), 1u);
  const DeadLetter& dl = letters->front();
  EXPECT_EQ(dl.operation, name);
  EXPECT_EQ(dl.attempts, 2);
  EXPECT_EQ(dl.last_error.code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(std::string(dl.last_error.message()), HasSubstr("inventory service is down"));
  EXPECT_GE(dl.dead_lettered_at, sent - absl::Seconds(1));
  EXPECT_LE(dl.dead_lettered_at, absl::Now() + absl::Seconds(1));
  EXPECT_EQ(dl.envelope.idempotency_key, options.idempotency_key);

  fixed = true;
  absl::StatusOr<int> replayed = ReplayDeadLetters(**server, name);
  ASSERT_TRUE(replayed.ok()) << replayed.status();
  EXPECT_EQ(*replayed, 1);
  give_up = absl::Now() + absl::Seconds(5);  // a replay arrives in milliseconds
  while (absl::Now() < give_up) {
    {
      absl::MutexLock lock(&mu);
      if (!handled.empty()) break;
    }
    absl::SleepFor(absl::Milliseconds(10));
  }
  {
    absl::MutexLock lock(&mu);
    ASSERT_EQ(handled.size(), 1u);
    EXPECT_EQ(handled[0].first, options.idempotency_key);
    EXPECT_EQ(handled[0].second, 1);
  }
  EXPECT_EQ(c.dead_letters_replayed.load(), 1u);
  absl::StatusOr<std::vector<DeadLetter>> after = ReadDeadLetters(**server, name);
  ASSERT_TRUE(after.ok()) << after.status();
  EXPECT_TRUE(after->empty());
}

// A command whose deadline passed before a consumer took it is not started:
// it is dead-lettered with "deadline exceeded before start", and counted.
TEST_P(PolicyIntegrationTest, ExpiredCommandIsDeadLetteredNotStarted) {
  std::string name = Cat("pol.Echo", UniqueId(), "/Fire");
  Operation<EchoRequest, google::protobuf::Empty> op{name};
  v1::Policy policy;
  auto node = Node::Create(ConfigFor(setup_.server, name, v1::STYLE_COMMAND, policy));
  ASSERT_TRUE(node.ok()) << node.status();
  // Bind the queue first (some transports keep a command only once its
  // consumer group exists), then stop consuming.
  std::atomic<int> ran{0};
  auto handler = [&](Context&, const EchoRequest&) -> absl::StatusOr<google::protobuf::Empty> {
    ran.fetch_add(1);
    return google::protobuf::Empty();
  };
  {
    auto reg = (*node)->Handle(op, handler);
    ASSERT_TRUE(reg.ok()) << reg.status();
  }
  CallOptions options;
  options.timeout = absl::Milliseconds(50);
  ASSERT_TRUE((*node)->Call(op, EchoRequest(), options).GetFor(kWait).ok());
  absl::SleepFor(absl::Milliseconds(100));
  auto reg = (*node)->Handle(op, handler);
  ASSERT_TRUE(reg.ok()) << reg.status();
  PolicyCounters& c = GetPolicyStats(**node).For(name);
  absl::Time give_up = absl::Now() + kWait;
  while (c.dead_lettered.load() == 0 && absl::Now() < give_up) absl::SleepFor(absl::Milliseconds(10));
  EXPECT_EQ(ran.load(), 0);
  EXPECT_EQ(c.deadline_expired_before_start.load(), 1u);
  reg->Stop();
  absl::StatusOr<std::vector<DeadLetter>> letters = ReadDeadLetters(**node, name);
  ASSERT_TRUE(letters.ok()) << letters.status();
  ASSERT_EQ(letters->size(), 1u);
  EXPECT_EQ(letters->front().last_error.code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_EQ(letters->front().last_error.message(), "deadline exceeded before start");
}

INSTANTIATE_TEST_SUITE_P(Transports, PolicyIntegrationTest,
                         ::testing::Values("inproc", "nats", "grpc", "amqp"),
                         [](const auto& info) { return info.param; });

// ---------------------------------------------------------------------------
// Inproc only: the remaining policy paths through a node.

TEST(PolicyNodeTest, CallerRateLimitRejectsBeyondTheBurst) {
  Endpoints setup;
  ASSERT_EQ(MakeSetup("inproc", &setup), "");
  std::string name = Cat("pol.Echo", UniqueId(), "/Say");
  Operation<EchoRequest, EchoReply> op{name};
  v1::Policy policy;
  policy.mutable_rate_limit()->set_rate(0.001);  // no refill during the test
  policy.mutable_rate_limit()->set_burst(5);
  policy.mutable_rate_limit()->set_side("caller");
  auto node = Node::Create(ConfigFor(setup.server, name, v1::STYLE_REQUEST, policy));
  ASSERT_TRUE(node.ok()) << node.status();
  auto reg = ServeEcho(**node, op);
  ASSERT_TRUE(reg.ok());
  int ok = 0, limited = 0;
  for (int i = 0; i < 10; ++i) {
    absl::Status s = (*node)->Call(op, EchoRequest()).GetFor(kWait).status();
    if (s.ok()) {
      ++ok;
    } else {
      EXPECT_EQ(s.code(), absl::StatusCode::kResourceExhausted) << s;
      EXPECT_THAT(std::string(s.message()), HasSubstr("rate_limit.rate"));
      ++limited;
    }
  }
  EXPECT_EQ(ok, 5);
  EXPECT_EQ(limited, 5);
  EXPECT_EQ(GetPolicyStats(**node).For(name).rate_limited_caller.load(), 5u);
}

TEST(PolicyNodeTest, HandlerRateLimitSendsCommandsBackLater) {
  Endpoints setup;
  ASSERT_EQ(MakeSetup("inproc", &setup), "");
  std::string name = Cat("pol.Echo", UniqueId(), "/Fire");
  Operation<EchoRequest, google::protobuf::Empty> op{name};
  v1::Policy policy;
  policy.mutable_rate_limit()->set_rate(100);
  policy.mutable_rate_limit()->set_burst(2);
  policy.mutable_rate_limit()->set_side("handler");
  policy.set_max_deliveries(1);  // a shed command must not be dead-lettered
  auto node = Node::Create(ConfigFor(setup.server, name, v1::STYLE_COMMAND, policy));
  ASSERT_TRUE(node.ok()) << node.status();
  std::atomic<int> handled{0};
  auto reg = (*node)->Handle(op, [&](Context&, const EchoRequest&) -> absl::StatusOr<google::protobuf::Empty> {
    handled.fetch_add(1);
    return google::protobuf::Empty();
  });
  ASSERT_TRUE(reg.ok());
  for (int i = 0; i < 20; ++i) ASSERT_TRUE((*node)->Call(op, EchoRequest()).GetFor(kWait).ok());
  absl::Time give_up = absl::Now() + kWait;
  while (handled.load() < 20 && absl::Now() < give_up) absl::SleepFor(absl::Milliseconds(10));
  EXPECT_EQ(handled.load(), 20);
  PolicyCounters& c = GetPolicyStats(**node).For(name);
  EXPECT_GT(c.rate_limited_handler.load(), 0u);
  EXPECT_EQ(c.dead_lettered.load(), 0u);
}

TEST(PolicyNodeTest, BulkheadShedsRequestsBeyondTheQueue) {
  Endpoints setup;
  ASSERT_EQ(MakeSetup("inproc", &setup), "");
  std::string name = Cat("pol.Echo", UniqueId(), "/Say");
  Operation<EchoRequest, EchoReply> op{name};
  v1::Policy policy;
  policy.mutable_bulkhead()->set_max_concurrent(1);
  policy.mutable_bulkhead()->set_max_queue(1);
  auto node = Node::Create(ConfigFor(setup.server, name, v1::STYLE_REQUEST, policy, 8));
  ASSERT_TRUE(node.ok()) << node.status();
  absl::Notification release;
  auto reg = (*node)->Handle(op, [&](Context&, const EchoRequest&) -> absl::StatusOr<EchoReply> {
    release.WaitForNotificationWithTimeout(kWait);
    return EchoReply();
  });
  ASSERT_TRUE(reg.ok());
  std::vector<Future<EchoReply>> calls;
  for (int i = 0; i < 5; ++i) calls.push_back((*node)->Call(op, EchoRequest()));
  PolicyCounters& c = GetPolicyStats(**node).For(name);
  absl::Time give_up = absl::Now() + kWait;
  while (c.bulkhead_rejections.load() < 3 && absl::Now() < give_up) absl::SleepFor(absl::Milliseconds(5));
  release.Notify();
  int ok = 0, shed = 0;
  for (auto& f : calls) {
    absl::Status s = std::move(f).GetFor(kWait).status();
    if (s.ok()) {
      ++ok;
    } else {
      EXPECT_EQ(s.code(), absl::StatusCode::kResourceExhausted) << s;
      EXPECT_THAT(std::string(s.message()), HasSubstr("bulkhead.max_concurrent"));
      ++shed;
    }
  }
  EXPECT_EQ(ok, 2);  // one running, one waiting
  EXPECT_EQ(shed, 3);
}

TEST(PolicyNodeTest, FallbackAnswersWhileTheBreakerIsOpen) {
  Endpoints setup;
  ASSERT_EQ(MakeSetup("inproc", &setup), "");
  std::string name = Cat("pol.Echo", UniqueId(), "/Say");
  Operation<EchoRequest, EchoReply> op{name};
  v1::Policy policy;
  policy.mutable_circuit_breaker()->set_consecutive_failures(2);
  SetDuration(policy.mutable_circuit_breaker()->mutable_open_for(), absl::Seconds(60));
  auto node = Node::Create(ConfigFor(setup.server, name, v1::STYLE_REQUEST, policy));
  ASSERT_TRUE(node.ok()) << node.status();
  // No handler: calls fail with Unavailable and open the breaker.
  for (int i = 0; i < 2; ++i) {
    EXPECT_EQ((*node)->Call(op, EchoRequest()).GetFor(kWait).status().code(),
              absl::StatusCode::kUnavailable);
  }
  absl::Status no_breaker = SetFallback(**node, Operation<EchoRequest, EchoReply>{"pol.Other/X"},
                                        [](const EchoRequest&, const absl::Status&) -> absl::StatusOr<EchoReply> {
                                          return EchoReply();
                                        });
  EXPECT_EQ(no_breaker.code(), absl::StatusCode::kFailedPrecondition);
  ASSERT_TRUE(SetFallback(**node, op,
                          std::function<absl::StatusOr<EchoReply>(const EchoRequest&, const absl::Status&)>(
                              [](const EchoRequest& req, const absl::Status& why) -> absl::StatusOr<EchoReply> {
                                EchoReply r;
                                r.set_text(Cat("cached ", req.text(), ": ", why.code() == absl::StatusCode::kUnavailable));
                                return r;
                              }))
                  .ok());
  EchoRequest req;
  req.set_text("x");
  absl::StatusOr<EchoReply> r = (*node)->Call(op, req).GetFor(kWait);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->text(), "cached x: 1");
  EXPECT_EQ(GetPolicyStats(**node).For(name).fallbacks.load(), 1u);
}

}  // namespace
}  // namespace switchboard
