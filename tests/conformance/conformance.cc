// The transport conformance suite: each case checks, through the public Node
// API, one promise of switchboard/transport.h (see README.md for the list and
// the feature each case needs).
//
// Every case builds its own world: a harness from the transport under test,
// one or more Nodes on transports from that harness (as separate processes
// would be), and operation names unique to the case and the run. Waits are
// bounded (kWait) so a broken transport fails a case instead of hanging.
#include "conformance.h"

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <iostream>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <stdexcept>
#include <thread>
#include <tuple>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "google/protobuf/empty.pb.h"
#include "switchboard/node.h"
#include "switchboard/status.h"
#include "switchboard/test/v1/echo.pb.h"
#include "switchboard/trace_context.h"
#include "switchboard/transport_registry.h"

namespace switchboard::conformance {

// ---------------------------------------------------------------------------
// The result matrix.

namespace {

struct Matrix {
  absl::Mutex mu;
  // case -> transport -> outcome
  std::map<std::string, std::map<std::string, std::string>> cells ABSL_GUARDED_BY(mu);
  std::set<std::string> transports ABSL_GUARDED_BY(mu);
};

Matrix& GetMatrix() {
  static auto* matrix = new Matrix();
  return *matrix;
}

std::string FormatMatrix() {
  Matrix& m = GetMatrix();
  absl::MutexLock lock(&m.mu);
  if (m.cells.empty()) return "";
  size_t case_width = 4;
  for (const auto& [c, row] : m.cells) case_width = std::max(case_width, c.size());
  std::string out = "\nTransport conformance matrix\n";
  auto pad = [](std::string s, size_t w) {
    if (s.size() < w) s.append(w - s.size(), ' ');
    return s;
  };
  std::string header = pad("case", case_width);
  for (const auto& t : m.transports) absl::StrAppend(&header, "  ", pad(t, std::max<size_t>(t.size(), 4)));
  absl::StrAppend(&out, header, "\n", std::string(header.size(), '-'), "\n");
  for (const auto& [c, row] : m.cells) {
    std::string line = pad(c, case_width);
    for (const auto& t : m.transports) {
      auto it = row.find(t);
      std::string cell = it == row.end() ? "-" : it->second;
      absl::StrAppend(&line, "  ", pad(cell, std::max<size_t>(t.size(), 4)));
    }
    absl::StrAppend(&out, line, "\n");
  }
  return out;
}

// Records each ConformanceTest case as it ends and prints the matrix when the
// program's tests are done. Installed before main() by a static initializer,
// so linking the suite is enough.
class MatrixListener : public ::testing::EmptyTestEventListener {
 public:
  void OnTestEnd(const ::testing::TestInfo& info) override {
    // Suites are "<Transport>/ConformanceTest", tests "<Case>/<Transport>".
    std::string suite = info.test_suite_name();
    const size_t slash = suite.find('/');
    if (slash == std::string::npos || suite.substr(slash + 1) != "ConformanceTest") return;
    std::string transport = suite.substr(0, slash);
    std::string name = info.name();
    name = name.substr(0, name.find('/'));
    const ::testing::TestResult* r = info.result();
    const char* outcome = r->Skipped() ? "skip" : r->Failed() ? "FAIL" : "pass";
    RecordResult(transport, name, outcome);
  }

  void OnTestProgramEnd(const ::testing::UnitTest&) override {
    std::string text = FormatMatrix();
    if (!text.empty()) std::cout << text << std::flush;
  }
};

const bool kListenerInstalled = [] {
  ::testing::UnitTest::GetInstance()->listeners().Append(new MatrixListener());
  return true;
}();

}  // namespace

void RecordResult(const std::string& transport, const std::string& test_case,
                  const std::string& outcome) {
  Matrix& m = GetMatrix();
  {
    absl::MutexLock lock(&m.mu);
    m.transports.insert(transport);
    m.cells[test_case][transport] = outcome;
  }
  // A data file for CI: one "transport,case,outcome" line per case.
  if (const char* path = std::getenv("SWITCHBOARD_CONFORMANCE_MATRIX"); path && *path) {
    std::ofstream(path, std::ios::app) << transport << "," << test_case << "," << outcome << "\n";
  }
}

// ---------------------------------------------------------------------------
// Helpers.

namespace {

using ::switchboard::test::v1::EchoReply;
using ::switchboard::test::v1::EchoRequest;
using ::switchboard::test::v1::Tick;
using Empty = ::google::protobuf::Empty;

// Bound on every wait: generous, because brokers are real.
constexpr absl::Duration kWait = absl::Seconds(10);
// After the expected messages arrived, how long to watch for duplicates.
constexpr absl::Duration kGrace = absl::Milliseconds(300);
// Deadlines cross the wire as timestamps or remaining budgets.
constexpr absl::Duration kClockTolerance = absl::Milliseconds(50);

constexpr int kMaxDeliveries = 3;

// A prefix unique to this process run and this case.
std::string NewRunId() {
  static const std::string process = absl::StrCat(absl::ToUnixMicros(absl::Now()) % 100000000, "p", getpid());
  static std::atomic<int> n{0};
  return absl::StrCat(process, "n", n.fetch_add(1));
}

// The transport type of the harness, accepted by a registry of its own so
// that a third-party type need not be registered globally for config
// validation (the Node gets the ready instances).
const TransportRegistry* RegistryFor(const std::string& type) {
  static absl::Mutex mu;
  static auto* registries = new std::map<std::string, std::unique_ptr<TransportRegistry>>();
  absl::MutexLock lock(&mu);
  auto& r = (*registries)[type];
  if (!r) {
    r = std::make_unique<TransportRegistry>();
    (void)r->Register(type, [](std::string_view, const v1::TransportConfig&,
                               const TransportEnv&) -> absl::StatusOr<std::unique_ptr<Transport>> {
      return absl::UnimplementedError("conformance: transports come from the harness");
    });
  }
  return r.get();
}

google::protobuf::Duration ProtoDuration(absl::Duration d) {
  google::protobuf::Duration out;
  out.set_seconds(absl::ToInt64Seconds(d));
  out.set_nanos(static_cast<int32_t>(absl::ToInt64Nanoseconds(d - absl::Seconds(out.seconds()))));
  return out;
}

// Records what handlers saw, and lets the test wait for a condition on it.
template <class T>
class Recorder {
 public:
  void Add(T v) {
    absl::MutexLock lock(&mu_);
    items_.push_back(std::move(v));
  }
  // True once `pred(items)` holds, false after `timeout`.
  bool WaitUntil(std::function<bool(const std::vector<T>&)> pred, absl::Duration timeout = kWait) {
    absl::MutexLock lock(&mu_);
    auto ready = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return pred(items_); };
    return mu_.AwaitWithTimeout(absl::Condition(&ready), timeout);
  }
  bool WaitForCount(size_t n, absl::Duration timeout = kWait) {
    return WaitUntil([n](const std::vector<T>& v) { return v.size() >= n; }, timeout);
  }
  std::vector<T> Items() {
    absl::MutexLock lock(&mu_);
    return items_;
  }

