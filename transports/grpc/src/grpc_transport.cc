// The gRPC transport. The only translation unit of the library that includes
// gRPC headers (compile time matters).
//
// Shape: a facade (GrpcTransportImpl) owns an Engine held by shared_ptr, so
// that gRPC callbacks and deliveries that outlive a call can keep what they
// use alive. The Engine runs one callback server with a generic service
// (switchboard.v1.Switchboard), a cache of channels per target, and an
// internal inproc transport on a bus of its own that holds this node's
// command queues and event group queues (retry, delayed redelivery and
// competing consumers come from it).
#include "switchboard/grpc/grpc_transport.h"

#include <grpcpp/generic/async_generic_service.h>
#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>
#include <grpcpp/impl/codegen/proto_utils.h>
#include <grpcpp/security/credentials.h>
#include <grpcpp/security/server_credentials.h>

#include <arpa/inet.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <deque>
#include <fstream>
#include <limits>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/inlined_vector.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "google/protobuf/arena.h"
#include "switchboard/clock.h"
#include "switchboard/inproc_transport.h"
#include "switchboard/internal/envelope_pool.h"
#include "switchboard/internal/envelope_wire.h"
#include "switchboard/internal/strings.h"
#include "switchboard/status.h"
#include "switchboard/v1/config.pb.h"
#include "switchboard/v1/envelope.pb.h"
#include "switchboard/v1/transport.pb.h"
#include "wire.h"

namespace switchboard::grpc {
namespace {

using ::grpc::ByteBuffer;

// RpcMethod keeps a pointer to the method name for the life of the call, so
// the names live in statics.
const std::string& MethodName(std::string_view method) {
  static const auto* names = new std::map<std::string_view, std::string>{
      {kMethodCall, std::string(kMethodCall)},
      {kMethodEnqueue, std::string(kMethodEnqueue)},
      {kMethodPublish, std::string(kMethodPublish)},
      {kMethodSubscribe, std::string(kMethodSubscribe)},
      {kMethodReply, std::string(kMethodReply)},
      {kMethodSend, std::string(kMethodSend)},
  };
  return names->at(method);
}

// Bound on events buffered per subscriber stream on the hub; beyond it the
// hub tries another stream of the group, then drops (and counts) the copy.
constexpr size_t kMaxQueuedPerStream = 4096;
// How long Subscribe waits for the hub to confirm the subscription.
constexpr absl::Duration kSubscribeTimeout = absl::Seconds(10);
// Acceptance calls (Enqueue, Publish, Reply) are bounded even without a
// deadline, so a hung peer cannot hold a caller forever.
constexpr absl::Duration kAcceptTimeout = absl::Seconds(30);
// Delay before a broken subscription stream is opened again.
constexpr absl::Duration kResubscribeDelay = absl::Seconds(1);
// Metadata accepted per call (gRPC's default is 8 KiB): a long handler error
// message travels in grpc-message and must arrive whole.
constexpr int kMaxMetadataBytes = 64 * 1024;
// How long closing waits for in-flight calls after cancelling them.
constexpr absl::Duration kCloseGrace = absl::Seconds(2);
// Largest envelope (with its queue, group or inbox) sent as a Send frame: a
// larger one gains little from the stream and goes as a unary call, so that
// a message over the peer's limit is refused alone, not together with the
// frames batched with it.
constexpr size_t kMaxFrameBytes = 16 * 1024;
// A batch of frames stops growing at this size (it holds at least one).
constexpr size_t kMaxBatchBytes = 64 * 1024;
// A Send stream's server stops reading while this many frames it read wait
// for their acks to be written (a client that sends and does not read its
// acks), and reads again once half of them are written.
constexpr size_t kMaxUnansweredFrames = 4096;

absl::Status FromGrpc(const ::grpc::Status& s) {
  if (s.ok()) return absl::OkStatus();
  return absl::Status(static_cast<absl::StatusCode>(s.error_code()), s.error_message());
}

::grpc::Status ToGrpc(const absl::Status& s) {
  if (s.ok()) return ::grpc::Status::OK;
  return ::grpc::Status(static_cast<::grpc::StatusCode>(s.code()), std::string(s.message()));
}

ByteBuffer ToBuffer(const std::string& bytes) {
  ::grpc::Slice slice(bytes);
  return ByteBuffer(&slice, 1);
}

// Serializes straight into one gRPC slice (no intermediate string).
// ByteBuffer has no move operations: a copy allocates a new grpc_byte_buffer,
// so the one return statement keeps this to named return value elision, and
// callers hand buffers on with Swap.
ByteBuffer ToBuffer(const google::protobuf::MessageLite& msg) {
  ByteBuffer buffer;
  bool own = false;
  if (!::grpc::GenericSerialize<::grpc::ProtoBufferWriter, google::protobuf::MessageLite>(
           msg, &buffer, &own)
           .ok()) {
    ByteBuffer bytes = ToBuffer(msg.SerializeAsString());
    buffer.Swap(&bytes);
  }
  return buffer;
}

// A received buffer as one slice: itself when it is one (the usual case),
// else a copy in one slice; empty when there is no message.
::grpc::Slice SingleSlice(const ByteBuffer& buffer) {
  ::grpc::Slice slice;
  if (!buffer.TrySingleSlice(&slice).ok() && !buffer.DumpToSingleSlice(&slice).ok()) {
    slice = ::grpc::Slice();
  }
  return slice;
}

std::string_view View(const ::grpc::Slice& slice) {
  return std::string_view(reinterpret_cast<const char*>(slice.begin()), slice.size());
}

// Reads an envelope's protobuf form from a received buffer.
absl::Status ReadEnvelopeBuffer(const ByteBuffer& buffer, Envelope* out,
                                internal::EnvelopeWireRest* rest) {
  const ::grpc::Slice slice = SingleSlice(buffer);
  return internal::ReadEnvelopeWire(View(slice), out, rest);
}

// A request message that carries an envelope as its field `field` and a
// string (left out when empty) as its field `text_field`:
// EnqueueRequest{command = 1, queue = 2}, PublishRequest{event = 1,
// group = 2}, ReplyRequest{inbox = 1, reply = 2}. `envelope_size` is
// internal::EnvelopeWireSize(env).
size_t RequestWireSize(int field, int text_field, size_t envelope_size, std::string_view text) {
  return internal::EnvelopeFieldWireSize(field, envelope_size) +
         internal::StringFieldWireSize(text_field, text);
}
uint8_t* WriteRequestWire(int field, int text_field, const Envelope& env, size_t envelope_size,
                          std::string_view text, uint8_t* out) {
  if (text_field < field) {
    return internal::WriteEnvelopeField(field, env, envelope_size,
                                        internal::WriteStringField(text_field, text, out));
  }
  return internal::WriteStringField(text_field, text,
                                    internal::WriteEnvelopeField(field, env, envelope_size, out));
}

// An envelope's protobuf form, written straight from the envelope into one
// gRPC slice (envelope_wire.h): no v1::Envelope is built, so no attribute is
// copied into one. With `field` > 0 the envelope is that field of a request
// message, and `text` its field `text_field` (RequestWireSize).
ByteBuffer EnvelopeBuffer(const Envelope& env, int field = 0, int text_field = 0,
                          std::string_view text = {}) {
  const size_t envelope_size = internal::EnvelopeWireSize(env);
  const size_t size =
      field == 0 ? envelope_size : RequestWireSize(field, text_field, envelope_size, text);
  ::grpc::Slice slice(size);
  uint8_t* out = const_cast<uint8_t*>(slice.begin());
  if (field == 0) {
    internal::WriteEnvelopeWire(env, out);
  } else {
    WriteRequestWire(field, text_field, env, envelope_size, text, out);
  }
  return ByteBuffer(&slice, 1);
}

std::string ToBytes(const ByteBuffer& buffer) {
  std::vector<::grpc::Slice> slices;
  std::string out;
  if (!buffer.Dump(&slices).ok()) return out;
  out.reserve(buffer.Length());
  for (const ::grpc::Slice& s : slices) {
    out.append(reinterpret_cast<const char*>(s.begin()), s.size());
  }
  return out;
}

// ---------------------------------------------------------------------------
// The Send stream's frames (transport.proto; wire.h writes and reads them).

using wire::AckList;
using wire::FrameView;
using wire::SendKind;

using wire::ShapeOf;

// The unary method that does what a frame of `kind` does.
std::string_view MethodOf(SendKind kind) {
  switch (kind) {
    case SendKind::kEnqueue:
      return kMethodEnqueue;
    case SendKind::kPublish:
      return kMethodPublish;
    case SendKind::kReply:
      break;
  }
  return kMethodReply;
}

ByteBuffer AckBatchBuffer(const AckList& acks) {
  ::grpc::Slice slice(wire::AckBatchWireSize(acks));
  wire::WriteAckBatch(acks, const_cast<uint8_t*>(slice.begin()));
  return ByteBuffer(&slice, 1);
}

std::chrono::system_clock::time_point ChronoDeadline(absl::Duration timeout) {
  return std::chrono::system_clock::now() +
         std::chrono::duration_cast<std::chrono::system_clock::duration>(
             absl::ToChronoNanoseconds(timeout));
}

// gRPC's Add*Metadata take `const std::string&` and copy both into the
// context; strings of this thread's own, reused for every entry, keep the
// arguments from costing an allocation per entry.
struct MetadataScratch {
  std::string key;
  std::string value;

  static MetadataScratch& Get(std::string_view k, std::string_view v) {
    thread_local MetadataScratch scratch;
    scratch.key.assign(k);
    scratch.value.assign(v);
    return scratch;
  }
};

// The envelope's metadata as views into the call's own storage.
using MetadataViews = absl::InlinedVector<wire::MetadataView, 16>;
MetadataViews ClientMetadata(const ::grpc::ServerContextBase& ctx) {
  MetadataViews md;
  for (const auto& [key, value] : ctx.client_metadata()) {
    std::string_view k(key.data(), key.size());
    if (k.substr(0, 3) == "ce-" || k == "traceparent" || k == "tracestate") {
      md.emplace_back(k, std::string_view(value.data(), value.size()));
    }
  }
  return md;
}

absl::StatusOr<std::string> ReadFile(const std::string& path, std::string_view option) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return absl::InvalidArgumentError(
        Cat("grpc.tls.", option, ": cannot read \"", path, "\""));
  }
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// gRPC 1.51 as Debian builds it runs callback-API completions on one
// process-wide completion queue, created with the first channel or server
// that uses it and torn down when the last one is destroyed. A call whose
// final release runs on that queue while it is being torn down aborts the
// process ("ref_counted.h: assertion failed: prior > 0"), which happens when
// a process destroys its only transport right after a call. One channel that
// has made a callback call and is never destroyed keeps the queue up.
void PinCallbackQueue() {
  static std::once_flag once;
  std::call_once(once, [] {
    struct Pin {
      std::shared_ptr<::grpc::Channel> channel;
      std::unique_ptr<::grpc::GenericStub> stub;
      ::grpc::ClientContext ctx;
      ByteBuffer request, response;
    };
    auto* pin = new Pin;  // never deleted, on purpose
    pin->channel = ::grpc::CreateChannel("unix:/nonexistent/switchboard-callback-queue-pin",
                                         ::grpc::InsecureChannelCredentials());
    pin->stub = std::make_unique<::grpc::GenericStub>(pin->channel);
    pin->request = ToBuffer(std::string());
    pin->ctx.set_deadline(ChronoDeadline(absl::Seconds(1)));
    pin->stub->UnaryCall(&pin->ctx, MethodName(kMethodCall), ::grpc::StubOptions(),
                         &pin->request, &pin->response, [](::grpc::Status) {});
  });
}

// "h1:p1,h2:p2" (IP literals) becomes the gRPC URI "ipv4:h1:p1,h2:p2"; a
// single address or a URI with a scheme ("dns:///", "ipv4:", "unix:") is
// passed to gRPC as is.
std::string GrpcTargetUri(const std::string& target) {
  if (target.find(',') == std::string::npos) return target;
  for (std::string_view scheme : {"ipv4:", "ipv6:", "dns:", "unix:"}) {
    if (std::string_view(target).substr(0, scheme.size()) == scheme) return target;
  }
  return target.front() == '[' ? "ipv6:" + target : "ipv4:" + target;
}

// A target that names one server: "ip:port", "[ipv6]:port" or
// "localhost:port". Only such targets get a Send stream: gRPC spreads the
// calls to a target that names several servers (a list, a DNS name with
// several addresses) over them, and a stream would stay on the one it
// opened on.
bool IsSingleAddress(const std::string& target) {
  if (target.find(',') != std::string::npos) return false;
  if (!target.empty() && target.front() == '[') return target.find("]:") != std::string::npos;
  const size_t colon = target.rfind(':');
  if (colon == std::string::npos || colon == 0) return false;
  const std::string host = target.substr(0, colon);
  if (host == "localhost") return true;
  in_addr addr{};
  return inet_pton(AF_INET, host.c_str(), &addr) == 1;
}

// Moves an envelope into a local queue named differently from its type.
void MarkQueued(Envelope& env, const std::string& queue) {
  if (queue == env.type) return;
  env.extensions[std::string(wire::kQueuedTypeExtension)] = env.type;
  env.type = queue;
}

Envelope Unqueued(Envelope env) {
  auto it = env.extensions.find(std::string(wire::kQueuedTypeExtension));
  if (it != env.extensions.end()) {
    env.type = std::move(it->second);
    env.extensions.erase(it);
  }
  return env;
}

// One Serve() registration. Stop() waits for handler calls in progress.
class ServeEntry {
 public:
  explicit ServeEntry(RequestHandler handler) : handler_(std::move(handler)) {}

