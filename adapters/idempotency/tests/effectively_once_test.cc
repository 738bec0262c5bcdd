// Effectively-once handling under at-least-once delivery, end to end.
//
// N commands (plus a duplicate of every tenth, sent with the same key) go to
// a handler that records a side effect (a row and a counter increment) in the
// SQLite idempotency store's transaction, then fails with Unavailable on a
// random half of first attempts. Redelivery retries them; the failed
// attempts' side effects roll back with the transaction, duplicates are acked
// from the store. At the end the counter equals N exactly, every key has one
// row, every duplicate was a dedup hit and nothing was dead-lettered.
//
// Runs on inproc always, and on each real transport compiled in whose server
// is exported by scripts/with-servers.sh (SWITCHBOARD_TEST_NATS_URL,
// SWITCHBOARD_TEST_AMQP_URL).

#include <signal.h>
#include <sqlite3.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <vector>

#include "absl/random/random.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "switchboard/idempotency.h"
#include "switchboard/idempotency/sqlite_store.h"
#include "switchboard/node.h"
#include "switchboard/test/v1/echo.pb.h"
#include "switchboard/transport_registry.h"

#if __has_include("switchboard/grpc/grpc_transport.h")
#include "switchboard/grpc/grpc_transport.h"
#define SB_TEST_HAS_GRPC 1
#endif

