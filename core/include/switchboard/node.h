// node.h: the public API of Switchboard.
//
// A `Node` is one service instance: it owns the configured transports, the
// handler executor and the policy chains. Operations are declared once, with
// their protobuf request and reply types; whether each travels as `request`,
// `command` or `event`, and over which transport, comes from config.
//
//   inline constexpr switchboard::Operation<PlaceOrderRequest, PlaceOrderReply>
//       kPlaceOrder{"orders.v1.Orders/PlaceOrder"};
//
//   auto node = switchboard::Node::Create(config).value();
//   auto serving = node->Handle(kPlaceOrder,
//       [](switchboard::Context& ctx, const PlaceOrderRequest& req)
//           -> absl::StatusOr<PlaceOrderReply> { ... });
//   absl::StatusOr<PlaceOrderReply> reply = node->Call(kPlaceOrder, request).Get();
//
// Caller and handler code stay the same when config moves PlaceOrder from
// `request` to `command` with `reply: true`.
//
// Thread safety: every method may be called from any thread. Handlers run on
// the node's executor. Futures resolve on transport or executor threads.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <type_traits>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "google/protobuf/empty.pb.h"
#include "google/protobuf/message.h"
#include "switchboard/clock.h"
#include "switchboard/context.h"
#include "switchboard/envelope.h"
#include "switchboard/executor.h"
#include "switchboard/future.h"
#include "switchboard/internal/envelope_pool.h"
#include "switchboard/middleware.h"
#include "switchboard/transport.h"
#include "switchboard/v1/config.pb.h"

namespace switchboard {

class Telemetry;
class TransportRegistry;

// An operation's name and its request and reply types. Cheap, constexpr.
template <class Req, class Rep>
struct Operation {
  using Request = Req;
  using Reply = Rep;
  std::string_view name;
};

struct CallOptions {
  // Overrides the policy's timeout for this call.
  absl::Duration timeout = absl::ZeroDuration();
  // Absolute deadline; the earlier of this and `timeout` wins.
  absl::Time deadline = absl::InfiniteFuture();
  // Fixed per logical call; generated (UUIDv7) when empty. Reuse it when you
  // repeat a call yourself so the receiver can deduplicate.
  std::string idempotency_key;
  // The handler context this call is made from: the deadline and trace are
  // inherited.
  const Context* parent = nullptr;
  // An incoming W3C traceparent/tracestate for calls at the edge (ignored
  // when `parent` is set; replaced if invalid).
  std::string traceparent;
  std::string tracestate;
  std::string subject;
  // Payload encoding: application/protobuf (default) or application/json.
  std::string content_type;
  std::map<std::string, std::string> extensions;
};

struct HandlerOptions {
  // Events: the subscriber group (required). Commands and requests: all
  // handlers of an operation form one group; this overrides its name.
  std::string group;
  // Deliveries in flight for this handler at most (transport prefetch).
  int max_in_flight = 256;
  // Run the handler on the thread that delivers the message (for inproc, the
  // caller's thread) instead of the node's executor. Saves a thread hop per
  // call; only for handlers that never block.
  bool inline_execution = false;
};

// The untyped form of a handler: payload bytes in, payload bytes out. The
// typed Handle() wraps a function into this. `done` is called once, from any
// thread; a handler that drops it uncalled has its call answered Cancelled,
// as a dropped Promise answers a typed handler.
using RawHandler =
    std::function<void(Context& ctx, const Envelope& request,
                       absl::AnyInvocable<void(absl::StatusOr<std::string>) &&> done)>;

// RAII: destroying it stops the handler and waits for its in-flight calls.
class HandlerRegistration {
 public:
  HandlerRegistration() = default;
  explicit HandlerRegistration(std::function<void()> stop) : stop_(std::move(stop)) {}
  HandlerRegistration(HandlerRegistration&& o) noexcept : stop_(std::exchange(o.stop_, nullptr)) {}
  HandlerRegistration& operator=(HandlerRegistration&& o) noexcept {
    if (this != &o) {
      Stop();
      stop_ = std::exchange(o.stop_, nullptr);
    }
    return *this;
  }
  ~HandlerRegistration() { Stop(); }
  void Stop() {
    if (stop_) std::exchange(stop_, nullptr)();
  }

