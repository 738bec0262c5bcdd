#include "switchboard/node.h"

#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "switchboard/inproc_transport.h"
#include "switchboard/transport_registry.h"
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

// A config with one inproc transport on a bus private to the test and the
// operation `op` bound as `style`.
v1::Config ConfigFor(const std::string& op, v1::Style style, bool reply = false,
                     const std::string& timeout = "") {
  v1::Config config;
  auto& t = (*config.mutable_transports())["local"];
  t.set_type("inproc");
  t.mutable_inproc()->set_bus(UniqueName("bus"));
  auto& b = (*config.mutable_operations())[op];
  b.set_style(style);
  b.set_reply(reply);
  b.set_transport("local");
  if (!timeout.empty()) {
    auto& p = (*config.mutable_policies())["p"];
    absl::Duration d;
    EXPECT_TRUE(absl::ParseDuration(timeout, &d));
    p.mutable_timeout()->set_seconds(absl::ToInt64Seconds(d));
    p.mutable_timeout()->set_nanos(
        static_cast<int32_t>(absl::ToInt64Nanoseconds(d - absl::Seconds(absl::ToInt64Seconds(d)))));
    b.set_policy("p");
  }
  return config;
}

int ThreadCount() {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("Threads:", 0) == 0) return std::stoi(line.substr(8));
  }
  return -1;
}

TEST(NodeTest, RequestRoundTrip) {
  std::string name = UniqueName("t.Echo/Say");
  Operation<EchoRequest, EchoReply> op{name};
  auto node = Node::Create(ConfigFor(name, v1::STYLE_REQUEST));
  ASSERT_TRUE(node.ok()) << node.status();
  auto reg = (*node)->Handle(op, [](Context& ctx, const EchoRequest& req) -> absl::StatusOr<EchoReply> {
    EchoReply r;
    r.set_text("echo: " + req.text());
    r.set_attempt(ctx.attempt());
    return r;
  });
  ASSERT_TRUE(reg.ok()) << reg.status();
  EchoRequest req;
  req.set_text("hi");
  absl::StatusOr<EchoReply> reply = (*node)->Call(op, req).GetFor(kWait);
  ASSERT_TRUE(reply.ok()) << reply.status();
  EXPECT_EQ(reply->text(), "echo: hi");
  EXPECT_EQ(reply->attempt(), 1);
}

// The same caller and handler code under every style: only the binding changes.
TEST(NodeTest, SameCodeUnderEveryStyle) {
  struct Case {
    v1::Style style;
    bool reply;
  };
  for (Case c : {Case{v1::STYLE_REQUEST, false}, Case{v1::STYLE_COMMAND, true}}) {
    std::string name = UniqueName("t.Echo/Say");
    Operation<EchoRequest, EchoReply> op{name};
    auto node = Node::Create(ConfigFor(name, c.style, c.reply));
    ASSERT_TRUE(node.ok()) << node.status();
    auto reg = (*node)->Handle(op, [](Context& ctx, const EchoRequest& req) -> absl::StatusOr<EchoReply> {
      EchoReply r;
      r.set_text(req.text());
      r.set_handled_by(std::string(StyleName(ctx.style())));
      return r;
    });
    ASSERT_TRUE(reg.ok());
    EchoRequest req;
    req.set_text("same");
    auto reply = (*node)->Call(op, req).GetFor(kWait);
    ASSERT_TRUE(reply.ok()) << reply.status();
    EXPECT_EQ(reply->text(), "same");
    EXPECT_EQ(reply->handled_by(), c.style == v1::STYLE_REQUEST ? "request" : "command");
  }
}

TEST(NodeTest, FireAndForgetStylesResolveOnAcceptance) {
  for (v1::Style style : {v1::STYLE_COMMAND, v1::STYLE_EVENT}) {
    std::string name = UniqueName("t.Echo/Fire");
    Operation<EchoRequest, google::protobuf::Empty> op{name};
    auto node = Node::Create(ConfigFor(name, style));
    ASSERT_TRUE(node.ok()) << node.status();
    absl::Notification handled;
    HandlerOptions options;
    options.group = "g";
    auto reg = (*node)->Handle(
        op,
        [&](Context&, const EchoRequest&) -> absl::StatusOr<google::protobuf::Empty> {
          handled.Notify();
          return google::protobuf::Empty();
        },
        options);
    ASSERT_TRUE(reg.ok()) << reg.status();
    Future<google::protobuf::Empty> f = (*node)->Call(op, EchoRequest());
    EXPECT_FALSE(f.info().message_id.empty());
    ASSERT_TRUE(std::move(f).GetFor(kWait).ok());
    EXPECT_TRUE(handled.WaitForNotificationWithTimeout(kWait));
  }
}

