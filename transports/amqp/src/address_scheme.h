// address_scheme.h: how a broker profile names queues and AMQP addresses.
//
// The transport derives every native name from the operation (and group)
// through this interface, deterministically, so separate processes agree.
// `RabbitMqScheme` follows RabbitMQ 3.10's AMQP 1.0 plugin (`/queue/NAME`,
// `/amq/queue/NAME`, `/exchange/amq.topic/KEY`); an Artemis-style profile
// (`queue://NAME`, `topic://KEY`, FQQN `KEY::GROUP`) implements the same
// interface.
//
// Thread safety: immutable after construction; any thread.
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"

namespace switchboard::amqp {

class AddressScheme {
 public:
  virtual ~AddressScheme() = default;

  // ---- queue names ----
  virtual std::string RequestQueue(std::string_view operation) const = 0;
  virtual std::string CommandQueue(std::string_view operation) const = 0;
  virtual std::string GroupQueue(std::string_view event_type, std::string_view group) const = 0;
  virtual std::string ReplyQueue(std::string_view unique) const = 0;
  virtual std::string RoutingKey(std::string_view event_type) const = 0;

  // ---- AMQP addresses ----
  // A queue the link may declare on attach.
  virtual std::string DeclaringQueueAddress(std::string_view queue) const = 0;
  // A queue that must already exist (the attach fails otherwise).
  virtual std::string ExistingQueueAddress(std::string_view queue) const = 0;
  // Where an event with this routing key is published.
  virtual std::string TopicAddress(std::string_view routing_key) const = 0;

  // ---- broker traits ----
  // RabbitMQ sends every message with a header whose first-acquirer is
  // false on a redelivery (its delivery-count stays 0), so a false
  // first-acquirer means "delivered before".
  virtual bool FirstAcquirerMarksRedelivery() const { return false; }
};

// `prefix` is prepended to every queue name (AmqpOptions.address_prefix).
[[nodiscard]] std::unique_ptr<AddressScheme> MakeRabbitMqScheme(std::string prefix);

// By profile name ("" or "rabbitmq"); InvalidArgument for an unknown one.
[[nodiscard]] absl::StatusOr<std::unique_ptr<AddressScheme>> MakeAddressScheme(
    std::string_view profile, std::string prefix);

// Maps a name to the characters queue names allow everywhere: letters,
// digits, '.', '-', '_'; '/' becomes '.', anything else '_'.
[[nodiscard]] std::string SanitizeName(std::string_view name);

}  // namespace switchboard::amqp
