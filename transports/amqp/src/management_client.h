// management_client.h: the few RabbitMQ management-API calls the transport
// needs (HTTP, blocking, bounded by timeouts).
//
// RabbitMQ 3.10's AMQP 1.0 plugin cannot declare a queue bound to an
// exchange, nor an auto-delete queue; the management API can.
//
// Thread safety: every method may be called from any thread (one HTTP
// connection per call). Calls block for at most about `timeout`; never call
// them on the Proton container thread.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace switchboard::amqp {

class ManagementClient {
 public:
  // `url` is "http://user:password@host:port" or "host:port"; credentials
  // missing from it come from `user` / `password`.
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<ManagementClient>> Create(
      std::string_view url, std::string user, std::string password,
      absl::Duration timeout = absl::Seconds(5));

  // PUT /api/queues/<vhost>/<queue>. OK when it exists with the same
  // settings; FailedPrecondition when it exists with different ones.
  [[nodiscard]] absl::Status DeclareQueue(std::string_view queue, bool durable, bool auto_delete);
  // POST /api/bindings/<vhost>/e/<exchange>/q/<queue>.
  [[nodiscard]] absl::Status Bind(std::string_view exchange, std::string_view queue,
                                  std::string_view routing_key);
  [[nodiscard]] absl::StatusOr<bool> QueueExists(std::string_view queue);
  // Messages in the queue as the management statistics last saw them.
  [[nodiscard]] absl::StatusOr<int64_t> QueueMessages(std::string_view queue);
  [[nodiscard]] absl::Status DeleteQueue(std::string_view queue);

  // "http://host:port" (no credentials), for error texts.
  const std::string& redacted_url() const { return base_; }

 private:
  ManagementClient(std::string host, int port, std::string user, std::string password,
                   absl::Duration timeout);
  struct Response {
    int status = 0;
    std::string body;
  };
  absl::StatusOr<Response> Call(std::string_view method, const std::string& path,
                                const std::string& body);

  std::string host_;
  int port_;
  std::string user_;
  std::string password_;
  absl::Duration timeout_;
  std::string base_;
  std::string vhost_ = "%2F";
};

// Percent-encodes a path segment.
[[nodiscard]] std::string EncodePathSegment(std::string_view segment);

}  // namespace switchboard::amqp