// An executor that counts what the node hands it.
class CountingExecutor final : public Executor {
 public:
  void Post(Task task) override {
    posts.fetch_add(1);
    pool_.Post(std::move(task));
  }
  size_t thread_count() const override { return pool_.thread_count(); }
  std::atomic<int> posts{0};

 private:
  ThreadPool pool_{2};
};

// HandlerOptions.inline_execution: the handler runs on the delivering thread
// (for an inproc request, the caller's) and the node's executor is not used;
// without it, every delivery goes through the executor.
TEST(NodeTest, InlineHandlersBypassTheExecutor) {
  for (v1::Style style : {v1::STYLE_REQUEST, v1::STYLE_COMMAND, v1::STYLE_EVENT}) {
    for (bool inline_execution : {true, false}) {
      SCOPED_TRACE(absl::StrCat("style ", style, " inline ", inline_execution));
      std::string name = UniqueName("t.Echo/Where");
      Operation<EchoRequest, google::protobuf::Empty> op{name};
      auto executor = std::make_shared<CountingExecutor>();
      Node::Options node_options;
      node_options.executor = executor;
      auto node = Node::Create(ConfigFor(name, style), node_options);
      ASSERT_TRUE(node.ok()) << node.status();
      absl::Notification handled;
      std::thread::id handler_thread;
      HandlerOptions options;
      options.group = "g";
      options.inline_execution = inline_execution;
      auto reg = (*node)->Handle(
          op,
          [&](Context&, const EchoRequest&) -> absl::StatusOr<google::protobuf::Empty> {
            handler_thread = std::this_thread::get_id();
            handled.Notify();
            return google::protobuf::Empty();
          },
          options);
      ASSERT_TRUE(reg.ok()) << reg.status();
      ASSERT_TRUE((*node)->Call(op, EchoRequest()).GetFor(kWait).ok());
      ASSERT_TRUE(handled.WaitForNotificationWithTimeout(kWait));
      if (inline_execution) {
        EXPECT_EQ(executor->posts.load(), 0);
        if (style == v1::STYLE_REQUEST) {
          EXPECT_EQ(handler_thread, std::this_thread::get_id());
        }
      } else {
        EXPECT_GE(executor->posts.load(), 1);
        EXPECT_NE(handler_thread, std::this_thread::get_id());
      }
      (*node)->Close();
    }
  }
}

TEST(NodeTest, CallerThatNeedsAReplyIsRefusedOnFireAndForgetBinding) {
  std::string name = UniqueName("t.Echo/Say");
  Operation<EchoRequest, EchoReply> op{name};
  auto node = Node::Create(ConfigFor(name, v1::STYLE_EVENT));
  ASSERT_TRUE(node.ok());
  absl::Status s = (*node)->Call(op, EchoRequest()).GetFor(kWait).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(s.message()), HasSubstr("bind it as request or command with reply: true"));
}

TEST(NodeTest, EventSubscriberNeedsAGroup) {
  std::string name = UniqueName("t.Tick");
  Operation<EchoRequest, google::protobuf::Empty> op{name};
  auto node = Node::Create(ConfigFor(name, v1::STYLE_EVENT));
  ASSERT_TRUE(node.ok());
  auto reg = (*node)->Handle(op, [](Context&, const EchoRequest&) {
    return absl::StatusOr<google::protobuf::Empty>(google::protobuf::Empty());
  });
  EXPECT_EQ(reg.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(reg.status().message()), HasSubstr("HandlerOptions.group"));
}

