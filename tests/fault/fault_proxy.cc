#include "fault_proxy.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <deque>
#include <list>
#include <vector>

#include "switchboard/internal/strings.h"

namespace switchboard::testing {
namespace {

constexpr size_t kReadChunk = 64 * 1024;
// Bytes held per direction before the proxy stops reading (backpressure to
// the sender, as a slow link would).
constexpr size_t kMaxQueued = 4 * 1024 * 1024;

void SetNonBlocking(int fd) { fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK); }

// Closes with RST rather than FIN: the peer sees a dropped connection.
void Reset(int fd) {
  if (fd < 0) return;
  linger lg{1, 0};
  setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
  close(fd);
}

struct Chunk {
  absl::Time due;
  std::string bytes;
  size_t sent = 0;
};

struct Flow {
  std::deque<Chunk> queue;
  size_t queued = 0;
  bool read_eof = false;   // source closed its side
  bool shut = false;       // we shut down the destination's write side
  bool hup = false;        // the source hung up while forwarding was stopped
};

struct Pair {
  int client = -1;
  int server = -1;  // -1 while held by a blackhole partition
  Flow up;          // client -> server
  Flow down;        // server -> client
  bool dead = false;
};

absl::StatusOr<int> ConnectTo(const std::string& host, uint16_t port) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return absl::InternalError(Cat("socket: ", std::strerror(errno)));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  if (inet_pton(AF_INET, host.c_str(), &addr.sin_addr) != 1) {
    close(fd);
    return absl::InvalidArgumentError(Cat("fault proxy: target host ", host, " is not an IPv4 address"));
  }
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    int err = errno;
    close(fd);
    return absl::UnavailableError(Cat("fault proxy: connect to ", host, ":", port, ": ", std::strerror(err)));
  }
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  SetNonBlocking(fd);
  return fd;
}

}  // namespace

struct FaultProxy::Shared {
  mutable absl::Mutex mu;
  absl::Duration latency[2] ABSL_GUARDED_BY(mu) = {absl::ZeroDuration(), absl::ZeroDuration()};
  int64_t drop_generation ABSL_GUARDED_BY(mu) = 0;
  absl::Time partition_until ABSL_GUARDED_BY(mu) = absl::InfinitePast();
  PartitionMode mode ABSL_GUARDED_BY(mu) = PartitionMode::kRefuse;
  bool half_open ABSL_GUARDED_BY(mu) = false;
  bool stop ABSL_GUARDED_BY(mu) = false;
  Stats stats ABSL_GUARDED_BY(mu);
};

absl::StatusOr<std::unique_ptr<FaultProxy>> FaultProxy::Start(const std::string& target_host,
                                                              uint16_t target_port) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return absl::InternalError(Cat("fault proxy: socket: ", std::strerror(errno)));
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  socklen_t len = sizeof(addr);
  if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 || listen(fd, 128) != 0 ||
      getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    int err = errno;
    close(fd);
    return absl::InternalError(Cat("fault proxy: listen on 127.0.0.1: ", std::strerror(err)));
  }
  SetNonBlocking(fd);
  return std::unique_ptr<FaultProxy>(
      new FaultProxy(fd, ntohs(addr.sin_port), target_host, target_port));
}

FaultProxy::FaultProxy(int listen_fd, uint16_t port, std::string target_host, uint16_t target_port)
    : listen_fd_(listen_fd),
      port_(port),
      target_host_(std::move(target_host)),
      target_port_(target_port),
      shared_(std::make_unique<Shared>()) {
  if (pipe(wake_fds_) == 0) {
    SetNonBlocking(wake_fds_[0]);
    SetNonBlocking(wake_fds_[1]);
  }
  thread_ = std::thread([this] { Run(); });
}

FaultProxy::~FaultProxy() {
  {
    absl::MutexLock lock(&shared_->mu);
    shared_->stop = true;
  }
  Wake();
  thread_.join();
  close(listen_fd_);
  close(wake_fds_[0]);
  close(wake_fds_[1]);
}

std::string FaultProxy::address() const { return Cat("127.0.0.1:", port_); }