  // Runs the handler unless stopped; false if stopped, and then `request` and
  // `reply` are left as they were.
  bool Invoke(Envelope&& request, ReplyCallback&& reply) {
    {
      absl::MutexLock lock(&mu_);
      if (stopped_) return false;
      ++running_;
    }
    const ServeEntry* outer = current_;
    current_ = this;
    handler_(std::move(request), std::move(reply));
    current_ = outer;
    absl::MutexLock lock(&mu_);
    --running_;
    return true;
  }

  void Stop() {
    absl::MutexLock lock(&mu_);
    stopped_ = true;
    // A handler may drop its own registration: do not wait for that call.
    allowed_ = current_ == this ? 1 : 0;
    mu_.Await(absl::Condition(this, &ServeEntry::IdleLocked));
  }

 private:
  bool IdleLocked() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return running_ <= allowed_; }

  static thread_local const ServeEntry* current_;
  const RequestHandler handler_;
  absl::Mutex mu_;
  bool stopped_ ABSL_GUARDED_BY(mu_) = false;
  int running_ ABSL_GUARDED_BY(mu_) = 0;
  int allowed_ ABSL_GUARDED_BY(mu_) = 0;
};

thread_local const ServeEntry* ServeEntry::current_ = nullptr;

class Engine;
class SubscribeReactor;
class SendChannel;

// Client calls and streams in flight. Kept apart from the Engine so that a
// gRPC callback never holds the Engine (and with it the channels) alive:
// gRPC 1.51 aborts when the last channel is destroyed on one of its own
// callback threads. Closing cancels what is tracked and waits until each
// call has run its last callback, so the Engine dies on the closing thread.
class CallTracker {
 public:
  // False once closing. `keep` keeps `ctx` alive while it is tracked.
  bool Track(::grpc::ClientContext* ctx, std::shared_ptr<void> keep) {
    absl::MutexLock lock(&mu_);
    if (closing_) return false;
    calls_.emplace(ctx, std::move(keep));
    return true;
  }
  // The call's last act: after this the Engine may be gone.
  void Untrack(::grpc::ClientContext* ctx) {
    std::shared_ptr<void> keep;
    absl::MutexLock lock(&mu_);
    auto it = calls_.find(ctx);
    if (it == calls_.end()) return;
    keep = std::move(it->second);  // released after the lock
    calls_.erase(it);
  }
  void CloseAndWait(absl::Duration grace) {
    std::map<::grpc::ClientContext*, std::shared_ptr<void>> live;
    {
      absl::MutexLock lock(&mu_);
      closing_ = true;
      live = calls_;
    }
    // Outside the lock: a cancelled call's callback takes it to untrack.
    for (auto& [ctx, keep] : live) ctx->TryCancel();
    live.clear();
    absl::MutexLock lock(&mu_);
    mu_.AwaitWithTimeout(absl::Condition(this, &CallTracker::IdleLocked), grace);
  }

 private:
  bool IdleLocked() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return calls_.empty(); }

  absl::Mutex mu_;
  std::map<::grpc::ClientContext*, std::shared_ptr<void>> calls_ ABSL_GUARDED_BY(mu_);
  bool closing_ ABSL_GUARDED_BY(mu_) = false;
};

// ---------------------------------------------------------------------------
// Client side of a subscription: one stream to the hub at a time, reopened
// after a break while the subscription lives.

class EventStream;

struct StreamState {
  absl::Mutex mu;
  std::shared_ptr<::grpc::ClientContext> ctx ABSL_GUARDED_BY(mu);
  bool open ABSL_GUARDED_BY(mu) = false;  // a stream reactor exists
  bool stopping ABSL_GUARDED_BY(mu) = false;
  // First connection outcome (for Subscribe's answer).
  bool answered ABSL_GUARDED_BY(mu) = false;
  absl::Status first ABSL_GUARDED_BY(mu);
  TimerHandle retry ABSL_GUARDED_BY(mu);
};

// ---------------------------------------------------------------------------

class Engine : public std::enable_shared_from_this<Engine> {
 public:
  Engine(std::string name, v1::GrpcOptions options, TransportEnv env)
      : name_(std::move(name)), options_(std::move(options)), env_(std::move(env)) {
    clock_ = env_.clock != nullptr ? env_.clock : &Clock::Real();
    env_.clock = clock_;
    // A peer is expected to accept what this node accepts.
    if (options_.max_message_bytes() > 0) {
      const uint64_t max = options_.max_message_bytes();
      frame_limit_ = std::min<uint64_t>(frame_limit_, max / 4);
      batch_limit_ = std::min<uint64_t>(batch_limit_, max);
    }
  }

  absl::Status Start();
  void Shutdown();

  const std::string& name() const { return name_; }
  int bound_port() const { return bound_port_; }
  const std::string& advertised() const { return advertised_; }
  bool listening() const { return server_ != nullptr; }

  void SetTarget(std::string key, std::string address) {
    absl::MutexLock lock(&targets_mu_);
    targets_[std::move(key)] = std::move(address);
  }

  // ---- SPI ----
  void Request(Envelope request, ReplyCallback on_reply);
  absl::StatusOr<std::unique_ptr<Subscription>> Serve(const Endpoint& endpoint,
                                                      RequestHandler handler);
  void Enqueue(Envelope command, DoneCallback on_accepted);
  absl::StatusOr<std::unique_ptr<Subscription>> Consume(const Endpoint& endpoint,
                                                        DeliveryHandler handler);
  void Publish(Envelope event, DoneCallback on_published);
  absl::StatusOr<std::unique_ptr<Subscription>> Subscribe(const Endpoint& endpoint,
                                                          DeliveryHandler handler);
  absl::StatusOr<std::unique_ptr<ReplyInbox>> OpenInbox(ReplyHandler on_reply);
  void SendReply(const std::string& reply_to, Envelope reply, DoneCallback on_sent);
  absl::StatusOr<int64_t> QueueDepth(const Endpoint& endpoint) {
    return local_->QueueDepth(endpoint);
  }

  // ---- used by the server reactors ----
  std::shared_ptr<ServeEntry> PickServer(const std::string& op);
  void LocalEnqueue(Envelope env, const std::string& queue, DoneCallback done) {
    MarkQueued(env, queue);
    local_->Enqueue(std::move(env), std::move(done));
  }
  // What Enqueue, Publish and Reply do with the envelope of a request that
  // read, for the unary methods and Send frames alike; `done` gets the
  // outcome the caller is answered with.
  void AcceptEnqueue(Envelope command, std::string queue, DoneCallback done);
  void AcceptPublish(Envelope event, const std::string& group, DoneCallback done);
  void AcceptReply(Envelope reply, const std::string& inbox, DoneCallback done);
  // A Send frame: reads its request (INVALID_ARGUMENT, counted, when it does
  // not read) and accepts it as its unary method would.
  void AcceptFrame(const FrameView& frame, DoneCallback done);
  ReplyHandler* FindInbox(const std::string& id, std::shared_ptr<ReplyHandler>* hold);
  // Hub: gives `event` to one stream of each group subscribed to its type.
  void HubDistribute(const Envelope& event);
  void HubAdd(const std::string& type, const std::string& group, SubscribeReactor* r);
  void HubRemove(SubscribeReactor* r);
  void CountMalformed() { malformed_.fetch_add(1, std::memory_order_relaxed); }
  void CountUnreadable() { unreadable_.fetch_add(1, std::memory_order_relaxed); }
  void CountSendReadPause() { send_read_pauses_.fetch_add(1, std::memory_order_relaxed); }
  void CountStreamedSend() { streamed_sends_.fetch_add(1, std::memory_order_relaxed); }
  bool full_metadata() const { return options_.full_metadata(); }
  wire::MetadataSet metadata_set() const {
    return full_metadata() ? wire::MetadataSet::kFull : wire::MetadataSet::kRouting;
  }
  GrpcStats stats() const {
    GrpcStats s;
    s.malformed = malformed_.load(std::memory_order_relaxed);
    s.unreadable = unreadable_.load(std::memory_order_relaxed);
    s.dropped_events = dropped_events_.load(std::memory_order_relaxed);
    s.streamed_sends = streamed_sends_.load(std::memory_order_relaxed);
    s.unary_sends = unary_sends_.load(std::memory_order_relaxed);
    s.send_read_pauses = send_read_pauses_.load(std::memory_order_relaxed);
    return s;
  }

  // ---- used by subscriptions and deliveries ----
  void ConnectStream(const std::shared_ptr<StreamState>& state, const std::string& target,
                     const v1::SubscribeRequest& request, const std::string& queue);
  void OnStreamEvent(const ByteBuffer& bytes, const std::string& queue);
  void RouteDeadLetter(Envelope env, const absl::Status& reason);
  DeliveryHandler Wrap(DeliveryHandler handler);
  Clock* clock() const { return clock_; }
  const std::shared_ptr<CallTracker>& tracker() const { return tracker_; }
  // An Enqueue, Publish or Reply request of `env` and `text` as a unary
  // call; `done` gets its status.
  void SendUnary(const std::string& target, SendKind kind, Envelope env, const std::string& text,
                 absl::Duration timeout, DoneCallback done);

  struct ClientCall {
    ::grpc::ClientContext ctx;
    ByteBuffer request;
    ByteBuffer response;
  };

 private:
  struct ChannelEntry {
    std::shared_ptr<::grpc::Channel> channel;
    std::unique_ptr<::grpc::GenericStub> stub;
  };

  std::string Resolve(std::string_view operation);
  std::shared_ptr<ChannelEntry> ChannelFor(const std::string& target);
  ::grpc::ChannelArguments ChannelArgs() const;
  // Starts a unary call of `method` on `target` with `body` (taken);
  // `done(const ::grpc::Status&, ClientCall&)` runs exactly once, on a gRPC
  // thread (or inline when the transport is closed).
  template <class Done>
  void Unary(const std::string& target, std::string_view method, ByteBuffer&& body,
             const Envelope* attributes, absl::Duration timeout, Done done);
  absl::Duration AcceptTimeout(const Envelope& env) const {
    if (!env.has_deadline()) return kAcceptTimeout;
    return std::min(kAcceptTimeout, env.deadline - clock_->Now());
  }
  // Sends an Enqueue, Publish or Reply request to `target`: as a frame on
  // the target's Send stream when it has one (SendChannelFor), else as a
  // unary call. `done` gets the status the server answered with.
  void SendTo(const std::string& target, SendKind kind, Envelope env, std::string text,
              absl::Duration timeout, DoneCallback done);
  // The Send stream of `target`, or null when a request of `request_bytes`
  // goes as a unary call (GrpcOptions.unary_sends, full_metadata, a target
  // that names several servers, a large message).
  std::shared_ptr<SendChannel> SendChannelFor(const std::string& target, size_t request_bytes);

  const std::string name_;
  const v1::GrpcOptions options_;
  TransportEnv env_;
  Clock* clock_ = nullptr;