 private:
  absl::Mutex mu_;
  std::vector<T> items_ ABSL_GUARDED_BY(mu_);
};

// One case's world: the harness, the run id, and the Nodes it built.
class World {
 public:
  explicit World(const TransportCase& tc) : harness_(tc.make()), run_(NewRunId()) {}

  Harness& harness() { return *harness_; }
  Features features() const { return harness_->features(); }

  // Operation names unique to this case.
  std::string Method(const std::string& name) const { return absl::StrCat("conf", run_, ".Echo/", name); }
  std::string EventType(const std::string& name) const { return absl::StrCat("conf", run_, ".", name); }

  // A config binding `ops` (name -> style) to transport "t", with policy "p".
  v1::Config Config(const std::map<std::string, std::pair<v1::Style, bool>>& ops) const {
    v1::Config config;
    config.mutable_node()->set_default_transport("t");
    config.mutable_node()->set_handler_threads(4);
    v1::Policy& p = (*config.mutable_policies())["p"];
    *p.mutable_timeout() = ProtoDuration(absl::Seconds(5));
    p.set_max_deliveries(kMaxDeliveries);
    *p.mutable_redelivery()->mutable_initial() = ProtoDuration(absl::Milliseconds(10));
    *p.mutable_redelivery()->mutable_max() = ProtoDuration(absl::Milliseconds(50));
    p.set_dead_letter(true);
    for (const auto& [name, style] : ops) {
      v1::OperationBinding& b = (*config.mutable_operations())[name];
      b.set_style(style.first);
      b.set_reply(style.second);
      b.set_transport("t");
      b.set_policy("p");
    }
    return config;
  }

  // A Node on a new transport instance of the harness. The node is owned by
  // the world (closed in reverse order of creation at the end of the case).
  Node* NewNode(const v1::Config& config) {
    absl::StatusOr<std::shared_ptr<Transport>> transport = harness_->NewTransport();
    EXPECT_TRUE(transport.ok()) << "harness NewTransport: " << transport.status();
    if (!transport.ok()) return nullptr;
    // Each node has its own CloudEvents source, as separate services would.
    v1::Config own = config;
    own.mutable_node()->set_source(absl::StrCat("//conformance/", run_, "/node", nodes_.size()));
    Node::Options options;
    options.transports["t"] = *transport;
    options.registry = RegistryFor(std::string((*transport)->type()));
    absl::StatusOr<std::unique_ptr<Node>> node = Node::Create(std::move(own), std::move(options));
    EXPECT_TRUE(node.ok()) << "Node::Create: " << node.status();
    if (!node.ok()) return nullptr;
    nodes_.push_back(*std::move(node));
    return nodes_.back().get();
  }

  ~World() {
    // Handler registrations first (they may refer to nodes), then the nodes.
    registrations_.clear();
    for (auto it = nodes_.rbegin(); it != nodes_.rend(); ++it) (*it)->Close();
    nodes_.clear();
  }

  // Keeps a registration alive for the whole case.
  void Keep(HandlerRegistration r) { registrations_.push_back(std::move(r)); }

