// nats_server.h: a nats-server process of a test's own, for settings the
// shared server of scripts/with-servers.sh cannot have (TLS, a token, a
// user/password).
//
// The server listens on 127.0.0.1 and a port the OS reported free, with
// `config_block` (nats-server configuration syntax) appended to its config
// file in `dir`; the destructor stops it (TERM, a bounded wait, KILL). Not
// thread-safe.
//
//   NatsServerProcess server(dir, "authorization { token: \"t\" }");
//   ASSERT_TRUE(server.ready()) << "see " << server.log();
//   options->set_url(server.url());
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <string>
#include <thread>

extern char** environ;

namespace switchboard::testing {

class NatsServerProcess {
 public:
  // Whether a `nats-server` binary is on PATH.
  static bool Installed() {
    return std::system("command -v nats-server > /dev/null 2>&1") == 0;
  }

  NatsServerProcess(const std::string& dir, const std::string& config_block) {
    port_ = FreePort();
    if (port_ <= 0) return;
    const std::string conf = dir + "/nats.conf";
    std::ofstream(conf) << "listen: 127.0.0.1:" << port_ << "\n" << config_block << "\n";
    log_ = dir + "/nats.log";
    const char* argv[] = {"nats-server", "-c", conf.c_str(), "-l", log_.c_str(), nullptr};
    if (posix_spawnp(&pid_, "nats-server", nullptr, nullptr, const_cast<char**>(argv),
                     environ) != 0) {
      pid_ = -1;
      return;
    }
    for (int i = 0; i < 200 && !ready_; ++i) {  // at most ~5 s
      ready_ = Accepts(port_);
      if (!ready_) std::this_thread::sleep_for(std::chrono::milliseconds(25));
    }
  }
  ~NatsServerProcess() {
    if (pid_ <= 0) return;
    kill(pid_, SIGTERM);
    for (int i = 0; i < 100; ++i) {  // at most ~2 s
      if (waitpid(pid_, nullptr, WNOHANG) == pid_) return;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
  }
  NatsServerProcess(const NatsServerProcess&) = delete;
  NatsServerProcess& operator=(const NatsServerProcess&) = delete;

  bool ready() const { return ready_; }
  int port() const { return port_; }
  // "nats://127.0.0.1:PORT" (or another scheme, e.g. "tls").
  std::string url(const std::string& scheme = "nats") const {
    return scheme + "://127.0.0.1:" + std::to_string(port_);
  }
  const std::string& log() const { return log_; }

 private:
  static int FreePort() {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) return -1;
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof addr;
    int port = -1;
    if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0 &&
        getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0) {
      port = ntohs(addr.sin_port);
    }
    close(fd);
    return port;
  }
  static bool Accepts(int port) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) return false;
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = htons(static_cast<uint16_t>(port));
    bool ok = connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
    close(fd);
    return ok;
  }

  pid_t pid_ = -1;
  int port_ = 0;
  bool ready_ = false;
  std::string log_;
};

}  // namespace switchboard::testing