TEST(NodeTest, DeadlineExceededWithInjectedClock) {
  FakeClock clock;
  std::string name = UniqueName("t.Echo/Say");
  Operation<EchoRequest, EchoReply> op{name};
  Node::Options options;
  options.clock = &clock;
  auto node = Node::Create(ConfigFor(name, v1::STYLE_REQUEST, false, "200ms"), std::move(options));
  ASSERT_TRUE(node.ok());
  absl::Time seen_deadline;
  absl::Notification started;
  std::vector<Promise<EchoReply>> held;
  absl::Mutex mu;
  auto reg = (*node)->Handle(op, [&](Context& ctx, const EchoRequest&) {
    auto [p, f] = MakePromise<EchoReply>();
    absl::MutexLock lock(&mu);
    seen_deadline = ctx.deadline();
    held.push_back(std::move(p));  // never answered
    started.Notify();
    return std::move(f);
  });
  ASSERT_TRUE(reg.ok());
  absl::Time expected = clock.Now() + absl::Milliseconds(200);
  Future<EchoReply> f = (*node)->Call(op, EchoRequest());
  ASSERT_TRUE(started.WaitForNotificationWithTimeout(kWait));
  EXPECT_FALSE(f.ready());
  clock.Advance(absl::Milliseconds(200));
  absl::Status s = std::move(f).GetFor(kWait).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kDeadlineExceeded) << s;
  absl::MutexLock lock(&mu);
  EXPECT_EQ(seen_deadline, expected);
  held.clear();
}

// 10,000 requests in flight at once to a slow handler: they all complete, and
// the process does not grow a thread per call.
TEST(NodeTest, TenThousandInFlightWithoutAThreadPerCall) {
  FakeClock clock;
  std::string name = UniqueName("t.Echo/Say");
  Operation<EchoRequest, EchoReply> op{name};
  Node::Options options;
  options.clock = &clock;
  options.executor = std::make_shared<ThreadPool>(4);
  auto node = Node::Create(ConfigFor(name, v1::STYLE_REQUEST, false, "60s"), std::move(options));
  ASSERT_TRUE(node.ok());
  absl::Mutex mu;
  std::vector<std::pair<Promise<EchoReply>, std::string>> slow;  // answered when the clock moves
  auto reg = (*node)->Handle(op, [&](Context&, const EchoRequest& req) {
    auto [p, f] = MakePromise<EchoReply>();
    absl::MutexLock lock(&mu);
    slow.emplace_back(std::move(p), req.text());
    return std::move(f);
  });
  ASSERT_TRUE(reg.ok());
  int threads_before = ThreadCount();
  constexpr int kCalls = 10'000;
  std::vector<Future<EchoReply>> calls;
  calls.reserve(kCalls);
  for (int i = 0; i < kCalls; ++i) {
    EchoRequest req;
    req.set_text(std::to_string(i));
    calls.push_back((*node)->Call(op, req));
  }
  {
    absl::MutexLock lock(&mu);
    auto all_in = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) { return slow.size() == kCalls; };
    ASSERT_TRUE(mu.AwaitWithTimeout(absl::Condition(&all_in), absl::Seconds(60)));
  }
  int threads_during = ThreadCount();
  EXPECT_LT(threads_during - threads_before, 8) << "threads grew with in-flight calls";
  for (const auto& c : calls) EXPECT_FALSE(c.ready());
  {
    absl::MutexLock lock(&mu);
    for (auto& [p, text] : slow) {
      EchoReply r;
      r.set_text(text);
      p.Set(r);
    }
    slow.clear();
  }
  for (int i = 0; i < kCalls; ++i) {
    auto r = std::move(calls[i]).GetFor(kWait);
    ASSERT_TRUE(r.ok()) << r.status();
    ASSERT_EQ(r->text(), std::to_string(i));
  }
}

TEST(NodeTest, DownstreamCallInheritsTraceAndDeadline) {
  std::string outer_name = UniqueName("t.Outer/Say");
  std::string inner_name = UniqueName("t.Inner/Say");
  Operation<EchoRequest, EchoReply> outer{outer_name}, inner{inner_name};
  v1::Config config = ConfigFor(outer_name, v1::STYLE_REQUEST, false, "5s");
  (*config.mutable_operations())[inner_name] = config.operations().at(outer_name);
  auto node = Node::Create(config);
  ASSERT_TRUE(node.ok());
  std::string outer_trace, inner_trace, outer_span, inner_parent;
  absl::Time outer_deadline, inner_deadline;
  auto r1 = (*node)->Handle(inner, [&](Context& ctx, const EchoRequest&) -> absl::StatusOr<EchoReply> {
    inner_trace = ctx.trace_id();
    inner_parent = ctx.envelope().traceparent;
    inner_deadline = ctx.deadline();
    return EchoReply();
  });
  auto r2 = (*node)->Handle(outer, [&](Context& ctx, const EchoRequest& req) -> absl::StatusOr<EchoReply> {
    outer_trace = ctx.trace_id();
    outer_span = ctx.span().SpanId();
    outer_deadline = ctx.deadline();
    CallOptions o;
    o.parent = &ctx;
    return ctx.node().Call(inner, req, o).GetFor(kWait);
  });
  ASSERT_TRUE(r1.ok() && r2.ok());
  CallOptions o;
  o.traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
  ASSERT_TRUE((*node)->Call(outer, EchoRequest(), o).GetFor(kWait).ok());
  EXPECT_EQ(outer_trace, "4bf92f3577b34da6a3ce929d0e0e4736");
  EXPECT_EQ(inner_trace, outer_trace);
  EXPECT_NE(inner_parent.find(outer_trace), std::string::npos);
  EXPECT_LE(inner_deadline, outer_deadline);
}