  std::unique_ptr<Transport> local_;
  std::shared_ptr<::grpc::ChannelCredentials> channel_creds_;
  std::unique_ptr<::grpc::CallbackGenericService> service_;
  std::unique_ptr<::grpc::Server> server_;
  int bound_port_ = 0;
  std::string advertised_;

  absl::Mutex targets_mu_;
  std::map<std::string, std::string, std::less<>> targets_ ABSL_GUARDED_BY(targets_mu_);

  absl::Mutex channels_mu_;
  std::map<std::string, std::shared_ptr<ChannelEntry>> channels_ ABSL_GUARDED_BY(channels_mu_);
  // By target; null for a target that gets no stream.
  std::map<std::string, std::shared_ptr<SendChannel>, std::less<>> send_channels_
      ABSL_GUARDED_BY(channels_mu_);
  size_t frame_limit_ = kMaxFrameBytes;
  size_t batch_limit_ = kMaxBatchBytes;

  absl::Mutex servers_mu_;
  std::map<std::string, std::vector<std::shared_ptr<ServeEntry>>> servers_
      ABSL_GUARDED_BY(servers_mu_);
  std::map<std::string, size_t> next_server_ ABSL_GUARDED_BY(servers_mu_);

  absl::Mutex inbox_mu_;
  std::map<std::string, std::shared_ptr<ReplyHandler>> inboxes_ ABSL_GUARDED_BY(inbox_mu_);
  std::atomic<uint64_t> next_inbox_{0};

  struct GroupStreams {
    std::vector<SubscribeReactor*> streams;
    size_t next = 0;
  };
  absl::Mutex hub_mu_;
  std::map<std::string, std::map<std::string, GroupStreams>> hub_ ABSL_GUARDED_BY(hub_mu_);
  bool hub_closed_ ABSL_GUARDED_BY(hub_mu_) = false;

  const std::shared_ptr<CallTracker> tracker_ = std::make_shared<CallTracker>();

  std::atomic<uint64_t> malformed_{0};
  std::atomic<uint64_t> unreadable_{0};
  std::atomic<uint64_t> dropped_events_{0};
  std::atomic<uint64_t> streamed_sends_{0};
  std::atomic<uint64_t> unary_sends_{0};
  std::atomic<uint64_t> send_read_pauses_{0};
};

// ---------------------------------------------------------------------------
// Server side.

// Call, Enqueue, Publish, Reply: one message in, one message (or a status)
// out. The reply may come from any thread, after the call was cancelled.
class UnaryReactor final : public ::grpc::ServerGenericBidiReactor {
 public:
  UnaryReactor(Engine* engine, ::grpc::GenericCallbackServerContext* ctx)
      : engine_(engine), ctx_(ctx), finisher_(std::make_shared<Finisher>()) {
    finisher_->reactor = this;
    StartRead(&in_);
  }

  void OnReadDone(bool ok) override {
    if (!ok) {
      // No request message: gRPC refused it (larger than max_message_bytes;
      // it has answered RESOURCE_EXHAUSTED already), the client half-closed
      // without one, or it cancelled before one arrived. A refused message
      // cancels the call too, and whether gRPC reports that before this
      // runs is a race: counted either way.
      engine_->CountUnreadable();
      Fail(absl::InvalidArgumentError(
          Cat(ctx_->method(), ": the client sent no request message")));
      return;
    }
    const std::string& method = ctx_->method();
    if (method == kMethodCall) {
      HandleCall();
    } else if (method == kMethodEnqueue) {
      HandleEnqueue();
    } else if (method == kMethodPublish) {
      HandlePublish();
    } else {
      HandleReply();
    }
  }

  void OnCancel() override {
    Finisher::Finish(finisher_, absl::CancelledError("call cancelled by the client"), nullptr);
  }

  void OnDone() override { delete this; }

 private:
  // Makes sure the reactor is finished exactly once, whoever comes first:
  // the handler's reply or a cancellation.
  struct Finisher {
    absl::Mutex mu;
    UnaryReactor* reactor ABSL_GUARDED_BY(mu) = nullptr;
    bool finished ABSL_GUARDED_BY(mu) = false;

    // `reply` (may be null) is taken and written before an OK status.
    // `attrs` (may be null) are the reply's: an error reply has no body, so
    // all of them travel as trailing metadata; a reply with a body repeats
    // them as initial metadata only under `full_metadata` (the caller reads
    // the body, and the request's trace context already reached tracers).
    static void Finish(const std::shared_ptr<Finisher>& f, const absl::Status& status,
                       ByteBuffer* reply, const Envelope* attrs = nullptr) {
      absl::MutexLock lock(&f->mu);
      if (f->finished) return;
      f->finished = true;
      UnaryReactor* r = f->reactor;
      if (attrs != nullptr && (!status.ok() || r->engine_->full_metadata())) {
        wire::ForEachMetadata(*attrs, wire::MetadataSet::kFull,
                              [&](std::string_view k, std::string_view v) {
                                MetadataScratch& m = MetadataScratch::Get(k, v);
                                if (status.ok()) {
                                  r->ctx_->AddInitialMetadata(m.key, m.value);
                                } else {
                                  r->ctx_->AddTrailingMetadata(m.key, m.value);
                                }
                              });
      }
      if (status.ok() && reply != nullptr) {
        r->out_.Swap(reply);
        r->StartWriteAndFinish(&r->out_, ::grpc::WriteOptions(), ::grpc::Status::OK);
      } else {
        r->Finish(ToGrpc(status));
      }
    }
  };

  void Fail(const absl::Status& status) { Finisher::Finish(finisher_, status, nullptr); }

  // Answers Accepted{id} when `done` runs with OK, else that status.
  DoneCallback AcceptedAs(std::string id) {
    return [f = finisher_, id = std::move(id)](absl::Status s) {
      if (!s.ok()) {
        Finisher::Finish(f, s, nullptr);
        return;
      }
      v1::Accepted accepted;
      accepted.set_id(id);
      ByteBuffer out = ToBuffer(accepted);
      Finisher::Finish(f, absl::OkStatus(), &out);
    };
  }

  // Completes an envelope read from the body with the metadata (only what
  // the body leaves out); InvalidArgument (and a count) when it is not a
  // valid envelope.
  absl::Status Decode(Envelope* out, internal::EnvelopeWireRest* rest) {
    wire::FillFromMetadata(ClientMetadata(*ctx_), out, rest);
    absl::Status s = internal::CompleteEnvelope(*rest, out);
    if (!s.ok()) {
      engine_->CountMalformed();
      return absl::InvalidArgumentError(
          Cat("malformed envelope in ", ctx_->method(), ": ", s.message()));
    }
    // The gRPC deadline is the remaining budget as the caller saw it (clocks
    // of two hosts may differ); it wins when it is the earlier one.
    const std::chrono::system_clock::time_point deadline = ctx_->deadline();
    if (deadline != std::chrono::system_clock::time_point::max()) {
      absl::Time t = engine_->clock()->Now() +
                     absl::FromChrono(deadline - std::chrono::system_clock::now());
      if (t < out->deadline) out->deadline = t;
    }
    return absl::OkStatus();
  }
  // Reads a `Call` body, an envelope, straight from the received bytes.
  bool ReadEnvelopeBody(Envelope* out, internal::EnvelopeWireRest* rest) {
    const size_t size = in_.Length();
    absl::Status read = ReadEnvelopeBuffer(in_, out, rest);
    return BodyRead(read, size, "switchboard.v1.Envelope");
  }

  // Reads a request message that carries an envelope and a string
  // (EnqueueRequest, PublishRequest, ReplyRequest: wire::ShapeOf) straight
  // from the received bytes, and completes the envelope.
  bool ReadEnvelopeRequest(SendKind kind, Envelope* out, std::string* text) {
    const wire::RequestShape shape = ShapeOf(kind);
    const size_t size = in_.Length();
    internal::EnvelopeWireRest rest;
    absl::Status read;
    {
      const ::grpc::Slice slice = SingleSlice(in_);
      read = internal::ReadEnvelopeFieldWire(View(slice), shape.envelope_field, shape.text_field,
                                             out, &rest, text);
    }
    if (!BodyRead(read, size, shape.message)) return false;
    if (absl::Status s = Decode(out, &rest); !s.ok()) {
      Fail(s);
      return false;
    }
    return true;
  }

  // Drops the received bytes (not needed while the handler runs); when they
  // did not read, counts them and answers InvalidArgument.
  bool BodyRead(const absl::Status& read, size_t size, std::string_view message) {
    in_.Clear();
    if (read.ok()) return true;
    engine_->CountMalformed();
    Fail(absl::InvalidArgumentError(Cat("malformed request to ", ctx_->method(), ": the ", size,
                                        "-byte body is not a ", message, " (", read.message(),
                                        ")")));
    return false;
  }

  void HandleCall() {
    Envelope request = internal::NewEnvelope();
    internal::EnvelopeWireRest rest;
    if (!ReadEnvelopeBody(&request, &rest)) return;
    if (absl::Status s = Decode(&request, &rest); !s.ok()) return Fail(s);
    std::shared_ptr<ServeEntry> server = engine_->PickServer(request.type);
    ReplyCallback reply = [f = finisher_](absl::StatusOr<Envelope> r) mutable {
      if (!r.ok()) {
        Finisher::Finish(f, r.status(), nullptr);
        return;
      }
      if (!r->status.ok()) {
        // A handler error is the gRPC status, code and message unchanged;
        // the reply's attributes ride along as trailing metadata.
        absl::Status status = r->status;
        Finisher::Finish(f, status, nullptr, &*r);
        return;
      }
      ByteBuffer buffer = EnvelopeBuffer(*r);
      Finisher::Finish(f, absl::OkStatus(), &buffer, &*r);
      internal::RecycleEnvelope(*std::move(r));
    };
    if (server == nullptr || !server->Invoke(std::move(request), std::move(reply))) {
      Fail(absl::UnavailableError(Cat("no handler for ", request.type)));
    }
  }

  void HandleEnqueue() {
    Envelope command;
    std::string queue;
    if (!ReadEnvelopeRequest(SendKind::kEnqueue, &command, &queue)) return;
    std::string id = command.id;
    engine_->AcceptEnqueue(std::move(command), std::move(queue), AcceptedAs(std::move(id)));
  }

  void HandlePublish() {
    Envelope event;
    std::string group;
    if (!ReadEnvelopeRequest(SendKind::kPublish, &event, &group)) return;
    std::string id = event.id;
    engine_->AcceptPublish(std::move(event), group, AcceptedAs(std::move(id)));
  }

  void HandleReply() {
    Envelope reply;
    std::string inbox;
    if (!ReadEnvelopeRequest(SendKind::kReply, &reply, &inbox)) return;
    std::string id = reply.id;
    engine_->AcceptReply(std::move(reply), inbox, AcceptedAs(std::move(id)));
  }

  Engine* const engine_;
  ::grpc::GenericCallbackServerContext* const ctx_;
  std::shared_ptr<Finisher> finisher_;
  ByteBuffer in_;
  ByteBuffer out_;
};

// Subscribe: the hub side of one subscriber stream.
class SubscribeReactor final : public ::grpc::ServerGenericBidiReactor {
 public:
  SubscribeReactor(Engine* engine, ::grpc::GenericCallbackServerContext* ctx)
      : engine_(engine), ctx_(ctx) {
    StartRead(&in_);
  }

  void OnReadDone(bool ok) override {
    if (!ok) {
      // The subscriber half-closed or went away.
      Close(absl::OkStatus());
      return;
    }
    if (!registered_) {
      v1::SubscribeRequest req;
      if (!req.ParseFromString(ToBytes(in_))) {
        engine_->CountMalformed();
        Close(absl::InvalidArgumentError(
            "malformed request to Subscribe: the body is not a switchboard.v1.SubscribeRequest"));
        return;
      }
      if (req.type().empty() || req.group().empty()) {
        Close(absl::InvalidArgumentError("Subscribe needs both `type` and `group`"));
        return;
      }
      registered_ = true;
      engine_->HubAdd(req.type(), req.group(), this);
      // Initial metadata tells the subscriber it is registered: events
      // published from now on reach it.
      absl::MutexLock lock(&mu_);
      if (closed_) return;
      StartSendInitialMetadata();
    }
    in_.Clear();
    StartRead(&in_);
  }

  void OnSendInitialMetadataDone(bool ok) override {
    if (!ok) return;  // the stream is going away; OnCancel/OnReadDone close it
    absl::MutexLock lock(&mu_);
    ready_ = true;
    MaybeWriteLocked();
  }

