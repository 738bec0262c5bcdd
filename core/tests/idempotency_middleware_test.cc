// The server-side idempotency middleware, through a Node on inproc.

#include <atomic>
#include <thread>

#include "absl/synchronization/notification.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "switchboard/config.h"
#include "switchboard/idempotency.h"
#include "switchboard/node.h"
#include "switchboard/test/v1/echo.pb.h"

namespace switchboard {
namespace {

using test::v1::EchoReply;
using test::v1::EchoRequest;
using ::testing::HasSubstr;

constexpr absl::Duration kWait = absl::Seconds(10);

std::string UniqueName(std::string_view base) {
  static std::atomic<int> n{0};
  return std::string(base) + "." + NewMessageId().substr(0, 8) + std::to_string(n++);
}

// Polls `pred` (bounded): for state other threads reach without telling us.
bool Eventually(const std::function<bool()>& pred, absl::Duration timeout = kWait) {
  absl::Time end = absl::Now() + timeout;
  while (absl::Now() < end) {
    if (pred()) return true;
    absl::SleepFor(absl::Milliseconds(1));
  }
  return pred();
}

struct Opts {
  std::string store = "memory";
  std::string on_in_progress;
  bool idempotency = true;
  bool reply = false;
};

v1::Config ConfigFor(const std::string& op, v1::Style style, const Opts& s = {}) {
  v1::Config config;
  auto& t = (*config.mutable_transports())["local"];
  t.set_type("inproc");
  t.mutable_inproc()->set_bus(UniqueName("bus"));
  auto& p = (*config.mutable_policies())["p"];
  if (s.idempotency) {
    p.mutable_idempotency()->set_store(s.store);
    p.mutable_idempotency()->set_on_in_progress(s.on_in_progress);
  }
  p.set_max_deliveries(3);
  auto& b = (*config.mutable_operations())[op];
  b.set_style(style);
  b.set_reply(s.reply);
  b.set_transport("local");
  b.set_policy("p");
  return config;
}

// Deterministic runs: everything happens on the calling thread.
struct InlineNode {
  FakeClock clock;
  std::unique_ptr<Node> node;