 private:
  std::unique_ptr<Harness> harness_;
  std::string run_;
  std::vector<std::unique_ptr<Node>> nodes_;
  std::vector<HandlerRegistration> registrations_;
};

std::pair<v1::Style, bool> Request() { return {v1::STYLE_REQUEST, false}; }
std::pair<v1::Style, bool> Command(bool reply = false) { return {v1::STYLE_COMMAND, reply}; }
std::pair<v1::Style, bool> Event() { return {v1::STYLE_EVENT, false}; }

// Echo handler: copies text and blob, says who handled it and on which
// attempt, and fails on request (fail_code / fail_message).
auto EchoHandler(std::string who) {
  return [who](Context& ctx, const EchoRequest& req) -> absl::StatusOr<EchoReply> {
    if (req.fail_code() != 0) {
      return absl::Status(static_cast<absl::StatusCode>(req.fail_code()), req.fail_message());
    }
    EchoReply rep;
    rep.set_text(req.text());
    rep.set_blob(req.blob());
    rep.set_handled_by(who);
    rep.set_attempt(ctx.attempt());
    return rep;
  };
}

#define SB_ASSERT_OK(expr)                                   \
  do {                                                       \
    auto _sb_status = (expr);                                \
    ASSERT_TRUE(_sb_status.ok()) << #expr << ": " << _sb_status.status(); \
  } while (0)

#define SB_REQUIRE(feature)                                                 \
  do {                                                                      \
    if (!world.features().feature) GTEST_SKIP() << "requires feature: " #feature; \
  } while (0)

// Registers a typed handler and keeps it for the case.
template <class Req, class Rep, class Fn>
void Serve(World& world, Node* node, const Operation<Req, Rep>& op, Fn fn,
           HandlerOptions options = {}) {
  absl::StatusOr<HandlerRegistration> r = node->Handle(op, std::move(fn), std::move(options));
  ASSERT_TRUE(r.ok()) << "Handle " << op.name << ": " << r.status();
  world.Keep(*std::move(r));
}

// Consumes the dead-letter queue of `op` into `out`.
void ConsumeDeadLetters(World& world, Node* node, const std::string& op, Recorder<Envelope>* out) {
  absl::StatusOr<HandlerRegistration> r = node->HandleRaw(
      DeadLetterAddress(op),
      [out](Context&, const Envelope& env, absl::AnyInvocable<void(absl::StatusOr<std::string>) &&> done) {
        out->Add(env);
        std::move(done)(std::string());
      });
  ASSERT_TRUE(r.ok()) << "HandleRaw " << DeadLetterAddress(op) << ": " << r.status();
  world.Keep(*std::move(r));
}

}  // namespace

// ---------------------------------------------------------------------------
// Request / reply.

TEST_P(ConformanceTest, RequestRoundTrip) {
  World world(GetParam());
  const std::string name = world.Method("Say");
  const Operation<EchoRequest, EchoReply> op{name};
  v1::Config config = world.Config({{name, Request()}});
  Node* server = world.NewNode(config);
  Node* client = world.NewNode(config);
  ASSERT_TRUE(server && client);
  Serve(world, server, op, EchoHandler("server"));
  if (HasFatalFailure()) return;

  EchoRequest req;
  req.set_text("hello");
  absl::StatusOr<EchoReply> reply = client->Call(op, req).GetFor(kWait);
  ASSERT_TRUE(reply.ok()) << reply.status();
  EXPECT_EQ(reply->text(), "hello");
  EXPECT_EQ(reply->handled_by(), "server");
  EXPECT_EQ(reply->attempt(), 1);
}

TEST_P(ConformanceTest, RequestWithoutHandlerFailsFast) {
  World world(GetParam());
  const std::string name = world.Method("Nobody");
  const Operation<EchoRequest, EchoReply> op{name};
  Node* client = world.NewNode(world.Config({{name, Request()}}));
  ASSERT_TRUE(client);

  CallOptions options;
  options.timeout = absl::Seconds(8);
  const absl::Time start = absl::Now();
  absl::StatusOr<EchoReply> reply = client->Call(op, EchoRequest(), options).GetFor(kWait);
  const absl::Duration took = absl::Now() - start;
  EXPECT_EQ(reply.status().code(), absl::StatusCode::kUnavailable) << reply.status();
  EXPECT_LT(took, absl::Seconds(2)) << "no handler must fail promptly, not at the deadline";
}

TEST_P(ConformanceTest, RequestDeadlineExceeded) {
  World world(GetParam());
  const std::string name = world.Method("Slow");
  const Operation<EchoRequest, EchoReply> op{name};
  v1::Config config = world.Config({{name, Request()}});
  Node* server = world.NewNode(config);
  Node* client = world.NewNode(config);
  ASSERT_TRUE(server && client);

  // The handler never answers by itself; its promise is kept (and resolved
  // at the end of the case, after the caller gave up).
  struct Held {
    absl::Mutex mu;
    std::vector<Promise<EchoReply>> promises ABSL_GUARDED_BY(mu);
    std::vector<absl::Time> deadlines ABSL_GUARDED_BY(mu);
  };
  auto held = std::make_shared<Held>();
  // Whatever happens below, the held calls are answered before the nodes
  // close (a node waits for its running handlers).
  struct Release {
    std::shared_ptr<Held> held;
    ~Release() {
      std::vector<Promise<EchoReply>> promises;
      {
        absl::MutexLock lock(&held->mu);
        promises = std::move(held->promises);
      }
      for (auto& p : promises) p.Set(EchoReply());
    }
  };
  Serve(world, server, op, [held](Context& ctx, const EchoRequest&) -> Future<EchoReply> {
    auto [promise, future] = MakePromise<EchoReply>();
    absl::MutexLock lock(&held->mu);
    held->deadlines.push_back(ctx.deadline());
    held->promises.push_back(std::move(promise));
    return std::move(future);
  });
  if (HasFatalFailure()) return;
  Release release{held};

  CallOptions options;
  const absl::Time deadline = absl::Now() + absl::Milliseconds(500);
  options.deadline = deadline;
  absl::StatusOr<EchoReply> reply = client->Call(op, EchoRequest(), options).GetFor(kWait);
  const absl::Time returned = absl::Now();
  EXPECT_EQ(reply.status().code(), absl::StatusCode::kDeadlineExceeded) << reply.status();
  EXPECT_GE(returned, deadline - kClockTolerance) << "returned before the deadline";
  EXPECT_LT(returned, deadline + absl::Seconds(2)) << "returned long after the deadline";

  absl::MutexLock lock(&held->mu);
  ASSERT_EQ(held->deadlines.size(), 1u) << "the handler must have been called once";
  EXPECT_LE(absl::AbsDuration(held->deadlines[0] - deadline), kClockTolerance)
      << "handler saw deadline " << held->deadlines[0] << ", caller set " << deadline;
  // `release` answers the call late; the answer is dropped without harm.
}