  void OnWriteDone(bool ok) override {
    if (!ok) {
      Close(absl::UnavailableError("subscriber stream broken"));
      return;
    }
    absl::MutexLock lock(&mu_);
    queue_.pop_front();
    writing_ = false;
    MaybeWriteLocked();
  }

  void OnCancel() override { Close(absl::CancelledError("subscription cancelled")); }
  void OnDone() override { delete this; }

  // Called by the hub under its lock: queues one event for this stream.
  bool Offer(const ByteBuffer& event) {
    absl::MutexLock lock(&mu_);
    if (closed_ || queue_.size() >= kMaxQueuedPerStream) return false;
    queue_.push_back(event);
    MaybeWriteLocked();
    return true;
  }

  // Called by the hub under its lock when the transport closes.
  void FinishFromHub(const absl::Status& status) {
    absl::MutexLock lock(&mu_);
    FinishLocked(status);
  }

 private:
  void Close(const absl::Status& status) {
    engine_->HubRemove(this);
    absl::MutexLock lock(&mu_);
    FinishLocked(status);
  }

  // gRPC never runs a reaction inline from a Start* call, so holding mu_
  // across them is safe and keeps Write and Finish from racing.
  void FinishLocked(const absl::Status& status) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (closed_) return;
    closed_ = true;
    Finish(ToGrpc(status));
  }

  // An event with more queued behind it may wait in gRPC's buffer for them
  // (buffer_hint); the last one queued goes out with those before it.
  void MaybeWriteLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (closed_ || !ready_ || writing_ || queue_.empty()) return;
    writing_ = true;
    ::grpc::WriteOptions options;
    if (queue_.size() > 1) options.set_buffer_hint();
    StartWrite(&queue_.front(), options);
  }

  Engine* const engine_;
  ::grpc::GenericCallbackServerContext* const ctx_;
  ByteBuffer in_;
  bool registered_ = false;  // only touched by reactions, which do not overlap

  absl::Mutex mu_;
  // std::deque keeps references to the front stable while others are added.
  std::deque<ByteBuffer> queue_ ABSL_GUARDED_BY(mu_);
  bool ready_ ABSL_GUARDED_BY(mu_) = false;
  bool writing_ ABSL_GUARDED_BY(mu_) = false;
  bool closed_ ABSL_GUARDED_BY(mu_) = false;
};

// Send: batches of Enqueue, Publish and Reply frames on one stream, each
// frame answered by an Ack once it is done. Acks that come while a write is
// in flight, or while a batch is being read, go out together in the next.
class SendReactor final : public ::grpc::ServerGenericBidiReactor {
 public:
  explicit SendReactor(Engine* engine) : engine_(engine), state_(std::make_shared<State>()) {
    state_->reactor = this;
    StartRead(&in_);
  }

  void OnReadDone(bool ok) override {
    if (!ok) {
      // The client half-closed or went away: finish once every frame read
      // so far has its ack written.
      absl::MutexLock lock(&state_->mu);
      state_->reading = false;
      MaybeWriteLocked();
      return;
    }
    frames_.clear();
    bool read;
    {
      const ::grpc::Slice slice = SingleSlice(in_);
      read = wire::ReadSendBatch(View(slice), &frames_);
      if (read) {
        {
          absl::MutexLock lock(&state_->mu);
          state_->holding = true;
          state_->outstanding += frames_.size();
        }
        // A frame's request is read before AcceptFrame returns: the views
        // into the slice are not kept.
        for (const FrameView& frame : frames_) {
          engine_->AcceptFrame(frame, [state = state_, seq = frame.seq](absl::Status s) {
            State::Ack(state, seq, std::move(s));
          });
        }
      }
    }
    in_.Clear();
    absl::MutexLock lock(&state_->mu);
    state_->holding = false;
    if (!read) {
      engine_->CountMalformed();
      state_->reading = false;
      FinishLocked(absl::InvalidArgumentError(
          "malformed batch on Send: the body is not a switchboard.v1.SendBatch"));
      return;
    }
    MaybeWriteLocked();
    if (state_->finishing) return;
    if (state_->outstanding + state_->acks.size() >= kMaxUnansweredFrames) {
      state_->read_paused = true;  // OnWriteDone reads again
      engine_->CountSendReadPause();
      return;
    }
    StartRead(&in_);
  }

  void OnWriteDone(bool ok) override {
    absl::MutexLock lock(&state_->mu);
    state_->writing = false;
    if (!ok) {
      FinishLocked(absl::UnavailableError("the Send stream's client is gone"));
      return;
    }
    MaybeWriteLocked();
    if (state_->read_paused && !state_->finishing &&
        state_->outstanding + state_->acks.size() < kMaxUnansweredFrames / 2) {
      state_->read_paused = false;
      StartRead(&in_);
    }
  }

  void OnCancel() override {
    absl::MutexLock lock(&state_->mu);
    // Nothing more can be written: finish now.
    state_->writing = false;
    FinishLocked(absl::CancelledError("Send stream cancelled by the client"));
  }

  void OnDone() override {
    {
      absl::MutexLock lock(&state_->mu);
      state_->reactor = nullptr;  // acks still to come are dropped
    }
    delete this;
  }

 private:
  // Outlives the reactor: a frame's outcome may come from another thread
  // after the stream ended.
  struct State {
    absl::Mutex mu;
    SendReactor* reactor ABSL_GUARDED_BY(mu) = nullptr;
    AckList acks ABSL_GUARDED_BY(mu);
    size_t outstanding ABSL_GUARDED_BY(mu) = 0;  // frames read and not yet answered
    bool holding ABSL_GUARDED_BY(mu) = false;    // a batch is being read
    bool writing ABSL_GUARDED_BY(mu) = false;
    bool reading ABSL_GUARDED_BY(mu) = true;
    bool read_paused ABSL_GUARDED_BY(mu) = false;  // too many acks wait to be written
    bool finishing ABSL_GUARDED_BY(mu) = false;  // no more acks; Finish when not writing
    bool finished ABSL_GUARDED_BY(mu) = false;   // Finish called
    absl::Status finish ABSL_GUARDED_BY(mu);

    static void Ack(const std::shared_ptr<State>& state, uint64_t seq, absl::Status status) {
      absl::MutexLock lock(&state->mu);
      if (state->reactor == nullptr || state->finishing) return;
      --state->outstanding;
      state->acks.emplace_back(seq, std::move(status));
      state->reactor->MaybeWriteLocked();
    }
  };

  // gRPC never runs a reaction inline from a Start* call, so holding the
  // lock across them is safe.
  void MaybeWriteLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(state_->mu) {
    State& st = *state_;
    if (st.finishing) {
      if (!st.writing && !st.finished) {
        st.finished = true;
        Finish(ToGrpc(st.finish));
      }
      return;
    }
    if (st.writing || st.holding) return;
    if (!st.acks.empty()) {
      out_ = AckBatchBuffer(st.acks);
      st.acks.clear();
      st.writing = true;
      StartWrite(&out_);
      return;
    }
    if (!st.reading && st.outstanding == 0) FinishLocked(absl::OkStatus());
  }

  // Finishes once, after the write in flight (if any) is done.
  void FinishLocked(const absl::Status& status) ABSL_EXCLUSIVE_LOCKS_REQUIRED(state_->mu) {
    State& st = *state_;
    if (st.finishing) return;
    st.finishing = true;
    st.finish = status;
    st.acks.clear();
    MaybeWriteLocked();
  }

  Engine* const engine_;
  std::shared_ptr<State> state_;
  ::grpc::ByteBuffer in_;
  ::grpc::ByteBuffer out_;
  std::vector<FrameView> frames_;
};

class Service final : public ::grpc::CallbackGenericService {
 public:
  explicit Service(Engine* engine) : engine_(engine) {}

  ::grpc::ServerGenericBidiReactor* CreateReactor(
      ::grpc::GenericCallbackServerContext* ctx) override {
    const std::string& m = ctx->method();
    if (m == kMethodCall || m == kMethodEnqueue || m == kMethodPublish || m == kMethodReply) {
      return new UnaryReactor(engine_, ctx);
    }
    if (m == kMethodSubscribe) return new SubscribeReactor(engine_, ctx);
    if (m == kMethodSend) return new SendReactor(engine_);
    return ::grpc::CallbackGenericService::CreateReactor(ctx);  // UNIMPLEMENTED
  }

 private:
  Engine* const engine_;
};

// ---------------------------------------------------------------------------
// Client side of a subscription stream.

class EventStream final : public ::grpc::ClientBidiReactor<ByteBuffer, ByteBuffer> {
 public:
  EventStream(std::weak_ptr<Engine> engine, std::shared_ptr<CallTracker> tracker, Clock* clock,
              std::shared_ptr<StreamState> state, std::shared_ptr<::grpc::ClientContext> ctx,
              std::string target, v1::SubscribeRequest request, std::string queue)
      : engine_(std::move(engine)),
        tracker_(std::move(tracker)),
        clock_(clock),
        state_(std::move(state)),
        ctx_(std::move(ctx)),
        target_(std::move(target)),
        request_(std::move(request)),
        queue_(std::move(queue)),
        out_(ToBuffer(request_)) {}

  void Start(::grpc::GenericStub* stub) {
    stub->PrepareBidiStreamingCall(ctx_.get(), MethodName(kMethodSubscribe),
                                   ::grpc::StubOptions(), this);
    StartWrite(&out_);
    StartRead(&in_);
    StartCall();
  }

  void OnReadInitialMetadataDone(bool ok) override {
    if (ok) Answer(absl::OkStatus());
  }

  void OnReadDone(bool ok) override {
    if (!ok) return;  // OnDone follows
    // The stream is tracked until OnDone ends, so the Engine cannot be
    // destroyed while this holds it.
    if (std::shared_ptr<Engine> engine = engine_.lock()) {
      engine->OnStreamEvent(in_, queue_);
    }
    in_.Clear();
    StartRead(&in_);
  }

  void OnDone(const ::grpc::Status& status) override {
    Answer(FromGrpc(status).ok() ? absl::UnavailableError("subscription stream ended")
                                 : FromGrpc(status));
    {
      absl::MutexLock lock(&state_->mu);
      state_->open = false;
      state_->ctx.reset();
      if (!state_->stopping) {
        // Reopen after a break (hub restarted, network): events published
        // in between are not delivered to this stream (at-most-once).
        std::weak_ptr<Engine> weak_engine = engine_;
        std::weak_ptr<StreamState> weak_state = state_;
        state_->retry = clock_->RunAfter(
            kResubscribeDelay,
            [weak_engine, weak_state, target = target_, request = request_, queue = queue_] {
              std::shared_ptr<Engine> e = weak_engine.lock();
              std::shared_ptr<StreamState> s = weak_state.lock();
              if (e && s) e->ConnectStream(s, target, request, queue);
            });
      }
    }
    std::shared_ptr<CallTracker> tracker = std::move(tracker_);
    ::grpc::ClientContext* ctx = ctx_.get();
    delete this;
    tracker->Untrack(ctx);
  }

 private:
  void Answer(const absl::Status& status) {
    absl::MutexLock lock(&state_->mu);
    if (state_->answered) return;
    state_->answered = true;
    state_->first = status;
  }

  std::weak_ptr<Engine> engine_;
  std::shared_ptr<CallTracker> tracker_;
  Clock* const clock_;
  std::shared_ptr<StreamState> state_;
  std::shared_ptr<::grpc::ClientContext> ctx_;
  std::string target_;
  v1::SubscribeRequest request_;
  std::string queue_;
  ByteBuffer out_;
  ByteBuffer in_;
};

// ---------------------------------------------------------------------------
// Client side of Send: one stream per target carries its commands, events and
// replies as frames. Frames queue while a batch is being written and go out
// together in the next; each waits for its ack, the end of the stream, or
// its timeout, whichever comes first.

class SendStream;

struct PendingSend {
  SendKind kind;
  Envelope env;  // kept until answered: a fallback sends it as a unary call
  std::string text;  // queue, group or inbox
  size_t envelope_size;
  absl::Time expires;
  DoneCallback done;
  // The stream it was written on, or the one open when it was queued: the
  // end of that stream ends it.
  SendStream* stream = nullptr;
  // Its entry in the channel's expiry index.
  std::multimap<absl::Time, uint64_t>::iterator expiry;
};

