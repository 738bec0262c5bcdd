// The admin endpoint on cpp-httplib. httplib stays in this file.
#include <httplib.h>

#include <thread>

#include "absl/time/clock.h"
#include "switchboard/internal/strings.h"
#include "switchboard/telemetry/exporters.h"

namespace switchboard::telemetry {

namespace {
// Scrapes and health checks are light: two threads, not one per core.
constexpr size_t kServerThreads = 2;
constexpr absl::Duration kStartTimeout = absl::Seconds(5);
}  // namespace

class AdminServer::Impl {
 public:
  explicit Impl(const Telemetry& telemetry) : telemetry_(telemetry) {
    server_.new_task_queue = [] { return new httplib::ThreadPool(kServerThreads); };
    // SO_REUSEADDR only: httplib's default adds SO_REUSEPORT, which would
    // let a second endpoint share a port that is in use instead of failing.
    server_.set_socket_options([](socket_t sock) {
      int yes = 1;
      setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, reinterpret_cast<const void*>(&yes), sizeof yes);
    });
    server_.set_read_timeout(5, 0);
    server_.set_write_timeout(5, 0);
    server_.Get("/metrics", [this](const httplib::Request&, httplib::Response& res) {
      res.set_content(PrometheusText(telemetry_.metrics()), "text/plain; version=0.0.4; charset=utf-8");
    });
    server_.Get("/healthz", [](const httplib::Request&, httplib::Response& res) {
      res.set_content("ok\n", "text/plain; charset=utf-8");
    });
    server_.Get("/status", [this](const httplib::Request&, httplib::Response& res) {
      res.set_content(StatusJson(telemetry_), "application/json");
    });
  }

  ~Impl() {
    server_.stop();
    if (thread_.joinable()) thread_.join();
  }

  absl::StatusOr<int> Start(const std::string& host, int port) {
    int bound = port == 0 ? server_.bind_to_any_port(host)
                          : (server_.bind_to_port(host, port) ? port : -1);
    if (bound <= 0) {
      return absl::UnavailableError(Cat("telemetry.admin_listen: cannot bind ", host, ":", port,
                                        " (in use, or not a local address); choose another "
                                        "port or 0 for a free one"));
    }
    thread_ = std::thread([this] { server_.listen_after_bind(); });
    // Answer before Start returns, so a scrape right after never races.
    absl::Time give_up = absl::Now() + kStartTimeout;
    while (!server_.is_running() && absl::Now() < give_up) absl::SleepFor(absl::Milliseconds(1));
    if (!server_.is_running()) {
      return absl::UnavailableError(
          Cat("telemetry.admin_listen: the admin endpoint on ", host, ":", bound, " did not start"));
    }
    return bound;
  }

 private:
  const Telemetry& telemetry_;
  httplib::Server server_;
  std::thread thread_;
};

AdminServer::AdminServer(std::unique_ptr<Impl> impl, std::string address, int port)
    : impl_(std::move(impl)), address_(std::move(address)), port_(port) {}

AdminServer::~AdminServer() = default;

absl::StatusOr<std::unique_ptr<AdminServer>> AdminServer::Start(const Telemetry& telemetry,
                                                                std::string_view listen) {
  size_t colon = listen.rfind(':');
  if (colon == std::string_view::npos || colon == 0) {
    return absl::InvalidArgumentError(
        Cat("telemetry.admin_listen: \"", listen, "\" is not host:port (e.g. 127.0.0.1:9464)"));
  }
  std::string host(listen.substr(0, colon));
  if (host.size() > 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  int port = 0;
  std::string_view port_text = listen.substr(colon + 1);
  if (port_text.empty() || port_text.size() > 5) port = -1;
  for (char c : port_text) {
    if (c < '0' || c > '9') port = -1;
    if (port >= 0) port = port * 10 + (c - '0');
  }
  if (port < 0 || port > 65535) {
    return absl::InvalidArgumentError(
        Cat("telemetry.admin_listen: \"", listen, "\" has no valid port (0..65535)"));
  }
  auto impl = std::make_unique<Impl>(telemetry);
  absl::StatusOr<int> bound = impl->Start(host, port);
  if (!bound.ok()) return bound.status();
  std::string address = host.find(':') != std::string::npos ? Cat("[", host, "]:", *bound)
                                                            : Cat(host, ":", *bound);
  return std::unique_ptr<AdminServer>(new AdminServer(std::move(impl), std::move(address), *bound));
}

}  // namespace switchboard::telemetry