TEST_P(ConformanceTest, ErrorCodesAndMessagesRoundTrip) {
  World world(GetParam());
  const std::string name = world.Method("Fail");
  const Operation<EchoRequest, EchoReply> op{name};
  v1::Config config = world.Config({{name, Request()}});
  Node* server = world.NewNode(config);
  Node* client = world.NewNode(config);
  ASSERT_TRUE(server && client);
  Serve(world, server, op, EchoHandler("server"));
  if (HasFatalFailure()) return;

  for (int c = 1; c <= 16; ++c) {
    const auto code = static_cast<absl::StatusCode>(c);
    const std::string message = absl::StrCat("failure ", std::string(CodeName(code)), ": \"quoted\" ünïcode %20");
    EchoRequest req;
    req.set_fail_code(c);
    req.set_fail_message(message);
    absl::StatusOr<EchoReply> reply = client->Call(op, req).GetFor(kWait);
    EXPECT_EQ(reply.status().code(), code) << CodeName(code) << ": got " << reply.status();
    EXPECT_EQ(reply.status().message(), message) << CodeName(code);
  }
}

TEST_P(ConformanceTest, LargeAndEmptyPayloads) {
  World world(GetParam());
  const std::string say = world.Method("Say");
  const std::string nothing = world.Method("Nothing");
  const Operation<EchoRequest, EchoReply> op{say};
  const Operation<Empty, Empty> empty_op{nothing};
  v1::Config config = world.Config({{say, Request()}, {nothing, Request()}});
  Node* server = world.NewNode(config);
  Node* client = world.NewNode(config);
  ASSERT_TRUE(server && client);
  Serve(world, server, op, EchoHandler("server"));
  Serve(world, server, empty_op,
        [](Context&, const Empty&) -> absl::StatusOr<Empty> { return Empty(); });
  if (HasFatalFailure()) return;

  EchoRequest big;
  std::string blob(1 << 20, '\0');
  for (size_t i = 0; i < blob.size(); ++i) blob[i] = static_cast<char>((i * 131) & 0xff);
  big.set_blob(blob);
  absl::StatusOr<EchoReply> reply = client->Call(op, big).GetFor(kWait);
  ASSERT_TRUE(reply.ok()) << reply.status();
  EXPECT_EQ(reply->blob().size(), blob.size());
  EXPECT_TRUE(reply->blob() == blob) << "1 MiB payload changed in transit";

  absl::StatusOr<EchoReply> empty_echo = client->Call(op, EchoRequest()).GetFor(kWait);
  ASSERT_TRUE(empty_echo.ok()) << empty_echo.status();
  EXPECT_EQ(empty_echo->text(), "");

  absl::StatusOr<Empty> empty = client->Call(empty_op, Empty()).GetFor(kWait);
  EXPECT_TRUE(empty.ok()) << empty.status();
}