TEST(NodeTest, InvalidIncomingTraceparentStartsANewTrace) {
  std::string name = UniqueName("t.Echo/Say");
  Operation<EchoRequest, EchoReply> op{name};
  auto node = Node::Create(ConfigFor(name, v1::STYLE_REQUEST));
  ASSERT_TRUE(node.ok());
  std::string seen_state;
  auto reg = (*node)->Handle(op, [&](Context& ctx, const EchoRequest&) -> absl::StatusOr<EchoReply> {
    seen_state = ctx.tracestate();
    return EchoReply();
  });
  CallOptions o;
  o.traceparent = "00-00000000000000000000000000000000-00f067aa0ba902b7-01";
  o.tracestate = "vendor=1";
  Future<EchoReply> f = (*node)->Call(op, EchoRequest(), o);
  std::string trace_id = f.info().trace_id;
  ASSERT_TRUE(std::move(f).GetFor(kWait).ok());
  EXPECT_EQ(trace_id.size(), 32u);
  EXPECT_NE(trace_id, "00000000000000000000000000000000");
  EXPECT_EQ(seen_state, "") << "tracestate of an invalid traceparent must be dropped";
}

// A future's CallInfo names what went on the wire: the handler sees the same
// message id, idempotency key and trace, typed or untyped.
TEST(NodeTest, CallInfoNamesTheMessageTheHandlerSaw) {
  std::string name = UniqueName("t.Echo/Say");
  Operation<EchoRequest, EchoReply> op{name};
  auto node = Node::Create(ConfigFor(name, v1::STYLE_REQUEST));
  ASSERT_TRUE(node.ok());
  std::vector<Envelope> seen;
  absl::Mutex mu;
  auto reg = (*node)->Handle(op, [&](Context& ctx, const EchoRequest&) -> absl::StatusOr<EchoReply> {
    absl::MutexLock lock(&mu);
    seen.push_back(ctx.envelope());
    return EchoReply();
  });
  ASSERT_TRUE(reg.ok());

  Future<EchoReply> typed = (*node)->Call(op, EchoRequest());
  CallOptions keyed;
  keyed.idempotency_key = "order-42:charge";
  Future<std::string> raw = (*node)->CallRaw(name, EchoRequest().SerializeAsString(), keyed);
  const CallInfo typed_info = typed.info();
  const CallInfo raw_info = raw.info();
  ASSERT_TRUE(std::move(typed).GetFor(kWait).ok());
  ASSERT_TRUE(std::move(raw).GetFor(kWait).ok());

  absl::MutexLock lock(&mu);
  ASSERT_EQ(seen.size(), 2u);
  for (const CallInfo* info : {&typed_info, &raw_info}) {
    const Envelope* env = seen[0].id == info->message_id ? &seen[0] : &seen[1];
    EXPECT_EQ(info->message_id, env->id);
    EXPECT_EQ(info->message_id.size(), 36u);
    EXPECT_EQ(info->idempotency_key, env->idempotency_key);
    EXPECT_EQ(info->trace_id, env->traceparent.substr(3, 32));
    // The handler sees the hop's own span, a child of the caller's.
    EXPECT_EQ(info->traceparent.size(), 55u);
    EXPECT_EQ(info->traceparent.substr(0, 35), env->traceparent.substr(0, 35));
  }
  EXPECT_EQ(typed_info.idempotency_key, typed_info.message_id);
  EXPECT_EQ(raw_info.idempotency_key, "order-42:charge");
  EXPECT_NE(typed_info.message_id, raw_info.message_id);
}

