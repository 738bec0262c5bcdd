// fault_proxy.h: a TCP proxy on 127.0.0.1 that tests put between a client
// and a server or broker to inject network faults (the kernel here has no
// `tc netem`).
//
//   auto proxy = FaultProxy::Start("127.0.0.1", nats_port).value();
//   config.set_url(absl::StrCat("nats://", proxy->address()));
//   proxy->Partition(absl::Seconds(5), FaultProxy::PartitionMode::kRefuse);
//
// Faults:
// - latency per direction: every chunk is held for the given time before it
//   is forwarded (order preserved);
// - DropAll(): resets every open connection now (new ones are accepted);
// - Partition(d, kRefuse): open connections are reset and new ones are
//   accepted and reset at once, for `d`;
// - Partition(d, kBlackhole): nothing is forwarded and nothing is closed for
//   `d` (bytes wait in the kernel buffers; new connections are held and only
//   connected to the target when the partition ends);
// - SetHalfOpen(true): forwarding stops on every connection but no socket is
//   closed, until SetHalfOpen(false): the peer sees a silent, open
//   connection, which only a heartbeat can detect.
//
// Thread safety: every method may be called from any thread. One internal
// thread runs the proxy; the destructor stops it and closes every socket.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace switchboard::testing {

class FaultProxy {
 public:
  enum class Direction { kToServer, kToClient };
  enum class PartitionMode { kRefuse, kBlackhole };

  struct Stats {
    int64_t accepted = 0;       // client connections accepted
    int64_t active = 0;         // connection pairs open now
    int64_t reset = 0;          // connections closed by a fault
    int64_t bytes_to_server = 0;
    int64_t bytes_to_client = 0;
  };

  // Listens on 127.0.0.1 with a port the OS picks and forwards each
  // accepted connection to target_host:target_port.
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<FaultProxy>> Start(
      const std::string& target_host, uint16_t target_port);
  ~FaultProxy();
  FaultProxy(const FaultProxy&) = delete;
  FaultProxy& operator=(const FaultProxy&) = delete;

  uint16_t port() const { return port_; }
  // "127.0.0.1:<port>".
  std::string address() const;

  void SetLatency(Direction direction, absl::Duration latency);
  void DropAll();
  void Partition(absl::Duration duration, PartitionMode mode);
  // Ends a partition early.
  void Heal();
  void SetHalfOpen(bool half_open);

  Stats stats() const;

 private:
  struct Shared;
  FaultProxy(int listen_fd, uint16_t port, std::string target_host, uint16_t target_port);
  void Wake();
  void Run();

  const int listen_fd_;
  const uint16_t port_;
  const std::string target_host_;
  const uint16_t target_port_;
  int wake_fds_[2] = {-1, -1};
  std::unique_ptr<Shared> shared_;
  std::thread thread_;
};

}  // namespace switchboard::testing