void FaultProxy::Wake() {
  char c = 1;
  (void)!write(wake_fds_[1], &c, 1);
}

void FaultProxy::SetLatency(Direction direction, absl::Duration latency) {
  {
    absl::MutexLock lock(&shared_->mu);
    shared_->latency[direction == Direction::kToServer ? 0 : 1] = latency;
  }
  Wake();
}

void FaultProxy::DropAll() {
  {
    absl::MutexLock lock(&shared_->mu);
    ++shared_->drop_generation;
  }
  Wake();
}

void FaultProxy::Partition(absl::Duration duration, PartitionMode mode) {
  {
    absl::MutexLock lock(&shared_->mu);
    shared_->partition_until = absl::Now() + duration;
    shared_->mode = mode;
    if (mode == PartitionMode::kRefuse) ++shared_->drop_generation;
  }
  Wake();
}

void FaultProxy::Heal() {
  {
    absl::MutexLock lock(&shared_->mu);
    shared_->partition_until = absl::InfinitePast();
  }
  Wake();
}

void FaultProxy::SetHalfOpen(bool half_open) {
  {
    absl::MutexLock lock(&shared_->mu);
    shared_->half_open = half_open;
  }
  Wake();
}

FaultProxy::Stats FaultProxy::stats() const {
  absl::MutexLock lock(&shared_->mu);
  return shared_->stats;
}