// A caller's content type carries the call both ways: the handler sees JSON,
// and the typed caller parses the JSON reply. One the node cannot parse is
// refused with InvalidArgument naming it.
TEST(NodeTest, ACallersContentTypeIsUsedBothWays) {
  std::string name = UniqueName("t.Echo/Say");
  Operation<EchoRequest, EchoReply> op{name};
  auto node = Node::Create(ConfigFor(name, v1::STYLE_REQUEST));
  ASSERT_TRUE(node.ok());
  std::string seen_type, seen_data;
  auto reg = (*node)->Handle(op, [&](Context& ctx, const EchoRequest& req) -> absl::StatusOr<EchoReply> {
    seen_type = ctx.envelope().data_content_type;
    seen_data = ctx.envelope().data;
    EchoReply r;
    r.set_text(req.text() + "!");
    return r;
  });
  ASSERT_TRUE(reg.ok());
  EchoRequest req;
  req.set_text("json");
  CallOptions json;
  json.content_type = std::string(kContentTypeJson);
  auto reply = (*node)->Call(op, req, json).GetFor(kWait);
  ASSERT_TRUE(reply.ok()) << reply.status();
  EXPECT_EQ(reply->text(), "json!");
  EXPECT_EQ(seen_type, kContentTypeJson);
  EXPECT_THAT(seen_data, HasSubstr("\"text\""));

  CallOptions plain;
  plain.content_type = "text/plain";
  auto refused = (*node)->Call(op, req, plain).GetFor(kWait);
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(refused.status().message()), HasSubstr("text/plain"));
}

// info() is const and builds its strings on first use: two threads asking at
// once get the same identifiers (`make test-tsan` checks there is no race).
TEST(NodeTest, CallInfoCanBeReadFromTwoThreads) {
  std::string name = UniqueName("t.Echo/Say");
  Operation<EchoRequest, EchoReply> op{name};
  auto node = Node::Create(ConfigFor(name, v1::STYLE_REQUEST));
  ASSERT_TRUE(node.ok());
  auto reg = (*node)->Handle(op, [](Context&, const EchoRequest&) -> absl::StatusOr<EchoReply> {
    return EchoReply();
  });
  ASSERT_TRUE(reg.ok());
  Future<EchoReply> f = (*node)->Call(op, EchoRequest());
  std::string first, second;
  std::thread a([&] { first = f.info().message_id + f.info().traceparent; });
  std::thread b([&] { second = f.info().message_id + f.info().traceparent; });
  a.join();
  b.join();
  EXPECT_EQ(first.size(), 36u + 55u);
  EXPECT_EQ(first, second);
  ASSERT_TRUE(std::move(f).GetFor(kWait).ok());
}

// Two groups of one event on one node share its idempotency store: each group
// still handles the event, since a group's key is its own ("group/key").
TEST(NodeTest, GroupsSharingAnIdempotencyStoreEachHandleTheEvent) {
  std::string name = UniqueName("t.Echo/Noticed");
  Operation<EchoRequest, google::protobuf::Empty> op{name};
  v1::Config config = ConfigFor(name, v1::STYLE_EVENT);
  (*config.mutable_policies())["p"].mutable_idempotency()->set_store("memory");
  (*config.mutable_operations())[name].set_policy("p");
  auto node = Node::Create(config);
  ASSERT_TRUE(node.ok()) << node.status();
  std::atomic<int> audit{0}, billing{0};
  absl::Notification audit_saw, billing_saw;
  auto handler_for = [](std::atomic<int>& count, absl::Notification& saw) {
    return [&count, &saw](Context&, const EchoRequest&) -> absl::StatusOr<google::protobuf::Empty> {
      if (count.fetch_add(1) == 0) saw.Notify();
      return google::protobuf::Empty();
    };
  };
  HandlerOptions a;
  a.group = "audit";
  HandlerOptions b;
  b.group = "billing";
  auto reg_a = (*node)->Handle(op, handler_for(audit, audit_saw), a);
  auto reg_b = (*node)->Handle(op, handler_for(billing, billing_saw), b);
  ASSERT_TRUE(reg_a.ok() && reg_b.ok());
  ASSERT_TRUE((*node)->Call(op, EchoRequest()).GetFor(kWait).ok());
  EXPECT_TRUE(audit_saw.WaitForNotificationWithTimeout(kWait));
  EXPECT_TRUE(billing_saw.WaitForNotificationWithTimeout(kWait));
  EXPECT_EQ(audit.load(), 1);
  EXPECT_EQ(billing.load(), 1);
}

