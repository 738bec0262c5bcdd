// Tests the fault proxy against an echo server on 127.0.0.1. Every wait is a
// poll() with a bound; no test sleeps.
#include "fault_proxy.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <string>
#include <thread>
#include <vector>

#include "gtest/gtest.h"

namespace switchboard::testing {
namespace {

// Echoes every byte back on each connection; closes when the peer does.
class EchoServer {
 public:
  EchoServer() {
    fd_ = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof(addr);
    EXPECT_EQ(bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
    EXPECT_EQ(listen(fd_, 16), 0);
    getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.sin_port);
    thread_ = std::thread([this] { Run(); });
  }
  ~EchoServer() {
    stop_ = true;
    thread_.join();
    close(fd_);
  }
  uint16_t port() const { return port_; }

 private:
  void Run() {
    std::vector<int> conns;
    while (!stop_) {
      std::vector<pollfd> fds{{fd_, POLLIN, 0}};
      for (int c : conns) fds.push_back({c, POLLIN, 0});
      if (poll(fds.data(), fds.size(), 20) <= 0) continue;
      if (fds[0].revents & POLLIN) {
        int c = accept(fd_, nullptr, nullptr);
        if (c >= 0) conns.push_back(c);
      }
      for (size_t i = 1; i < fds.size(); ++i) {
        if (!(fds[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
        char buf[4096];
        ssize_t n = read(fds[i].fd, buf, sizeof(buf));
        if (n <= 0) {
          close(fds[i].fd);
          conns.erase(std::find(conns.begin(), conns.end(), fds[i].fd));
          continue;
        }
        (void)!write(fds[i].fd, buf, n);
      }
    }
    for (int c : conns) close(c);
  }

  int fd_ = -1;
  uint16_t port_ = 0;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

int Connect(uint16_t port) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(port);
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

enum class ReadResult { kData, kTimeout, kClosed };

// Waits up to `timeout` for `want` bytes; kClosed on EOF or reset.
ReadResult ReadFor(int fd, size_t want, absl::Duration timeout, std::string* out) {
  absl::Time end = absl::Now() + timeout;
  while (out->size() < want) {
    pollfd p{fd, POLLIN, 0};
    int ms = static_cast<int>(absl::ToInt64Milliseconds(end - absl::Now()));
    if (ms <= 0 || poll(&p, 1, ms) == 0) return ReadResult::kTimeout;
    char buf[4096];
    ssize_t n = read(fd, buf, sizeof(buf));
    if (n <= 0) return ReadResult::kClosed;
    out->append(buf, n);
  }
  return ReadResult::kData;
}

bool Send(int fd, const std::string& s) {
  return send(fd, s.data(), s.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(s.size());
}

// A fresh connection through the proxy that echoes `ping` within `timeout`.
bool RoundTripOnNewConnection(uint16_t port, absl::Duration timeout) {
  int fd = Connect(port);
  if (fd < 0) return false;
  std::string got;
  bool ok = Send(fd, "ping") && ReadFor(fd, 4, timeout, &got) == ReadResult::kData && got == "ping";
  close(fd);
  return ok;
}

class FaultProxyTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto proxy = FaultProxy::Start("127.0.0.1", echo_.port());
    ASSERT_TRUE(proxy.ok()) << proxy.status();
    proxy_ = std::move(*proxy);
  }

  EchoServer echo_;
  std::unique_ptr<FaultProxy> proxy_;
};

TEST_F(FaultProxyTest, ForwardsBothWaysAndCounts) {
  int fd = Connect(proxy_->port());
  ASSERT_GE(fd, 0);
  std::string big(200000, 'x');
  for (size_t i = 0; i < big.size(); ++i) big[i] = static_cast<char>('a' + i % 26);
  std::thread writer([&] { Send(fd, big); });
  std::string got;
  EXPECT_EQ(ReadFor(fd, big.size(), absl::Seconds(10), &got), ReadResult::kData);
  writer.join();
  EXPECT_EQ(got, big);
  close(fd);
  auto stats = proxy_->stats();
  EXPECT_EQ(stats.accepted, 1);
  EXPECT_EQ(stats.bytes_to_server, static_cast<int64_t>(big.size()));
  EXPECT_EQ(stats.bytes_to_client, static_cast<int64_t>(big.size()));
  EXPECT_EQ(proxy_->address(), "127.0.0.1:" + std::to_string(proxy_->port()));
}

TEST_F(FaultProxyTest, AddsLatencyPerDirection) {
  proxy_->SetLatency(FaultProxy::Direction::kToServer, absl::Milliseconds(150));
  proxy_->SetLatency(FaultProxy::Direction::kToClient, absl::Milliseconds(100));
  int fd = Connect(proxy_->port());
  ASSERT_GE(fd, 0);
  absl::Time start = absl::Now();
  std::string got;
  ASSERT_TRUE(Send(fd, "ping"));
  EXPECT_EQ(ReadFor(fd, 4, absl::Seconds(5), &got), ReadResult::kData);
  absl::Duration rtt = absl::Now() - start;
  EXPECT_GE(rtt, absl::Milliseconds(250));
  EXPECT_LT(rtt, absl::Seconds(3));
  close(fd);
}

TEST_F(FaultProxyTest, DropAllResetsOpenConnectionsAndAcceptsNewOnes) {
  int fd = Connect(proxy_->port());
  ASSERT_GE(fd, 0);
  std::string got;
  ASSERT_TRUE(Send(fd, "ping"));
  ASSERT_EQ(ReadFor(fd, 4, absl::Seconds(5), &got), ReadResult::kData);
  proxy_->DropAll();
  got.clear();
  EXPECT_EQ(ReadFor(fd, 1, absl::Seconds(5), &got), ReadResult::kClosed);
  close(fd);
  EXPECT_TRUE(RoundTripOnNewConnection(proxy_->port(), absl::Seconds(5)));
  EXPECT_GE(proxy_->stats().reset, 1);
}

TEST_F(FaultProxyTest, RefusingPartitionResetsUntilItEnds) {
  int fd = Connect(proxy_->port());
  ASSERT_GE(fd, 0);
  proxy_->Partition(absl::Milliseconds(400), FaultProxy::PartitionMode::kRefuse);
  std::string got;
  EXPECT_EQ(ReadFor(fd, 1, absl::Seconds(5), &got), ReadResult::kClosed);
  close(fd);
  EXPECT_FALSE(RoundTripOnNewConnection(proxy_->port(), absl::Milliseconds(100)));
  // Bounded: the partition ends by itself after 400 ms.
  absl::Time end = absl::Now() + absl::Seconds(10);
  bool healed = false;
  while (!healed && absl::Now() < end) {
    healed = RoundTripOnNewConnection(proxy_->port(), absl::Milliseconds(200));
  }
  EXPECT_TRUE(healed);
}

TEST_F(FaultProxyTest, BlackholeHoldsBytesWithoutClosing) {
  int fd = Connect(proxy_->port());
  ASSERT_GE(fd, 0);
  proxy_->Partition(absl::Seconds(30), FaultProxy::PartitionMode::kBlackhole);
  std::string got;
  ASSERT_TRUE(Send(fd, "ping"));
  EXPECT_EQ(ReadFor(fd, 4, absl::Milliseconds(300), &got), ReadResult::kTimeout);
  // A connection opened during the blackhole is held, then connected.
  int held = Connect(proxy_->port());
  ASSERT_GE(held, 0);
  ASSERT_TRUE(Send(held, "pong"));
  proxy_->Heal();
  EXPECT_EQ(ReadFor(fd, 4, absl::Seconds(5), &got), ReadResult::kData);
  EXPECT_EQ(got, "ping");
  std::string got2;
  EXPECT_EQ(ReadFor(held, 4, absl::Seconds(5), &got2), ReadResult::kData);
  EXPECT_EQ(got2, "pong");
  close(fd);
  close(held);
}

TEST_F(FaultProxyTest, HalfOpenStopsForwardingWithoutClosing) {
  int fd = Connect(proxy_->port());
  ASSERT_GE(fd, 0);
  proxy_->SetHalfOpen(true);
  std::string got;
  ASSERT_TRUE(Send(fd, "ping"));
  EXPECT_EQ(ReadFor(fd, 4, absl::Milliseconds(300), &got), ReadResult::kTimeout);
  EXPECT_EQ(proxy_->stats().active, 1);
  proxy_->SetHalfOpen(false);
  EXPECT_EQ(ReadFor(fd, 4, absl::Seconds(5), &got), ReadResult::kData);
  EXPECT_EQ(got, "ping");
  close(fd);
}

TEST(FaultProxyStartTest, UnreachableTargetResetsClient) {
  // Port 1 on loopback: nothing listens there.
  auto proxy = FaultProxy::Start("127.0.0.1", 1);
  ASSERT_TRUE(proxy.ok());
  EXPECT_FALSE(RoundTripOnNewConnection((*proxy)->port(), absl::Seconds(2)));
}

}  // namespace
}  // namespace switchboard::testing