void FaultProxy::Run() {
  std::list<Pair> pairs;
  int64_t seen_drop = 0;
  auto count = [this](auto fn) {
    absl::MutexLock lock(&shared_->mu);
    fn(shared_->stats);
  };
  auto kill = [&](Pair& p) {
    Reset(p.client);
    Reset(p.server);
    p.client = p.server = -1;
    p.dead = true;
  };

  while (true) {
    absl::Duration latency[2];
    bool partitioned, half_open, refuse;
    int64_t drop;
    absl::Time now = absl::Now();
    absl::Time partition_until;
    {
      absl::MutexLock lock(&shared_->mu);
      if (shared_->stop) break;
      latency[0] = shared_->latency[0];
      latency[1] = shared_->latency[1];
      partition_until = shared_->partition_until;
      partitioned = now < partition_until;
      refuse = partitioned && shared_->mode == PartitionMode::kRefuse;
      half_open = shared_->half_open;
      drop = shared_->drop_generation;
    }
    if (drop != seen_drop) {
      seen_drop = drop;
      int64_t n = 0;
      for (Pair& p : pairs) {
        if (!p.dead) {
          kill(p);
          ++n;
        }
      }
      count([n](Stats& s) { s.reset += n; });
    }
    // Connections held by a blackhole get their upstream once it ends.
    if (!partitioned) {
      for (Pair& p : pairs) {
        if (!p.dead && p.server < 0) {
          auto fd = ConnectTo(target_host_, target_port_);
          if (fd.ok()) {
            p.server = *fd;
          } else {
            kill(p);
          }
        }
      }
    }
    bool forwarding = !partitioned && !half_open;

    // Build the poll set: [0] wake pipe, [1] listener, then per pair.
    std::vector<pollfd> fds;
    std::vector<std::pair<Pair*, bool>> owners;  // (pair, is_client)
    fds.push_back({wake_fds_[0], POLLIN, 0});
    fds.push_back({listen_fd_, POLLIN, 0});
    absl::Time next_due = absl::InfiniteFuture();
    if (partitioned) next_due = partition_until;
    for (Pair& p : pairs) {
      if (p.dead) continue;
      for (bool is_client : {true, false}) {
        int fd = is_client ? p.client : p.server;
        if (fd < 0) continue;
        // Reading from this fd feeds `in`; writing to it drains `out`.
        Flow& in = is_client ? p.up : p.down;
        Flow& out = is_client ? p.down : p.up;
        short events = 0;
        if (forwarding && !in.read_eof && in.queued < kMaxQueued) events |= POLLIN;
        if (forwarding && !out.queue.empty()) {
          if (out.queue.front().due <= now) {
            events |= POLLOUT;
          } else {
            next_due = std::min(next_due, out.queue.front().due);
          }
        }
        // A hung-up socket reports POLLHUP on every poll: leave it out
        // until forwarding resumes.
        if (!forwarding && in.hup) continue;
        fds.push_back({fd, events, 0});
        owners.emplace_back(&p, is_client);
      }
    }
    int timeout_ms = -1;
    if (next_due != absl::InfiniteFuture()) {
      timeout_ms = static_cast<int>(
          std::clamp<int64_t>(absl::ToInt64Milliseconds(next_due - now) + 1, 0, 1000));
    }
    if (poll(fds.data(), fds.size(), timeout_ms) < 0 && errno != EINTR) break;
    now = absl::Now();

    if (fds[0].revents & POLLIN) {
      char buf[64];
      while (read(wake_fds_[0], buf, sizeof(buf)) > 0) {
      }
    }
    if (fds[1].revents & POLLIN) {
      while (true) {
        int c = accept(listen_fd_, nullptr, nullptr);
        if (c < 0) break;
        count([](Stats& s) { ++s.accepted; });
        if (refuse) {
          Reset(c);
          count([](Stats& s) { ++s.reset; });
          continue;
        }
        int one = 1;
        setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        SetNonBlocking(c);
        Pair p;
        p.client = c;
        if (!partitioned) {
          auto fd = ConnectTo(target_host_, target_port_);
          if (!fd.ok()) {
            Reset(c);
            count([](Stats& s) { ++s.reset; });
            continue;
          }
          p.server = *fd;
        }
        pairs.push_back(std::move(p));
      }
    }
    for (size_t i = 2; i < fds.size(); ++i) {
      auto [p, is_client] = owners[i - 2];
      if (p->dead) continue;
      int fd = fds[i].fd;
      Flow& in = is_client ? p->up : p->down;
      Flow& out = is_client ? p->down : p->up;
      short re = fds[i].revents;
      if (re & (POLLERR | POLLNVAL)) {
        kill(*p);
        continue;
      }
      if (re & (POLLIN | POLLHUP)) {
        if (!forwarding) {
          in.hup = true;
          continue;
        }
        char buf[kReadChunk];
        ssize_t n = read(fd, buf, sizeof(buf));
        if (n > 0) {
          in.queue.push_back({now + latency[is_client ? 0 : 1], std::string(buf, n), 0});
          in.queued += n;
          count([&](Stats& s) { (is_client ? s.bytes_to_server : s.bytes_to_client) += n; });
        } else if (n == 0) {
          in.read_eof = true;
        } else if (errno != EAGAIN && errno != EINTR) {
          kill(*p);
          continue;
        }
      }
      if (re & POLLOUT) {
        while (!out.queue.empty() && out.queue.front().due <= now) {
          Chunk& c = out.queue.front();
          ssize_t n = send(fd, c.bytes.data() + c.sent, c.bytes.size() - c.sent, MSG_NOSIGNAL);
          if (n < 0) {
            if (errno != EAGAIN && errno != EINTR) kill(*p);
            break;
          }
          c.sent += n;
          out.queued -= n;
          if (c.sent < c.bytes.size()) break;
          out.queue.pop_front();
        }
        if (p->dead) continue;
      }
    }
    // Pass EOFs on once everything before them is delivered; a pair whose
    // both sides ended is closed.
    for (Pair& p : pairs) {
      if (p.dead || p.server < 0) continue;
      if (p.up.read_eof && p.up.queue.empty() && !p.up.shut) {
        shutdown(p.server, SHUT_WR);
        p.up.shut = true;
      }
      if (p.down.read_eof && p.down.queue.empty() && !p.down.shut) {
        shutdown(p.client, SHUT_WR);
        p.down.shut = true;
      }
      if (p.up.shut && p.down.shut) {
        close(p.client);
        close(p.server);
        p.client = p.server = -1;
        p.dead = true;
      }
    }
    pairs.remove_if([](const Pair& p) { return p.dead; });
    int64_t active = static_cast<int64_t>(pairs.size());
    count([active](Stats& s) { s.active = active; });
  }
  for (Pair& p : pairs) {
    if (p.client >= 0) close(p.client);
    if (p.server >= 0) close(p.server);
  }
}

}  // namespace switchboard::testing