TEST(NodeTest, HandlerExceptionBecomesInternalForARequest) {
  std::string name = UniqueName("t.Echo/Say");
  Operation<EchoRequest, EchoReply> op{name};
  auto node = Node::Create(ConfigFor(name, v1::STYLE_REQUEST));
  ASSERT_TRUE(node.ok());
  auto reg = (*node)->Handle(op, [](Context&, const EchoRequest&) -> absl::StatusOr<EchoReply> {
    throw std::runtime_error("boom");
  });
  absl::Status s = (*node)->Call(op, EchoRequest()).GetFor(kWait).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kInternal);
  EXPECT_THAT(std::string(s.message()), HasSubstr("boom"));
}

TEST(NodeTest, CloseWaitsForRunningHandlerAndRefusesNewCalls) {
  std::string name = UniqueName("t.Echo/Say");
  Operation<EchoRequest, EchoReply> op{name};
  auto node = Node::Create(ConfigFor(name, v1::STYLE_REQUEST));
  ASSERT_TRUE(node.ok());
  absl::Notification started, release;
  std::atomic<bool> finished{false};
  auto reg = (*node)->Handle(op, [&](Context&, const EchoRequest&) -> absl::StatusOr<EchoReply> {
    started.Notify();
    release.WaitForNotificationWithTimeout(kWait);
    finished = true;
    return EchoReply();
  });
  Future<EchoReply> f = (*node)->Call(op, EchoRequest());
  ASSERT_TRUE(started.WaitForNotificationWithTimeout(kWait));
  // Releases the handler once Close() has begun: a closing node refuses new
  // handlers with FailedPrecondition, without side effects.
  std::thread releaser([&] {
    RawHandler noop = [](Context&, const Envelope&, auto done) { std::move(done)(std::string()); };
    for (int i = 0; i < 1'000'000; ++i) {
      auto probe = (*node)->HandleRaw(UniqueName("t.Probe/Say"), noop);
      if (probe.status().code() == absl::StatusCode::kFailedPrecondition) break;
      std::this_thread::yield();
    }
    release.Notify();
  });
  (*node)->Close();
  EXPECT_TRUE(finished) << "Close returned while a handler was running";
  releaser.join();
  EXPECT_TRUE(std::move(f).GetFor(kWait).ok());
  EXPECT_EQ((*node)->Call(op, EchoRequest()).GetFor(kWait).status().code(),
            absl::StatusCode::kFailedPrecondition);
}

TEST(NodeTest, UnknownTransportInBindingIsAConfigError) {
  std::string name = UniqueName("t.Echo/Say");
  v1::Config config = ConfigFor(name, v1::STYLE_REQUEST);
  (*config.mutable_operations())[name].set_transport("nowhere");
  auto node = Node::Create(config);
  EXPECT_EQ(node.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(node.status().message()), HasSubstr("nowhere"));
}


// The inproc transport under another type name, whose deliveries record the
// envelope they hold when they are settled: what a broker transport
// redelivers or dead-letters.
class SettledEnvelopes {
 public:
  void Add(Envelope env) {
    absl::MutexLock lock(&mu_);
    envelopes_.push_back(std::move(env));
  }
  std::vector<Envelope> Get() {
    absl::MutexLock lock(&mu_);
    return envelopes_;
  }

 private:
  absl::Mutex mu_;
  std::vector<Envelope> envelopes_;
};

class RecordingDelivery final : public Delivery {
 public:
  RecordingDelivery(std::unique_ptr<Delivery> inner, SettledEnvelopes* settled)
      : Delivery(inner->envelope()), inner_(std::move(inner)), settled_(settled) {}
  void Ack() override {
    settled_->Add(envelope());
    inner_->Ack();
  }
  void Retry(absl::Duration delay) override {
    settled_->Add(envelope());
    inner_->Retry(delay);
  }
  void DeadLetter(const absl::Status& reason) override {
    settled_->Add(envelope());
    inner_->DeadLetter(reason);
  }

 private:
  std::unique_ptr<Delivery> inner_;
  SettledEnvelopes* settled_;
};