  explicit InlineNode(v1::Config config, MiddlewareFactories middleware = {}) {
    Node::Options options;
    options.clock = &clock;
    options.executor = std::make_shared<InlineExecutor>();
    options.middleware = std::move(middleware);
    auto n = Node::Create(std::move(config), std::move(options));
    EXPECT_TRUE(n.ok()) << n.status();
    if (n.ok()) node = *std::move(n);
  }
};

CallOptions WithKey(std::string key) {
  CallOptions o;
  o.idempotency_key = std::move(key);
  return o;
}

TEST(IdempotencyMiddlewareTest, DuplicateCommandIsAckedWithoutRunningTheHandler) {
  std::string name = UniqueName("t.Echo/Fire");
  Operation<EchoRequest, google::protobuf::Empty> op{name};
  InlineNode n(ConfigFor(name, v1::STYLE_COMMAND));
  std::atomic<int> runs{0};
  auto reg = n.node->Handle(
      op, [&](Context&, const EchoRequest&) -> absl::StatusOr<google::protobuf::Empty> {
        ++runs;
        return google::protobuf::Empty();
      });
  ASSERT_TRUE(reg.ok()) << reg.status();
  std::atomic<int> dead{0};
  auto dlq = n.node->HandleRaw(name + ".dlq", [&](Context&, const Envelope&, auto done) {
    ++dead;
    std::move(done)(std::string());
  });
  ASSERT_TRUE(dlq.ok()) << dlq.status();

  EchoRequest req;
  req.set_text("once");
  ASSERT_TRUE(n.node->Call(op, req, WithKey("order-42")).GetFor(kWait).ok());
  ASSERT_TRUE(n.node->Call(op, req, WithKey("order-42")).GetFor(kWait).ok());
  EXPECT_EQ(runs.load(), 1);
  EXPECT_EQ(dead.load(), 0);
  EXPECT_EQ(IdempotencyCountersFor(name)->dedup_hits.load(), 1u);
  Endpoint endpoint;
  endpoint.operation = name;
  endpoint.group = name;
  auto depth = n.node->FindTransport("local")->QueueDepth(endpoint);
  ASSERT_TRUE(depth.ok());
  EXPECT_EQ(*depth, 0);

  // Another key is another call.
  ASSERT_TRUE(n.node->Call(op, req, WithKey("order-43")).GetFor(kWait).ok());
  EXPECT_EQ(runs.load(), 2);
}

TEST(IdempotencyMiddlewareTest, DuplicateEventIsAckedWithoutRunningTheHandler) {
  std::string name = UniqueName("t.Tick");
  Operation<EchoRequest, google::protobuf::Empty> op{name};
  InlineNode n(ConfigFor(name, v1::STYLE_EVENT));
  std::atomic<int> runs{0};
  HandlerOptions group;
  group.group = "billing";
  auto reg = n.node->Handle(
      op,
      [&](Context&, const EchoRequest&) -> absl::StatusOr<google::protobuf::Empty> {
        ++runs;
        return google::protobuf::Empty();
      },
      group);
  ASSERT_TRUE(reg.ok()) << reg.status();
  EchoRequest req;
  ASSERT_TRUE(n.node->Call(op, req, WithKey("evt-1")).GetFor(kWait).ok());
  ASSERT_TRUE(n.node->Call(op, req, WithKey("evt-1")).GetFor(kWait).ok());
  EXPECT_EQ(runs.load(), 1);
  EXPECT_EQ(IdempotencyCountersFor(name)->dedup_hits.load(), 1u);
}

// The reply of the first call is lost on its way back; the caller repeats the
// call with the same key and gets the stored reply, and the handler ran once.
TEST(IdempotencyMiddlewareTest, RequestRetriedAfterALostReplyGetsTheStoredReply) {
  std::string name = UniqueName("t.Echo/Say");
  Operation<EchoRequest, EchoReply> op{name};
  auto lost = std::make_shared<std::atomic<int>>(0);
  MiddlewareFactories mw;
  class LoseFirstReply : public ClientMiddleware {
   public:
    explicit LoseFirstReply(std::shared_ptr<std::atomic<int>> lost) : lost_(std::move(lost)) {}
    void Invoke(const CallSite&, Envelope&& env, ReplyCallback done,
                const ClientNext& next) override {
      auto shared = std::make_shared<ReplyCallback>(std::move(done));
      next(std::move(env), [this, shared](absl::StatusOr<Envelope> reply) {
        if (lost_->fetch_add(1) == 0) {
          std::move (*shared)(absl::UnavailableError("reply lost on the way back"));
          return;
        }
        std::move (*shared)(std::move(reply));
      });
    }

   private:
    std::shared_ptr<std::atomic<int>> lost_;
  };
  mw.client.push_back([lost](const CallSite&) { return std::make_unique<LoseFirstReply>(lost); });
  InlineNode n(ConfigFor(name, v1::STYLE_REQUEST), std::move(mw));
  std::atomic<int> runs{0};
  auto reg =
      n.node->Handle(op, [&](Context& ctx, const EchoRequest& req) -> absl::StatusOr<EchoReply> {
        EchoReply r;
        r.set_text(req.text() + " #" + std::to_string(++runs));
        r.set_attempt(ctx.attempt());
        return r;
      });
  ASSERT_TRUE(reg.ok()) << reg.status();

  EchoRequest req;
  req.set_text("charge 10 EUR");
  auto first = n.node->Call(op, req, WithKey("pay-7")).GetFor(kWait);
  EXPECT_EQ(first.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(runs.load(), 1);
  auto retried = n.node->Call(op, req, WithKey("pay-7")).GetFor(kWait);
  ASSERT_TRUE(retried.ok()) << retried.status();
  EXPECT_EQ(retried->text(), "charge 10 EUR #1");
  EXPECT_EQ(runs.load(), 1);
  EXPECT_EQ(IdempotencyCountersFor(name)->dedup_hits.load(), 1u);
}

TEST(IdempotencyMiddlewareTest, CommandWithReplyDuplicateGetsTheStoredReply) {
  std::string name = UniqueName("t.Echo/Say");
  Operation<EchoRequest, EchoReply> op{name};
  Opts s;
  s.reply = true;
  InlineNode n(ConfigFor(name, v1::STYLE_COMMAND, s));
  std::atomic<int> runs{0};
  auto reg = n.node->Handle(op, [&](Context&, const EchoRequest& req) -> absl::StatusOr<EchoReply> {
    EchoReply r;
    r.set_text(req.text() + " #" + std::to_string(++runs));
    return r;
  });
  ASSERT_TRUE(reg.ok()) << reg.status();
  EchoRequest req;
  req.set_text("ship");
  auto a = n.node->Call(op, req, WithKey("ship-1")).GetFor(kWait);
  auto b = n.node->Call(op, req, WithKey("ship-1")).GetFor(kWait);
  ASSERT_TRUE(a.ok()) << a.status();
  ASSERT_TRUE(b.ok()) << b.status();
  EXPECT_EQ(a->text(), "ship #1");
  EXPECT_EQ(b->text(), "ship #1");
  EXPECT_EQ(runs.load(), 1);
}

TEST(IdempotencyMiddlewareTest, TerminalErrorIsStoredAndReturnedToTheDuplicate) {
  std::string name = UniqueName("t.Echo/Say");
  Operation<EchoRequest, EchoReply> op{name};
  InlineNode n(ConfigFor(name, v1::STYLE_REQUEST));
  std::atomic<int> runs{0};
  auto reg = n.node->Handle(op, [&](Context&, const EchoRequest&) -> absl::StatusOr<EchoReply> {
    ++runs;
    return absl::InvalidArgumentError("quantity must be positive");
  });
  ASSERT_TRUE(reg.ok());
  EchoRequest req;
  auto a = n.node->Call(op, req, WithKey("bad-1")).GetFor(kWait);
  auto b = n.node->Call(op, req, WithKey("bad-1")).GetFor(kWait);
  EXPECT_EQ(a.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(b.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(b.status().message(), "quantity must be positive");
  EXPECT_EQ(runs.load(), 1);
}

TEST(IdempotencyMiddlewareTest, RetryableFailureReleasesTheKeySoTheRetryRuns) {
  std::string name = UniqueName("t.Echo/Say");
  Operation<EchoRequest, EchoReply> op{name};
  InlineNode n(ConfigFor(name, v1::STYLE_REQUEST));
  std::atomic<int> runs{0};
  auto reg = n.node->Handle(op, [&](Context&, const EchoRequest&) -> absl::StatusOr<EchoReply> {
    if (++runs == 1) return absl::UnavailableError("database restarting");
    EchoReply r;
    r.set_text("ok #" + std::to_string(runs.load()));
    return r;
  });
  ASSERT_TRUE(reg.ok());
  EchoRequest req;
  EXPECT_EQ(n.node->Call(op, req, WithKey("k")).GetFor(kWait).status().code(),
            absl::StatusCode::kUnavailable);
  auto second = n.node->Call(op, req, WithKey("k")).GetFor(kWait);
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_EQ(second->text(), "ok #2");
  auto third = n.node->Call(op, req, WithKey("k")).GetFor(kWait);
  ASSERT_TRUE(third.ok());
  EXPECT_EQ(third->text(), "ok #2");
  EXPECT_EQ(runs.load(), 2);
  EXPECT_EQ(IdempotencyCountersFor(name)->releases.load(), 1u);
}

TEST(IdempotencyMiddlewareTest, RedeliveredCommandRunsAgainAfterARetryableFailure) {
  std::string name = UniqueName("t.Echo/Fire");
  Operation<EchoRequest, google::protobuf::Empty> op{name};
  InlineNode n(ConfigFor(name, v1::STYLE_COMMAND));
  std::atomic<int> runs{0};
  std::atomic<int> last_attempt{0};
  auto reg = n.node->Handle(
      op, [&](Context& ctx, const EchoRequest&) -> absl::StatusOr<google::protobuf::Empty> {
        last_attempt = ctx.attempt();
        if (++runs == 1) return absl::UnavailableError("try again");
        return google::protobuf::Empty();
      });
  ASSERT_TRUE(reg.ok());
  EchoRequest req;
  ASSERT_TRUE(n.node->Call(op, req, WithKey("c-1")).GetFor(kWait).ok());
  EXPECT_EQ(runs.load(), 1);
  // The redelivery waits for its delay on the fake clock.
  for (int i = 0; i < 100 && runs.load() < 2; ++i) n.clock.Advance(absl::Milliseconds(100));
  EXPECT_EQ(runs.load(), 2);
  EXPECT_EQ(last_attempt.load(), 2);
}

TEST(IdempotencyMiddlewareTest, SameKeyOnDifferentOperationsDoesNotCollide) {
  std::string a_name = UniqueName("t.Echo/A");
  std::string b_name = UniqueName("t.Echo/B");
  v1::Config config = ConfigFor(a_name, v1::STYLE_REQUEST);
  (*config.mutable_operations())[b_name] = config.operations().at(a_name);
  InlineNode n(config);
  Operation<EchoRequest, EchoReply> a{a_name};
  Operation<EchoRequest, EchoReply> b{b_name};
  auto handler = [](std::string tag) {
    return [tag](Context&, const EchoRequest&) -> absl::StatusOr<EchoReply> {
      EchoReply r;
      r.set_text(tag);
      return r;
    };
  };
  auto ra = n.node->Handle(a, handler("A"));
  auto rb = n.node->Handle(b, handler("B"));
  ASSERT_TRUE(ra.ok() && rb.ok());
  EchoRequest req;
  EXPECT_EQ(n.node->Call(a, req, WithKey("same")).GetFor(kWait)->text(), "A");
  EXPECT_EQ(n.node->Call(b, req, WithKey("same")).GetFor(kWait)->text(), "B");
}

TEST(IdempotencyMiddlewareTest, WithoutAnIdempotencyBlockDuplicatesRunAgain) {
  std::string name = UniqueName("t.Echo/Say");
  Operation<EchoRequest, EchoReply> op{name};
  Opts s;
  s.idempotency = false;
  InlineNode n(ConfigFor(name, v1::STYLE_REQUEST, s));
  std::atomic<int> runs{0};
  auto reg = n.node->Handle(op, [&](Context& ctx, const EchoRequest&) -> absl::StatusOr<EchoReply> {
    ++runs;
    EXPECT_EQ(IdempotencyTransactionOf(ctx), nullptr);
    return EchoReply();
  });
  ASSERT_TRUE(reg.ok());
  EchoRequest req;
  ASSERT_TRUE(n.node->Call(op, req, WithKey("k")).GetFor(kWait).ok());
  ASSERT_TRUE(n.node->Call(op, req, WithKey("k")).GetFor(kWait).ok());
  EXPECT_EQ(runs.load(), 2);
}

TEST(IdempotencyMiddlewareTest, UnknownStoreFailsCallsAndNamesTheSetting) {
  std::string name = UniqueName("t.Echo/Say");
  Operation<EchoRequest, EchoReply> op{name};
  Opts s;
  s.store = "etcd:127.0.0.1:2379";
  InlineNode n(ConfigFor(name, v1::STYLE_REQUEST, s));
  std::atomic<int> runs{0};
  auto reg = n.node->Handle(op, [&](Context&, const EchoRequest&) -> absl::StatusOr<EchoReply> {
    ++runs;
    return EchoReply();
  });
  ASSERT_TRUE(reg.ok());
  auto r = n.node->Call(op, EchoRequest()).GetFor(kWait);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(r.status().message()), HasSubstr("idempotency.store"));
  EXPECT_THAT(std::string(r.status().message()), HasSubstr("etcd"));
  EXPECT_EQ(runs.load(), 0);
  EXPECT_GE(IdempotencyCountersFor(name)->store_errors.load(), 1u);
}

TEST(IdempotencyMiddlewareTest, OverlongKeyIsRefusedAndCounted) {
  std::string name = UniqueName("t.Echo/Say");
  Operation<EchoRequest, EchoReply> op{name};
  InlineNode n(ConfigFor(name, v1::STYLE_REQUEST));
  std::atomic<int> runs{0};
  auto reg = n.node->Handle(op, [&](Context&, const EchoRequest&) -> absl::StatusOr<EchoReply> {
    ++runs;
    return EchoReply();
  });
  ASSERT_TRUE(reg.ok());
  auto r = n.node->Call(op, EchoRequest(), WithKey(std::string(5000, 'k'))).GetFor(kWait);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(r.status().message()), HasSubstr("idempotency key"));
  EXPECT_EQ(runs.load(), 0);
  EXPECT_EQ(IdempotencyCountersFor(name)->bad_keys.load(), 1u);
}

TEST(IdempotencyMiddlewareTest, PolicyIsReadFromYaml) {
  auto loaded = ParseConfig(R"yaml(
policies:
  background:
    idempotency: { ttl: 24h, store: "sqlite:/var/lib/svc/idem.db", max_entries: 5000,
                   on_in_progress: abort, in_progress_lease: 90s }
)yaml");
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  const v1::IdempotencyPolicy& p = loaded->config.policies().at("background").idempotency();
  EXPECT_EQ(p.ttl().seconds(), 24 * 3600);
  EXPECT_EQ(p.store(), "sqlite:/var/lib/svc/idem.db");
  EXPECT_EQ(p.max_entries(), 5000u);
  EXPECT_EQ(p.on_in_progress(), "abort");
  EXPECT_EQ(p.in_progress_lease().seconds(), 90);
}

// ---- duplicates that arrive while the first call still runs ----

class InProgressTest : public ::testing::Test {
 protected:
  void Start(const Opts& s) {
    name_ = UniqueName("t.Echo/Say");
    Node::Options options;
    options.clock = &clock_;
    options.executor = std::make_shared<ThreadPool>(4, "idem-test");
    auto n = Node::Create(ConfigFor(name_, v1::STYLE_REQUEST, s), std::move(options));
    ASSERT_TRUE(n.ok()) << n.status();
    node_ = *std::move(n);
    Operation<EchoRequest, EchoReply> op{name_};
    auto reg =
        node_->Handle(op, [this](Context&, const EchoRequest& req) -> absl::StatusOr<EchoReply> {
          int run = ++runs_;
          if (!started_flag_.exchange(true)) started_.Notify();
          EXPECT_TRUE(release_.WaitForNotificationWithTimeout(kWait));
          EchoReply r;
          r.set_text(req.text() + " #" + std::to_string(run));
          return r;
        });
    ASSERT_TRUE(reg.ok()) << reg.status();
    reg_ = *std::move(reg);
  }
  void TearDown() override {
    Release();
    reg_.Stop();
  }
  void Release() {
    if (!released_flag_.exchange(true)) release_.Notify();
  }
  Future<EchoReply> Call(CallOptions options = WithKey("slow-1")) {
    Operation<EchoRequest, EchoReply> op{name_};
    EchoRequest req;
    req.set_text("slow");
    return node_->Call(op, req, std::move(options));
  }
  std::shared_ptr<IdempotencyCounters> counters() { return IdempotencyCountersFor(name_); }

  FakeClock clock_;
  std::string name_;
  std::unique_ptr<Node> node_;
  HandlerRegistration reg_;
  std::atomic<int> runs_{0};
  std::atomic<bool> started_flag_{false};
  absl::Notification started_;
  std::atomic<bool> released_flag_{false};
  absl::Notification release_;
};

TEST_F(InProgressTest, DuplicateWaitsForTheOutcomeOfTheFirst) {
  Start({});
  auto first = Call();
  ASSERT_TRUE(started_.WaitForNotificationWithTimeout(kWait));
  auto second = Call();
  ASSERT_TRUE(Eventually([&] { return counters()->in_progress_waits.load() == 1; }));
  Release();
  auto a = std::move(first).GetFor(kWait);
  auto b = std::move(second).GetFor(kWait);
  ASSERT_TRUE(a.ok()) << a.status();
  ASSERT_TRUE(b.ok()) << b.status();
  EXPECT_EQ(a->text(), "slow #1");
  EXPECT_EQ(b->text(), "slow #1");
  EXPECT_EQ(runs_.load(), 1);
  EXPECT_EQ(counters()->dedup_hits.load(), 1u);
}

TEST_F(InProgressTest, DuplicateIsAbortedWhenConfigured) {
  Opts s;
  s.on_in_progress = "abort";
  Start(s);
  auto first = Call();
  ASSERT_TRUE(started_.WaitForNotificationWithTimeout(kWait));
  auto second = Call().GetFor(kWait);
  EXPECT_EQ(second.status().code(), absl::StatusCode::kAborted);
  EXPECT_THAT(std::string(second.status().message()), HasSubstr("still in progress"));
  EXPECT_THAT(std::string(second.status().message()), HasSubstr("on_in_progress"));
  EXPECT_EQ(counters()->in_progress_aborts.load(), 1u);
  Release();
  auto a = std::move(first).GetFor(kWait);
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(runs_.load(), 1);
}

TEST_F(InProgressTest, WaitEndsAtTheDuplicatesDeadline) {
  Start({});
  auto first = Call();
  ASSERT_TRUE(started_.WaitForNotificationWithTimeout(kWait));
  CallOptions options = WithKey("slow-1");
  options.timeout = absl::Seconds(1);
  auto second = Call(options);
  ASSERT_TRUE(Eventually([&] { return counters()->in_progress_waits.load() == 1; }));
  // Moving time past the deadline wakes the waiter, which gives up.
  ASSERT_TRUE(Eventually([&] {
    clock_.Advance(absl::Milliseconds(300));
    return counters()->wait_timeouts.load() == 1;
  }));
  auto b = std::move(second).GetFor(kWait);
  EXPECT_TRUE(b.status().code() == absl::StatusCode::kDeadlineExceeded ||
              b.status().code() == absl::StatusCode::kAborted)
      << b.status();
  Release();
  ASSERT_TRUE(std::move(first).GetFor(kWait).ok());
  EXPECT_EQ(runs_.load(), 1);
}

}  // namespace
}  // namespace switchboard
