#include "switchboard/transport.h"

#include "switchboard/internal/envelope_pool.h"

namespace switchboard {

Delivery::~Delivery() { internal::RecycleEnvelope(std::move(envelope_)); }

std::string DeadLetterAddress(std::string_view operation) {
  std::string out;
  out.reserve(operation.size() + 4);
  out.append(operation).append(".dlq");
  return out;
}

}  // namespace switchboard