// Checks every attribute of what the handler saw against what the caller sent.
static void CheckEnvelopeAttributes(World& world, v1::Style style, bool reply) {
  const std::string name = world.Method(style == v1::STYLE_REQUEST ? "Attrs" : "AttrsCmd");
  const Operation<EchoRequest, EchoReply> op{name};
  v1::Config config = world.Config({{name, {style, reply}}});
  Node* server = world.NewNode(config);
  Node* client = world.NewNode(config);
  ASSERT_TRUE(server && client);

  struct Seen {
    Envelope env;
    std::string trace_id;
    std::string span_id;
  };
  auto seen = std::make_shared<Recorder<Seen>>();
  Serve(world, server, op, [seen](Context& ctx, const EchoRequest& req) -> absl::StatusOr<EchoReply> {
    seen->Add(Seen{ctx.envelope(), ctx.trace_id(), ctx.span().SpanId()});
    EchoReply rep;
    rep.set_text(req.text());
    return rep;
  });
  if (::testing::Test::HasFatalFailure()) return;

  const std::string trace_id = "0af7651916cd43dd8448eb211c80319c";
  const std::string parent_span = "b7ad6b7169203331";
  CallOptions options;
  options.idempotency_key = absl::StrCat("idem-", name);
  options.subject = "orders/42";
  options.traceparent = absl::StrCat("00-", trace_id, "-", parent_span, "-01");
  options.tracestate = "congo=t61rcWkgMzE,rojo=00f067aa0ba902b7";
  options.extensions = {{"confext", "value with spaces %"}, {"tenant", "acme"}};
  const absl::Time deadline = absl::Now() + absl::Seconds(5);
  options.deadline = deadline;
  const absl::Time before = absl::Now();
  Future<EchoReply> future = client->Call(op, EchoRequest(), options);
  const CallInfo info = future.info();
  absl::StatusOr<EchoReply> result = std::move(future).GetFor(kWait);
  const absl::Time after = absl::Now();
  ASSERT_TRUE(result.ok()) << result.status();
  ASSERT_TRUE(seen->WaitForCount(1));
  const Seen s = seen->Items().front();
  const Envelope& env = s.env;

  EXPECT_FALSE(env.id.empty());
  EXPECT_EQ(env.id, info.message_id);
  EXPECT_EQ(env.source, client->source());
  EXPECT_EQ(env.spec_version, "1.0");
  EXPECT_EQ(env.type, name);
  EXPECT_GE(env.time, before - absl::Seconds(1));
  EXPECT_LE(env.time, after + absl::Seconds(1));
  EXPECT_EQ(env.data_content_type, kContentTypeProtobuf);
  EXPECT_EQ(env.subject, "orders/42");
  EXPECT_EQ(s.trace_id, trace_id) << "the trace id must be preserved";
  EXPECT_NE(s.span_id, parent_span) << "each hop gets a new span id";
  EXPECT_EQ(env.tracestate, options.tracestate);
  EXPECT_EQ(env.idempotency_key, options.idempotency_key);
  EXPECT_EQ(info.idempotency_key, options.idempotency_key);
  EXPECT_LE(absl::AbsDuration(env.deadline - deadline), kClockTolerance)
      << "handler saw deadline " << env.deadline << ", caller set " << deadline;
  EXPECT_EQ(env.attempt, 1);
  EXPECT_EQ(env.style, style == v1::STYLE_REQUEST ? Style::kRequest : Style::kCommand);
  for (const auto& [k, v] : options.extensions) {
    auto it = env.extensions.find(k);
    if (it == env.extensions.end()) {
      ADD_FAILURE() << "extension " << k << " lost";
    } else {
      EXPECT_EQ(it->second, v) << "extension " << k;
    }
  }
}

TEST_P(ConformanceTest, EnvelopeAttributesRoundTrip) {
  World world(GetParam());
  {
    SCOPED_TRACE("request");
    CheckEnvelopeAttributes(world, v1::STYLE_REQUEST, false);
  }
  if (HasFatalFailure() || !world.features().reply_routing) return;
  SCOPED_TRACE("command with reply");
  CheckEnvelopeAttributes(world, v1::STYLE_COMMAND, true);
}

TEST_P(ConformanceTest, ConcurrentCallers) {
  World world(GetParam());
  const std::string name = world.Method("Many");
  const Operation<EchoRequest, EchoReply> op{name};
  v1::Config config = world.Config({{name, Request()}});
  Node* server = world.NewNode(config);
  Node* client = world.NewNode(config);
  ASSERT_TRUE(server && client);
  Serve(world, server, op, EchoHandler("server"));
  if (HasFatalFailure()) return;

  constexpr int kCalls = 1000;
  std::vector<Future<EchoReply>> futures;
  futures.reserve(kCalls);
  CallOptions options;
  options.timeout = absl::Seconds(10);
  for (int i = 0; i < kCalls; ++i) {
    EchoRequest req;
    req.set_text(absl::StrCat("call-", i));
    futures.push_back(client->Call(op, req, options));
  }
  int ok = 0;
  for (int i = 0; i < kCalls; ++i) {
    absl::StatusOr<EchoReply> r = std::move(futures[i]).GetFor(kWait);
    if (!r.ok()) {
      ADD_FAILURE() << "call " << i << ": " << r.status();
      continue;
    }
    EXPECT_EQ(r->text(), absl::StrCat("call-", i)) << "reply routed to the wrong caller";
    ++ok;
  }
  EXPECT_EQ(ok, kCalls);
}

// ---------------------------------------------------------------------------
// Commands.

TEST_P(ConformanceTest, CommandsGoToExactlyOneCompetingConsumer) {
  World world(GetParam());
  const std::string name = world.Method("Work");
  const Operation<EchoRequest, Empty> op{name};
  v1::Config config = world.Config({{name, Command()}});
  auto handled = std::make_shared<Recorder<std::pair<int, std::string>>>();
  for (int c = 0; c < 3; ++c) {
    Node* consumer = world.NewNode(config);
    ASSERT_TRUE(consumer);
    HandlerOptions options;
    options.max_in_flight = 4;
    Serve(
        world, consumer, op,
        [handled, c](Context&, const EchoRequest& req) -> absl::StatusOr<Empty> {
          handled->Add({c, req.text()});
          // Long enough that one consumer cannot take everything.
          absl::SleepFor(absl::Milliseconds(2));
          return Empty();
        },
        options);
    if (HasFatalFailure()) return;
  }
  Node* sender = world.NewNode(config);
  ASSERT_TRUE(sender);

  constexpr int kCommands = 60;
  for (int i = 0; i < kCommands; ++i) {
    EchoRequest req;
    req.set_text(absl::StrCat("cmd-", i));
    absl::StatusOr<Empty> accepted = sender->Call(op, req).GetFor(kWait);
    ASSERT_TRUE(accepted.ok()) << "command " << i << " not accepted: " << accepted.status();
  }
  ASSERT_TRUE(handled->WaitUntil([](const auto& v) {
    std::set<std::string> distinct;
    for (const auto& [c, t] : v) distinct.insert(t);
    return distinct.size() >= kCommands;
  })) << "not every command was handled within " << kWait;
  absl::SleepFor(kGrace);  // let duplicates, if any, show up

  std::map<std::string, int> per_command;
  std::map<int, int> per_consumer;
  for (const auto& [c, t] : handled->Items()) {
    ++per_command[t];
    ++per_consumer[c];
  }
  EXPECT_EQ(per_command.size(), static_cast<size_t>(kCommands));
  for (const auto& [t, n] : per_command) EXPECT_EQ(n, 1) << t << " handled " << n << " times";
  for (int c = 0; c < 3; ++c) EXPECT_GT(per_consumer[c], 0) << "consumer " << c << " got nothing";
}

