// Secrets never leak: a NATS token given in the config file, an AMQP
// password read from the environment (`${NAME}`) and the TLS material of
// key files are used by real nodes that make calls, fail calls, fail to
// connect with wrong secrets and fail to load bad configs. Everything the
// process shows is captured - its stdout and stderr (libraries included),
// the telemetry log lines, the spans, the error texts, the admin endpoint's
// /status, /metrics and /healthz - and no secret may appear in any of it.
// Each capture is checked to be non-empty, so the test can fail.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/synchronization/mutex.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "switchboard/builtin_transports.h"
#include "switchboard/config.h"
#include "switchboard/envelope.h"
#include "switchboard/node.h"
#include "switchboard/telemetry.h"
#include "switchboard/telemetry/exporters.h"
#include "switchboard/test/v1/echo.pb.h"
#include "switchboard/testing/nats_server.h"
#include "switchboard/testing/tls_certs.h"

namespace switchboard {
namespace {

using test::v1::EchoReply;
using test::v1::EchoRequest;
using ::switchboard::testing::NatsServerProcess;
using ::switchboard::testing::TestCerts;
using ::testing::HasSubstr;

constexpr Operation<EchoRequest, EchoReply> kSayNats{"sbsec.v1.Echo/SayNats"};
constexpr Operation<EchoRequest, EchoReply> kSayAmqp{"sbsec.v1.Echo/SayAmqp"};
constexpr absl::Duration kWait = absl::Seconds(10);
constexpr char kPasswordVar[] = "SB_SECRETS_TEST_AMQP_PASSWORD";

std::string Env(const char* name) {
  const char* v = std::getenv(name);
  return v == nullptr ? "" : v;
}

// 24 random hex digits behind `prefix`: nothing else in the output can
// contain it by chance.
std::string RandomSecret(const std::string& prefix) {
  return prefix + NewMessageId().substr(0, 24);
}

// Redirects this process's stdout and stderr (file descriptors 1 and 2,
// so what libraries print is caught too) to a file until Stop().
class OutputCapture {
 public:
  explicit OutputCapture(std::string path) : path_(std::move(path)) {
    std::fflush(stdout);
    std::fflush(stderr);
    saved_out_ = dup(1);
    saved_err_ = dup(2);
    int fd = open(path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    dup2(fd, 1);
    dup2(fd, 2);
    close(fd);
  }
  ~OutputCapture() { Stop(); }
  // Restores stdout and stderr and returns what was written meanwhile.
  std::string Stop() {
    if (saved_out_ < 0) return text_;
    std::fflush(stdout);
    std::fflush(stderr);
    dup2(saved_out_, 1);
    dup2(saved_err_, 2);
    close(saved_out_);
    close(saved_err_);
    saved_out_ = saved_err_ = -1;
    std::ifstream in(path_);
    std::stringstream ss;
    ss << in.rdbuf();
    text_ = ss.str();
    std::remove(path_.c_str());
    return text_;
  }

 private:
  std::string path_;
  int saved_out_ = -1;
  int saved_err_ = -1;
  std::string text_;
};

// A plain HTTP/1.0 GET of the admin endpoint ("host:port"): the whole
// response, headers included, or "" when it cannot connect.
std::string HttpGet(const std::string& address, const std::string& path) {
  const size_t colon = address.rfind(':');
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return "";
  timeval tv{5, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(std::stoi(address.substr(colon + 1))));
  inet_pton(AF_INET, address.substr(0, colon).c_str(), &addr.sin_addr);
  std::string out;
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0) {
    const std::string req = absl::StrCat("GET ", path, " HTTP/1.0\r\nHost: ", address, "\r\n\r\n");
    if (write(fd, req.data(), req.size()) == static_cast<ssize_t>(req.size())) {
      char buf[4096];
      ssize_t n;
      while ((n = read(fd, buf, sizeof buf)) > 0) out.append(buf, static_cast<size_t>(n));
    }
  }
  close(fd);
  return out;
}

// Runs `cmd`; its exit status is 0 when the management API call worked.
bool Shell(const std::string& cmd) { return std::system(cmd.c_str()) == 0; }

// "http://guest:guest@127.0.0.1:15672" -> {"guest:guest", "127.0.0.1:15672"}.
std::pair<std::string, std::string> SplitManagementUrl(const std::string& url) {
  std::string rest = url.substr(url.find("://") + 3);
  const size_t at = rest.find('@');
  if (at == std::string::npos) return {"guest:guest", rest};
  return {rest.substr(0, at), rest.substr(at + 1)};
}

class SecretsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    (void)RegisterBuiltinTransports();
    const bool required = Env("SWITCHBOARD_REQUIRE_SERVERS") == "1";
    if (!NatsServerProcess::Installed() || Env("SWITCHBOARD_TEST_AMQP_URL").empty() ||
        Env("SWITCHBOARD_TEST_RABBITMQ_MGMT").empty()) {
      if (required) GTEST_FAIL() << "nats-server or the RabbitMQ of with-servers.sh is missing";
      GTEST_SKIP() << "needs nats-server and RabbitMQ; run under scripts/with-servers.sh";
    }
    run_ = NewMessageId().substr(24, 8);
    token_ = RandomSecret("sbtok");
    password_ = RandomSecret("sbpwd");
    wrong_token_ = RandomSecret("sbwrongtok");
    wrong_password_ = RandomSecret("sbwrongpwd");
    absl::StatusOr<TestCerts> certs = TestCerts::Create();
    ASSERT_TRUE(certs.ok()) << certs.status();
    certs_ = std::make_unique<TestCerts>(*std::move(certs));
    // The private key of the client certificate is a secret read from a
    // file: none of its base64 may show.
    std::ifstream key(certs_->client_key());
    std::string line;
    while (std::getline(key, line)) {
      if (line.size() > 40 && line.find("-----") == std::string::npos) key_line_ = line;
    }
    ASSERT_FALSE(key_line_.empty());

