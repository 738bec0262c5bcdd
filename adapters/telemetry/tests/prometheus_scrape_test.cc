// Debian's real Prometheus server scrapes a node's admin endpoint on
// loopback, and a query through its HTTP API returns the node's call count.
#include <arpa/inet.h>
#include <httplib.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "switchboard/internal/strings.h"
#include "switchboard/node.h"
#include "switchboard/telemetry/exporters.h"
#include "switchboard/test/v1/echo.pb.h"

namespace switchboard::telemetry {
namespace {

using test::v1::EchoReply;
using test::v1::EchoRequest;

constexpr char kPrometheus[] = "/usr/bin/prometheus";
constexpr absl::Duration kWait = absl::Seconds(10);
constexpr absl::Duration kScrapeWait = absl::Seconds(90);
constexpr int kCalls = 7;
constexpr Operation<EchoRequest, EchoReply> kSay{"switchboard.test.v1.Echo/Say"};

bool RequireServers() {
  const char* v = std::getenv("SWITCHBOARD_REQUIRE_SERVERS");
  return v != nullptr && std::string(v) == "1";
}

// A port the OS considers free now (the server binds it right after).
int FreePort() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    close(fd);
    return -1;
  }
  socklen_t len = sizeof addr;
  getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  close(fd);
  return ntohs(addr.sin_port);
}

// A Prometheus server in a temp dir, killed when this goes away.
class PrometheusServer {
 public:
  PrometheusServer(const std::string& target, int port) : port_(port) {
    char tmpl[] = "/tmp/switchboard-prometheus.XXXXXX";
    dir_ = mkdtemp(tmpl);
    std::ofstream(dir_ + "/prometheus.yml")
        << "global:\n"
        << "  scrape_interval: 1s\n"
        << "  scrape_timeout: 1s\n"
        << "  evaluation_interval: 1s\n"
        << "scrape_configs:\n"
        << "  - job_name: switchboard\n"
        << "    metrics_path: /metrics\n"
        << "    static_configs:\n"
        << "      - targets: ['" << target << "']\n";
    pid_ = fork();
    if (pid_ == 0) {
      std::string log = dir_ + "/prometheus.log";
      FILE* out = std::freopen(log.c_str(), "w", stdout);
      (void)out;
      dup2(fileno(stdout), fileno(stderr));
      std::string config = "--config.file=" + dir_ + "/prometheus.yml";
      std::string data = "--storage.tsdb.path=" + dir_ + "/data";
      std::string listen = "--web.listen-address=127.0.0.1:" + std::to_string(port);
      execl(kPrometheus, kPrometheus, config.c_str(), data.c_str(), listen.c_str(),
            "--log.level=warn", static_cast<char*>(nullptr));
      _exit(127);
    }
  }

  ~PrometheusServer() {
    if (pid_ > 0) {
      kill(pid_, SIGTERM);
      // Bounded: SIGKILL if it does not stop within 10s.
      for (int i = 0; i < 1000; ++i) {
        if (waitpid(pid_, nullptr, WNOHANG) == pid_) {
          pid_ = -1;
          break;
        }
        usleep(10'000);
      }
      if (pid_ > 0) {
        kill(pid_, SIGKILL);
        waitpid(pid_, nullptr, 0);
      }
    }
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }

  bool running() { return pid_ > 0 && waitpid(pid_, nullptr, WNOHANG) == 0; }

  std::string Log() {
    std::ifstream in(dir_ + "/prometheus.log");
    std::string s((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    return s.size() > 4000 ? s.substr(s.size() - 4000) : s;
  }

  // The value of an instant query with one result, or "" (not there yet).
  std::string Query(const std::string& promql) {
    httplib::Client client("127.0.0.1", port_);
    client.set_connection_timeout(1, 0);
    client.set_read_timeout(5, 0);
    httplib::Params params{{"query", promql}};
    auto res = client.Get("/api/v1/query", params, httplib::Headers{});
    if (!res || res->status != 200) return "";
    nlohmann::json j = nlohmann::json::parse(res->body, nullptr, false);
    if (j.is_discarded() || j["status"] != "success") return "";
    const auto& result = j["data"]["result"];
    if (!result.is_array() || result.size() != 1) return "";
    return result[0]["value"][1].get<std::string>();
  }

 private:
  std::string dir_;
  int port_;
  pid_t pid_ = -1;
};

TEST(PrometheusScrapeTest, AQueryReturnsTheCallCountTheNodeServed) {
  if (access(kPrometheus, X_OK) != 0) {
    if (RequireServers()) FAIL() << kPrometheus << " is missing: run scripts/install-deps.sh";
    GTEST_SKIP() << kPrometheus << " is not installed (Debian package prometheus)";
  }
  // A node on a private inproc bus, with its admin endpoint on loopback.
  std::string run = NewMessageId().substr(0, 13);
  v1::Config config;
  auto& t = (*config.mutable_transports())["local"];
  t.set_type("inproc");
  t.mutable_inproc()->set_bus("prometheus-test-" + run);
  auto& b = (*config.mutable_operations())[std::string(kSay.name)];
  b.set_style(v1::STYLE_REQUEST);
  b.set_transport("local");
  config.mutable_telemetry()->set_admin_listen("127.0.0.1:0");
  auto node = Node::Create(config);
  ASSERT_TRUE(node.ok()) << node.status();
  std::string target = (*node)->telemetry().admin_address();
  ASSERT_FALSE(target.empty());
  auto reg = (*node)->Handle(kSay, [](Context&, const EchoRequest& req) -> absl::StatusOr<EchoReply> {
    EchoReply r;
    r.set_text(req.text());
    return r;
  });
  ASSERT_TRUE(reg.ok()) << reg.status();
  for (int i = 0; i < kCalls; ++i) {
    ASSERT_TRUE((*node)->Call(kSay, EchoRequest()).GetFor(kWait).ok());
  }

  int port = FreePort();
  ASSERT_GT(port, 0);
  PrometheusServer prometheus(target, port);
  std::string query = Cat("sum(switchboard_calls_total{job=\"switchboard\",operation=\"", kSay.name,
                          "\",side=\"server\",code=\"OK\"})");
  std::string value;
  absl::Time give_up = absl::Now() + kScrapeWait;
  while (absl::Now() < give_up) {
    ASSERT_TRUE(prometheus.running()) << "prometheus exited:\n" << prometheus.Log();
    value = prometheus.Query(query);
    if (value == std::to_string(kCalls)) break;
    absl::SleepFor(absl::Milliseconds(250));
  }
  ASSERT_EQ(value, std::to_string(kCalls)) << "query " << query << "\nprometheus log:\n" << prometheus.Log();

  // The scrape itself was healthy, and the histogram is a real one.
  EXPECT_EQ(prometheus.Query("up{job=\"switchboard\"}"), "1");
  EXPECT_EQ(prometheus.Query(Cat("sum(switchboard_call_duration_seconds_count{operation=\"", kSay.name,
                                 "\",side=\"client\"})")),
            std::to_string(kCalls));
  std::string p99 = prometheus.Query(Cat(
      "histogram_quantile(0.99, sum by (le) (switchboard_call_duration_seconds_bucket{operation=\"",
      kSay.name, "\",side=\"server\"}))"));
  ASSERT_FALSE(p99.empty());
  EXPECT_GT(std::stod(p99), 0);
  EXPECT_LE(std::stod(p99), 60);
}

}  // namespace
}  // namespace switchboard::telemetry