TEST_P(ConformanceTest, FailingCommandIsRedeliveredThenDeadLettered) {
  World world(GetParam());
  const std::string name = world.Method("Flaky");
  const Operation<EchoRequest, Empty> op{name};
  v1::Config config = world.Config({{name, Command()}});
  Node* consumer = world.NewNode(config);
  Node* sender = world.NewNode(config);
  ASSERT_TRUE(consumer && sender);
  auto attempts = std::make_shared<Recorder<int>>();
  Serve(world, consumer, op, [attempts](Context& ctx, const EchoRequest&) -> absl::StatusOr<Empty> {
    attempts->Add(ctx.attempt());
    return absl::UnavailableError("backend down, try later");
  });
  Recorder<Envelope> dead;
  ConsumeDeadLetters(world, consumer, name, &dead);
  if (HasFatalFailure()) return;

  EchoRequest req;
  req.set_text("flaky");
  SB_ASSERT_OK(sender->Call(op, req).GetFor(kWait));
  ASSERT_TRUE(dead.WaitForCount(1)) << "not dead-lettered within " << kWait << "; attempts seen: "
                                    << attempts->Items().size();
  std::vector<int> seen = attempts->Items();
  EXPECT_EQ(seen.size(), static_cast<size_t>(kMaxDeliveries));
  if (world.features().redelivery_count) {
    std::vector<int> expected;
    for (int i = 1; i <= kMaxDeliveries; ++i) expected.push_back(i);
    std::sort(seen.begin(), seen.end());
    EXPECT_EQ(seen, expected) << "attempt must count deliveries";
  }
  const Envelope env = dead.Items().front();
  EXPECT_EQ(env.extensions.count(std::string(attr::kDeadLetterReason)), 1u);
  EXPECT_EQ(env.extensions.count(std::string(attr::kDeadLetterCode)), 1u);
  if (env.extensions.count(std::string(attr::kDeadLetterReason))) {
    EXPECT_NE(env.extensions.at(std::string(attr::kDeadLetterReason)).find("backend down, try later"),
              std::string::npos)
        << env.extensions.at(std::string(attr::kDeadLetterReason));
    EXPECT_EQ(env.extensions.at(std::string(attr::kDeadLetterCode)), "UNAVAILABLE");
  }
  EchoRequest payload;
  EXPECT_TRUE(payload.ParseFromString(env.data));
  EXPECT_EQ(payload.text(), "flaky") << "the dead letter keeps the payload";
}

TEST_P(ConformanceTest, NonRetryableCommandIsDeadLetteredAtOnce) {
  World world(GetParam());
  const std::string name = world.Method("Invalid");
  const Operation<EchoRequest, Empty> op{name};
  v1::Config config = world.Config({{name, Command()}});
  Node* consumer = world.NewNode(config);
  Node* sender = world.NewNode(config);
  ASSERT_TRUE(consumer && sender);
  auto attempts = std::make_shared<Recorder<int>>();
  Serve(world, consumer, op, [attempts](Context& ctx, const EchoRequest&) -> absl::StatusOr<Empty> {
    attempts->Add(ctx.attempt());
    return absl::InvalidArgumentError("quantity must be positive");
  });
  Recorder<Envelope> dead;
  ConsumeDeadLetters(world, consumer, name, &dead);
  if (HasFatalFailure()) return;

  SB_ASSERT_OK(sender->Call(op, EchoRequest()).GetFor(kWait));
  ASSERT_TRUE(dead.WaitForCount(1)) << "not dead-lettered within " << kWait;
  absl::SleepFor(kGrace);
  EXPECT_EQ(attempts->Items().size(), 1u) << "a business error must not be redelivered";
  const Envelope env = dead.Items().front();
  EXPECT_EQ(env.extensions.count(std::string(attr::kDeadLetterCode)) ? env.extensions.at(std::string(attr::kDeadLetterCode)) : "",
            "INVALID_ARGUMENT");
  EXPECT_EQ(env.extensions.count(std::string(attr::kDeadLetterReason)) ? env.extensions.at(std::string(attr::kDeadLetterReason)) : "",
            "quantity must be positive");
}