    nats_ = std::make_unique<NatsServerProcess>(
        certs_->dir(), absl::StrCat("authorization { token: \"", token_, "\" }"));
    ASSERT_TRUE(nats_->ready()) << "nats-server did not start, see " << nats_->log();

    // A RabbitMQ user of this run whose password only the environment has.
    auto [admin, host] = SplitManagementUrl(Env("SWITCHBOARD_TEST_RABBITMQ_MGMT"));
    admin_ = admin;
    mgmt_host_ = host;
    amqp_user_ = absl::StrCat("sbsec", run_);
    ASSERT_TRUE(Shell(absl::StrCat(
        "curl -sf -o /dev/null -u '", admin_, "' -X PUT -H 'content-type: application/json' "
        "-d '{\"password\":\"", password_, "\",\"tags\":\"\"}' http://", mgmt_host_,
        "/api/users/", amqp_user_)));
    ASSERT_TRUE(Shell(absl::StrCat(
        "curl -sf -o /dev/null -u '", admin_, "' -X PUT -H 'content-type: application/json' "
        "-d '{\"configure\":\".*\",\"write\":\".*\",\"read\":\".*\"}' http://", mgmt_host_,
        "/api/permissions/%2F/", amqp_user_)));
    user_created_ = true;
    setenv(kPasswordVar, password_.c_str(), 1);
  }

  void TearDown() override {
    unsetenv(kPasswordVar);
    if (user_created_) {
      (void)Shell(absl::StrCat("curl -sf -o /dev/null -u '", admin_, "' -X DELETE http://",
                               mgmt_host_, "/api/users/", amqp_user_));
    }
  }

  // The config file of a node: the token is written in it, the AMQP
  // password comes from the environment, the NATS connection is also named
  // by a URL that carries the token.
  std::string Yaml(const std::string& token, const std::string& tail = "") const {
    const std::string amqp = Env("SWITCHBOARD_TEST_AMQP_URL");
    const std::string amqp_host = amqp.substr(amqp.find('@') + 1);
    return absl::StrCat(
        "node: { source: //secrets-test/", run_, ", handler_threads: 2 }\n",
        "transports:\n",
        "  bus:\n",
        "    type: nats\n",
        "    url: ", nats_->url(), "\n",
        "    token: \"", token, "\"\n",
        "    subject_prefix: sbsec", run_, "\n",
        "    max_reconnect: 1\n",
        "  mq:\n",
        "    type: amqp\n",
        "    url: amqp://", amqp_host, "\n",
        "    user: ", amqp_user_, "\n",
        "    password: \"${", kPasswordVar, "}\"\n",
        "    address_prefix: sbsec.", run_, ".\n",
        "    connect_timeout: 10s\n",
        "    close_timeout: 500ms\n",
        "operations:\n",
        "  ", std::string(kSayNats.name), ": { style: request, transport: bus }\n",
        "  ", std::string(kSayAmqp.name), ": { style: request, transport: mq }\n",
        "telemetry: { log_level: debug }\n", tail);
  }