using Completions = std::vector<std::pair<DoneCallback, absl::Status>>;

void RunCompletions(Completions& completions) {
  for (auto& [done, status] : completions) std::move(done)(std::move(status));
  completions.clear();
}

class SendChannel : public std::enable_shared_from_this<SendChannel> {
 public:
  // `stub` belongs to the Engine, which outlives every stream it opens (its
  // Shutdown waits for them); this channel holds no gRPC object, so its last
  // reference may go on any thread.
  SendChannel(std::string target, ::grpc::GenericStub* stub, Clock* clock, size_t batch_limit)
      : target_(std::move(target)), stub_(stub), clock_(clock), batch_limit_(batch_limit) {}

  ~SendChannel() {
    absl::MutexLock lock(&mu_);
    timer_.Cancel();
  }

  // Queues a frame and starts writing it; false (and nothing taken) once the
  // server turned out not to have Send: the caller sends a unary call.
  bool Send(Engine& engine, SendKind kind, Envelope& env, std::string& text,
            size_t envelope_size, absl::Time expires, DoneCallback& done);

  const std::string& target() const { return target_; }

 private:
  friend class SendStream;

  bool OpenLocked(Engine& engine) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // The timer fires at the earliest expiry of a pending frame.
  void ArmLocked(absl::Time at) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Expire();
  using PendingMap = std::map<uint64_t, PendingSend>;
  // Removes a frame from pending_ and the expiry index; the next one.
  PendingMap::iterator ErasePendingLocked(PendingMap::iterator it)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    expiries_.erase(it->second.expiry);
    return pending_.erase(it);
  }
  // Takes every pending frame of `stream` (of any stream when null),
  // answered with `status`.
  void FailLocked(const SendStream* stream, const absl::Status& status, Completions* out)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const std::string target_;
  ::grpc::GenericStub* const stub_;
  Clock* const clock_;
  const size_t batch_limit_;

  absl::Mutex mu_;
  SendStream* stream_ ABSL_GUARDED_BY(mu_) = nullptr;  // the open stream, if any
  bool unary_ ABSL_GUARDED_BY(mu_) = false;  // the server has no Send
  uint64_t next_seq_ ABSL_GUARDED_BY(mu_) = 1;
  PendingMap pending_ ABSL_GUARDED_BY(mu_);
  // Pending frames by expiry (equal times in order of sequence): expiring
  // the due ones does not visit the others.
  std::multimap<absl::Time, uint64_t> expiries_ ABSL_GUARDED_BY(mu_);
  std::deque<uint64_t> unwritten_ ABSL_GUARDED_BY(mu_);  // in order; may name answered ones
  TimerHandle timer_ ABSL_GUARDED_BY(mu_);
  absl::Time timer_at_ ABSL_GUARDED_BY(mu_) = absl::InfiniteFuture();
};

class SendStream final : public ::grpc::ClientBidiReactor<ByteBuffer, ByteBuffer> {
 public:
  SendStream(std::weak_ptr<Engine> engine, std::shared_ptr<CallTracker> tracker,
             std::shared_ptr<SendChannel> channel)
      : engine_(std::move(engine)),
        tracker_(std::move(tracker)),
        channel_(std::move(channel)),
        ctx_(std::make_shared<::grpc::ClientContext>()) {}

  const std::shared_ptr<::grpc::ClientContext>& ctx() const { return ctx_; }

  void Start(::grpc::GenericStub* stub) {
    stub->PrepareBidiStreamingCall(ctx_.get(), MethodName(kMethodSend), ::grpc::StubOptions(),
                                   this);
    // Writes start outside the reactions (on the callers' threads): the hold
    // keeps OnDone from running until the stream is detached, so a write
    // never starts on a stream that is done.
    AddHold();
    StartRead(&in_);
    StartCall();
  }

  // Writes the frames waiting, as many as fit one batch, unless a write is
  // in flight. gRPC never runs a reaction inline from a Start* call, so the
  // channel's lock may be held across them.
  void MaybeWriteLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(channel_->mu_) {
    SendChannel& ch = *channel_;
    if (writing_ || ended_) return;
    batch_.clear();
    size_t size = 0;
    while (!ch.unwritten_.empty()) {
      auto it = ch.pending_.find(ch.unwritten_.front());
      if (it == ch.pending_.end()) {  // timed out before it was written
        ch.unwritten_.pop_front();
        continue;
      }
      const PendingSend& p = it->second;
      const wire::RequestShape shape = ShapeOf(p.kind);
      const size_t request =
          RequestWireSize(shape.envelope_field, shape.text_field, p.envelope_size, p.text);
      const size_t frame = wire::FrameWireSize(it->first, request);
      if (!batch_.empty() && size + frame > ch.batch_limit_) break;
      it->second.stream = this;
      batch_.push_back({it, request});
      size += frame;
      ch.unwritten_.pop_front();
    }
    if (batch_.empty()) return;
    ::grpc::Slice slice(size);
    uint8_t* out = const_cast<uint8_t*>(slice.begin());
    for (const auto& [it, request] : batch_) {
      const PendingSend& p = it->second;
      const wire::RequestShape shape = ShapeOf(p.kind);
      out = wire::WriteFrameHeader(it->first, p.kind, request, out);
      out = WriteRequestWire(shape.envelope_field, shape.text_field, p.env, p.envelope_size,
                             p.text, out);
    }
    ByteBuffer buffer(&slice, 1);
    out_.Swap(&buffer);
    writing_ = true;
    StartWrite(&out_);
  }

  void OnWriteDone(bool ok) override {
    absl::MutexLock lock(&channel_->mu_);
    writing_ = false;
    if (!ok) {  // the stream is broken: OnDone follows
      ended_ = true;
      return;
    }
    MaybeWriteLocked();
  }

  void OnReadDone(bool ok) override {
    if (!ok) {  // the stream ended
      Detach();
      return;
    }
    acks_.clear();
    bool read;
    {
      const ::grpc::Slice slice = SingleSlice(in_);
      read = wire::ReadAckBatch(View(slice), &acks_);
    }
    in_.Clear();
    if (!read) {
      // The stream is tracked until OnDone ends, so the Engine cannot be
      // destroyed while this holds it.
      if (std::shared_ptr<Engine> engine = engine_.lock()) engine->CountMalformed();
      {
        absl::MutexLock lock(&channel_->mu_);
        broken_ = absl::InternalError(Cat("malformed acks from gRPC target ", channel_->target(),
                                          ": not a switchboard.v1.AckBatch"));
      }
      ctx_->TryCancel();
      Detach();
      return;
    }
    {
      absl::MutexLock lock(&channel_->mu_);
      acked_ = true;
      for (auto& [seq, status] : acks_) {
        auto it = channel_->pending_.find(seq);
        if (it == channel_->pending_.end()) continue;  // timed out, or not ours
        completions_.emplace_back(std::move(it->second.done), std::move(status));
        internal::RecycleEnvelope(std::move(it->second.env));
        channel_->ErasePendingLocked(it);
      }
    }
    RunCompletions(completions_);
    StartRead(&in_);
  }

  void OnDone(const ::grpc::Status& status) override {
    Completions failed;
    std::vector<PendingSend> fallback;
    {
      absl::MutexLock lock(&channel_->mu_);
      SendChannel& ch = *channel_;
      ended_ = true;
      if (ch.stream_ == this) ch.stream_ = nullptr;
      if (status.error_code() == ::grpc::StatusCode::UNIMPLEMENTED && !acked_) {
        // A server without Send (another implementation of the service):
        // unary calls from now on, starting with what waits here.
        ch.unary_ = true;
        for (auto it = ch.pending_.begin(); it != ch.pending_.end();) {
          if (it->second.stream != this) {
            ++it;
            continue;
          }
          fallback.push_back(std::move(it->second));
          it = ch.ErasePendingLocked(it);
        }
      } else {
        absl::Status why = broken_;
        if (why.ok()) {
          why = FromGrpc(status).ok() ? absl::UnavailableError("the Send stream ended")
                                      : FromGrpc(status);
        }
        ch.FailLocked(this, why, &failed);
      }
    }
    if (!fallback.empty()) {
      std::shared_ptr<Engine> engine = engine_.lock();
      const absl::Time now = engine ? engine->clock()->Now() : absl::Now();
      for (PendingSend& p : fallback) {
        if (engine == nullptr) {
          failed.emplace_back(std::move(p.done), absl::CancelledError("the transport is closed"));
          continue;
        }
        engine->SendUnary(channel_->target(), p.kind, std::move(p.env), p.text,
                          p.expires - now, std::move(p.done));
      }
    }
    RunCompletions(failed);
    std::shared_ptr<CallTracker> tracker = std::move(tracker_);
    std::shared_ptr<::grpc::ClientContext> ctx = ctx_;
    delete this;
    tracker->Untrack(ctx.get());
  }

 private:
  // No more writes on this stream; the next frame opens a new one. Its
  // pending frames end with it, in OnDone.
  void Detach() {
    {
      absl::MutexLock lock(&channel_->mu_);
      if (detached_) return;
      detached_ = true;
      ended_ = true;
      if (channel_->stream_ == this) channel_->stream_ = nullptr;
    }
    RemoveHold();
  }

  std::weak_ptr<Engine> engine_;
  std::shared_ptr<CallTracker> tracker_;
  const std::shared_ptr<SendChannel> channel_;
  const std::shared_ptr<::grpc::ClientContext> ctx_;
  ByteBuffer in_;
  ByteBuffer out_;
  // Guarded by the channel's lock.
  bool writing_ = false;
  bool ended_ = false;
  bool acked_ = false;  // the server answered a frame: it has Send
  bool detached_ = false;
  absl::Status broken_;
  // Scratch of the reactions, which do not overlap.
  std::vector<std::pair<std::map<uint64_t, PendingSend>::iterator, size_t>> batch_;
  AckList acks_;
  Completions completions_;
};

bool SendChannel::Send(Engine& engine, SendKind kind, Envelope& env, std::string& text,
                       size_t envelope_size, absl::Time expires, DoneCallback& done) {
  Completions failed;
  {
    absl::MutexLock lock(&mu_);
    if (unary_) return false;
    // Counted before the frame can be answered: whoever waits for the answer
    // sees the count.
    engine.CountStreamedSend();
    const uint64_t seq = next_seq_++;
    auto it = pending_
                  .emplace(seq, PendingSend{kind, std::move(env), std::move(text), envelope_size,
                                            expires, std::move(done), nullptr,
                                            expiries_.emplace(expires, seq)})
                  .first;
    unwritten_.push_back(seq);
    if (expires < timer_at_) ArmLocked(expires);
    if (stream_ != nullptr || OpenLocked(engine)) {
      it->second.stream = stream_;
      stream_->MaybeWriteLocked();
    } else {
      FailLocked(nullptr,
                 absl::CancelledError(Cat("grpc transport \"", engine.name(), "\" is closed")),
                 &failed);
    }
  }
  RunCompletions(failed);
  return true;
}

bool SendChannel::OpenLocked(Engine& engine) {
  auto* stream = new SendStream(engine.weak_from_this(), engine.tracker(), shared_from_this());
  // The tracker keeps the context alive while Shutdown may cancel it.
  if (!engine.tracker()->Track(stream->ctx().get(), stream->ctx())) {
    delete stream;
    return false;
  }
  stream_ = stream;
  stream->Start(stub_);
  return true;
}

void SendChannel::ArmLocked(absl::Time at) {
  timer_.Cancel();
  timer_at_ = at;
  std::weak_ptr<SendChannel> weak = weak_from_this();
  timer_ = clock_->RunAt(at, [weak] {
    if (std::shared_ptr<SendChannel> self = weak.lock()) self->Expire();
  });
}

void SendChannel::Expire() {
  Completions expired;
  {
    absl::MutexLock lock(&mu_);
    const absl::Time now = clock_->Now();
    timer_at_ = absl::InfiniteFuture();
    while (!expiries_.empty() && expiries_.begin()->first <= now) {
      auto it = pending_.find(expiries_.begin()->second);
      expired.emplace_back(
          std::move(it->second.done),
          absl::DeadlineExceededError(Cat(it->second.env.type, " via gRPC target ", target_,
                                          ": no answer on the Send stream in time")));
      ErasePendingLocked(it);
    }
    if (!expiries_.empty()) ArmLocked(expiries_.begin()->first);
  }
  RunCompletions(expired);
}

