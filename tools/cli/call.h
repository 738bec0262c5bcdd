// call.h: `switchboard call` and `switchboard publish` as library functions.
//
// A JSON payload is converted to the operation's protobuf request type
// through its descriptor, sent with Node::CallRaw, and the reply converted
// back to JSON. Descriptors come from the protos linked into the program
// (the generated pool) first, then from .proto files parsed at run time:
//
//   auto protos = switchboard::cli::ProtoSource::Create({"orders/v1/orders.proto"}, {"proto"});
//   auto reply = switchboard::cli::CallJson(*node, **protos, "orders.v1.Orders/PlaceOrder",
//                                           R"({"userId": "u1"})");
//
// Errors: InvalidArgument for a payload that does not match the request type
// (nothing is sent), NotFound for an operation or event type no descriptor
// knows, else the call's own status.
//
// Thread safety: a ProtoSource is immutable after Create and may be shared.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "google/protobuf/compiler/importer.h"
#include "google/protobuf/descriptor.h"
#include "switchboard/node.h"

namespace switchboard::cli {

class ProtoSource {
 public:
  // Parses `protos` (paths on disk, or names relative to an import dir),
  // resolving imports in `import_dirs`, then the protobuf include directory.
  // InvalidArgument with the parser's messages if one does not parse.
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<ProtoSource>> Create(
      const std::vector<std::string>& protos, const std::vector<std::string>& import_dirs);
  ~ProtoSource();

  // "pkg.Service/Method" -> its descriptor, or null.
  [[nodiscard]] const google::protobuf::MethodDescriptor* FindMethod(std::string_view operation) const;
  // A message's full name -> its descriptor, or null.
  [[nodiscard]] const google::protobuf::Descriptor* FindMessage(std::string_view full_name) const;

 private:
  class Errors;
  ProtoSource() = default;
  std::unique_ptr<google::protobuf::compiler::DiskSourceTree> tree_;
  std::unique_ptr<Errors> errors_;
  std::unique_ptr<google::protobuf::compiler::Importer> importer_;
};

// JSON text -> a serialized `type`. InvalidArgument naming the type if the
// JSON does not fit it.
[[nodiscard]] absl::StatusOr<std::string> JsonToBytes(const google::protobuf::Descriptor& type,
                                                      std::string_view json);
// Serialized `type` -> JSON text.
[[nodiscard]] absl::StatusOr<std::string> BytesToJson(const google::protobuf::Descriptor& type,
                                                      std::string_view bytes);

struct CallResult {
  std::string json;  // the reply; "{}" for fire-and-forget styles
  CallInfo info;     // message id, idempotency key, trace id
};

// Calls `operation` with a JSON request and waits for the reply, at most
// `wait` (DeadlineExceeded after that; the call's own timeout comes from the
// config or options.timeout).
[[nodiscard]] absl::StatusOr<CallResult> CallJson(Node& node, const ProtoSource& protos,
                                                  std::string_view operation, std::string_view json,
                                                  CallOptions options = {},
                                                  absl::Duration wait = absl::Seconds(60));

// Publishes the event `event_type` (a message's full name, bound as an event
// or as any other style: the node decides) from JSON.
[[nodiscard]] absl::StatusOr<CallResult> PublishJson(Node& node, const ProtoSource& protos,
                                                     std::string_view event_type, std::string_view json,
                                                     CallOptions options = {},
                                                     absl::Duration wait = absl::Seconds(60));

}  // namespace switchboard::cli