class RecordingTransport final : public Transport {
 public:
  RecordingTransport(std::unique_ptr<Transport> inner, SettledEnvelopes* settled)
      : inner_(std::move(inner)), settled_(settled) {}
  std::string_view name() const override { return inner_->name(); }
  std::string_view type() const override { return "recording"; }
  const Features& features() const override { return inner_->features(); }
  void Request(Envelope request, ReplyCallback on_reply) override {
    inner_->Request(std::move(request), std::move(on_reply));
  }
  absl::StatusOr<std::unique_ptr<Subscription>> Serve(const Endpoint& endpoint,
                                                      RequestHandler handler) override {
    return inner_->Serve(endpoint, std::move(handler));
  }
  void Enqueue(Envelope command, DoneCallback on_accepted) override {
    inner_->Enqueue(std::move(command), std::move(on_accepted));
  }
  absl::StatusOr<std::unique_ptr<Subscription>> Consume(const Endpoint& endpoint,
                                                        DeliveryHandler handler) override {
    return inner_->Consume(endpoint, Wrap(std::move(handler)));
  }
  void Publish(Envelope event, DoneCallback on_published) override {
    inner_->Publish(std::move(event), std::move(on_published));
  }
  absl::StatusOr<std::unique_ptr<Subscription>> Subscribe(const Endpoint& endpoint,
                                                          DeliveryHandler handler) override {
    return inner_->Subscribe(endpoint, Wrap(std::move(handler)));
  }
  absl::StatusOr<std::unique_ptr<ReplyInbox>> OpenInbox(ReplyHandler on_reply) override {
    return inner_->OpenInbox(std::move(on_reply));
  }
  void SendReply(const std::string& reply_to, Envelope reply, DoneCallback on_sent) override {
    inner_->SendReply(reply_to, std::move(reply), std::move(on_sent));
  }

 private:
  DeliveryHandler Wrap(DeliveryHandler handler) {
    return [handler = std::move(handler), settled = settled_](std::unique_ptr<Delivery> d) {
      handler(std::make_unique<RecordingDelivery>(std::move(d), settled));
    };
  }
  std::unique_ptr<Transport> inner_;
  SettledEnvelopes* settled_;
};

SettledEnvelopes& Settled() {
  static SettledEnvelopes* settled = [] {
    auto* s = new SettledEnvelopes();
    absl::Status registered = TransportRegistry::Default().Register(
        "recording", [s](std::string_view name, const v1::TransportConfig& config,
                         const TransportEnv& env) -> absl::StatusOr<std::unique_ptr<Transport>> {
          auto inner = MakeInprocTransport(name, config, env);
          if (!inner.ok()) return inner.status();
          return std::make_unique<RecordingTransport>(*std::move(inner), s);
        });
    EXPECT_TRUE(registered.ok()) << registered;
    return s;
  }();
  return *settled;
}

// A command operation on the recording transport, on the default bus (the
// operation's name is unique to this run).
v1::Config RecordingConfigFor(const std::string& op) {
  (void)Settled();  // registers the type
  v1::Config config = ConfigFor(op, v1::STYLE_COMMAND);
  (*config.mutable_transports())["local"].set_type("recording");
  (*config.mutable_transports())["local"].clear_inproc();
  return config;
}

// The envelope a delivery of `type` held when it was settled (bounded wait).
std::optional<Envelope> WaitForSettled(const std::string& type) {
  for (absl::Time give_up = absl::Now() + kWait; absl::Now() < give_up;) {
    for (Envelope& e : Settled().Get()) {
      if (e.type == type) return std::move(e);
    }
    absl::SleepFor(absl::Milliseconds(1));
  }
  return std::nullopt;
}

// A handler sees its own hop's span in the request's traceparent; the
// delivery it came in is settled holding the message as it arrived, so a
// broker redelivers or dead-letters what the sender sent.
TEST(NodeTest, ADeliveryIsSettledHoldingTheMessageAsItArrived) {
  std::string name = UniqueName("t.Echo/Refuse");
  Operation<EchoRequest, google::protobuf::Empty> op{name};
  auto node = Node::Create(RecordingConfigFor(name));
  ASSERT_TRUE(node.ok()) << node.status();
  absl::Mutex mu;
  std::string handler_traceparent;
  auto reg = (*node)->Handle(
      op, [&](Context& ctx, const EchoRequest&) -> absl::StatusOr<google::protobuf::Empty> {
        absl::MutexLock lock(&mu);
        handler_traceparent = ctx.envelope().traceparent;
        return absl::InvalidArgumentError("refused");  // not retryable: dead-lettered
      });
  ASSERT_TRUE(reg.ok()) << reg.status();
  EchoRequest req;
  req.set_text("as sent");
  CallOptions options;  // the edge of a trace begun elsewhere
  options.traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
  options.tracestate = "vendor=1";
  Future<google::protobuf::Empty> f = (*node)->Call(op, req, options);
  const CallInfo info = f.info();
  ASSERT_TRUE(std::move(f).GetFor(kWait).ok());

  std::optional<Envelope> seen = WaitForSettled(name);
  ASSERT_TRUE(seen.has_value()) << "the delivery was not settled";
  EXPECT_EQ(seen->id, info.message_id);
  EXPECT_EQ(seen->traceparent, info.traceparent);
  EXPECT_EQ(seen->tracestate, "vendor=1");
  EXPECT_EQ(seen->data, req.SerializeAsString());
  absl::MutexLock lock(&mu);
  EXPECT_FALSE(handler_traceparent.empty());
  EXPECT_NE(handler_traceparent, info.traceparent) << "the handler runs in a span of its own";
}

