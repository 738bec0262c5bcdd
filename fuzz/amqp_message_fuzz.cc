// Fuzzes the AMQP 1.0 binding (amqp::MessageToEnvelope). First byte even:
// the rest is an AMQP-encoded message as it arrives from a broker
// (proton::message::decode). Odd: the rest is "name: value" lines put in
// application-properties (values typed by a prefix: "l:" long, "t:"
// timestamp, "b:" bool, otherwise string) and a body, so the mapping is
// reached even when the codec rejects most random bytes.
#include <cstddef>
#include <cstdint>
#include <exception>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "amqp_wire.h"
#include "fuzz_input.h"
#include "proton/binary.hpp"
#include "proton/message.hpp"
#include "proton/message_id.hpp"
#include "proton/scalar.hpp"
#include "proton/timestamp.hpp"

namespace {

proton::scalar TypedValue(const std::string& v) {
  int64_t n = 0;
  if (v.size() > 2 && v[1] == ':') {
    std::string rest = v.substr(2);
    switch (v[0]) {
      case 'l':
        if (absl::SimpleAtoi(rest, &n)) return proton::scalar(n);
        break;
      case 't':
        if (absl::SimpleAtoi(rest, &n)) return proton::scalar(proton::timestamp(n));
        break;
      case 'b': return proton::scalar(rest == "true");
      default: break;
    }
  }
  return proton::scalar(v);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  proton::message msg;
  try {
    if ((data[0] & 1) == 0) {
      msg.decode(std::vector<char>(data + 1, data + size));
    } else {
      switchboard::fuzz::HeaderInput in = switchboard::fuzz::SplitHeaders(data + 1, size - 1);
      for (auto& [name, value] : in.headers) {
        if (name == "message-id") msg.id(proton::message_id(value));
        else if (name == "correlation-id") msg.correlation_id(proton::message_id(value));
        else if (name == "reply-to") msg.reply_to(value);
        else if (name == "content-type") msg.content_type(value);
        else msg.properties().put(name, TypedValue(value));
      }
      msg.body(proton::binary(in.body.begin(), in.body.end()));
    }
  } catch (const std::exception&) {
    return 0;  // the codec refused the bytes: proton's concern, not the mapping's
  }
  auto env = switchboard::amqp::MessageToEnvelope(msg);
  (void)switchboard::amqp::MessageIdOf(msg);
  if (env.ok()) {
    proton::message out;
    if (switchboard::amqp::EnvelopeToMessage(*env, true, &out).ok()) {
      (void)switchboard::amqp::MessageToEnvelope(out);
    }
  }
  return 0;
}