void SendChannel::FailLocked(const SendStream* stream, const absl::Status& status,
                             Completions* out) {
  for (auto it = pending_.begin(); it != pending_.end();) {
    if (stream != nullptr && it->second.stream != stream) {
      ++it;
      continue;
    }
    out->emplace_back(std::move(it->second.done), status);
    it = ErasePendingLocked(it);
  }
  // Answered frames left in unwritten_ are skipped when met.
  if (pending_.empty()) {
    unwritten_.clear();
    timer_.Cancel();
    timer_at_ = absl::InfiniteFuture();
  }
}

// ---------------------------------------------------------------------------
// Deliveries and subscriptions.

// Wraps a delivery of the local queue: restores the envelope's type and
// routes dead letters to where the dead-letter address is consumed.
class RoutedDelivery final : public Delivery {
 public:
  RoutedDelivery(std::unique_ptr<Delivery> inner, std::weak_ptr<Engine> engine)
      : Delivery(Unqueued(inner->envelope())),
        inner_(std::move(inner)),
        engine_(std::move(engine)) {}

  void Ack() override { inner_->Ack(); }
  void Retry(absl::Duration delay) override { inner_->Retry(delay); }
  // What goes is this delivery's envelope: it carries what the receiver
  // added before dead-lettering (attempts, time), which the inner one lacks.
  void DeadLetter(const absl::Status& reason) override {
    std::shared_ptr<Engine> engine = engine_.lock();
    if (engine == nullptr) {
      inner_->mutable_envelope().extensions = envelope().extensions;
      inner_->DeadLetter(reason);
      return;
    }
    engine->RouteDeadLetter(std::move(mutable_envelope()), reason);
    inner_->Ack();
  }

 private:
  std::unique_ptr<Delivery> inner_;
  std::weak_ptr<Engine> engine_;
};

class ServeSubscription final : public Subscription {
 public:
  ServeSubscription(std::function<void()> remove, std::shared_ptr<ServeEntry> entry)
      : remove_(std::move(remove)), entry_(std::move(entry)) {}
  ~ServeSubscription() override {
    remove_();
    entry_->Stop();
  }

 private:
  std::function<void()> remove_;
  std::shared_ptr<ServeEntry> entry_;
};

class EventSubscription final : public Subscription {
 public:
  EventSubscription(std::shared_ptr<StreamState> state, std::unique_ptr<Subscription> local)
      : state_(std::move(state)), local_(std::move(local)) {}
  ~EventSubscription() override {
    std::shared_ptr<::grpc::ClientContext> ctx;
    {
      absl::MutexLock lock(&state_->mu);
      state_->stopping = true;
      state_->retry.Cancel();
      ctx = state_->ctx;
    }
    if (ctx) ctx->TryCancel();
    {
      absl::MutexLock lock(&state_->mu);
      state_->mu.AwaitWithTimeout(
          absl::Condition(+[](StreamState* s) ABSL_NO_THREAD_SAFETY_ANALYSIS { return !s->open; },
                          state_.get()),
          kCloseGrace);
    }
    local_.reset();  // waits for handler calls in progress
  }

 private:
  std::shared_ptr<StreamState> state_;
  std::unique_ptr<Subscription> local_;
};

class Inbox final : public ReplyInbox {
 public:
  Inbox(std::string address, std::function<void()> close)
      : address_(std::move(address)), close_(std::move(close)) {}
  ~Inbox() override { close_(); }
  const std::string& address() const override { return address_; }

 private:
  std::string address_;
  std::function<void()> close_;
};

// ---------------------------------------------------------------------------
// Engine.

absl::Status Engine::Start() {
  PinCallbackQueue();
  // The local queues: an inproc transport on a bus no other transport uses.
  v1::TransportConfig local_config;
  local_config.set_type("inproc");
  local_config.mutable_inproc()->set_bus(
      Cat("grpc-local/", name_, "/", NewMessageId()));
  absl::StatusOr<std::unique_ptr<Transport>> local =
      MakeInprocTransport(Cat(name_, ".local"), local_config, env_);
  if (!local.ok()) return local.status();
  local_ = *std::move(local);

  const v1::TlsOptions& tls = options_.tls();
  const bool use_tls = !tls.ca_file().empty() || !tls.cert_file().empty() ||
                       !tls.key_file().empty() || tls.mutual();
  std::string ca, cert, key;
  if (use_tls) {
    if (!tls.ca_file().empty()) {
      absl::StatusOr<std::string> r = ReadFile(tls.ca_file(), "ca_file");
      if (!r.ok()) return r.status();
      ca = *std::move(r);
    }
    if (!tls.cert_file().empty()) {
      absl::StatusOr<std::string> r = ReadFile(tls.cert_file(), "cert_file");
      if (!r.ok()) return r.status();
      cert = *std::move(r);
    }
    if (!tls.key_file().empty()) {
      absl::StatusOr<std::string> r = ReadFile(tls.key_file(), "key_file");
      if (!r.ok()) return r.status();
      key = *std::move(r);
    }
    if (cert.empty() != key.empty()) {
      return absl::InvalidArgumentError(
          "grpc.tls: cert_file and key_file go together (set both or neither)");
    }
    ::grpc::SslCredentialsOptions client;
    client.pem_root_certs = ca;
    client.pem_cert_chain = cert;
    client.pem_private_key = key;
    channel_creds_ = ::grpc::SslCredentials(client);
  } else {
    channel_creds_ = ::grpc::InsecureChannelCredentials();
  }

  if (options_.listen().empty()) return absl::OkStatus();

  std::shared_ptr<::grpc::ServerCredentials> server_creds;
  if (use_tls) {
    if (cert.empty()) {
      return absl::InvalidArgumentError(
          "grpc.tls: a transport that listens with TLS needs cert_file and key_file");
    }
    if (tls.mutual() && ca.empty()) {
      return absl::InvalidArgumentError(
          "grpc.tls.mutual needs ca_file (the CA that signs client certificates)");
    }
    ::grpc::SslServerCredentialsOptions server(
        tls.mutual() ? GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY
                     : GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE);
    server.pem_root_certs = ca;
    server.pem_key_cert_pairs.push_back({key, cert});
    server_creds = ::grpc::SslServerCredentials(server);
  } else {
    server_creds = ::grpc::InsecureServerCredentials();
  }

  service_ = std::make_unique<Service>(this);
  ::grpc::ServerBuilder builder;
  builder.AddListeningPort(options_.listen(), server_creds, &bound_port_);
  builder.RegisterCallbackGenericService(service_.get());
  // gRPC sets SO_REUSEPORT by default: a second node configured with the same
  // port would then share it silently instead of failing.
  builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
  builder.AddChannelArgument(GRPC_ARG_MAX_METADATA_SIZE, kMaxMetadataBytes);
  if (options_.max_message_bytes() > 0) {
    const int max = static_cast<int>(
        std::min<uint64_t>(options_.max_message_bytes(), std::numeric_limits<int>::max()));
    builder.SetMaxReceiveMessageSize(max);
    builder.SetMaxSendMessageSize(max);
  }
  if (options_.has_keepalive_time()) {
    const int64_t ms = options_.keepalive_time().seconds() * 1000 +
                       options_.keepalive_time().nanos() / 1000000;
    builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIME_MS, static_cast<int>(ms));
    builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
    // Clients of this node ping at the same interval: let them.
    builder.AddChannelArgument(GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS,
                               static_cast<int>(ms));
    builder.AddChannelArgument(GRPC_ARG_HTTP2_MAX_PINGS_WITHOUT_DATA, 0);
  }
  if (options_.has_keepalive_timeout()) {
    const int64_t ms = options_.keepalive_timeout().seconds() * 1000 +
                       options_.keepalive_timeout().nanos() / 1000000;
    builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, static_cast<int>(ms));
  }
  server_ = builder.BuildAndStart();
  if (server_ == nullptr || bound_port_ == 0) {
    server_.reset();
    return absl::UnavailableError(
        Cat("grpc transport \"", name_, "\": cannot listen on \"", options_.listen(),
                     "\" (address in use or invalid; check grpc.listen)"));
  }
  if (!options_.advertise().empty()) {
    advertised_ = options_.advertise();
  } else {
    std::string host = options_.listen().substr(0, options_.listen().rfind(':'));
    if (host.empty() || host == "0.0.0.0" || host == "[::]") host = "127.0.0.1";
    advertised_ = Cat(host, ":", bound_port_);
  }
  return absl::OkStatus();
}

void Engine::Shutdown() {
  {
    absl::MutexLock lock(&hub_mu_);
    hub_closed_ = true;
    for (auto& [type, groups] : hub_) {
      for (auto& [group, g] : groups) {
        for (SubscribeReactor* r : g.streams) {
          r->FinishFromHub(absl::UnavailableError("the hub is shutting down"));
        }
      }
    }
    hub_.clear();
  }
  if (server_) {
    server_->Shutdown(ChronoDeadline(absl::Milliseconds(500)));
    server_.reset();
  }
  tracker_->CloseAndWait(kCloseGrace);
}

std::string Engine::Resolve(std::string_view operation) {
  {
    absl::MutexLock lock(&targets_mu_);
    for (std::string_view key : wire::TargetKeys(operation)) {
      auto it = targets_.find(key);
      if (it != targets_.end()) return it->second;
    }
  }
  return advertised_;  // this node's own server, or "" when not listening
}

::grpc::ChannelArguments Engine::ChannelArgs() const {
  ::grpc::ChannelArguments args;
  if (options_.max_message_bytes() > 0) {
    const int max = static_cast<int>(
        std::min<uint64_t>(options_.max_message_bytes(), std::numeric_limits<int>::max()));
    args.SetMaxReceiveMessageSize(max);
    args.SetMaxSendMessageSize(max);
  }
  if (options_.has_keepalive_time()) {
    args.SetInt(GRPC_ARG_KEEPALIVE_TIME_MS,
                static_cast<int>(options_.keepalive_time().seconds() * 1000 +
                                 options_.keepalive_time().nanos() / 1000000));
    args.SetInt(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
  }
  if (options_.has_keepalive_timeout()) {
    args.SetInt(GRPC_ARG_KEEPALIVE_TIMEOUT_MS,
                static_cast<int>(options_.keepalive_timeout().seconds() * 1000 +
                                 options_.keepalive_timeout().nanos() / 1000000));
  }
  // A target naming several servers spreads calls over them (competing
  // consumers and load sharing across nodes).
  args.SetLoadBalancingPolicyName("round_robin");
  args.SetInt(GRPC_ARG_MAX_METADATA_SIZE, kMaxMetadataBytes);
  // A peer that restarts is found again quickly (gRPC's default backoff
  // starts at 1 s and grows to 2 min).
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 100);
  args.SetInt(GRPC_ARG_MIN_RECONNECT_BACKOFF_MS, 100);
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 2000);
  // Connections are this transport's own, not shared process-wide with other
  // transports (which may use other credentials or limits).
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  if (!options_.tls().server_name().empty()) {
    args.SetSslTargetNameOverride(options_.tls().server_name());
  }
  return args;
}

std::shared_ptr<Engine::ChannelEntry> Engine::ChannelFor(const std::string& target) {
  absl::MutexLock lock(&channels_mu_);
  std::shared_ptr<ChannelEntry>& entry = channels_[target];
  if (entry == nullptr) {
    entry = std::make_shared<ChannelEntry>();
    entry->channel =
        ::grpc::CreateCustomChannel(GrpcTargetUri(target), channel_creds_, ChannelArgs());
    entry->stub = std::make_unique<::grpc::GenericStub>(entry->channel);
  }
  return entry;
}

