#include <string>

#include "switchboard/internal/strings.h"
#include "google/protobuf/util/json_util.h"
#include "switchboard/node.h"

namespace switchboard::internal {

absl::Status ParsePayload(std::string_view data, std::string_view content_type,
                          google::protobuf::Message* out) {
  if (content_type.empty() || content_type == kContentTypeProtobuf ||
      content_type == "application/x-protobuf") {
    if (!out->ParseFromArray(data.data(), static_cast<int>(data.size()))) {
      return absl::InvalidArgumentError(Cat("payload is not a valid ",
                                                     out->GetDescriptor()->full_name(),
                                                     " (", data.size(), " bytes of protobuf)"));
    }
    return absl::OkStatus();
  }
  if (content_type == kContentTypeJson) {
    if (data.empty()) return absl::OkStatus();
    google::protobuf::util::JsonParseOptions options;
    options.ignore_unknown_fields = false;
    auto status = google::protobuf::util::JsonStringToMessage(
        google::protobuf::StringPiece(data.data(), data.size()), out, options);
    if (!status.ok()) {
      return absl::InvalidArgumentError(Cat("payload is not a valid JSON ",
                                                     out->GetDescriptor()->full_name(), ": ",
                                                     status.message().as_string()));
    }
    return absl::OkStatus();
  }
  return absl::InvalidArgumentError(Cat(
      "unsupported datacontenttype \"", content_type.substr(0, 64),
      "\"; use application/protobuf or application/json"));
}

absl::Status ParsePayload(const Envelope& env, google::protobuf::Message* out) {
  return ParsePayload(env.data, env.data_content_type, out);
}

absl::StatusOr<std::string> SerializePayload(const google::protobuf::Message& msg,
                                             std::string_view content_type) {
  if (content_type == kContentTypeJson) {
    std::string out;
    auto status = google::protobuf::util::MessageToJsonString(msg, &out);
    if (!status.ok()) {
      return absl::InternalError(Cat("cannot encode ", msg.GetDescriptor()->full_name(),
                                              " as JSON: ", status.message().as_string()));
    }
    return out;
  }
  std::string out;
  if (!msg.SerializeToString(&out)) {
    return absl::InternalError(Cat("cannot serialize ", msg.GetDescriptor()->full_name()));
  }
  return out;
}

absl::Status ExceptionStatus(std::string_view what) {
  absl::Status s = absl::InternalError(Cat("handler threw: ", what));
  s.SetPayload("switchboard/handler-exception", absl::Cord("1"));
  return s;
}

}  // namespace switchboard::internal