// A traceparent longer than the call can keep beside its delivery (a later
// version with more fields): the call works on a copy, and the delivery is
// still settled holding the message as it arrived.
TEST(NodeTest, ADeliveryWithALongTraceparentIsSettledAsItArrived) {
  std::string name = UniqueName("t.Echo/RefuseLong");
  Operation<EchoRequest, google::protobuf::Empty> op{name};
  auto node = Node::Create(RecordingConfigFor(name));
  ASSERT_TRUE(node.ok()) << node.status();
  auto reg = (*node)->Handle(
      op, [](Context&, const EchoRequest&) -> absl::StatusOr<google::protobuf::Empty> {
        return absl::InvalidArgumentError("refused");  // dead-lettered
      });
  ASSERT_TRUE(reg.ok()) << reg.status();

  // Sent on the same (default) bus by a transport of its own, past any node.
  ThreadPool pool(1);
  TransportEnv env;
  env.clock = &Clock::Real();
  env.executor = &pool;
  v1::TransportConfig sender_config;
  sender_config.set_type("inproc");
  auto sender = MakeInprocTransport("sender", sender_config, env);
  ASSERT_TRUE(sender.ok()) << sender.status();
  Envelope command;
  command.id = NewMessageId();
  command.source = "//test/sender";
  command.type = name;
  command.style = Style::kCommand;
  command.idempotency_key = command.id;
  command.traceparent =
      "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-a-later-version-adds-fields";
  ASSERT_GT(command.traceparent.size(), 64u);
  EchoRequest req;
  req.set_text("long trace");
  command.data = req.SerializeAsString();
  absl::Notification accepted;
  (*sender)->Enqueue(command, [&](absl::Status s) {
    EXPECT_TRUE(s.ok()) << s;
    accepted.Notify();
  });
  ASSERT_TRUE(accepted.WaitForNotificationWithTimeout(kWait));

  std::optional<Envelope> seen = WaitForSettled(name);
  ASSERT_TRUE(seen.has_value()) << "the delivery was not settled";
  EXPECT_EQ(seen->id, command.id);
  EXPECT_EQ(seen->traceparent, command.traceparent);
  EXPECT_EQ(seen->data, command.data);
}

// A server middleware that drops a call (neither runs the rest of the chain
// nor answers): the call is answered Cancelled at once, not left for the
// caller's deadline.
TEST(NodeTest, ACallDroppedByAServerMiddlewareIsAnsweredCancelled) {
  class Drop final : public ServerMiddleware {
   public:
    void Invoke(const CallSite&, Context&, const Envelope&, ReplyCallback,
                const ServerNext&) override {}
  };
  std::string name = UniqueName("t.Echo/Say");
  Operation<EchoRequest, EchoReply> op{name};
  Node::Options options;
  options.middleware.server.push_back(
      [](const CallSite&) -> std::unique_ptr<ServerMiddleware> { return std::make_unique<Drop>(); });
  auto node = Node::Create(ConfigFor(name, v1::STYLE_REQUEST, false, "60s"), options);
  ASSERT_TRUE(node.ok()) << node.status();
  std::atomic<int> handled{0};
  auto reg = (*node)->Handle(op, [&](Context&, const EchoRequest&) -> absl::StatusOr<EchoReply> {
    ++handled;
    return EchoReply();
  });
  ASSERT_TRUE(reg.ok()) << reg.status();
  auto reply = (*node)->Call(op, EchoRequest()).GetFor(kWait);
  ASSERT_FALSE(reply.ok());
  EXPECT_EQ(reply.status().code(), absl::StatusCode::kCancelled) << reply.status();
  EXPECT_THAT(std::string(reply.status().message()),
              HasSubstr("the call was dropped without an answer"));
  EXPECT_EQ(handled.load(), 0);
}

}  // namespace
}  // namespace switchboard