namespace switchboard {
namespace {

using test::v1::EchoRequest;

constexpr absl::Duration kRunLimit = absl::Seconds(90);
constexpr size_t kSendWindow = 1000;

std::string Env(const char* name) {
  const char* v = std::getenv(name);
  return v == nullptr ? "" : v;
}

bool ServersRequired() { return Env("SWITCHBOARD_REQUIRE_SERVERS") == "1"; }

std::string RunId() {
  static const std::string id = "eo" + NewMessageId().substr(24, 12);
  return id;
}

int64_t QueryInt(const std::string& path, const char* sql) {
  sqlite3* db = nullptr;
  int64_t value = -1;
  if (sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr) == SQLITE_OK) {
    sqlite3_busy_timeout(db, 5000);
    sqlite3_stmt* stmt = nullptr;
    if (sqlite3_prepare_v2(db, sql, -1, &stmt, nullptr) == SQLITE_OK &&
        sqlite3_step(stmt) == SQLITE_ROW) {
      value = sqlite3_column_int64(stmt, 0);
    }
    sqlite3_finalize(stmt);
  }
  sqlite3_close(db);
  return value;
}

absl::Status ExecSql(sqlite3* db, const char* sql) {
  char* err = nullptr;
  if (sqlite3_exec(db, sql, nullptr, nullptr, &err) != SQLITE_OK) {
    absl::Status s = absl::InternalError(err != nullptr ? err : "sqlite error");
    sqlite3_free(err);
    return s;
  }
  return absl::OkStatus();
}

struct Result {
  int64_t counter = -1;
  int64_t rows = -1;
  int64_t distinct_rows = -1;
  int injected = 0;
  int dead_letters = 0;
  uint64_t dedup_hits = 0;
  uint64_t claims_lost = 0;
  int accepted = 0;
  absl::Duration elapsed;
};

// The handler's work: a row and a counter increment (in the store's
// transaction when `transactional`), then a failure on a random half of
// first attempts.
absl::StatusOr<google::protobuf::Empty> RecordEffect(Context& ctx, const std::string& path,
                                                     bool transactional,
                                                     std::atomic<int>& injected) {
  struct Own {
    sqlite3* db = nullptr;
    ~Own() { sqlite3_close(db); }
  };
  thread_local Own own;
  absl::StatusOr<sqlite3*> db;
  if (transactional) {
    db = SqliteTransaction(ctx);
    if (!db.ok()) return db.status();
  } else {
    if (own.db == nullptr) {
      sqlite3_open(path.c_str(), &own.db);
      sqlite3_busy_timeout(own.db, 10000);
    }
    db = own.db;
  }
  sqlite3_stmt* stmt = nullptr;
  if (sqlite3_prepare_v2(*db, "INSERT INTO effects (k) VALUES (?1)", -1, &stmt, nullptr) !=
      SQLITE_OK) {
    return absl::InternalError(sqlite3_errmsg(*db));
  }
  const std::string& key = ctx.idempotency_key();
  sqlite3_bind_text(stmt, 1, key.data(), static_cast<int>(key.size()), SQLITE_TRANSIENT);
  int rc = sqlite3_step(stmt);
  sqlite3_finalize(stmt);
  if (rc != SQLITE_DONE) return absl::InternalError(sqlite3_errmsg(*db));
  if (absl::Status s = ExecSql(*db, "UPDATE counter SET n = n + 1"); !s.ok()) return s;
  thread_local absl::BitGen gen;
  if (ctx.attempt() == 1 && absl::Bernoulli(gen, 0.5)) {
    ++injected;
    return absl::UnavailableError("injected failure after the side effect");
  }
  return google::protobuf::Empty();
}

// Creates the handler's tables in a new file under a new directory.
std::string NewInboxDb() {
  std::string dir = (std::filesystem::temp_directory_path() / ("sb-eo-" + NewMessageId())).string();
  std::filesystem::create_directories(dir);
  std::string path = dir + "/inbox.db";
  sqlite3* db = nullptr;
  EXPECT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
  EXPECT_TRUE(ExecSql(db,
                      "PRAGMA journal_mode=WAL;"
                      "CREATE TABLE effects (k TEXT NOT NULL);"
                      "CREATE TABLE counter (n INTEGER NOT NULL);"
                      "INSERT INTO counter VALUES (0);")
                  .ok());
  sqlite3_close(db);
  return path;
}

// How one run is set up.
struct Run {
  // The transport of the node that handles the commands.
  v1::TransportConfig transport;
  // When set, the commands are sent from a second node whose transport this
  // returns (given the handling node), e.g. a gRPC client of its port.
  std::function<v1::TransportConfig(Node& handling)> sender_transport;
  int commands = 0;
  // The transport drops some duplicates itself, so the run is over when
  // every key is completed (plus a grace period).
  bool broker_dedup = false;
  // false: the handler writes through its own connection, so a failure
  // after the side effect cannot undo it (the control experiment).
  bool transactional = true;
};

v1::Config ConfigFor(const std::string& op, const v1::TransportConfig& transport,
                     const std::string& store) {
  v1::Config config;
  config.mutable_node()->set_handler_threads(4);
  (*config.mutable_transports())["bus"] = transport;
  auto& policy = (*config.mutable_policies())["background"];
  policy.mutable_idempotency()->set_store(store);
  policy.set_max_deliveries(10);
  policy.mutable_redelivery()->mutable_initial()->set_nanos(1'000'000);
  policy.mutable_redelivery()->mutable_max()->set_nanos(50'000'000);
  auto& binding = (*config.mutable_operations())[op];
  binding.set_style(v1::STYLE_COMMAND);
  binding.set_transport("bus");
  binding.set_policy("background");
  return config;
}

Result RunEffectivelyOnce(const Run& run) {
  const int commands = run.commands;
  const bool broker_dedup = run.broker_dedup;
  const bool transactional = run.transactional;
  Result result;
  std::string path = NewInboxDb();
  std::string dir = std::filesystem::path(path).parent_path().string();

  static std::atomic<int> seq{0};
  std::string op = "eo.v1.Orders/Place" + RunId() + std::to_string(seq++);
  auto node = Node::Create(ConfigFor(op, run.transport, "sqlite:" + path));
  EXPECT_TRUE(node.ok()) << node.status();
  if (!node.ok()) return result;

  std::atomic<int> injected{0};
  Operation<EchoRequest, google::protobuf::Empty> place{op};
  auto handler = (*node)->Handle(
      place, [&](Context& ctx, const EchoRequest&) -> absl::StatusOr<google::protobuf::Empty> {
        return RecordEffect(ctx, path, transactional, injected);
      });
  EXPECT_TRUE(handler.ok()) << handler.status();
  std::atomic<int> dead{0};
  auto dlq = (*node)->HandleRaw(op + ".dlq", [&](Context&, const Envelope&, auto done) {
    ++dead;
    std::move(done)(std::string());
  });
  EXPECT_TRUE(dlq.ok()) << dlq.status();
  if (!handler.ok() || !dlq.ok()) return result;

  Node* sender = node->get();
  std::unique_ptr<Node> sender_node;
  if (run.sender_transport) {
    auto created = Node::Create(ConfigFor(op, run.sender_transport(**node), "memory"));
    EXPECT_TRUE(created.ok()) << created.status();
    if (!created.ok()) return result;
    sender_node = *std::move(created);
    sender = sender_node.get();
  }

  absl::Time start = absl::Now();
  std::vector<Future<google::protobuf::Empty>> sent;
  sent.reserve(commands + commands / 10);
  int duplicates = 0;
  size_t waited = 0;
  for (int i = 0; i < commands; ++i) {
    EchoRequest req;
    req.set_text("order " + std::to_string(i));
    CallOptions options;
    options.idempotency_key = op + "#" + std::to_string(i);
    sent.push_back(sender->Call(place, req, options));
    if (i % 10 == 0) {
      sent.push_back(sender->Call(place, req, options));
      ++duplicates;
    }
    // A bounded window of unacknowledged sends, as a real producer keeps.
    while (sent.size() - waited > kSendWindow) {
      if (std::move(sent[waited++]).GetFor(absl::Seconds(30)).ok()) ++result.accepted;
    }
  }
  while (waited < sent.size()) {
    if (std::move(sent[waited++]).GetFor(absl::Seconds(30)).ok()) ++result.accepted;
  }
  auto counters = IdempotencyCountersFor(op);
  absl::Time limit = start + kRunLimit;
  while (absl::Now() < limit) {
    if (counters->completions.load() >= static_cast<uint64_t>(commands) &&
        (broker_dedup || counters->dedup_hits.load() >= static_cast<uint64_t>(duplicates))) {
      break;
    }
    absl::SleepFor(absl::Milliseconds(20));
  }
  result.elapsed = absl::Now() - start;
  // A grace for anything still in flight (nothing should be, and the
  // counter must not move).
  absl::SleepFor(broker_dedup ? absl::Seconds(1) : absl::Milliseconds(200));
  if (sender_node) sender_node->Close();
  handler->Stop();
  dlq->Stop();
  (*node)->Close();

  result.counter = QueryInt(path, "SELECT n FROM counter");
  result.rows = QueryInt(path, "SELECT count(*) FROM effects");
  result.distinct_rows = QueryInt(path, "SELECT count(DISTINCT k) FROM effects");
  result.injected = injected.load();
  result.dead_letters = dead.load();
  result.dedup_hits = counters->dedup_hits.load();
  result.claims_lost = counters->claims_lost.load();
  std::filesystem::remove_all(dir);
  return result;
}

void ExpectEffectivelyOnce(const Result& r, int commands, const std::string& transport) {
  int duplicates = (commands + 9) / 10;
  EXPECT_EQ(r.accepted, commands + duplicates);
  EXPECT_EQ(r.counter, commands);
  EXPECT_EQ(r.rows, commands);
  EXPECT_EQ(r.distinct_rows, commands);
  EXPECT_EQ(r.dead_letters, 0);
  EXPECT_EQ(r.dedup_hits, static_cast<uint64_t>(duplicates));
  EXPECT_EQ(r.claims_lost, 0u);
  // About half of the first attempts failed after their side effect.
  EXPECT_GT(r.injected, (commands + duplicates) * 4 / 10);
  EXPECT_LT(r.injected, (commands + duplicates) * 6 / 10);
  std::cout << "[ effectively-once ] " << transport << ": " << commands << " commands + "
            << duplicates << " duplicates, " << r.injected << " injected failures, counter "
            << r.counter << ", dedup hits " << r.dedup_hits << ", "
            << absl::FormatDuration(r.elapsed) << "\n";
}

TEST(EffectivelyOnceTest, Inproc) {
  constexpr int kCommands = 10'000;
  v1::TransportConfig t;
  t.set_type("inproc");
  t.mutable_inproc()->set_bus("eo-" + RunId());
  Result r =
      RunEffectivelyOnce({.transport = t, .sender_transport = nullptr, .commands = kCommands});
  ExpectEffectivelyOnce(r, kCommands, "inproc");
}

// The control: the same run with the side effect outside the store's
// transaction over-counts, so the test above can tell.
TEST(EffectivelyOnceTest, WithoutTheTransactionFailedAttemptsCountTwice) {
  constexpr int kCommands = 300;
  v1::TransportConfig t;
  t.set_type("inproc");
  t.mutable_inproc()->set_bus("eo-control-" + RunId());
  Result r = RunEffectivelyOnce(
      {.transport = t, .sender_transport = nullptr, .commands = kCommands, .transactional = false});
  EXPECT_EQ(r.counter, kCommands + r.injected);
  EXPECT_GT(r.counter, kCommands);
  EXPECT_EQ(r.dead_letters, 0);
}

// JetStream: a durable work queue; the broker also drops a repeated
// Nats-Msg-Id (= idempotency key) within its duplicate window, so most
// duplicates never reach the handler's node. The count of dedup hits is then
// not fixed: only the effect is.
TEST(EffectivelyOnceTest, NatsJetStream) {
  std::string url = Env("SWITCHBOARD_TEST_NATS_URL");
  if (url.empty()) {
    if (ServersRequired()) FAIL() << "SWITCHBOARD_TEST_NATS_URL is not set";
    GTEST_SKIP() << "SWITCHBOARD_TEST_NATS_URL is not set; run under scripts/with-servers.sh";
  }
  if (!TransportRegistry::Default().Has("nats")) {
    GTEST_SKIP() << "this build has no NATS transport (SWITCHBOARD_WITH_NATS=OFF)";
  }
  constexpr int kCommands = 10'000;
  v1::TransportConfig t;
  t.set_type("nats");
  t.mutable_nats()->set_url(url);
  t.mutable_nats()->set_jetstream(true);
  t.mutable_nats()->set_subject_prefix(RunId());
  t.mutable_nats()->mutable_ack_wait()->set_seconds(10);
  Result r = RunEffectivelyOnce(
      {.transport = t, .sender_transport = nullptr, .commands = kCommands, .broker_dedup = true});
  int duplicates = kCommands / 10;
  EXPECT_EQ(r.accepted, kCommands + duplicates);
  EXPECT_EQ(r.counter, kCommands);
  EXPECT_EQ(r.rows, kCommands);
  EXPECT_EQ(r.distinct_rows, kCommands);
  EXPECT_EQ(r.dead_letters, 0);
  EXPECT_EQ(r.claims_lost, 0u);
  EXPECT_GT(r.injected, kCommands * 4 / 10);
  std::cout << "[ effectively-once ] nats: " << kCommands << " commands + " << duplicates
            << " duplicates, " << r.injected << " injected failures, counter " << r.counter
            << ", dedup hits " << r.dedup_hits << ", " << absl::FormatDuration(r.elapsed) << "\n";
}

v1::TransportConfig NatsConfig(const std::string& url, const std::string& prefix) {
  v1::TransportConfig t;
  t.set_type("nats");
  t.mutable_nats()->set_url(url);
  t.mutable_nats()->set_jetstream(true);
  t.mutable_nats()->set_subject_prefix(prefix);
  // A killed consumer's unacknowledged messages come back this soon.
  t.mutable_nats()->mutable_ack_wait()->set_seconds(2);
  return t;
}

// Not a test of its own (hence DISABLED_): the consumer process that
// NatsKilledConsumerIsRestarted starts and kills.
TEST(EffectivelyOnceTest, DISABLED_ConsumerProcess) {
  std::string path = Env("SB_EO_CONSUMER_DB");
  if (path.empty()) {
    GTEST_SKIP() << "runs only as the consumer process of NatsKilledConsumerIsRestarted";
  }
  const std::string op = Env("SB_EO_OP");
  auto node = Node::Create(ConfigFor(
      op, NatsConfig(Env("SWITCHBOARD_TEST_NATS_URL"), Env("SB_EO_PREFIX")), "sqlite:" + path));
  ASSERT_TRUE(node.ok()) << node.status();
  std::atomic<int> injected{0};
  Operation<EchoRequest, google::protobuf::Empty> place{op};
  auto reg = (*node)->Handle(
      place, [&](Context& ctx, const EchoRequest&) -> absl::StatusOr<google::protobuf::Empty> {
        return RecordEffect(ctx, path, /*transactional=*/true, injected);
      });
  ASSERT_TRUE(reg.ok()) << reg.status();
  // Until the parent kills this process (bounded, should the parent die).
  absl::SleepFor(absl::Seconds(90));
}

// Starts this test binary as a consumer process (fork + exec: nothing runs
// in the forked copy of this multithreaded process but execve).
pid_t StartConsumer(const std::vector<std::string>& extra_env) {
  std::vector<std::string> env_strings;
  for (char** e = environ; *e != nullptr; ++e) env_strings.emplace_back(*e);
  for (const auto& e : extra_env) env_strings.push_back(e);
  std::vector<char*> envp;
  for (auto& e : env_strings) envp.push_back(e.data());
  envp.push_back(nullptr);
  std::string self = std::filesystem::read_symlink("/proc/self/exe").string();
  std::string filter = "--gtest_filter=EffectivelyOnceTest.DISABLED_ConsumerProcess";
  std::string disabled = "--gtest_also_run_disabled_tests";
  char* argv[] = {self.data(), filter.data(), disabled.data(), nullptr};
  pid_t pid = fork();
  if (pid == 0) {
    execve(self.c_str(), argv, envp.data());
    _exit(127);
  }
  return pid;
}

// The consumer process is killed (SIGKILL) mid-run, with handlers and their
// transactions open, and a new one takes over: the new process takes over the
// dead holder's claims at once, JetStream redelivers what the dead one never
// acked, and the counter still ends at exactly N.
TEST(EffectivelyOnceTest, NatsKilledConsumerIsRestarted) {
  std::string url = Env("SWITCHBOARD_TEST_NATS_URL");
  if (url.empty()) {
    if (ServersRequired()) FAIL() << "SWITCHBOARD_TEST_NATS_URL is not set";
    GTEST_SKIP() << "SWITCHBOARD_TEST_NATS_URL is not set; run under scripts/with-servers.sh";
  }
  if (!TransportRegistry::Default().Has("nats")) {
    GTEST_SKIP() << "this build has no NATS transport (SWITCHBOARD_WITH_NATS=OFF)";
  }
  constexpr int kCommands = 3'000;
  std::string path = NewInboxDb();
  std::string op = "eo.v1.Orders/Killed" + RunId();
  std::string prefix = RunId() + "k";
  std::vector<std::string> env = {"SB_EO_CONSUMER_DB=" + path, "SB_EO_OP=" + op,
                                  "SB_EO_PREFIX=" + prefix};

  pid_t first = StartConsumer(env);
  ASSERT_GT(first, 0);
  auto sender = Node::Create(ConfigFor(op, NatsConfig(url, prefix), "memory"));
  ASSERT_TRUE(sender.ok()) << sender.status();
  Operation<EchoRequest, google::protobuf::Empty> place{op};
  std::vector<Future<google::protobuf::Empty>> sent;
  for (int i = 0; i < kCommands; ++i) {
    CallOptions options;
    options.idempotency_key = op + "#" + std::to_string(i);
    sent.push_back((*sender)->Call(place, EchoRequest(), options));
  }
  int accepted = 0;
  for (auto& f : sent) {
    if (std::move(f).GetFor(absl::Seconds(30)).ok()) ++accepted;
  }
  EXPECT_EQ(accepted, kCommands);

  auto wait_counter = [&](int64_t at_least, absl::Duration limit) {
    absl::Time end = absl::Now() + limit;
    while (absl::Now() < end && QueryInt(path, "SELECT n FROM counter") < at_least) {
      absl::SleepFor(absl::Milliseconds(10));
    }
    return QueryInt(path, "SELECT n FROM counter");
  };
  int64_t before_kill = wait_counter(kCommands / 4, absl::Seconds(30));
  kill(first, SIGKILL);
  int status = 0;
  EXPECT_EQ(waitpid(first, &status, 0), first);
  int64_t at_kill = QueryInt(path, "SELECT n FROM counter");
  EXPECT_GE(before_kill, kCommands / 4);
  EXPECT_LT(at_kill, kCommands) << "the consumer finished before it was killed";

  pid_t second = StartConsumer(env);
  ASSERT_GT(second, 0);
  int64_t final_count = wait_counter(kCommands, absl::Seconds(60));
  absl::SleepFor(absl::Seconds(3));  // longer than ack_wait: nothing more may land
  kill(second, SIGKILL);
  EXPECT_EQ(waitpid(second, &status, 0), second);

  EXPECT_EQ(final_count, kCommands);
  EXPECT_EQ(QueryInt(path, "SELECT n FROM counter"), kCommands);
  EXPECT_EQ(QueryInt(path, "SELECT count(*) FROM effects"), kCommands);
  EXPECT_EQ(QueryInt(path, "SELECT count(DISTINCT k) FROM effects"), kCommands);
  std::cout << "[ effectively-once ] nats, consumer killed at counter " << at_kill << " of "
            << kCommands << " and restarted: counter " << final_count << "\n";
  (*sender)->Close();
  std::filesystem::remove_all(std::filesystem::path(path).parent_path());
}

// AMQP 1.0 on RabbitMQ: a durable queue; released deliveries come back.
TEST(EffectivelyOnceTest, Amqp) {
  std::string url = Env("SWITCHBOARD_TEST_AMQP_URL");
  if (url.empty()) {
    if (ServersRequired()) FAIL() << "SWITCHBOARD_TEST_AMQP_URL is not set";
    GTEST_SKIP() << "SWITCHBOARD_TEST_AMQP_URL is not set; run under scripts/with-servers.sh";
  }
  if (!TransportRegistry::Default().Has("amqp")) {
    GTEST_SKIP() << "this build has no AMQP transport (SWITCHBOARD_WITH_AMQP=OFF)";
  }
  constexpr int kCommands = 10'000;
  v1::TransportConfig t;
  t.set_type("amqp");
  t.mutable_amqp()->set_url(url);
  t.mutable_amqp()->set_management_url(Env("SWITCHBOARD_TEST_RABBITMQ_MGMT"));
  t.mutable_amqp()->set_address_prefix(RunId());
  Result r =
      RunEffectivelyOnce({.transport = t, .sender_transport = nullptr, .commands = kCommands});
  ExpectEffectivelyOnce(r, kCommands, "amqp");
}

// gRPC: a command is accepted by the handling node (not durable); its
// redeliveries happen there. The sender is a second node, a client of the
// first one's port.
TEST(EffectivelyOnceTest, Grpc) {
#ifndef SB_TEST_HAS_GRPC
  GTEST_SKIP() << "this build has no gRPC transport (SWITCHBOARD_WITH_GRPC=OFF)";
#else
  constexpr int kCommands = 10'000;
  v1::TransportConfig server;
  server.set_type("grpc");
  server.mutable_grpc()->set_listen("127.0.0.1:0");
  Result r = RunEffectivelyOnce(
      {.transport = server,
       .sender_transport =
           [](Node& handling) {
             v1::TransportConfig client;
             client.set_type("grpc");
             auto* t = dynamic_cast<grpc::GrpcTransport*>(handling.FindTransport("bus"));
             EXPECT_NE(t, nullptr);
             (*client.mutable_grpc()->mutable_targets())["*"] =
                 "127.0.0.1:" + std::to_string(t != nullptr ? t->bound_port() : 1);
             return client;
           },
       .commands = kCommands});
  ExpectEffectivelyOnce(r, kCommands, "grpc");
#endif
}

}  // namespace
}  // namespace switchboard