template <class Done>
void Engine::Unary(const std::string& target, std::string_view method, ByteBuffer&& body,
                   const Envelope* attributes, absl::Duration timeout, Done done) {
  // One allocation holds the call, its buffers and `done`. gRPC's callback
  // then captures only a pointer, which std::function stores without
  // allocating (it copies the callback once more inside gRPC).
  struct Call : ClientCall {
    explicit Call(Done d) : done(std::move(d)) {}
    Done done;
    std::shared_ptr<CallTracker> tracker;
  };
  auto call = std::make_shared<Call>(std::move(done));
  call->request.Swap(&body);
  if (attributes != nullptr) {
    wire::ForEachMetadata(*attributes, metadata_set(),
                          [&call](std::string_view k, std::string_view v) {
                            MetadataScratch& m = MetadataScratch::Get(k, v);
                            call->ctx.AddMetadata(m.key, m.value);
                          });
  }
  if (timeout < absl::InfiniteDuration()) {
    call->ctx.set_deadline(ChronoDeadline(std::max(timeout, absl::ZeroDuration())));
  }
  // The tracker owns the call from here until its callback untracks it.
  if (!tracker_->Track(&call->ctx, call)) {
    std::move(call->done)(::grpc::Status(::grpc::StatusCode::CANCELLED,
                                         Cat("grpc transport \"", name_, "\" is closed")),
                          *call);
    return;
  }
  call->tracker = tracker_;
  std::shared_ptr<ChannelEntry> channel = ChannelFor(target);
  channel->stub->UnaryCall(
      &call->ctx, MethodName(method), ::grpc::StubOptions(), &call->request, &call->response,
      [c = call.get()](::grpc::Status status) {
        // Untracking frees the call: keep the tracker apart from it.
        std::shared_ptr<CallTracker> tracker = std::move(c->tracker);
        std::move(c->done)(status, *c);
        tracker->Untrack(&c->ctx);
      });
}

void Engine::Request(Envelope request, ReplyCallback on_reply) {
  std::string target = Resolve(request.type);
  if (target.empty()) {
    std::move(on_reply)(absl::UnavailableError(Cat(
        "grpc transport \"", name_, "\": no target for ", request.type,
        "; set grpc.targets[\"", wire::TargetKeys(request.type)[1], "\"] or grpc.targets[\"*\"]")));
    return;
  }
  absl::Duration timeout = absl::InfiniteDuration();
  if (request.has_deadline()) {
    timeout = request.deadline - clock_->Now();
    if (timeout <= absl::ZeroDuration()) {
      std::move(on_reply)(absl::DeadlineExceededError(
          Cat("deadline of ", request.type, " passed before it was sent")));
      return;
    }
  }
  ByteBuffer body = EnvelopeBuffer(request);
  auto done = [reply = std::move(on_reply), op = request.type, target](
                  const ::grpc::Status& status, ClientCall& call) mutable {
    if (!status.ok()) {
      absl::Status s = FromGrpc(status);
      if (s.code() == absl::StatusCode::kUnavailable &&
          call.ctx.GetServerTrailingMetadata().count("ce-id") == 0) {
        // The transport's own failure (not a handler's): say where.
        s = absl::UnavailableError(Cat(op, " via gRPC target ", target, ": ", s.message()));
      }
      std::move(reply)(s);
      return;
    }
    Envelope env = internal::NewEnvelope();
    internal::EnvelopeWireRest rest;
    absl::Status s = ReadEnvelopeBuffer(call.response, &env, &rest);
    if (s.ok()) s = internal::CompleteEnvelope(rest, &env);
    if (!s.ok()) {
      std::move(reply)(absl::InternalError(
          Cat("malformed reply to ", op, " from ", target, ": ", s.message())));
      return;
    }
    std::move(reply)(std::move(env));
  };
  Unary(target, kMethodCall, std::move(body), &request, timeout, std::move(done));
  // Serialized and sent: the envelope's buffers serve a later one.
  internal::RecycleEnvelope(std::move(request));
}

absl::StatusOr<std::unique_ptr<Subscription>> Engine::Serve(const Endpoint& endpoint,
                                                            RequestHandler handler) {
  if (!listening()) {
    return absl::FailedPreconditionError(
        Cat("grpc transport \"", name_, "\" does not listen: set grpc.listen to serve ",
                     endpoint.operation));
  }
  auto entry = std::make_shared<ServeEntry>(std::move(handler));
  {
    absl::MutexLock lock(&servers_mu_);
    servers_[endpoint.operation].push_back(entry);
  }
  std::weak_ptr<Engine> weak = weak_from_this();
  std::string op = endpoint.operation;
  auto remove = [weak, op, raw = entry.get()] {
    std::shared_ptr<Engine> self = weak.lock();
    if (!self) return;
    absl::MutexLock lock(&self->servers_mu_);
    auto it = self->servers_.find(op);
    if (it == self->servers_.end()) return;
    std::erase_if(it->second, [raw](const auto& e) { return e.get() == raw; });
    if (it->second.empty()) self->servers_.erase(it);
  };
  return std::make_unique<ServeSubscription>(std::move(remove), std::move(entry));
}

std::shared_ptr<ServeEntry> Engine::PickServer(const std::string& op) {
  absl::MutexLock lock(&servers_mu_);
  auto it = servers_.find(op);
  if (it == servers_.end() || it->second.empty()) return nullptr;
  size_t& next = next_server_[op];
  return it->second[next++ % it->second.size()];
}

void Engine::Enqueue(Envelope command, DoneCallback on_accepted) {
  std::string target = Resolve(command.type);
  if (target.empty()) {
    std::move(on_accepted)(absl::UnavailableError(Cat(
        "grpc transport \"", name_, "\": no target for ", command.type,
        "; set grpc.targets[\"", wire::TargetKeys(command.type)[1], "\"] or grpc.targets[\"*\"]")));
    return;
  }
  std::string op = command.type;
  const absl::Duration timeout = AcceptTimeout(command);
  SendTo(target, SendKind::kEnqueue, std::move(command), std::string(), timeout,
         [done = std::move(on_accepted), op = std::move(op), target](absl::Status s) mutable {
           if (s.code() == absl::StatusCode::kUnavailable) {
             s = absl::UnavailableError(Cat(op, " via gRPC target ", target, ": ", s.message()));
           }
           std::move(done)(s);
         });
}

void Engine::SendTo(const std::string& target, SendKind kind, Envelope env, std::string text,
                    absl::Duration timeout, DoneCallback done) {
  const size_t envelope_size = internal::EnvelopeWireSize(env);
  std::shared_ptr<SendChannel> channel = SendChannelFor(target, envelope_size + text.size());
  if (channel != nullptr &&
      channel->Send(*this, kind, env, text, envelope_size, clock_->Now() + timeout, done)) {
    return;
  }
  SendUnary(target, kind, std::move(env), text, timeout, std::move(done));
}

void Engine::SendUnary(const std::string& target, SendKind kind, Envelope env,
                       const std::string& text, absl::Duration timeout, DoneCallback done) {
  unary_sends_.fetch_add(1, std::memory_order_relaxed);
  const wire::RequestShape shape = ShapeOf(kind);
  Unary(target, MethodOf(kind), EnvelopeBuffer(env, shape.envelope_field, shape.text_field, text),
        &env, timeout,
        [done = std::move(done)](const ::grpc::Status& status, ClientCall&) mutable {
          std::move(done)(FromGrpc(status));
        });
  // Serialized and sent: the envelope's buffers serve a later one.
  internal::RecycleEnvelope(std::move(env));
}

std::shared_ptr<SendChannel> Engine::SendChannelFor(const std::string& target,
                                                    size_t request_bytes) {
  if (options_.unary_sends() || options_.full_metadata() || request_bytes > frame_limit_) {
    return nullptr;
  }
  {
    absl::MutexLock lock(&channels_mu_);
    auto it = send_channels_.find(target);
    if (it != send_channels_.end()) return it->second;
  }
  std::shared_ptr<SendChannel> channel;
  if (IsSingleAddress(target)) {
    std::shared_ptr<ChannelEntry> entry = ChannelFor(target);
    channel = std::make_shared<SendChannel>(target, entry->stub.get(), clock_, batch_limit_);
  }
  absl::MutexLock lock(&channels_mu_);
  // Another thread may have made one meanwhile: the first stays.
  return send_channels_.emplace(target, std::move(channel)).first->second;
}

DeliveryHandler Engine::Wrap(DeliveryHandler handler) {
  std::weak_ptr<Engine> weak = weak_from_this();
  return [weak, handler = std::move(handler)](std::unique_ptr<Delivery> delivery) {
    handler(std::make_unique<RoutedDelivery>(std::move(delivery), weak));
  };
}

absl::StatusOr<std::unique_ptr<Subscription>> Engine::Consume(const Endpoint& endpoint,
                                                              DeliveryHandler handler) {
  if (!listening()) {
    return absl::FailedPreconditionError(Cat(
        "grpc transport \"", name_, "\" does not listen: set grpc.listen to consume ",
        endpoint.operation));
  }
  Endpoint local = endpoint;
  local.address.clear();
  return local_->Consume(local, Wrap(std::move(handler)));
}

void Engine::RouteDeadLetter(Envelope env, const absl::Status& reason) {
  env.extensions[std::string(attr::kDeadLetterReason)] = std::string(reason.message());
  env.extensions[std::string(attr::kDeadLetterCode)] = std::string(CodeName(reason.code()));
  std::string queue = DeadLetterAddress(env.type);
  // Only an explicit target moves dead letters off this node: "*" names
  // where calls go, not where this node's failures are kept.
  std::string target;
  {
    absl::MutexLock lock(&targets_mu_);
    auto it = targets_.find(queue);
    if (it != targets_.end()) target = it->second;
  }
  if (target.empty() || target == advertised_) {
    LocalEnqueue(std::move(env), queue, [](absl::Status) {});
    return;
  }
  ByteBuffer body = EnvelopeBuffer(env, 1, 2, queue);  // EnqueueRequest{command, queue}
  std::weak_ptr<Engine> weak = weak_from_this();
  auto keep = std::make_shared<Envelope>(std::move(env));
  Unary(target, kMethodEnqueue, std::move(body), keep.get(), kAcceptTimeout,
        [weak, keep, queue](const ::grpc::Status& status, ClientCall&) {
          if (status.ok()) return;
          // Never lost: kept in this node's dead-letter queue instead.
          if (std::shared_ptr<Engine> self = weak.lock()) {
            self->LocalEnqueue(std::move(*keep), queue, [](absl::Status) {});
          }
        });
}

void Engine::Publish(Envelope event, DoneCallback on_published) {
  auto done = std::make_shared<DoneCallback>(std::move(on_published));
  std::vector<std::pair<std::string, std::string>> sends;  // (target, group)
  if (options_.event_targets_size() > 0) {
    for (const auto& [group, target] : options_.event_targets()) sends.emplace_back(target, group);
  } else {
    std::string target = Resolve(event.type);
    if (target.empty()) {
      std::move(*done)(absl::UnavailableError(Cat(
          "grpc transport \"", name_, "\": no hub for event ", event.type, "; set grpc.targets[\"",
          wire::TargetKeys(event.type)[1], "\"], grpc.targets[\"*\"] or grpc.event_targets")));
      return;
    }
    sends.emplace_back(target, "");
  }
  struct Join {
    absl::Mutex mu;
    size_t pending;
    absl::Status first;
  };
  auto join = std::make_shared<Join>();
  join->pending = sends.size();
  const absl::Duration timeout = AcceptTimeout(event);
  const std::string type = event.type;
  for (size_t i = 0; i < sends.size(); ++i) {
    const auto& [target, group] = sends[i];
    // The last copy takes the event itself.
    Envelope copy = i + 1 < sends.size() ? Envelope(event) : std::move(event);
    SendTo(target, SendKind::kPublish, std::move(copy), group, timeout,
           [join, done, where = target, type](absl::Status status) {
             bool last;
             absl::Status result;
             {
               absl::MutexLock lock(&join->mu);
               if (!status.ok() && join->first.ok()) {
                 join->first = absl::Status(
                     status.code(), Cat("event ", type, " to ", where, ": ", status.message()));
               }
               last = --join->pending == 0;
               result = join->first;
             }
             if (last) std::move(*done)(result);
           });
  }
}

void Engine::AcceptEnqueue(Envelope command, std::string queue, DoneCallback done) {
  if (queue.empty()) queue = command.type;
  LocalEnqueue(std::move(command), queue, std::move(done));
}

void Engine::AcceptPublish(Envelope event, const std::string& group, DoneCallback done) {
  if (group.empty()) {
    HubDistribute(event);
    std::move(done)(absl::OkStatus());
    return;
  }
  const std::string queue = wire::GroupQueue(event.type, group);
  LocalEnqueue(std::move(event), queue, std::move(done));
}

