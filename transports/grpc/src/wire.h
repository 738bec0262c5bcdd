// wire.h: the gRPC transport's mapping between envelopes and gRPC metadata,
// and its address conventions. No gRPC types here, so it is unit-tested
// without a server.
//
// Metadata keys are the CloudEvents binary-mode names with the `ce-` prefix
// (as in the NATS and HTTP bindings), plus the plain W3C `traceparent` /
// `tracestate`; values are percent-encoded as the NATS binding does. The
// deadline is not in the metadata: gRPC carries it as `grpc-timeout`.
//
// The protobuf body is authoritative. By default only what proxies and
// tracers route and join on travels as metadata (MetadataSet::kRouting):
// every custom header is an HPACK literal that costs encoding, parsing and
// several allocations on both ends of every call (about 5,000 instructions
// per header and call, measured).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/container/inlined_vector.h"
#include "absl/functional/function_ref.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "switchboard/envelope.h"
#include "switchboard/internal/envelope_wire.h"
#include "switchboard/internal/percent_encoding.h"

namespace switchboard::grpc::wire {

using Metadata = std::vector<std::pair<std::string, std::string>>;
// Received metadata as views into the call's own storage.
using MetadataView = std::pair<std::string_view, std::string_view>;

// Which attributes a sender puts in metadata next to the body.
enum class MetadataSet {
  // ce-type (the operation: the gRPC method is the same for all of them)
  // and W3C traceparent / tracestate: enough for a proxy to route by
  // operation and for a tracer to join the trace without the body.
  kRouting,
  // Every attribute and extension: on every call with
  // `grpc.full_metadata: true`, for readers that see only metadata, and
  // always on an error reply, which has no body.
  kFull,
};

// Longest metadata value sent (after encoding); longer ones are in the body
// only.
inline constexpr size_t kMaxMetadataValue = 1024;

// Calls `emit(key, value)` for each metadata entry a sender attaches for
// `env` (keys lower case, values printable ASCII). Extensions whose names are
// not valid metadata keys, and values longer than kMaxMetadataValue, are left
// to the body. The views are valid only during the call to `emit`; a value
// that needs no escaping is passed without a copy.
void ForEachMetadata(const Envelope& env, MetadataSet set,
                     absl::FunctionRef<void(std::string_view key, std::string_view value)> emit);
// The same entries, copied.
[[nodiscard]] Metadata ToMetadata(const Envelope& env, MetadataSet set = MetadataSet::kFull);

// Fills the attributes the body left empty (or, for time, deadline, attempt
// and style, did not send) from received metadata, so that a client that
// sends only metadata and data is understood. The body wins: a value is
// decoded only when its attribute is empty in the body. Goes between
// internal::ReadEnvelopeWire and internal::CompleteEnvelope.
void FillFromMetadata(absl::Span<const MetadataView> md, Envelope* env,
                      internal::EnvelopeWireRest* rest);
void FillFromMetadata(const Metadata& md, Envelope* env, internal::EnvelopeWireRest* rest);

// The binding's percent-encoding (switchboard/internal/percent_encoding.h).
using internal::AppendPercentEncoded;
using internal::NeedsPercentEncoding;
using internal::PercentEncode;
// Decodes %XY escapes; malformed escapes are kept literally.
[[nodiscard]] std::string PercentDecode(std::string_view value);

// The target keys tried for an operation, most specific first:
// "pkg.Service/Method" -> {"pkg.Service/Method", "pkg.Service", "*"};
// event type "pkg.Type" -> {"pkg.Type", "pkg", "*"}. Views into `operation`
// (and a static "*"): every call resolves its target, so nothing is copied.
using TargetKeyList = absl::InlinedVector<std::string_view, 3>;
[[nodiscard]] TargetKeyList TargetKeys(std::string_view operation);

// Reply addresses: "grpc://host:port/inbox/<id>".
[[nodiscard]] std::string InboxAddress(std::string_view host_port, std::string_view inbox_id);
struct InboxRef {
  std::string target;
  std::string inbox;
};
// InvalidArgument when `address` is not a gRPC inbox address.
[[nodiscard]] absl::StatusOr<InboxRef> ParseInboxAddress(std::string_view address);

// The local queue an event copy for `group` waits in on the subscriber node.
[[nodiscard]] std::string GroupQueue(std::string_view type, std::string_view group);

// Set on an envelope while it waits in a local queue whose name differs from
// its type (dead letters, event group queues); removed before delivery.
inline constexpr std::string_view kQueuedTypeExtension = "sbqueuedtype";

// ---- The Send stream's frames (transport.proto: SendBatch, AckBatch) ----
//
// Written and read by hand like the envelope (switchboard/internal/
// envelope_wire.h). The readers follow protobuf's parser for the framing:
// what protobuf reads, they read the same (tested against it); a frame's
// request is handed over as bytes, for the envelope reader.

// SendFrame's request fields: EnqueueRequest, PublishRequest, ReplyRequest.
enum class SendKind { kEnqueue = 2, kPublish = 3, kReply = 4 };

// Where each request keeps its envelope and its text (queue, group, inbox):
// EnqueueRequest{command = 1, queue = 2}, PublishRequest{event = 1,
// group = 2}, ReplyRequest{inbox = 1, reply = 2}. The same in a Send frame
// and in the body of the unary method.
struct RequestShape {
  int envelope_field;
  int text_field;
  std::string_view message;  // its protobuf name, for errors
};
[[nodiscard]] RequestShape ShapeOf(SendKind kind);

// What SendFrame{seq = 1, <kind> = a request of `request_size` bytes} takes
// in its SendBatch (field 1, with its tag and length), and the bytes before
// the request's own: the caller writes the request after them.
[[nodiscard]] size_t FrameWireSize(uint64_t seq, size_t request_size);
uint8_t* WriteFrameHeader(uint64_t seq, SendKind kind, size_t request_size, uint8_t* out);

struct FrameView {
  uint64_t seq = 0;
  std::optional<SendKind> kind;  // none: the frame carries no request
  std::string_view request;      // into the batch's bytes, or into `merged`
  // A request field that occurs more than once in a row: the occurrences
  // one after the other, which reads as protobuf's merge of them.
  std::shared_ptr<const std::string> merged;
};

// The frames of a SendBatch, appended to `frames`; false when the bytes do
// not read as one. As in protobuf, unknown fields are skipped, a request of
// another kind replaces the one before (a oneof), and two of the same kind
// merge.
[[nodiscard]] bool ReadSendBatch(std::string_view bytes, std::vector<FrameView>* frames);

// Ack{seq, code, message} in an AckBatch: an OK status writes the sequence
// number only.
using AckList = std::vector<std::pair<uint64_t, absl::Status>>;
[[nodiscard]] size_t AckBatchWireSize(const AckList& acks);
// Writes exactly AckBatchWireSize(acks) bytes; returns the end.
uint8_t* WriteAckBatch(const AckList& acks, uint8_t* out);
// The acks of an AckBatch, appended to `acks`; false when the bytes do not
// read as one. A code that is not a canonical one reads as UNKNOWN; a
// message is taken as bytes.
[[nodiscard]] bool ReadAckBatch(std::string_view bytes, AckList* acks);

}  // namespace switchboard::grpc::wire
