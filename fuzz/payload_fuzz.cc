// Fuzzes the payload path a handler's request goes through
// (internal::ParsePayload): the first byte picks the content type
// (protobuf or JSON) and the message type; the rest is the payload.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "google/protobuf/struct.pb.h"
#include "switchboard/node.h"
#include "switchboard/v1/config.pb.h"
#include "switchboard/v1/envelope.pb.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  uint8_t selector = data[0];
  std::string_view payload(reinterpret_cast<const char*>(data + 1), size - 1);
  std::string_view content_type = (selector & 1) != 0 ? switchboard::kContentTypeJson
                                                      : switchboard::kContentTypeProtobuf;
  switchboard::v1::Envelope envelope_msg;
  switchboard::v1::Config config_msg;
  google::protobuf::Struct struct_msg;
  google::protobuf::Message* out = &envelope_msg;
  switch ((selector >> 1) % 3) {
    case 1: out = &config_msg; break;
    case 2: out = &struct_msg; break;
    default: break;
  }
  if (switchboard::internal::ParsePayload(payload, content_type, out).ok()) {
    // What parsed must serialize again in the same content type.
    (void)switchboard::internal::SerializePayload(*out, content_type);
  }
  return 0;
}
