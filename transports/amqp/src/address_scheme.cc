#include "address_scheme.h"

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "sv.h"

namespace switchboard::amqp {
namespace {

class RabbitMqScheme final : public AddressScheme {
 public:
  explicit RabbitMqScheme(std::string prefix) : prefix_(std::move(prefix)) {}

  std::string RequestQueue(std::string_view operation) const override {
    // Apart from the command queue: requests use non-durable links and a
    // queue cannot mix durable and non-durable links.
    return absl::StrCat(prefix_, "req.", SanitizeName(operation));
  }
  std::string CommandQueue(std::string_view operation) const override {
    return absl::StrCat(prefix_, SanitizeName(operation));
  }
  std::string GroupQueue(std::string_view event_type, std::string_view group) const override {
    return absl::StrCat(prefix_, "evt.", SanitizeName(event_type), ".", SanitizeName(group));
  }
  std::string ReplyQueue(std::string_view unique) const override {
    return absl::StrCat(prefix_, "reply.", SanitizeName(unique));
  }
  std::string RoutingKey(std::string_view event_type) const override {
    return absl::StrCat(prefix_, SanitizeName(event_type));
  }
  std::string DeclaringQueueAddress(std::string_view queue) const override {
    return absl::StrCat("/queue/", Sv(queue));
  }
  std::string ExistingQueueAddress(std::string_view queue) const override {
    return absl::StrCat("/amq/queue/", Sv(queue));
  }
  std::string TopicAddress(std::string_view routing_key) const override {
    return absl::StrCat("/exchange/amq.topic/", Sv(routing_key));
  }
  bool FirstAcquirerMarksRedelivery() const override { return true; }

 private:
  std::string prefix_;
};

}  // namespace

std::string SanitizeName(std::string_view name) {
  std::string out;
  out.reserve(name.size());
  for (char c : name) {
    if (absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '-' || c == '_') {
      out.push_back(c);
    } else if (c == '/') {
      out.push_back('.');
    } else {
      out.push_back('_');
    }
  }
  return out;
}

std::unique_ptr<AddressScheme> MakeRabbitMqScheme(std::string prefix) {
  return std::make_unique<RabbitMqScheme>(std::move(prefix));
}

absl::StatusOr<std::unique_ptr<AddressScheme>> MakeAddressScheme(std::string_view profile,
                                                                 std::string prefix) {
  if (profile.empty() || profile == "rabbitmq") return MakeRabbitMqScheme(std::move(prefix));
  return absl::InvalidArgumentError(absl::StrCat(
      "amqp: unknown broker profile \"", Sv(profile), "\"; set `profile: rabbitmq`"));
}

}  // namespace switchboard::amqp
