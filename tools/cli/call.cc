#include "call.h"

#include <filesystem>

#include "google/protobuf/dynamic_message.h"
#include "google/protobuf/util/json_util.h"
#include "switchboard/internal/strings.h"

namespace switchboard::cli {
namespace {

namespace gpb = google::protobuf;

std::string MethodFullName(std::string_view operation) {
  size_t slash = operation.rfind('/');
  if (slash == std::string_view::npos) return std::string(operation);
  return Cat(operation.substr(0, slash), ".", operation.substr(slash + 1));
}

absl::StatusOr<CallResult> Finish(Future<std::string> future, const gpb::Descriptor* reply_type,
                                  absl::Duration wait) {
  CallInfo info = future.info();
  absl::StatusOr<std::string> bytes = std::move(future).GetFor(wait);
  if (!bytes.ok()) return bytes.status();
  CallResult result;
  result.info = std::move(info);
  // Fire-and-forget styles resolve with no payload: an acceptance.
  if (reply_type == nullptr || bytes->empty()) {
    result.json = "{}";
    return result;
  }
  absl::StatusOr<std::string> json = BytesToJson(*reply_type, *bytes);
  if (!json.ok()) return json.status();
  result.json = *std::move(json);
  return result;
}

}  // namespace

class ProtoSource::Errors : public gpb::compiler::MultiFileErrorCollector {
 public:
  void AddError(const std::string& filename, int line, int column, const std::string& message) override {
    text += Cat(filename, ":", line + 1, ":", column + 1, ": ", message, "\n");
  }
  std::string text;
};

absl::StatusOr<std::unique_ptr<ProtoSource>> ProtoSource::Create(const std::vector<std::string>& protos,
                                                                 const std::vector<std::string>& import_dirs) {
  std::unique_ptr<ProtoSource> source(new ProtoSource());
  source->tree_ = std::make_unique<gpb::compiler::DiskSourceTree>();
  source->errors_ = std::make_unique<Errors>();
  for (const std::string& dir : import_dirs) source->tree_->MapPath("", dir);
#ifdef SWITCHBOARD_PROTOBUF_INCLUDE_DIR
  // google/protobuf/*.proto (empty, duration, ...), last so a user's own wins.
  source->tree_->MapPath("", SWITCHBOARD_PROTOBUF_INCLUDE_DIR);
#endif
  source->importer_ = std::make_unique<gpb::compiler::Importer>(source->tree_.get(), source->errors_.get());
  for (const std::string& proto : protos) {
    std::string virtual_name = proto;
    if (std::filesystem::exists(proto)) {
      std::string shadowing;
      auto mapped = source->tree_->DiskFileToVirtualFile(proto, &virtual_name, &shadowing);
      if (mapped != gpb::compiler::DiskSourceTree::SUCCESS) {
        return absl::InvalidArgumentError(
            Cat("proto file ", proto, " is not under any import directory; add -I <its root directory> "
                "(the directory its package path starts from)"));
      }
    }
    if (source->importer_->Import(virtual_name) == nullptr) {
      return absl::InvalidArgumentError(
          Cat("cannot load ", proto, ":\n", source->errors_->text.empty() ? "not found; check -I" : source->errors_->text));
    }
  }
  return source;
}

ProtoSource::~ProtoSource() = default;

const gpb::MethodDescriptor* ProtoSource::FindMethod(std::string_view operation) const {
  std::string full = MethodFullName(operation);
  if (const auto* m = gpb::DescriptorPool::generated_pool()->FindMethodByName(full)) return m;
  if (importer_ != nullptr) return importer_->pool()->FindMethodByName(full);
  return nullptr;
}

const gpb::Descriptor* ProtoSource::FindMessage(std::string_view full_name) const {
  std::string name(full_name);
  if (const auto* d = gpb::DescriptorPool::generated_pool()->FindMessageTypeByName(name)) return d;
  if (importer_ != nullptr) return importer_->pool()->FindMessageTypeByName(name);
  return nullptr;
}

absl::StatusOr<std::string> JsonToBytes(const gpb::Descriptor& type, std::string_view json) {
  gpb::DynamicMessageFactory factory;
  std::unique_ptr<gpb::Message> message(factory.GetPrototype(&type)->New());
  auto parsed = gpb::util::JsonStringToMessage(gpb::StringPiece(json.data(), json.size()), message.get());
  if (!parsed.ok()) {
    return absl::InvalidArgumentError(Cat("the payload is not JSON of ", type.full_name(), ": ",
                                          parsed.ToString(), " (JSON field names are the proto field names ",
                                          "or their lowerCamelCase form)"));
  }
  return message->SerializeAsString();
}

absl::StatusOr<std::string> BytesToJson(const gpb::Descriptor& type, std::string_view bytes) {
  gpb::DynamicMessageFactory factory;
  std::unique_ptr<gpb::Message> message(factory.GetPrototype(&type)->New());
  if (!message->ParseFromArray(bytes.data(), static_cast<int>(bytes.size()))) {
    return absl::DataLossError(Cat("the reply does not parse as ", type.full_name()));
  }
  std::string json;
  auto printed = gpb::util::MessageToJsonString(*message, &json);
  if (!printed.ok()) return absl::InternalError(Cat("cannot print the reply as JSON: ", printed.ToString()));
  return json;
}

absl::StatusOr<CallResult> CallJson(Node& node, const ProtoSource& protos, std::string_view operation,
                                    std::string_view json, CallOptions options, absl::Duration wait) {
  const gpb::MethodDescriptor* method = protos.FindMethod(operation);
  if (method == nullptr) {
    return absl::NotFoundError(Cat("no descriptor for method ", MethodFullName(operation),
                                   " (operation `", operation, "`); pass its .proto with --proto FILE -I DIR"));
  }
  absl::StatusOr<std::string> payload = JsonToBytes(*method->input_type(), json);
  if (!payload.ok()) return payload.status();
  return Finish(node.CallRaw(operation, *std::move(payload), std::move(options)), method->output_type(), wait);
}

absl::StatusOr<CallResult> PublishJson(Node& node, const ProtoSource& protos, std::string_view event_type,
                                       std::string_view json, CallOptions options, absl::Duration wait) {
  const gpb::Descriptor* type = protos.FindMessage(event_type);
  if (type == nullptr) {
    return absl::NotFoundError(Cat("no descriptor for message ", event_type,
                                   "; pass its .proto with --proto FILE -I DIR"));
  }
  absl::StatusOr<std::string> payload = JsonToBytes(*type, json);
  if (!payload.ok()) return payload.status();
  return Finish(node.CallRaw(event_type, *std::move(payload), std::move(options)), nullptr, wait);
}

}  // namespace switchboard::cli