 private:
  std::function<void()> stop_;
};

class Node {
 public:
  struct Options {
    // Default: Clock::Real().
    Clock* clock = nullptr;
    // Runs handlers. Default: a ThreadPool of node.handler_threads threads.
    std::shared_ptr<Executor> executor;
    // Default: TransportRegistry::Default().
    const TransportRegistry* registry = nullptr;
    // Ready transport instances, by config name, used instead of creating
    // them from config (tests, the conformance suite, embedding).
    std::map<std::string, std::shared_ptr<Transport>> transports;
    // Extra policy middleware (run inside the built-in ones).
    MiddlewareFactories middleware;
    // Metrics, spans and logs, shared with other nodes (tests, embedding);
    // config `telemetry` is then not applied. Default: one of its own, from
    // config `telemetry` (telemetry.h).
    std::shared_ptr<Telemetry> telemetry;
  };

  // Validates `config`, creates its transports and returns a ready node, or
  // the first error (InvalidArgument for config, Unavailable for a transport
  // that cannot connect).
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<Node>> Create(v1::Config config);
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<Node>> Create(v1::Config config,
                                                                    Options options);
  // Closes: see Close().
  ~Node();

  // ---- handlers ----
  // `fn` is `(Context&, const Req&) -> absl::StatusOr<Rep>` (runs on the
  // executor) or `(Context&, const Req&) -> Future<Rep>` (asynchronous; no
  // thread is held while it is pending). A thrown exception becomes Internal
  // for a request and a redelivery for a command or event.
  template <class Req, class Rep, class Fn>
  [[nodiscard]] absl::StatusOr<HandlerRegistration> Handle(const Operation<Req, Rep>& op, Fn fn,
                                                           HandlerOptions options = {});

  [[nodiscard]] absl::StatusOr<HandlerRegistration> HandleRaw(std::string_view operation,
                                                              RawHandler handler,
                                                              HandlerOptions options = {});

  // ---- calls ----
  // Request and command+reply: resolves with the handler's reply. Command
  // without reply and event: resolves with an empty Rep once the transport
  // holds the message (Rep must then be google.protobuf.Empty, else
  // FailedPrecondition). Never blocks.
  template <class Req, class Rep>
  Future<Rep> Call(const Operation<Req, Rep>& op, const Req& request, CallOptions options = {});

  // Untyped: `payload` is the serialized request; resolves with the
  // serialized reply ("" for fire-and-forget styles).
  Future<std::string> CallRaw(std::string_view operation, std::string payload,
                              CallOptions options = {});

  // ---- introspection ----
  // The effective binding of an operation (config, or defaults).
  [[nodiscard]] absl::StatusOr<v1::OperationBinding> Binding(std::string_view operation) const;
  [[nodiscard]] Transport* FindTransport(std::string_view name) const;
  const v1::Config& config() const;
  Clock& clock() const;
  Executor& executor() const;
  const std::string& source() const;
  // This node's metrics, span sinks and call log (switchboard/telemetry.h).
  Telemetry& telemetry() const;

  // Stops every handler (waiting for the ones running), fails pending calls
  // with Cancelled, and closes the transports. Idempotent.
  void Close();

  class Impl;