TEST_P(ConformanceTest, CommandWithReplyReturnsTheHandlersReply) {
  World world(GetParam());
  SB_REQUIRE(reply_routing);
  const std::string name = world.Method("Place");
  const Operation<EchoRequest, EchoReply> op{name};
  v1::Config config = world.Config({{name, Command(/*reply=*/true)}});
  Node* consumer = world.NewNode(config);
  Node* caller = world.NewNode(config);
  ASSERT_TRUE(consumer && caller);
  Serve(world, consumer, op, EchoHandler("consumer"));
  if (HasFatalFailure()) return;

  for (int i = 0; i < 3; ++i) {
    EchoRequest req;
    req.set_text(absl::StrCat("order-", i));
    absl::StatusOr<EchoReply> reply = caller->Call(op, req).GetFor(kWait);
    ASSERT_TRUE(reply.ok()) << reply.status();
    EXPECT_EQ(reply->text(), req.text());
    EXPECT_EQ(reply->handled_by(), "consumer");
  }
  // A business error reaches the caller too.
  EchoRequest bad;
  bad.set_fail_code(static_cast<int>(absl::StatusCode::kFailedPrecondition));
  bad.set_fail_message("out of stock");
  absl::StatusOr<EchoReply> reply = caller->Call(op, bad).GetFor(kWait);
  EXPECT_EQ(reply.status().code(), absl::StatusCode::kFailedPrecondition) << reply.status();
  EXPECT_EQ(reply.status().message(), "out of stock");
}

TEST_P(ConformanceTest, CommandsWaitForAnOfflineConsumer) {
  World world(GetParam());
  SB_REQUIRE(durable);
  const std::string name = world.Method("Later");
  const Operation<EchoRequest, Empty> op{name};
  v1::Config config = world.Config({{name, Command()}});
  Node* sender = world.NewNode(config);
  ASSERT_TRUE(sender);
  constexpr int kCommands = 5;
  for (int i = 0; i < kCommands; ++i) {
    EchoRequest req;
    req.set_text(absl::StrCat("queued-", i));
    SB_ASSERT_OK(sender->Call(op, req).GetFor(kWait));
  }
  auto handled = std::make_shared<Recorder<std::string>>();
  Node* consumer = world.NewNode(config);
  ASSERT_TRUE(consumer);
  Serve(world, consumer, op, [handled](Context&, const EchoRequest& req) -> absl::StatusOr<Empty> {
    handled->Add(req.text());
    return Empty();
  });
  if (HasFatalFailure()) return;
  ASSERT_TRUE(handled->WaitForCount(kCommands)) << "got " << handled->Items().size();
  std::set<std::string> distinct;
  for (const auto& t : handled->Items()) distinct.insert(t);
  EXPECT_EQ(distinct.size(), static_cast<size_t>(kCommands));
}

// ---------------------------------------------------------------------------
// Events.

TEST_P(ConformanceTest, EventsReachEveryGroupOnce) {
  World world(GetParam());
  SB_REQUIRE(fan_out_to_groups);
  const std::string type = world.EventType("Happened");
  const Operation<Tick, Empty> op{type};
  v1::Config config = world.Config({{type, Event()}});
  // (group, consumer, seq)
  auto got = std::make_shared<Recorder<std::tuple<std::string, int, int64_t>>>();
  const std::vector<std::string> groups = {"payment", "notification", "analytics"};
  for (const auto& g : groups) {
    for (int c = 0; c < 2; ++c) {
      Node* subscriber = world.NewNode(config);
      ASSERT_TRUE(subscriber);
      HandlerOptions options;
      options.group = g;
      Serve(
          world, subscriber, op,
          [got, g, c](Context&, const Tick& tick) -> absl::StatusOr<Empty> {
            got->Add({g, c, tick.seq()});
            return Empty();
          },
          options);
      if (HasFatalFailure()) return;
    }
  }
  Node* publisher = world.NewNode(config);
  ASSERT_TRUE(publisher);
  constexpr int kEvents = 12;
  for (int i = 0; i < kEvents; ++i) {
    Tick tick;
    tick.set_seq(i);
    tick.set_text("tick");
    SB_ASSERT_OK(publisher->Call(op, tick).GetFor(kWait));
  }
  const size_t expected = groups.size() * kEvents;
  ASSERT_TRUE(got->WaitForCount(expected)) << "got " << got->Items().size() << " of " << expected;
  absl::SleepFor(kGrace);
  std::map<std::pair<std::string, int64_t>, int> per_group_event;
  for (const auto& [g, c, seq] : got->Items()) ++per_group_event[{g, seq}];
  EXPECT_EQ(per_group_event.size(), expected);
  for (const auto& [key, n] : per_group_event) {
    EXPECT_EQ(n, 1) << "group " << key.first << " got event " << key.second << " " << n << " times";
  }
}

// ---------------------------------------------------------------------------
// Lifecycle.

