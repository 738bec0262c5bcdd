// The consumer process killed with SIGKILL mid-stream and restarted, on the
// AMQP 1.0 transport with the SQLite idempotency store (docs/reliability.md,
// "Transport scenarios"; the NATS run is EffectivelyOnceTest.
// NatsKilledConsumerIsRestarted in adapters/idempotency/tests).
//
// The consumer is this test binary started again (fork + exec) with the
// DISABLED_ConsumerProcess filter. Its handler writes a row and a counter
// increment in the store's transaction, so a kill before the commit leaves
// neither the effect nor the key; RabbitMQ requeues what the dead
// connection had not settled, and the new process handles it. Ends with the
// counter at exactly N: lost 0, duplicate side effects 0.
#include <signal.h>
#include <sqlite3.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "switchboard/idempotency/sqlite_store.h"
#include "switchboard/internal/strings.h"
#include "switchboard/node.h"
#include "switchboard/test/v1/echo.pb.h"
#include "switchboard/transport_registry.h"

namespace switchboard::testing {
namespace {

using test::v1::EchoRequest;

std::string Env(const char* name) {
  const char* v = std::getenv(name);
  return v == nullptr ? "" : v;
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

// The handler's tables in a new file under a new directory.
std::string NewInboxDb() {
  std::string dir =
      (std::filesystem::temp_directory_path() / Cat("sb-fault-", NewMessageId())).string();
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

v1::Config ConfigFor(const std::string& op, const std::string& prefix, const std::string& store) {
  v1::Config config;
  config.mutable_node()->set_handler_threads(4);
  v1::TransportConfig& t = (*config.mutable_transports())["bus"];
  t.set_type("amqp");
  t.mutable_amqp()->set_url(Env("SWITCHBOARD_TEST_AMQP_URL"));
  t.mutable_amqp()->set_management_url(Env("SWITCHBOARD_TEST_RABBITMQ_MGMT"));
  t.mutable_amqp()->set_address_prefix(prefix);
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

// The effect: a row and a counter increment, committed with the key.
absl::StatusOr<google::protobuf::Empty> RecordEffect(Context& ctx) {
  absl::StatusOr<sqlite3*> db = SqliteTransaction(ctx);
  if (!db.ok()) return db.status();
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
  return google::protobuf::Empty();
}

// Not a test of its own (hence DISABLED_): the consumer process that
// AmqpKilledConsumerTest.ConsumerKilledMidStreamIsRestarted starts and kills.
TEST(AmqpKilledConsumerTest, DISABLED_ConsumerProcess) {
  const std::string path = Env("SB_FAULT_CONSUMER_DB");
  if (path.empty()) GTEST_SKIP() << "runs only as the consumer process of the killed-consumer test";
  const std::string op = Env("SB_FAULT_OP");
  auto node = Node::Create(ConfigFor(op, Env("SB_FAULT_PREFIX"), "sqlite:" + path));
  ASSERT_TRUE(node.ok()) << node.status();
  Operation<EchoRequest, google::protobuf::Empty> apply{op};
  auto reg = (*node)->Handle(apply, [](Context& ctx, const EchoRequest&) { return RecordEffect(ctx); });
  ASSERT_TRUE(reg.ok()) << reg.status();
  // Until the parent kills this process (bounded, should the parent die).
  absl::SleepFor(absl::Seconds(90));
}

// This binary as a consumer process (fork + exec: the forked copy of this
// multithreaded process runs nothing but execve).
pid_t StartConsumer(const std::vector<std::string>& extra_env) {
  std::vector<std::string> env_strings;
  for (char** e = environ; *e != nullptr; ++e) env_strings.emplace_back(*e);
  for (const auto& e : extra_env) env_strings.push_back(e);
  std::vector<char*> envp;
  for (auto& e : env_strings) envp.push_back(e.data());
  envp.push_back(nullptr);
  std::string self = std::filesystem::read_symlink("/proc/self/exe").string();
  std::string filter = "--gtest_filter=AmqpKilledConsumerTest.DISABLED_ConsumerProcess";
  std::string disabled = "--gtest_also_run_disabled_tests";
  char* argv[] = {self.data(), filter.data(), disabled.data(), nullptr};
  pid_t pid = fork();
  if (pid == 0) {
    execve(self.c_str(), argv, envp.data());
    _exit(127);
  }
  return pid;
}

TEST(AmqpKilledConsumerTest, ConsumerKilledMidStreamIsRestarted) {
  if (Env("SWITCHBOARD_TEST_AMQP_URL").empty()) {
    if (Env("SWITCHBOARD_REQUIRE_SERVERS") == "1") FAIL() << "SWITCHBOARD_TEST_AMQP_URL is not set";
    GTEST_SKIP() << "SWITCHBOARD_TEST_AMQP_URL is not set; run under scripts/with-servers.sh";
  }
  if (!TransportRegistry::Default().Has("amqp")) {
    GTEST_SKIP() << "this build has no AMQP transport (SWITCHBOARD_WITH_AMQP=OFF)";
  }
  constexpr int kCommands = 3'000;
  const std::string run = NewMessageId().substr(24, 8);
  const std::string path = NewInboxDb();
  const std::string op = Cat("fault.v1.Killed", run, "/Apply");
  const std::string prefix = Cat("fault", run);
  const std::vector<std::string> env = {"SB_FAULT_CONSUMER_DB=" + path, "SB_FAULT_OP=" + op,
                                        "SB_FAULT_PREFIX=" + prefix};
  pid_t first = StartConsumer(env);
  ASSERT_GT(first, 0);
  auto sender = Node::Create(ConfigFor(op, prefix, "memory"));
  ASSERT_TRUE(sender.ok()) << sender.status();
  Operation<EchoRequest, google::protobuf::Empty> apply{op};
  const absl::Time start = absl::Now();
  std::vector<Future<google::protobuf::Empty>> sent;
  for (int i = 0; i < kCommands; ++i) {
    CallOptions options;
    options.idempotency_key = Cat(op, "#", i);
    sent.push_back((*sender)->Call(apply, EchoRequest(), options));
  }
  int accepted = 0;
  for (auto& f : sent) {
    if (std::move(f).GetFor(absl::Seconds(30)).ok()) ++accepted;
  }
  EXPECT_EQ(accepted, kCommands);

  auto wait_counter = [&](int64_t at_least, absl::Duration limit) {
    const absl::Time end = absl::Now() + limit;
    while (absl::Now() < end && QueryInt(path, "SELECT n FROM counter") < at_least) {
      absl::SleepFor(absl::Milliseconds(10));
    }
    return QueryInt(path, "SELECT n FROM counter");
  };
  int64_t before_kill = wait_counter(kCommands / 4, absl::Seconds(30));
  kill(first, SIGKILL);
  int status = 0;
  EXPECT_EQ(waitpid(first, &status, 0), first);
  const absl::Time killed_at = absl::Now();
  int64_t at_kill = QueryInt(path, "SELECT n FROM counter");
  EXPECT_GE(before_kill, kCommands / 4);
  EXPECT_LT(at_kill, kCommands) << "the consumer finished before it was killed";

  pid_t second = StartConsumer(env);
  ASSERT_GT(second, 0);
  int64_t final_count = wait_counter(kCommands, absl::Seconds(60));
  const absl::Duration to_finish = absl::Now() - killed_at;
  // Nothing more may land (a late redelivery would be a second effect).
  absl::SleepFor(absl::Seconds(1));
  kill(second, SIGKILL);
  EXPECT_EQ(waitpid(second, &status, 0), second);

  const int64_t rows = QueryInt(path, "SELECT count(*) FROM effects");
  const int64_t distinct = QueryInt(path, "SELECT count(DISTINCT k) FROM effects");
  std::printf("[ fault ] amqp consumer killed: commands %d accepted %d killed at effect %lld "
              "lost %lld duplicate effects %lld; the new process finished %s after the kill, "
              "%s in all\n",
              kCommands, accepted, static_cast<long long>(at_kill),
              static_cast<long long>(kCommands - distinct),
              static_cast<long long>(rows - distinct), absl::FormatDuration(to_finish).c_str(),
              absl::FormatDuration(absl::Now() - start).c_str());
  EXPECT_EQ(final_count, kCommands);
  EXPECT_EQ(QueryInt(path, "SELECT n FROM counter"), kCommands);
  EXPECT_EQ(rows, kCommands);
  EXPECT_EQ(distinct, kCommands);
  (*sender)->Close();
  std::filesystem::remove_all(std::filesystem::path(path).parent_path());
}

}  // namespace
}  // namespace switchboard::testing