 private:
  explicit Node(std::unique_ptr<Impl> impl);
  // Starts a call: `ids` gets the call's identifiers before it is sent, and
  // `done` its reply envelope or the error. `reply_type` (may be null) lets a
  // fire-and-forget binding refuse a caller that needs a reply. The typed and
  // untyped calls each turn the reply into their future's value in `done`.
  void StartCall(std::string_view operation, std::string payload, CallOptions options,
                 const google::protobuf::Descriptor* reply_type, internal::CallIds& ids,
                 ReplyCallback done);
  std::unique_ptr<Impl> impl_;
};

// ---------------------------------------------------------------------------
// Implementation details of the typed API.

namespace internal {

// Parses `env.data` per `env.data_content_type` (protobuf or JSON).
[[nodiscard]] absl::Status ParsePayload(const Envelope& env, google::protobuf::Message* out);
[[nodiscard]] absl::Status ParsePayload(std::string_view data, std::string_view content_type,
                                        google::protobuf::Message* out);
[[nodiscard]] absl::StatusOr<std::string> SerializePayload(const google::protobuf::Message& msg,
                                                           std::string_view content_type);

template <class T>
struct IsFuture : std::false_type {};
template <class T>
struct IsFuture<Future<T>> : std::true_type {};

// Invokes fn and turns exceptions into Internal with the exception's text and
// a marker so the node can redeliver commands.
absl::Status ExceptionStatus(std::string_view what);

}  // namespace internal

template <class Req, class Rep, class Fn>
absl::StatusOr<HandlerRegistration> Node::Handle(const Operation<Req, Rep>& op, Fn fn,
                                                 HandlerOptions options) {
  static_assert(std::is_base_of_v<google::protobuf::Message, Req>, "Req must be a protobuf message");
  static_assert(std::is_base_of_v<google::protobuf::Message, Rep>, "Rep must be a protobuf message");
  using Result = std::invoke_result_t<Fn&, Context&, const Req&>;
  RawHandler raw = [fn = std::move(fn)](
                       Context& ctx, const Envelope& env,
                       absl::AnyInvocable<void(absl::StatusOr<std::string>) &&> done) mutable {
    Req request;
    if (absl::Status parsed = internal::ParsePayload(env, &request); !parsed.ok()) {
      std::move(done)(parsed);
      return;
    }
    // The request outlives a synchronous handler's reply; an asynchronous
    // one's continuation keeps a copy.
    const std::string& content_type = env.data_content_type;
    if constexpr (internal::IsFuture<Result>::value) {
      Result future;
      try {
        future = fn(ctx, request);
      } catch (const std::exception& e) {
        std::move(done)(internal::ExceptionStatus(e.what()));
        return;
      } catch (...) {
        std::move(done)(internal::ExceptionStatus("unknown exception"));
        return;
      }
      std::move(future).Then([done = std::move(done), content_type = std::string(content_type)](
                                 absl::StatusOr<Rep> r) mutable {
        if (!r.ok()) {
          std::move(done)(r.status());
          return;
        }
        std::move(done)(internal::SerializePayload(*r, content_type));
      });
    } else {
      static_assert(std::is_convertible_v<Result, absl::StatusOr<Rep>>,
                    "handler must return absl::StatusOr<Rep> or Future<Rep>");
      absl::StatusOr<Rep> r;
      try {
        r = fn(ctx, request);
      } catch (const std::exception& e) {
        std::move(done)(internal::ExceptionStatus(e.what()));
        return;
      } catch (...) {
        std::move(done)(internal::ExceptionStatus("unknown exception"));
        return;
      }
      if (!r.ok()) {
        std::move(done)(r.status());
        return;
      }
      std::move(done)(internal::SerializePayload(*r, content_type));
    }
  };
  return HandleRaw(op.name, std::move(raw), std::move(options));
}

namespace internal {

// Resolves a call's promise from its reply: the transport's error, the
// handler's status, or `value(reply)`; the reply envelope goes back to the
// spares.
template <class T, class Value>
void ResolveCall(Promise<T>& promise, absl::StatusOr<Envelope>&& reply, const Value& value) {
  if (!reply.ok()) {
    promise.Set(reply.status());
    return;
  }
  if (reply->status.ok()) {
    promise.Set(value(*reply));
  } else {
    promise.Set(reply->status);
  }
  RecycleEnvelope(*std::move(reply));
}

// The reply's payload parsed as Rep.
template <class Rep>
absl::StatusOr<Rep> ParseReply(const Envelope& reply, std::string_view content_type) {
  Rep out;
  if (absl::Status parsed = ParsePayload(reply.data, content_type, &out); !parsed.ok()) {
    return parsed;
  }
  return out;
}

}  // namespace internal

template <class Req, class Rep>
Future<Rep> Node::Call(const Operation<Req, Rep>& op, const Req& request, CallOptions options) {
  auto [promise, future] = MakePromise<Rep>();
  // Empty for the default (protobuf): no string to copy per call.
  std::string custom_type = options.content_type;
  absl::StatusOr<std::string> payload = internal::SerializePayload(
      request, custom_type.empty() ? kContentTypeProtobuf : std::string_view(custom_type));
  if (!payload.ok()) {
    promise.Set(payload.status());
    return std::move(future);
  }
  internal::CallIds& ids = promise.ids();
  if (custom_type.empty()) {
    // Only the promise is captured: it fits the callback's inline storage, so
    // the default call allocates no block for its completion.
    StartCall(op.name, *std::move(payload), std::move(options), Rep::descriptor(), ids,
              [promise = std::move(promise)](absl::StatusOr<Envelope>&& reply) mutable {
                internal::ResolveCall(promise, std::move(reply), [](const Envelope& r) {
                  return internal::ParseReply<Rep>(r, kContentTypeProtobuf);
                });
              });
  } else {
    StartCall(op.name, *std::move(payload), std::move(options), Rep::descriptor(), ids,
              [promise = std::move(promise), custom_type = std::move(custom_type)](
                  absl::StatusOr<Envelope>&& reply) mutable {
                internal::ResolveCall(promise, std::move(reply), [&](const Envelope& r) {
                  return internal::ParseReply<Rep>(r, custom_type);
                });
              });
  }
  return std::move(future);
}

}  // namespace switchboard