  // Everything shown, by where it was seen.
  std::map<std::string, std::string> seen_;
  void See(const std::string& where, const std::string& text) {
    seen_[where] += text;
    seen_[where] += "\n";
  }

  std::string run_, token_, password_, wrong_token_, wrong_password_, key_line_;
  std::string admin_, mgmt_host_, amqp_user_;
  bool user_created_ = false;
  std::unique_ptr<TestCerts> certs_;
  std::unique_ptr<NatsServerProcess> nats_;
};

TEST_F(SecretsTest, NoSecretAppearsInLogsErrorsStatusOrMetrics) {
  struct Logs {
    absl::Mutex mu;
    std::vector<std::string> lines ABSL_GUARDED_BY(mu);
  };
  auto logs = std::make_shared<Logs>();
  TelemetryOptions topts;
  topts.log_level = LogLevel::kDebug;
  topts.log_sink = [logs](std::string_view line) {
    absl::MutexLock lock(&logs->mu);
    logs->lines.emplace_back(line);
  };
  auto telemetry = std::make_shared<Telemetry>(topts);
  auto spans = std::make_shared<MemorySpanSink>();
  telemetry->AddSpanSink(spans);
  auto admin = telemetry::AdminServer::Start(*telemetry, "127.0.0.1:0");
  ASSERT_TRUE(admin.ok()) << admin.status();
  const std::string admin_address = (*admin)->address();
  telemetry->AddExporter(*std::move(admin));

  OutputCapture output(absl::StrCat(certs_->dir(), "/output.txt"));
  int calls_ok = 0;
  {
    // A working node: calls on both transports, one of them failing.
    absl::StatusOr<LoadedConfig> loaded = ParseConfig(Yaml(token_), "secrets.yaml");
    ASSERT_TRUE(loaded.ok()) << loaded.status();
    Node::Options options;
    options.telemetry = telemetry;
    absl::StatusOr<std::unique_ptr<Node>> node = Node::Create(loaded->config, options);
    ASSERT_TRUE(node.ok()) << node.status();
    std::vector<HandlerRegistration> regs;
    for (const auto* op : {&kSayNats, &kSayAmqp}) {
      auto reg = (*node)->Handle(*op, [](Context&, const EchoRequest& req) -> absl::StatusOr<EchoReply> {
        if (req.fail_code() != 0) {
          return absl::Status(static_cast<absl::StatusCode>(req.fail_code()), req.fail_message());
        }
        EchoReply reply;
        reply.set_text(req.text());
        return reply;
      });
      ASSERT_TRUE(reg.ok()) << reg.status();
      regs.push_back(*std::move(reg));
    }
    for (const auto* op : {&kSayNats, &kSayAmqp}) {
      EchoRequest req;
      req.set_text("hi");
      absl::StatusOr<EchoReply> r = (*node)->Call(*op, req).GetFor(kWait);
      if (r.ok() && r->text() == "hi") ++calls_ok;
      See("call status", r.status().ToString());
      req.set_fail_code(static_cast<int>(absl::StatusCode::kPermissionDenied));
      req.set_fail_message("refused on purpose");
      r = (*node)->Call(*op, req).GetFor(kWait);
      EXPECT_EQ(r.status().code(), absl::StatusCode::kPermissionDenied) << r.status();
      See("call status", r.status().ToString());
    }
    See("/status", HttpGet(admin_address, "/status"));
    See("/metrics", HttpGet(admin_address, "/metrics"));
    See("/healthz", HttpGet(admin_address, "/healthz"));
    for (auto& reg : regs) reg.Stop();
  }

  // Wrong secrets: the factories refuse them; the texts are kept.
  {
    Node::Options options;
    options.telemetry = telemetry;
    absl::StatusOr<LoadedConfig> loaded = ParseConfig(Yaml(wrong_token_), "secrets.yaml");
    ASSERT_TRUE(loaded.ok()) << loaded.status();
    absl::StatusOr<std::unique_ptr<Node>> node = Node::Create(loaded->config, options);
    EXPECT_EQ(node.status().code(), absl::StatusCode::kPermissionDenied) << node.status();
    See("create status (wrong token)", node.status().ToString());

    // The wrong token inside the URL instead.
    v1::Config in_url = loaded->config;
    auto& bus = (*in_url.mutable_transports())["bus"];
    bus.mutable_nats()->clear_token();
    bus.mutable_nats()->set_url(
        absl::StrCat("nats://", wrong_token_, "@127.0.0.1:", nats_->port()));
    node = Node::Create(in_url, options);
    EXPECT_EQ(node.status().code(), absl::StatusCode::kPermissionDenied) << node.status();
    See("create status (token in url)", node.status().ToString());

    setenv(kPasswordVar, wrong_password_.c_str(), 1);
    loaded = ParseConfig(Yaml(token_), "secrets.yaml");
    setenv(kPasswordVar, password_.c_str(), 1);
    ASSERT_TRUE(loaded.ok()) << loaded.status();
    node = Node::Create(loaded->config, options);
    EXPECT_EQ(node.status().code(), absl::StatusCode::kPermissionDenied) << node.status();
    See("create status (wrong password)", node.status().ToString());
  }

  // Config-load errors around the secrets.
  {
    const std::vector<std::pair<std::string, std::string>> bad = {
        // A secret from the environment where a duration belongs.
        {"secret as a duration",
         absl::StrReplaceAll(Yaml(token_), {{"connect_timeout: 10s",
                                             absl::StrCat("connect_timeout: ${", kPasswordVar, "}")}})},
        // (A literal secret written under a key that is not a secret one,
        // e.g. `max_reconnect: <token>`, is shown like any value there: the
        // loader cannot know it. Secrets go in secret keys or `${NAME}`.)
        // The token given twice, once under a misspelt key.
        {"token under an unknown key",
         absl::StrReplaceAll(Yaml(token_), {{"    max_reconnect: 1\n",
                                             absl::StrCat("    tokn: ", token_, "\n")}})},
        // The token where a list of URLs belongs.
        {"token as a list", absl::StrReplaceAll(Yaml(token_), {{"    max_reconnect: 1\n",
                                                                absl::StrCat("    urls: ", token_, "\n")}})},
        // The key file's content pasted as a password.
        {"key as a password", absl::StrReplaceAll(Yaml(token_), {{absl::StrCat("\"${", kPasswordVar, "}\""),
                                                                  absl::StrCat("[", key_line_, "]")}})},
    };
    for (const auto& [what, yaml] : bad) {
      absl::StatusOr<LoadedConfig> loaded = ParseConfig(yaml, "secrets.yaml");
      EXPECT_FALSE(loaded.ok()) << what;
      See(absl::StrCat("config error (", what, ")"), loaded.status().ToString());
    }
  }

  See("stdout+stderr", output.Stop());
  {
    absl::MutexLock lock(&logs->mu);
    for (const auto& line : logs->lines) See("log", line);
  }
  for (const SpanData& span : spans->Spans()) See("spans", SpanToJson(span));

  EXPECT_EQ(calls_ok, 2);
  // Each capture must hold something, or finding no secret proves nothing.
  EXPECT_THAT(seen_["log"], HasSubstr(std::string(kSayAmqp.name)));
  EXPECT_THAT(seen_["log"], HasSubstr("refused on purpose"));
  EXPECT_THAT(seen_["spans"], HasSubstr(std::string(kSayNats.name)));
  EXPECT_THAT(seen_["/status"], HasSubstr(std::string(kSayNats.name)));
  EXPECT_THAT(seen_["/metrics"], HasSubstr("200 OK"));
  EXPECT_THAT(seen_["/healthz"], HasSubstr("200 OK"));
  EXPECT_THAT(seen_["create status (wrong token)"], HasSubstr("`token`"));
  EXPECT_THAT(seen_["create status (wrong password)"], HasSubstr("`user`/`password`"));
  size_t log_lines = 0;
  {
    absl::MutexLock lock(&logs->mu);
    log_lines = logs->lines.size();
  }
  for (const auto& [where, text] : seen_) {
    // The process may rightly print nothing; every other capture must not
    // be empty.
    if (where != "stdout+stderr") {
      EXPECT_GT(text.size(), 1u) << where << " captured nothing";
    }
    for (const std::string* secret : {&token_, &password_, &wrong_token_, &wrong_password_, &key_line_}) {
      EXPECT_THAT(text, ::testing::Not(HasSubstr(*secret)))
          << "a secret shows in " << where << ":\n" << text;
    }
  }
  std::printf("secrets test: %zu captures, %zu log lines, %zu bytes of process output\n",
              seen_.size(), log_lines, seen_["stdout+stderr"].size());
}

}  // namespace
}  // namespace switchboard