TEST_P(ConformanceTest, CloseWhileHandlersRun) {
  World world(GetParam());
  const std::string name = world.Method("Busy");
  const Operation<EchoRequest, EchoReply> op{name};
  v1::Config config = world.Config({{name, Request()}});
  Node* client = world.NewNode(config);
  ASSERT_TRUE(client);

  // Two rounds: stopping the registration, then closing the serving node.
  for (int round = 0; round < 2; ++round) {
    SCOPED_TRACE(round == 0 ? "HandlerRegistration destroyed" : "Node::Close");
    Node* server = world.NewNode(config);
    ASSERT_TRUE(server);
    auto started = std::make_shared<absl::Notification>();
    auto finished = std::make_shared<std::atomic<bool>>(false);
    absl::StatusOr<HandlerRegistration> reg = server->Handle(
        op, [started, finished](Context&, const EchoRequest& req) -> absl::StatusOr<EchoReply> {
          started->Notify();
          absl::SleepFor(absl::Milliseconds(300));
          finished->store(true);
          EchoReply rep;
          rep.set_text(req.text());
          return rep;
        });
    ASSERT_TRUE(reg.ok()) << reg.status();
    Future<EchoReply> call = client->Call(op, EchoRequest());
    ASSERT_TRUE(started->WaitForNotificationWithTimeout(kWait)) << "handler never started";
    if (round == 0) {
      reg->Stop();
    } else {
      server->Close();
    }
    EXPECT_TRUE(finished->load()) << "stopping returned while the handler was still running";
    absl::StatusOr<EchoReply> r = std::move(call).GetFor(kWait);
    if (!r.ok()) {
      const absl::StatusCode code = r.status().code();
      EXPECT_TRUE(code == absl::StatusCode::kCancelled || code == absl::StatusCode::kUnavailable ||
                  code == absl::StatusCode::kAborted || code == absl::StatusCode::kDeadlineExceeded)
          << "undefined outcome: " << r.status();
      EXPECT_NE(r.status().message(), "Future::GetFor: no result within the wait");
    }
    // The operation is no longer served by that node.
  }
}

// ---------------------------------------------------------------------------
// Bad input.

TEST_P(ConformanceTest, UnparsablePayload) {
  World world(GetParam());
  const std::string req_name = world.Method("Parse");
  const std::string cmd_name = world.Method("ParseCmd");
  const Operation<EchoRequest, EchoReply> req_op{req_name};
  const Operation<EchoRequest, Empty> cmd_op{cmd_name};
  v1::Config config = world.Config({{req_name, Request()}, {cmd_name, Command()}});
  Node* server = world.NewNode(config);
  Node* client = world.NewNode(config);
  ASSERT_TRUE(server && client);
  auto ran = std::make_shared<std::atomic<int>>(0);
  Serve(world, server, req_op, [ran](Context&, const EchoRequest&) -> absl::StatusOr<EchoReply> {
    ran->fetch_add(1);
    return EchoReply();
  });
  Serve(world, server, cmd_op, [ran](Context&, const EchoRequest&) -> absl::StatusOr<Empty> {
    ran->fetch_add(1);
    return Empty();
  });
  Recorder<Envelope> dead;
  ConsumeDeadLetters(world, server, cmd_name, &dead);
  if (HasFatalFailure()) return;

  // Field 1, length 100, 7 bytes follow: not a valid EchoRequest.
  const std::string garbage("\x0a\x64garbage", 9);
  absl::StatusOr<std::string> r = client->CallRaw(req_name, garbage).GetFor(kWait);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument) << r.status();

  SB_ASSERT_OK(client->CallRaw(cmd_name, garbage).GetFor(kWait));
  ASSERT_TRUE(dead.WaitForCount(1)) << "unparsable command not dead-lettered within " << kWait;
  const Envelope env = dead.Items().front();
  EXPECT_EQ(env.data, garbage) << "the dead letter keeps the original bytes";
  EXPECT_EQ(env.extensions.count(std::string(attr::kDeadLetterCode)) ? env.extensions.at(std::string(attr::kDeadLetterCode)) : "",
            "INVALID_ARGUMENT");
  EXPECT_EQ(ran->load(), 0) << "the handler must not run on a payload that does not parse";
}

TEST_P(ConformanceTest, HandlerThatThrows) {
  World world(GetParam());
  const std::string req_name = world.Method("Throw");
  const std::string cmd_name = world.Method("ThrowCmd");
  const Operation<EchoRequest, EchoReply> req_op{req_name};
  const Operation<EchoRequest, Empty> cmd_op{cmd_name};
  v1::Config config = world.Config({{req_name, Request()}, {cmd_name, Command()}});
  Node* server = world.NewNode(config);
  Node* client = world.NewNode(config);
  ASSERT_TRUE(server && client);
  Serve(world, server, req_op, [](Context&, const EchoRequest&) -> absl::StatusOr<EchoReply> {
    throw std::runtime_error("boom");
  });
  auto attempts = std::make_shared<Recorder<int>>();
  Serve(world, server, cmd_op, [attempts](Context& ctx, const EchoRequest&) -> absl::StatusOr<Empty> {
    attempts->Add(ctx.attempt());
    if (ctx.attempt() == 1) throw std::runtime_error("boom on first delivery");
    return Empty();
  });
  if (HasFatalFailure()) return;

  absl::StatusOr<EchoReply> r = client->Call(req_op, EchoRequest()).GetFor(kWait);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInternal) << r.status();
  EXPECT_NE(r.status().message().find("boom"), absl::string_view::npos) << r.status();

  SB_ASSERT_OK(client->Call(cmd_op, EchoRequest()).GetFor(kWait));
  ASSERT_TRUE(attempts->WaitForCount(2)) << "a command whose handler threw must be redelivered";
  absl::SleepFor(kGrace);
  std::vector<int> seen = attempts->Items();
  EXPECT_EQ(seen.size(), 2u);
  if (world.features().redelivery_count && seen.size() == 2) {
    EXPECT_EQ(seen[0], 1);
    EXPECT_EQ(seen[1], 2);
  }
}

}  // namespace switchboard::conformance