void Engine::AcceptReply(Envelope reply, const std::string& inbox, DoneCallback done) {
  std::shared_ptr<ReplyHandler> hold;
  ReplyHandler* handler = FindInbox(inbox, &hold);
  if (handler == nullptr) {
    std::move(done)(
        absl::NotFoundError(Cat("no reply inbox \"", inbox, "\" on this node (closed?)")));
    return;
  }
  (*handler)(std::move(reply));
  std::move(done)(absl::OkStatus());
}

void Engine::AcceptFrame(const FrameView& frame, DoneCallback done) {
  if (!frame.kind.has_value()) {
    CountMalformed();
    std::move(done)(absl::InvalidArgumentError(
        Cat("malformed Send frame ", frame.seq, ": it carries no request")));
    return;
  }
  const wire::RequestShape shape = ShapeOf(*frame.kind);
  Envelope env = internal::NewEnvelope();
  std::string text;
  internal::EnvelopeWireRest rest;
  absl::Status s = internal::ReadEnvelopeFieldWire(frame.request, shape.envelope_field,
                                                   shape.text_field, &env, &rest, &text);
  if (s.ok()) s = internal::CompleteEnvelope(rest, &env);
  if (!s.ok()) {
    CountMalformed();
    std::move(done)(absl::InvalidArgumentError(
        Cat("malformed Send frame ", frame.seq, ": the ", frame.request.size(),
            "-byte request is not a ", shape.message, " (", s.message(), ")")));
    return;
  }
  switch (*frame.kind) {
    case SendKind::kEnqueue:
      AcceptEnqueue(std::move(env), std::move(text), std::move(done));
      return;
    case SendKind::kPublish:
      AcceptPublish(std::move(env), text, std::move(done));
      return;
    case SendKind::kReply:
      AcceptReply(std::move(env), text, std::move(done));
      return;
  }
}

void Engine::HubAdd(const std::string& type, const std::string& group, SubscribeReactor* r) {
  absl::MutexLock lock(&hub_mu_);
  if (hub_closed_) {
    r->FinishFromHub(absl::UnavailableError("the hub is shutting down"));
    return;
  }
  hub_[type][group].streams.push_back(r);
}

void Engine::HubRemove(SubscribeReactor* r) {
  absl::MutexLock lock(&hub_mu_);
  for (auto t = hub_.begin(); t != hub_.end();) {
    for (auto g = t->second.begin(); g != t->second.end();) {
      std::erase(g->second.streams, r);
      g = g->second.streams.empty() ? t->second.erase(g) : std::next(g);
    }
    t = t->second.empty() ? hub_.erase(t) : std::next(t);
  }
}

void Engine::HubDistribute(const Envelope& event) {
  ByteBuffer buffer = EnvelopeBuffer(event);
  absl::MutexLock lock(&hub_mu_);
  auto t = hub_.find(event.type);
  if (t == hub_.end()) return;  // no group subscribed: nobody to tell
  for (auto& [group, g] : t->second) {
    bool given = false;
    const size_t n = g.streams.size();
    for (size_t i = 0; i < n && !given; ++i) {
      const size_t idx = (g.next + i) % n;
      if (g.streams[idx]->Offer(buffer)) {
        g.next = idx + 1;
        given = true;
      }
    }
    if (!given) dropped_events_.fetch_add(1, std::memory_order_relaxed);
  }
}

void Engine::ConnectStream(const std::shared_ptr<StreamState>& state, const std::string& target,
                           const v1::SubscribeRequest& request, const std::string& queue) {
  auto ctx = std::make_shared<::grpc::ClientContext>();
  {
    absl::MutexLock lock(&state->mu);
    if (state->stopping || state->open) return;
    if (!tracker_->Track(ctx.get(), ctx)) {
      if (!state->answered) {
        state->answered = true;
        state->first = absl::CancelledError(Cat("grpc transport \"", name_, "\" is closed"));
      }
      return;
    }
    state->open = true;
    state->ctx = ctx;
  }
  std::shared_ptr<ChannelEntry> channel = ChannelFor(target);
  auto* stream =
      new EventStream(weak_from_this(), tracker_, clock_, state, ctx, target, request, queue);
  stream->Start(channel->stub.get());
}

void Engine::OnStreamEvent(const ByteBuffer& bytes, const std::string& queue) {
  Envelope env = internal::NewEnvelope();
  internal::EnvelopeWireRest rest;
  if (!ReadEnvelopeBuffer(bytes, &env, &rest).ok() ||
      !internal::CompleteEnvelope(rest, &env).ok()) {
    // No identity to dead-letter under: counted and dropped.
    CountMalformed();
    return;
  }
  LocalEnqueue(std::move(env), queue, [this](absl::Status s) {
    if (!s.ok()) dropped_events_.fetch_add(1, std::memory_order_relaxed);
  });
}

absl::StatusOr<std::unique_ptr<Subscription>> Engine::Subscribe(const Endpoint& endpoint,
                                                                DeliveryHandler handler) {
  if (endpoint.group.empty()) {
    return absl::InvalidArgumentError(
        Cat("subscribing to ", endpoint.operation, " needs a group"));
  }
  std::string target = Resolve(endpoint.operation);
  if (target.empty()) {
    return absl::FailedPreconditionError(Cat(
        "grpc transport \"", name_, "\": no hub for event ", endpoint.operation,
        "; set grpc.targets[\"", wire::TargetKeys(endpoint.operation)[1],
        "\"] or grpc.targets[\"*\"], or grpc.listen to be the hub"));
  }
  const std::string queue = wire::GroupQueue(endpoint.operation, endpoint.group);
  Endpoint local = endpoint;
  local.operation = queue;
  local.address.clear();
  absl::StatusOr<std::unique_ptr<Subscription>> local_sub =
      local_->Consume(local, Wrap(std::move(handler)));
  if (!local_sub.ok()) return local_sub.status();

  v1::SubscribeRequest request;
  request.set_type(endpoint.operation);
  request.set_group(endpoint.group);
  request.set_subscriber(env_.source);
  auto state = std::make_shared<StreamState>();
  ConnectStream(state, target, request, queue);
  auto sub = std::make_unique<EventSubscription>(state, *std::move(local_sub));
  absl::Status first;
  {
    absl::MutexLock lock(&state->mu);
    state->mu.AwaitWithTimeout(
        absl::Condition(+[](StreamState* s) ABSL_NO_THREAD_SAFETY_ANALYSIS { return s->answered; },
                        state.get()),
        kSubscribeTimeout);
    first = state->answered ? state->first
                            : absl::DeadlineExceededError("no answer from the hub in time");
  }
  if (!first.ok()) {
    return absl::UnavailableError(Cat("cannot subscribe group \"", endpoint.group,
                                               "\" to ", endpoint.operation, " at ", target,
                                               ": ", first.message()));
  }
  return sub;
}

absl::StatusOr<std::unique_ptr<ReplyInbox>> Engine::OpenInbox(ReplyHandler on_reply) {
  if (!listening()) {
    return absl::FailedPreconditionError(Cat(
        "grpc transport \"", name_, "\" does not listen: set grpc.listen to receive replies"));
  }
  std::string id = Cat(next_inbox_.fetch_add(1), "-", NewMessageId());
  {
    absl::MutexLock lock(&inbox_mu_);
    inboxes_[id] = std::make_shared<ReplyHandler>(std::move(on_reply));
  }
  std::weak_ptr<Engine> weak = weak_from_this();
  return std::make_unique<Inbox>(wire::InboxAddress(advertised_, id), [weak, id] {
    if (std::shared_ptr<Engine> self = weak.lock()) {
      absl::MutexLock lock(&self->inbox_mu_);
      self->inboxes_.erase(id);
    }
  });
}

ReplyHandler* Engine::FindInbox(const std::string& id, std::shared_ptr<ReplyHandler>* hold) {
  absl::MutexLock lock(&inbox_mu_);
  auto it = inboxes_.find(id);
  if (it == inboxes_.end()) return nullptr;
  *hold = it->second;
  return hold->get();
}

void Engine::SendReply(const std::string& reply_to, Envelope reply, DoneCallback on_sent) {
  absl::StatusOr<wire::InboxRef> ref = wire::ParseInboxAddress(reply_to);
  if (!ref.ok()) {
    std::move(on_sent)(ref.status());
    return;
  }
  const absl::Duration timeout = AcceptTimeout(reply);
  SendTo(ref->target, SendKind::kReply, std::move(reply), ref->inbox, timeout,
         std::move(on_sent));
}

// ---------------------------------------------------------------------------
// Facade.

class GrpcTransportImpl final : public GrpcTransport {
 public:
  GrpcTransportImpl(std::string name, std::shared_ptr<Engine> engine)
      : name_(std::move(name)), engine_(std::move(engine)), features_(GrpcFeatures()) {}
  ~GrpcTransportImpl() override { engine_->Shutdown(); }

  std::string_view name() const override { return name_; }
  std::string_view type() const override { return "grpc"; }
  const Features& features() const override { return features_; }

  void Request(Envelope request, ReplyCallback on_reply) override {
    engine_->Request(std::move(request), std::move(on_reply));
  }
  absl::StatusOr<std::unique_ptr<Subscription>> Serve(const Endpoint& endpoint,
                                                      RequestHandler handler) override {
    return engine_->Serve(endpoint, std::move(handler));
  }
  void Enqueue(Envelope command, DoneCallback on_accepted) override {
    engine_->Enqueue(std::move(command), std::move(on_accepted));
  }
  absl::StatusOr<std::unique_ptr<Subscription>> Consume(const Endpoint& endpoint,
                                                        DeliveryHandler handler) override {
    return engine_->Consume(endpoint, std::move(handler));
  }
  void Publish(Envelope event, DoneCallback on_published) override {
    engine_->Publish(std::move(event), std::move(on_published));
  }
  absl::StatusOr<std::unique_ptr<Subscription>> Subscribe(const Endpoint& endpoint,
                                                          DeliveryHandler handler) override {
    return engine_->Subscribe(endpoint, std::move(handler));
  }
  absl::StatusOr<std::unique_ptr<ReplyInbox>> OpenInbox(ReplyHandler on_reply) override {
    return engine_->OpenInbox(std::move(on_reply));
  }
  void SendReply(const std::string& reply_to, Envelope reply, DoneCallback on_sent) override {
    engine_->SendReply(reply_to, std::move(reply), std::move(on_sent));
  }
  absl::StatusOr<int64_t> QueueDepth(const Endpoint& endpoint) override {
    return engine_->QueueDepth(endpoint);
  }

  GrpcStats stats() const override { return engine_->stats(); }
  int bound_port() const override { return engine_->bound_port(); }
  std::string advertised_address() const override { return engine_->advertised(); }
  void SetTarget(std::string key, std::string address) override {
    engine_->SetTarget(std::move(key), std::move(address));
  }

 private:
  const std::string name_;
  std::shared_ptr<Engine> engine_;
  const Features features_;
};

}  // namespace

Features GrpcFeatures() {
  Features f;
  f.durable = false;
  f.fan_out_to_groups = true;
  f.native_request_reply = true;
  f.ordering_per_key = false;
  f.broker_dedup = false;
  f.redelivery_count = true;
  f.reply_routing = true;
  f.cross_process = true;
  f.delayed_redelivery = true;
  return f;
}

absl::StatusOr<std::unique_ptr<GrpcTransport>> CreateGrpcTransport(
    std::string_view name, const v1::TransportConfig& config, const TransportEnv& env) {
  auto engine = std::make_shared<Engine>(std::string(name), config.grpc(), env);
  for (const auto& [key, address] : config.grpc().targets()) {
    if (address.empty()) {
      return absl::InvalidArgumentError(
          Cat("grpc.targets[\"", key, "\"] of transport \"", name, "\" is empty"));
    }
    engine->SetTarget(key, address);
  }
  if (absl::Status s = engine->Start(); !s.ok()) {
    engine->Shutdown();
    return s;
  }
  return std::make_unique<GrpcTransportImpl>(std::string(name), std::move(engine));
}

absl::StatusOr<std::unique_ptr<Transport>> MakeGrpcTransport(std::string_view name,
                                                             const v1::TransportConfig& config,
                                                             const TransportEnv& env) {
  absl::StatusOr<std::unique_ptr<GrpcTransport>> t = CreateGrpcTransport(name, config, env);
  if (!t.ok()) return t.status();
  return std::unique_ptr<Transport>(*std::move(t));
}

}  // namespace switchboard::grpc
