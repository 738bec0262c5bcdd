#include "switchboard/nats/nats_transport.h"

#include <nats/nats.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/inlined_vector.h"
#include "absl/functional/function_ref.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "batch_reaper.h"
#include "nats_names.h"
#include "nats_wire.h"
#include "sv.h"
#include "switchboard/clock.h"
#include "switchboard/internal/cloudevent_wire.h"
#include "switchboard/internal/envelope_pool.h"
#include "switchboard/status.h"
#include "switchboard/v1/config.pb.h"

namespace switchboard::nats {
namespace {

// How long a pull request waits for messages. Subscription teardown
// interrupts it, so this only bounds how often an idle consumer polls.
constexpr int64_t kFetchTimeoutMs = 1000;
// Back-off after a failed pull (server restart, consumer deleted...).
constexpr absl::Duration kFetchErrorBackoff = absl::Milliseconds(200);
// Bound on waiting for a subscription's callback to return at teardown.
constexpr absl::Duration kCloseWait = absl::Seconds(5);
// Publish acknowledgements not received by then fail the publish.
constexpr int64_t kPubAckWaitMs = 5000;
constexpr std::string_view kCommandQueueGroup = "work";
// Room for a request's reply subject: the inbox ("_INBOX." and a 22-character
// id), a dot and a 64-bit token.
constexpr size_t kMaxReplySubject = 64;

struct Settings {
  std::vector<std::string> urls;
  std::string conn_name;
  std::string token;
  std::string user;
  std::string password;
  v1::TlsOptions tls;
  bool secure = false;
  bool jetstream = false;
  int max_reconnect = 60;
  absl::Duration reconnect_wait = absl::Seconds(1);
  // Heartbeat; zero / 0 = the client library's defaults (2 min, 2).
  absl::Duration ping_interval = absl::ZeroDuration();
  int max_pings_out = 0;
  int replicas = 1;
  absl::Duration max_age = absl::Hours(24);
  int max_deliver = -1;
  absl::Duration ack_wait = absl::Seconds(30);
  absl::Duration duplicate_window = absl::Minutes(2);
  int fetch_batch = 64;
  std::string prefix = "sb";
  // Larger messages (payload + header block) are rejected on receive.
  uint64_t max_message_bytes = uint64_t{8} << 20;
  // Client-side buffering per core NATS subscription; 0 = unlimited.
  int pending_messages_limit = 0;
  int pending_bytes_limit = 0;
  // How this transport sends envelopes (a reply follows its request's).
  ContentMode content_mode = ContentMode::kStructured;
};

absl::Duration FromProto(const google::protobuf::Duration& d) {
  return absl::Seconds(d.seconds()) + absl::Nanoseconds(d.nanos());
}

int64_t ToNanos(absl::Duration d) { return absl::ToInt64Nanoseconds(d); }

// "nats://user:secret@host:4222" -> "nats://***@host:4222".
std::string RedactUrl(absl::string_view url) {
  size_t scheme = url.find("://");
  size_t start = scheme == absl::string_view::npos ? 0 : scheme + 3;
  size_t end = url.find('/', start);
  size_t at = url.rfind('@', end == absl::string_view::npos ? url.size() : end);
  if (at == absl::string_view::npos || at < start) return std::string(url);
  return absl::StrCat(url.substr(0, start), "***", url.substr(at));
}

std::string RedactedUrls(const std::vector<std::string>& urls) {
  std::vector<std::string> out;
  for (const auto& u : urls) out.push_back(RedactUrl(u));
  return absl::StrJoin(out, ",");
}

absl::Status NatsError(natsStatus s, absl::string_view what, jsErrCode jerr = static_cast<jsErrCode>(0)) {
  std::string msg = absl::StrCat(what, ": ", natsStatus_GetText(s));
  if (jerr != 0) absl::StrAppend(&msg, " (JetStream error ", static_cast<int>(jerr), ")");
  switch (s) {
    case NATS_TIMEOUT:
      return absl::DeadlineExceededError(msg);
    case NATS_SLOW_CONSUMER:
    case NATS_INSUFFICIENT_BUFFER:
    case NATS_NO_MEMORY:
      return absl::ResourceExhaustedError(msg);
    case NATS_MAX_PAYLOAD:
      return absl::InvalidArgumentError(
          absl::StrCat(msg, "; the message exceeds the server's max_payload"));
    case NATS_INVALID_ARG:
    case NATS_INVALID_SUBJECT:
      return absl::InvalidArgumentError(msg);
    case NATS_NOT_PERMITTED:
    case NATS_CONNECTION_AUTH_FAILED:
      return absl::PermissionDeniedError(msg);
    default:
      return absl::UnavailableError(msg);
  }
}

// Every natsMsg the transport owns is destroyed through this (batch_reaper.h
// says why).
size_t MsgBytes(natsMsg* msg) {
  constexpr size_t kHeaderEstimate = 512;  // a Switchboard envelope's headers
  return static_cast<size_t>(natsMsg_GetDataLength(msg)) + kHeaderEstimate;
}
using MsgReaper = BatchReaper<natsMsg>;
MsgReaper& Reaper() {
  static MsgReaper* reaper = new MsgReaper(&natsMsg_Destroy, &MsgBytes);  // outlives every transport
  return *reaper;
}

struct MsgDeleter {
  void operator()(natsMsg* m) const { Reaper().Retire(m); }
};
using MsgPtr = std::unique_ptr<natsMsg, MsgDeleter>;

// A message carrying `env` in `mode`: structured, the envelope is one
// CloudEvents protobuf body under a single `Content-Type` header; binary,
// the data is the body and every attribute a `ce-` header.
absl::StatusOr<MsgPtr> BuildMsg(const std::string& subject, const char* reply,
                                const Envelope& env, ContentMode mode,
                                std::string_view msg_id = {}) {
  natsMsg* raw = nullptr;
  natsStatus s;
  if (mode == ContentMode::kStructured) {
    const size_t size = internal::CloudEventWireSize(env);
    if (size > static_cast<size_t>(std::numeric_limits<int>::max())) {
      return absl::ResourceExhaustedError(
          absl::StrCat("nats: a message of ", size, " bytes cannot be sent"));
    }
    // cnats copies the body into the message: written on the stack when it
    // is small, to spare an allocation.
    absl::InlinedVector<uint8_t, 1024> body(size);
    internal::WriteCloudEventWire(env, body.data());
    s = natsMsg_Create(&raw, subject.c_str(), reply, reinterpret_cast<const char*>(body.data()),
                       static_cast<int>(size));
  } else {
    s = natsMsg_Create(&raw, subject.c_str(), reply, env.data.data(),
                       static_cast<int>(env.data.size()));
  }
  if (s != NATS_OK) return NatsError(s, absl::StrCat("cannot build a NATS message for ", subject));
  MsgPtr msg(raw);
  std::string_view failed;
  if (mode == ContentMode::kStructured) {
    s = natsMsgHeader_Set(msg.get(), kContentTypeHeader.data(),
                          internal::kCloudEventsProtobuf.data());
    if (s != NATS_OK) failed = kContentTypeHeader;
  } else {
    // The views are NUL-terminated; cnats copies them.
    ForEachHeader(env, [&](std::string_view key, std::string_view value) {
      if (s != NATS_OK) return;
      s = natsMsgHeader_Set(msg.get(), key.data(), value.data());
      if (s != NATS_OK) failed = key;
    });
  }
  if (s != NATS_OK) {
    return NatsError(s, absl::StrCat("cannot set NATS header ", Sv(failed)));
  }
  if (!msg_id.empty()) {
    s = natsMsgHeader_Set(msg.get(), std::string(kMsgIdHeader).c_str(), std::string(msg_id).c_str());
    if (s != NATS_OK) return NatsError(s, "cannot set Nats-Msg-Id");
  }
  return msg;
}

// A received message's headers, read once from cnats' header table: views
// (first value per key; the strings belong to the message) and the size of
// the header block as sent ("NATS/1.0\r\n", "key: value\r\n", a blank line;
// 0 without headers), which the size limit counts. Further values of a
// repeated key are not counted: listing them (natsMsgHeader_Values) doubles
// the cost of the walk, and nats-server's `max_payload` bounds the whole
// message anyway.
struct ReceivedHeaders {
  absl::InlinedVector<HeaderView, 24> views;
  uint64_t bytes = 0;
  // `Content-Type` (any spelling of the key), empty without one.
  std::string_view content_type;
  // Structured when `content_type` says CloudEvents (the binding's rule).
  ContentMode mode = ContentMode::kBinary;

  std::string_view Get(std::string_view key) const {
    for (const HeaderView& h : views) {
      if (h.key == key) return h.value;
    }
    return {};
  }
};

ReceivedHeaders ReadHeaders(natsMsg* msg) {
  ReceivedHeaders out;
  const char** keys = nullptr;
  int count = 0;
  if (natsMsgHeader_Keys(msg, &keys, &count) != NATS_OK || count == 0) return out;
  out.bytes = 12;
  for (int i = 0; i < count; ++i) {
    const char* value = nullptr;
    if (natsMsgHeader_Get(msg, keys[i], &value) != NATS_OK) continue;
    HeaderView h{keys[i], value == nullptr ? std::string_view() : value};
    out.bytes += h.key.size() + 4 + h.value.size();
    if (out.content_type.empty() && absl::EqualsIgnoreCase(Sv(h.key), Sv(kContentTypeHeader))) {
      out.content_type = h.value;
    }
    out.views.push_back(h);
  }
  free(static_cast<void*>(keys));
  if (internal::IsStructuredContentType(out.content_type)) out.mode = ContentMode::kStructured;
  return out;
}

std::string MsgData(natsMsg* msg);

// The envelope of a received message, in either content mode (no copies of
// keys, values or the body before the envelope's own).
absl::StatusOr<Envelope> DecodeMsg(natsMsg* msg, const ReceivedHeaders& headers) {
  if (headers.mode == ContentMode::kBinary) return EnvelopeFromHeaders(headers.views, MsgData(msg));
  if (const std::string_view type = headers.content_type; !internal::IsCloudEventsProtobuf(type)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "structured-mode CloudEvents in the format ", Sv(type.substr(0, 64)),
        " are not supported; send ", Sv(internal::kCloudEventsProtobuf),
        " or binary mode (ce-* headers)"));
  }
  const char* data = natsMsg_GetData(msg);
  const int len = natsMsg_GetDataLength(msg);
  Envelope env = internal::NewEnvelope();
  absl::Status read = internal::ReadCloudEventWire(
      data == nullptr || len <= 0 ? std::string_view()
                                  : std::string_view(data, static_cast<size_t>(len)),
      &env);
  if (!read.ok()) return read;
  return env;
}

std::string MsgData(natsMsg* msg) {
  const char* data = natsMsg_GetData(msg);
  int len = natsMsg_GetDataLength(msg);
  return data == nullptr || len <= 0 ? std::string() : std::string(data, static_cast<size_t>(len));
}

// Unsubscribes an asynchronous subscription and waits (bounded) until its
// callback has returned for the last time, then frees it.
void CloseAsyncSub(natsSubscription* sub) {
  if (sub == nullptr) return;
  auto* done = new absl::Notification();
  bool wait = natsSubscription_SetOnCompleteCB(
                  sub, [](void* c) { static_cast<absl::Notification*>(c)->Notify(); }, done) ==
              NATS_OK;
  natsSubscription_Unsubscribe(sub);
  if (!wait || done->WaitForNotificationWithTimeout(kCloseWait)) {
    delete done;
  }  // else: the callback may still fire; the notification is left to it.
  natsSubscription_Destroy(sub);
}

struct PendingRequest {
  ReplyCallback on_reply;
  TimerHandle timer;
  std::string operation;
};

class State;

// The closure of the connection-level cnats callbacks (errors, disconnects,
// publish acknowledgements). cnats may still run one of them after
// natsConnection_Close returns, so they must not reach a State directly:
// Shutdown detaches the State here first, and the connection's closed
// callback, its last one, frees this.
struct CallbackCtx {
  absl::Mutex mu;
  State* st ABSL_GUARDED_BY(mu) = nullptr;
};

// Everything a transport's subscriptions and deliveries share; lives until
// the last of them is gone, so late settlements never touch freed memory.
class State {
 public:
  State(std::string name, Settings settings, Clock* clock, std::string source)
      : name_(std::move(name)), s_(std::move(settings)), clock_(clock), source_(std::move(source)) {}

  ~State() {
    if (js_ != nullptr) jsCtx_Destroy(js_);
    if (nc_ != nullptr) natsConnection_Destroy(nc_);
  }

  absl::Status Connect();
  void Shutdown();

  const std::string& name() const { return name_; }
  const Settings& settings() const { return s_; }
  Clock* clock() const { return clock_; }
  const std::string& source() const { return source_; }
  bool closed() const { return closed_.load(); }
  natsConnection* nc() const { return nc_; }
  jsCtx* js() const { return js_; }

  // ---- publishing ----
  // Core NATS publish in the transport's content mode, or in `mode` (a
  // reply goes in its request's).
  absl::Status PublishCore(const std::string& subject, const Envelope& env) {
    return PublishCore(subject, env, s_.content_mode);
  }
  absl::Status PublishCore(const std::string& subject, const Envelope& env, ContentMode mode);
  // JetStream publish with Nats-Msg-Id = DedupId(env); `done` runs once the
  // server acknowledged (or refused) it, on the pub-ack thread.
  void PublishJs(const std::string& subject, const Envelope& env, DoneCallback done);
  // Settles a JetStream message by publishing to its ack subject.
  void SendAck(const std::string& ack_subject, std::string_view body);

  // ---- topology (JetStream), blocking, cached ----
  absl::Status EnsureStream(const std::string& stream, const std::string& subject,
                            jsRetentionPolicy retention);
  absl::Status EnsureConsumer(const std::string& stream, const std::string& durable);
  void ForgetStream(const std::string& stream) {
    absl::MutexLock lock(&topo_mu_);
    streams_.erase(stream);
  }

  // ---- requests ----
  void Request(Envelope&& request, ReplyCallback on_reply);

  std::string Subject(Kind kind, std::string_view operation, std::string_view address = {}) const {
    return OperationSubject(s_.prefix, kind, operation, address);
  }
  std::string DeadLetterSubject(std::string_view operation) const {
    return Subject(Kind::kCommand, DeadLetterAddress(operation));
  }

  // ResourceExhausted naming `max_message_bytes` when a received message
  // (payload + headers) is larger than the limit; checked before decoding.
  absl::Status CheckSize(natsMsg* msg, const ReceivedHeaders& headers,
                         std::string_view operation) const {
    const uint64_t size =
        static_cast<uint64_t>(std::max(0, natsMsg_GetDataLength(msg))) + headers.bytes;
    if (size <= s_.max_message_bytes) return absl::OkStatus();
    return absl::ResourceExhaustedError(absl::StrCat(
        "nats: message of ", size, " bytes for ", Sv(operation), " exceeds `max_message_bytes` (",
        s_.max_message_bytes, ") of nats transport \"", name_,
        "\"; send smaller messages or raise `max_message_bytes` on the receiver"));
  }

  // `pending_messages_limit` / `pending_bytes_limit` on a core NATS
  // subscription; unlimited when not configured.
  void ApplyPendingLimits(natsSubscription* sub) const {
    natsSubscription_SetPendingLimits(
        sub, s_.pending_messages_limit > 0 ? s_.pending_messages_limit : -1,
        s_.pending_bytes_limit > 0 ? s_.pending_bytes_limit : -1);
  }

  std::atomic<int64_t> bad_input{0};
  std::atomic<int64_t> dead_lettered{0};
  std::atomic<int64_t> publish_errors{0};
  std::atomic<int64_t> fetch_errors{0};
  std::atomic<int64_t> async_errors{0};

 private:
  // Released after the destructor's body has destroyed the connection, when
  // no subscription or delivery is left to retire a message.
  MsgReaper::Hold reaper_hold_{Reaper()};

  static void OnInboxMsg(natsConnection*, natsSubscription*, natsMsg* msg, void* closure);
  static void OnPubAck(jsCtx*, natsMsg* msg, jsPubAck* pa, jsPubAckErr* pae, void* closure);
  static void OnAsyncError(natsConnection*, natsSubscription*, natsStatus, void* closure);
  static void OnDisconnected(natsConnection*, void* closure);
  static void OnClosed(natsConnection*, void* closure);
  void FailAllRequests(const absl::Status& why);

  // Fails the request `token` if it is still pending, with the status `why`
  // makes from its operation.
  void FailRequest(uint64_t token,
                   absl::FunctionRef<absl::Status(const std::string& operation)> why);
  std::optional<PendingRequest> TakeRequest(uint64_t token);

  const std::string name_;
  const Settings s_;
  Clock* const clock_;
  const std::string source_;
  std::atomic<bool> closed_{false};
  natsConnection* nc_ = nullptr;
  jsCtx* js_ = nullptr;
  std::string inbox_prefix_;  // "_INBOX.<id>.": a request's reply subject adds its token
  natsSubscription* inbox_sub_ = nullptr;
  std::weak_ptr<State> self_;
  CallbackCtx* cb_ctx_ = nullptr;

  std::atomic<uint64_t> next_token_{1};
  absl::Mutex req_mu_;
  std::map<uint64_t, PendingRequest> pending_ ABSL_GUARDED_BY(req_mu_);

  absl::Mutex pub_mu_;
  std::map<natsMsg*, DoneCallback> pub_pending_ ABSL_GUARDED_BY(pub_mu_);

  absl::Mutex topo_mu_;
  std::set<std::string> streams_ ABSL_GUARDED_BY(topo_mu_);
  std::set<std::string> consumers_ ABSL_GUARDED_BY(topo_mu_);

  friend absl::StatusOr<std::shared_ptr<State>> NewState(std::string_view, Settings, const TransportEnv&);
};

absl::StatusOr<std::shared_ptr<State>> NewState(std::string_view name, Settings settings,
                                                const TransportEnv& env) {
  Clock* clock = env.clock != nullptr ? env.clock : &Clock::Real();
  auto st = std::make_shared<State>(std::string(name), std::move(settings), clock, env.source);
  st->self_ = st;
  absl::Status s = st->Connect();
  if (!s.ok()) {
    st->Shutdown();
    return s;
  }
  return st;
}

// Why natsConnection_Connect failed, naming the setting to fix. Runs on the
// thread that tried to connect (nats_GetLastError is per thread); the text
// never carries a token or password.
absl::Status ConnectError(absl::string_view name, const Settings& s, natsStatus status) {
  std::string detail = nats_GetLastError(nullptr) == nullptr ? "" : nats_GetLastError(nullptr);
  if (size_t p = detail.find("): "); !detail.empty() && detail[0] == '(' && p != std::string::npos) {
    detail = detail.substr(p + 3);  // drop the library's "(conn.c:733): "
  }
  for (const std::string* secret : {&s.token, &s.password}) {
    if (!secret->empty()) absl::StrReplaceAll({{*secret, "***"}}, &detail);
  }
  const std::string head = absl::StrCat("nats transport \"", name, "\": cannot connect to ",
                                        RedactedUrls(s.urls), ": ", natsStatus_GetText(status));
  bool url_credentials = false;
  for (const auto& u : s.urls) url_credentials |= RedactUrl(u) != u;
  switch (status) {
    case NATS_CONNECTION_AUTH_FAILED: {
      const char* hint = !s.token.empty()  ? "the server refused `token`; check it"
                         : !s.user.empty() ? "the server refused `user`/`password`; check them"
                         : url_credentials ? "the server refused the credentials in `url`; check them"
                                           : "the server requires credentials; set `token` or "
                                             "`user`/`password`";
      return absl::PermissionDeniedError(absl::StrCat(head, " (", detail, "); ", hint));
    }
    case NATS_SSL_ERROR:
      return absl::UnavailableError(absl::StrCat(
          head, " (TLS handshake: ", detail,
          "); check that `tls.ca_file` holds the CA that signed the server's certificate and "
          "that the url's host (or `tls.server_name`) is in that certificate"));
    case NATS_PROTOCOL_ERROR:
    case NATS_IO_ERROR:
    case NATS_CONNECTION_CLOSED:
    case NATS_STALE_CONNECTION:
      if (s.secure) {
        // A TLS 1.3 server that rejects the client certificate does so after
        // the handshake: the client only sees the connection close.
        return absl::UnavailableError(absl::StrCat(
            head, " (", detail, "); the server closed the TLS connection: if it verifies "
            "clients, set `tls.cert_file`/`tls.key_file` to a certificate signed by a CA it "
            "trusts"));
      }
      [[fallthrough]];
    default:
      return absl::UnavailableError(absl::StrCat(
          head, detail.empty() ? "" : absl::StrCat(" (", detail, ")"),
          "; check `url`, the credentials and that nats-server is running"));
  }
}

absl::Status State::Connect() {
  natsOptions* opts = nullptr;
  natsStatus s = natsOptions_Create(&opts);
  if (s != NATS_OK) return NatsError(s, "cannot create NATS options");
  std::unique_ptr<natsOptions, void (*)(natsOptions*)> guard(opts, &natsOptions_Destroy);
  std::vector<const char*> urls;
  for (const auto& u : s_.urls) urls.push_back(u.c_str());
  auto bad_option = [&](absl::string_view what) {
    return absl::InvalidArgumentError(absl::StrCat("nats transport \"", name_, "\": bad option `",
                                                   what, "`: ", natsStatus_GetText(s)));
  };
  if ((s = natsOptions_SetServers(opts, urls.data(), static_cast<int>(urls.size()))) != NATS_OK) {
    return bad_option("url");
  }
  if ((s = natsOptions_SetName(opts, s_.conn_name.c_str())) != NATS_OK) return bad_option("name");
  if (!s_.token.empty() && (s = natsOptions_SetToken(opts, s_.token.c_str())) != NATS_OK) {
    return bad_option("token");
  }
  if (!s_.user.empty() &&
      (s = natsOptions_SetUserInfo(opts, s_.user.c_str(), s_.password.c_str())) != NATS_OK) {
    return bad_option("user");
  }
  if (s_.secure) {
    if ((s = natsOptions_SetSecure(opts, true)) != NATS_OK) return bad_option("tls");
    if (!s_.tls.ca_file().empty() &&
        (s = natsOptions_LoadCATrustedCertificates(opts, s_.tls.ca_file().c_str())) != NATS_OK) {
      return bad_option(absl::StrCat("tls.ca_file (", s_.tls.ca_file(), ")"));
    }
    if (!s_.tls.cert_file().empty() &&
        (s = natsOptions_LoadCertificatesChain(opts, s_.tls.cert_file().c_str(),
                                               s_.tls.key_file().c_str())) != NATS_OK) {
      return bad_option(absl::StrCat("tls.cert_file/key_file (", s_.tls.cert_file(), ")"));
    }
    if (!s_.tls.server_name().empty() &&
        (s = natsOptions_SetExpectedHostname(opts, s_.tls.server_name().c_str())) != NATS_OK) {
      return bad_option("tls.server_name");
    }
  }
  natsOptions_SetAllowReconnect(opts, true);
  natsOptions_SetMaxReconnect(opts, s_.max_reconnect);
  natsOptions_SetReconnectWait(opts, absl::ToInt64Milliseconds(s_.reconnect_wait));
  natsOptions_SetTimeout(opts, 2000);
  // A half-open connection is noticed after about ping_interval x
  // (max_pings_out + 1), then replaced like a dropped one.
  if (s_.ping_interval > absl::ZeroDuration() &&
      (s = natsOptions_SetPingInterval(opts, absl::ToInt64Milliseconds(s_.ping_interval))) !=
          NATS_OK) {
    return bad_option("ping_interval");
  }
  if (s_.max_pings_out > 0 && (s = natsOptions_SetMaxPingsOut(opts, s_.max_pings_out)) != NATS_OK) {
    return bad_option("max_pings_out");
  }
  // A reply or request waits for the flusher thread otherwise (p50 ~1 ms
  // instead of ~150 us, see NOTES-deps).
  natsOptions_SetSendAsap(opts, true);
  cb_ctx_ = new CallbackCtx();
  {
    absl::MutexLock lock(&cb_ctx_->mu);
    cb_ctx_->st = this;
  }
  natsOptions_SetErrorHandler(opts, &State::OnAsyncError, cb_ctx_);
  natsOptions_SetDisconnectedCB(opts, &State::OnDisconnected, cb_ctx_);
  natsOptions_SetClosedCB(opts, &State::OnClosed, cb_ctx_);

  s = natsConnection_Connect(&nc_, opts);
  if (s != NATS_OK) {
    nc_ = nullptr;
    delete cb_ctx_;  // no connection, no callbacks
    cb_ctx_ = nullptr;
    return ConnectError(name_, s_, s);
  }

  if (s_.jetstream) {
    jsOptions jo;
    jsOptions_Init(&jo);
    jo.Wait = 5000;
    jo.PublishAsync.AckHandler = &State::OnPubAck;
    jo.PublishAsync.AckHandlerClosure = cb_ctx_;
    jo.PublishAsync.MaxPending = 4096;
    if ((s = natsConnection_JetStream(&js_, nc_, &jo)) != NATS_OK) {
      js_ = nullptr;
      return NatsError(s, "cannot create a JetStream context");
    }
    jsAccountInfo* ai = nullptr;
    jsErrCode jerr = static_cast<jsErrCode>(0);
    s = js_GetAccountInfo(&ai, js_, nullptr, &jerr);
    if (s != NATS_OK) {
      return absl::FailedPreconditionError(absl::StrCat(
          "nats transport \"", name_, "\": JetStream is not available on ",
          RedactedUrls(s_.urls), " (", natsStatus_GetText(s),
          "); start nats-server with -js or set `jetstream: false`"));
    }
    jsAccountInfo_Destroy(ai);
  }

  natsInbox* inbox = nullptr;
  if ((s = natsInbox_Create(&inbox)) != NATS_OK) return NatsError(s, "cannot create an inbox");
  inbox_prefix_ = absl::StrCat(inbox, ".");
  natsInbox_Destroy(inbox);
  if (inbox_prefix_.size() + std::numeric_limits<uint64_t>::digits10 + 2 > kMaxReplySubject) {
    return absl::InternalError(
        absl::StrCat("the reply inbox ", inbox_prefix_, " is longer than expected"));
  }
  s = natsConnection_Subscribe(&inbox_sub_, nc_, absl::StrCat(inbox_prefix_, "*").c_str(),
                               &State::OnInboxMsg, this);
  if (s != NATS_OK) {
    inbox_sub_ = nullptr;
    return NatsError(s, "cannot subscribe the reply inbox");
  }
  natsSubscription_SetPendingLimits(inbox_sub_, -1, -1);
  return absl::OkStatus();
}

void State::FailAllRequests(const absl::Status& why) {
  std::map<uint64_t, PendingRequest> requests;
  {
    absl::MutexLock lock(&req_mu_);
    requests.swap(pending_);
  }
  for (auto& [token, p] : requests) {
    p.timer.Cancel();
    std::move(p.on_reply)(absl::Status(
        why.code(), absl::StrCat(why.message(), " before ", p.operation, " replied")));
  }
}

// A request in flight when the connection drops has lost its reply path (the
// inbox is resubscribed, but the server forgot the reply subject): fail it
// now, retryable, instead of at its deadline.
void State::OnDisconnected(natsConnection*, void* closure) {
  auto* ctx = static_cast<CallbackCtx*>(closure);
  std::map<uint64_t, PendingRequest> requests;
  std::string name;
  {
    absl::MutexLock lock(&ctx->mu);
    if (ctx->st == nullptr) return;
    name = ctx->st->name_;
    absl::MutexLock req_lock(&ctx->st->req_mu_);
    requests.swap(ctx->st->pending_);
  }
  for (auto& [token, p] : requests) {
    p.timer.Cancel();
    std::move(p.on_reply)(absl::UnavailableError(absl::StrCat(
        "nats transport \"", name, "\" lost its connection before ", p.operation, " replied")));
  }
}

void State::OnClosed(natsConnection*, void* closure) { delete static_cast<CallbackCtx*>(closure); }

void State::Shutdown() {
  if (closed_.exchange(true)) return;
  CloseAsyncSub(inbox_sub_);
  inbox_sub_ = nullptr;
  FailAllRequests(absl::UnavailableError(absl::StrCat("nats transport \"", name_, "\" closed")));
  if (js_ != nullptr) {
    jsPubOptions po;
    jsPubOptions_Init(&po);
    po.MaxWait = 2000;
    js_PublishAsyncComplete(js_, &po);
  }
  if (cb_ctx_ != nullptr) {
    absl::MutexLock lock(&cb_ctx_->mu);
    cb_ctx_->st = nullptr;
  }
  if (nc_ != nullptr) natsConnection_Close(nc_);
  std::map<natsMsg*, DoneCallback> pubs;
  {
    absl::MutexLock lock(&pub_mu_);
    pubs.swap(pub_pending_);
  }
  for (auto& [msg, done] : pubs) {
    std::move(done)(absl::UnavailableError(
        absl::StrCat("nats transport \"", name_, "\" closed before the publish was acknowledged")));
  }
}

void State::OnAsyncError(natsConnection*, natsSubscription*, natsStatus, void* closure) {
  auto* ctx = static_cast<CallbackCtx*>(closure);
  absl::MutexLock lock(&ctx->mu);
  if (ctx->st != nullptr) ctx->st->async_errors.fetch_add(1);
}

absl::Status State::PublishCore(const std::string& subject, const Envelope& env,
                                ContentMode mode) {
  absl::StatusOr<MsgPtr> msg = BuildMsg(subject, nullptr, env, mode);
  if (!msg.ok()) return msg.status();
  natsStatus s = natsConnection_PublishMsg(nc_, msg->get());
  if (s != NATS_OK) {
    publish_errors.fetch_add(1);
    return NatsError(s, absl::StrCat("publish to ", subject));
  }
  return absl::OkStatus();
}

void State::PublishJs(const std::string& subject, const Envelope& env, DoneCallback done) {
  std::string msg_id = DedupId(env);
  absl::StatusOr<MsgPtr> msg = BuildMsg(subject, nullptr, env, s_.content_mode);
  if (!msg.ok()) {
    std::move(done)(msg.status());
    return;
  }
  jsPubOptions po;
  jsPubOptions_Init(&po);
  po.MsgId = msg_id.c_str();
  po.MaxWait = kPubAckWaitMs;
  natsMsg* raw = msg->release();
  natsMsg* const key = raw;
  {
    // Registered first: the acknowledgement may arrive before the call returns.
    absl::MutexLock lock(&pub_mu_);
    pub_pending_.emplace(key, std::move(done));
  }
  natsStatus s = js_PublishMsgAsync(js_, &raw, &po);
  if (s != NATS_OK) {
    DoneCallback cb;
    {
      absl::MutexLock lock(&pub_mu_);
      auto node = pub_pending_.extract(key);
      if (!node.empty()) cb = std::move(node.mapped());
    }
    natsMsg_Destroy(raw);
    publish_errors.fetch_add(1);
    if (cb) std::move(cb)(NatsError(s, absl::StrCat("JetStream publish to ", subject)));
  }
}

void State::OnPubAck(jsCtx*, natsMsg* msg, jsPubAck* pa, jsPubAckErr* pae, void* closure) {
  auto* ctx = static_cast<CallbackCtx*>(closure);
  std::string subject = natsMsg_GetSubject(msg) == nullptr ? "" : natsMsg_GetSubject(msg);
  DoneCallback cb;
  {
    absl::MutexLock lock(&ctx->mu);
    if (ctx->st != nullptr) {
      State* self = ctx->st;
      if (pae != nullptr || pa == nullptr) self->publish_errors.fetch_add(1);
      absl::MutexLock pub_lock(&self->pub_mu_);
      auto node = self->pub_pending_.extract(msg);
      if (!node.empty()) cb = std::move(node.mapped());
    }
  }
  Reaper().Retire(msg);
  absl::Status status;
  if (pae != nullptr || pa == nullptr) {
    natsStatus err = pae != nullptr ? pae->Err : NATS_ERR;
    jsErrCode code = pae != nullptr ? pae->ErrCode : static_cast<jsErrCode>(0);
    std::string what = absl::StrCat("JetStream publish to ", subject);
    if (pae != nullptr && pae->ErrText != nullptr) absl::StrAppend(&what, " (", pae->ErrText, ")");
    if (err == NATS_NO_RESPONDERS) {
      absl::StrAppend(&what, "; no stream stores this subject");
    }
    status = NatsError(err == NATS_OK ? NATS_ERR : err, what, code);
  }
  if (cb) std::move(cb)(status);
}

void State::SendAck(const std::string& ack_subject, std::string_view body) {
  if (ack_subject.empty() || closed()) return;
  natsStatus s = natsConnection_Publish(nc_, ack_subject.c_str(), body.data(),
                                        static_cast<int>(body.size()));
  if (s != NATS_OK) publish_errors.fetch_add(1);
}

absl::Status State::EnsureStream(const std::string& stream, const std::string& subject,
                                 jsRetentionPolicy retention) {
  {
    absl::MutexLock lock(&topo_mu_);
    if (streams_.count(stream) != 0) return absl::OkStatus();
  }
  jsStreamInfo* si = nullptr;
  jsErrCode jerr = static_cast<jsErrCode>(0);
  natsStatus s = js_GetStreamInfo(&si, js_, stream.c_str(), nullptr, &jerr);
  if (s == NATS_OK) {
    jsStreamInfo_Destroy(si);
  } else if (s == NATS_NOT_FOUND || jerr == JSStreamNotFoundErr) {
    jsStreamConfig cfg;
    jsStreamConfig_Init(&cfg);
    const char* subjects[] = {subject.c_str()};
    cfg.Name = stream.c_str();
    cfg.Subjects = subjects;
    cfg.SubjectsLen = 1;
    cfg.Retention = retention;
    cfg.Storage = js_FileStorage;
    cfg.Replicas = s_.replicas;
    cfg.MaxAge = ToNanos(s_.max_age);
    cfg.Duplicates = ToNanos(s_.duplicate_window);
    jerr = static_cast<jsErrCode>(0);
    si = nullptr;
    s = js_AddStream(&si, js_, &cfg, nullptr, &jerr);
    if (s == NATS_OK) {
      jsStreamInfo_Destroy(si);
    } else if (jerr != JSStreamNameExistErr) {  // else: another process was first
      return NatsError(s,
                       absl::StrCat("cannot create JetStream stream ", stream, " for ", subject,
                                    jerr == JSStreamSubjectOverlapErr
                                        ? " (another stream already stores this subject; "
                                          "change `subject_prefix` or delete that stream)"
                                        : ""),
                       jerr);
    }
  } else {
    return NatsError(s, absl::StrCat("cannot look up JetStream stream ", stream), jerr);
  }
  absl::MutexLock lock(&topo_mu_);
  streams_.insert(stream);
  return absl::OkStatus();
}

absl::Status State::EnsureConsumer(const std::string& stream, const std::string& durable) {
  std::string key = absl::StrCat(stream, "/", durable);
  {
    absl::MutexLock lock(&topo_mu_);
    if (consumers_.count(key) != 0) return absl::OkStatus();
  }
  jsConsumerInfo* ci = nullptr;
  jsErrCode jerr = static_cast<jsErrCode>(0);
  natsStatus s = js_GetConsumerInfo(&ci, js_, stream.c_str(), durable.c_str(), nullptr, &jerr);
  if (s == NATS_OK) {
    jsConsumerInfo_Destroy(ci);
  } else if (s == NATS_NOT_FOUND || jerr == JSConsumerNotFoundErr) {
    // Only settings every instance agrees on (they come from the shared
    // transport config): a differing config would make the add fail.
    jsConsumerConfig cc;
    jsConsumerConfig_Init(&cc);
    cc.Durable = durable.c_str();
    cc.AckPolicy = js_AckExplicit;
    cc.DeliverPolicy = js_DeliverAll;
    cc.AckWait = ToNanos(s_.ack_wait);
    cc.MaxDeliver = s_.max_deliver;
    ci = nullptr;
    jerr = static_cast<jsErrCode>(0);
    s = js_AddConsumer(&ci, js_, stream.c_str(), &cc, nullptr, &jerr);
    if (s == NATS_OK) {
      jsConsumerInfo_Destroy(ci);
    } else {
      // Another instance may have created it meanwhile (with its settings).
      jsErrCode jerr2 = static_cast<jsErrCode>(0);
      ci = nullptr;
      if (js_GetConsumerInfo(&ci, js_, stream.c_str(), durable.c_str(), nullptr, &jerr2) !=
          NATS_OK) {
        return NatsError(s, absl::StrCat("cannot create JetStream consumer ", durable,
                                         " on stream ", stream),
                         jerr);
      }
      jsConsumerInfo_Destroy(ci);
    }
  } else {
    return NatsError(s, absl::StrCat("cannot look up JetStream consumer ", durable), jerr);
  }
  absl::MutexLock lock(&topo_mu_);
  consumers_.insert(key);
  return absl::OkStatus();
}

std::optional<PendingRequest> State::TakeRequest(uint64_t token) {
  absl::MutexLock lock(&req_mu_);
  auto node = pending_.extract(token);
  if (node.empty()) return std::nullopt;
  return std::move(node.mapped());
}

void State::FailRequest(uint64_t token,
                        absl::FunctionRef<absl::Status(const std::string& operation)> why) {
  std::optional<PendingRequest> p = TakeRequest(token);
  if (!p) return;
  p->timer.Cancel();
  std::move(p->on_reply)(why(p->operation));
}

void State::Request(Envelope&& request, ReplyCallback on_reply) {
  if (closed()) {
    std::move(on_reply)(absl::UnavailableError(
        absl::StrCat("nats transport \"", name_, "\" is closed")));
    return;
  }
  if (request.has_deadline() && request.deadline <= clock_->Now()) {
    std::move(on_reply)(absl::DeadlineExceededError(
        absl::StrCat("deadline of ", request.type, " passed before it was sent")));
    return;
  }
  const uint64_t token = next_token_.fetch_add(1);
  const std::string subject = Subject(Kind::kRequest, request.type);
  // On the stack (Connect checked that the inbox fits): cnats copies it.
  char reply[kMaxReplySubject];
  absl::numbers_internal::FastIntToBuffer(
      token, std::copy(inbox_prefix_.begin(), inbox_prefix_.end(), reply));
  absl::StatusOr<MsgPtr> msg = BuildMsg(subject, reply, request, s_.content_mode);
  if (!msg.ok()) {
    std::move(on_reply)(msg.status());
    return;
  }
  // The pending request keeps the operation name for every later message
  // about it, so neither the timer nor this function needs a copy.
  {
    absl::MutexLock lock(&req_mu_);
    pending_.emplace(token,
                     PendingRequest{std::move(on_reply), TimerHandle(), std::move(request.type)});
  }
  if (request.has_deadline()) {
    TimerHandle timer = clock_->RunAt(request.deadline, [weak = self_, token] {
      if (auto st = weak.lock()) {
        st->FailRequest(token, [](const std::string& op) {
          return absl::DeadlineExceededError(
              absl::StrCat("no reply from ", op, " before the deadline"));
        });
      }
    });
    absl::MutexLock lock(&req_mu_);
    auto it = pending_.find(token);
    if (it != pending_.end()) it->second.timer = std::move(timer);
  }
  // The message holds its own copy: the envelope's buffers serve a later one.
  internal::RecycleEnvelope(std::move(request));
  natsStatus s = natsConnection_PublishMsg(nc_, msg->get());
  if (s != NATS_OK) {
    publish_errors.fetch_add(1);
    FailRequest(token, [s](const std::string& op) {
      return NatsError(s, absl::StrCat("cannot send request ", op));
    });
  }
}

void State::OnInboxMsg(natsConnection*, natsSubscription*, natsMsg* raw, void* closure) {
  auto* self = static_cast<State*>(closure);
  MsgPtr msg(raw);
  std::string_view subject = natsMsg_GetSubject(raw);
  size_t dot = subject.rfind('.');
  uint64_t token = 0;
  if (dot == std::string_view::npos || !absl::SimpleAtoi(Sv(subject.substr(dot + 1)), &token)) return;
  std::optional<PendingRequest> p = self->TakeRequest(token);
  if (!p) return;  // late reply after the deadline
  p->timer.Cancel();
  if (natsMsg_IsNoResponders(raw)) {
    std::move(p->on_reply)(absl::UnavailableError(absl::StrCat(
        "no server serves ", p->operation, " (NATS subject ",
        self->Subject(Kind::kRequest, p->operation), " has no responders)")));
    return;
  }
  const ReceivedHeaders headers = ReadHeaders(raw);
  if (absl::Status size = self->CheckSize(raw, headers, p->operation); !size.ok()) {
    self->bad_input.fetch_add(1);
    std::move(p->on_reply)(absl::ResourceExhaustedError(
        absl::StrCat("reply to ", p->operation, " rejected: ", size.message())));
    return;
  }
  absl::StatusOr<Envelope> env = DecodeMsg(raw, headers);
  if (!env.ok()) {
    self->bad_input.fetch_add(1);
    std::move(p->on_reply)(absl::InternalError(absl::StrCat(
        "reply to ", p->operation, " could not be decoded: ", env.status().message())));
    return;
  }
  std::move(p->on_reply)(std::move(env));
}

// ---------------------------------------------------------------------------
// Serve

struct ServeState {
  std::shared_ptr<State> st;
  RequestHandler handler;
  std::string operation;
  int max_in_flight = 256;
  absl::Mutex mu;
  int in_flight ABSL_GUARDED_BY(mu) = 0;
  bool closed ABSL_GUARDED_BY(mu) = false;

  void Done() {
    absl::MutexLock lock(&mu);
    --in_flight;
  }
};

// The reply callback handed to a request handler: sends the reply (or the
// error) once; if the handler drops it unsent, the caller gets Internal
// instead of waiting for its deadline.
class ServeReply {
 public:
  ServeReply(std::shared_ptr<ServeState> ss, std::string reply_subject, std::string request_id,
             std::string type, ContentMode mode)
      : ss_(std::move(ss)),
        reply_subject_(std::move(reply_subject)),
        request_id_(std::move(request_id)),
        type_(std::move(type)),
        mode_(mode) {}
  ServeReply(ServeReply&&) = default;
  ServeReply& operator=(ServeReply&&) = default;
  ~ServeReply() {
    if (ss_ != nullptr) {
      Send(absl::InternalError(absl::StrCat("the handler of ", type_, " returned no reply")));
    }
  }

  void operator()(absl::StatusOr<Envelope>&& reply) && {
    if (ss_ != nullptr) Send(std::move(reply));
  }

 private:
  // The reply is completed and sent where it is: each move of an envelope
  // moves some fifteen members.
  void Send(absl::StatusOr<Envelope>&& reply) {
    std::shared_ptr<ServeState> ss = std::move(ss_);
    ss_ = nullptr;
    State& st = *ss->st;
    if (!reply.ok()) {
      Envelope failed;
      failed.status = reply.status();
      failed.style = Style::kRequest;
      reply = std::move(failed);
    }
    Envelope& out = *reply;
    if (out.id.empty()) out.id = NewMessageId();
    if (out.source.empty()) out.source = st.source();
    if (out.type.empty()) out.type = type_;
    if (out.correlation_id.empty()) out.correlation_id = request_id_;
    if (out.time == absl::UnixEpoch()) out.time = st.clock()->Now();
    if (!st.closed()) (void)st.PublishCore(reply_subject_, out, mode_);
    internal::RecycleEnvelope(std::move(out));
    ss->Done();
  }

  std::shared_ptr<ServeState> ss_;
  std::string reply_subject_;
  std::string request_id_;
  std::string type_;
  ContentMode mode_;  // the request's: the reply goes the same way
};

void OnServeMsg(natsConnection*, natsSubscription*, natsMsg* raw, void* closure) {
  // The subscription keeps the ServeState alive until this callback returned
  // for the last time (CloseAsyncSub); replies keep their own reference.
  auto* ss = static_cast<std::shared_ptr<ServeState>*>(closure);
  MsgPtr msg(raw);
  State& st = *(*ss)->st;
  const char* reply_c = natsMsg_GetReply(raw);
  std::string reply_subject = reply_c == nullptr ? "" : reply_c;
  const ReceivedHeaders headers = ReadHeaders(raw);
  // Replies travel in the request's content mode.
  const ContentMode mode = headers.mode;
  // Bad input is answered (when there is a reply subject) and counted.
  auto reject = [&](const absl::Status& why) {
    st.bad_input.fetch_add(1);
    if (reply_subject.empty()) return;
    Envelope out;
    out.id = NewMessageId();
    out.source = st.source();
    out.type = (*ss)->operation;
    out.time = st.clock()->Now();
    out.style = Style::kRequest;
    out.status = absl::Status(
        why.code(), absl::StrCat("request to ", (*ss)->operation, " rejected: ", why.message()));
    (void)st.PublishCore(reply_subject, out, mode);
  };
  if (absl::Status size = st.CheckSize(raw, headers, (*ss)->operation); !size.ok()) {
    reject(size);
    return;
  }
  absl::StatusOr<Envelope> env = DecodeMsg(raw, headers);
  if (!env.ok()) {
    reject(env.status());
    return;
  }
  if (reply_subject.empty()) {
    st.bad_input.fetch_add(1);  // a request nobody can answer
    return;
  }
  std::string id = env->id;
  std::string type = env->type;
  bool closed;
  {
    // Bounded: teardown sets `closed`, which ends the wait.
    ServeState& s = **ss;
    absl::MutexLock lock(&s.mu);
    auto room = [&s]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(s.mu) {
      return s.closed || s.in_flight < s.max_in_flight;
    };
    s.mu.Await(absl::Condition(&room));
    closed = s.closed;
    if (!closed) ++s.in_flight;
  }
  if (closed) {
    Envelope out;
    out.id = NewMessageId();
    out.source = st.source();
    out.type = type;
    out.correlation_id = id;
    out.time = st.clock()->Now();
    out.status = absl::UnavailableError(
        absl::StrCat("server of ", (*ss)->operation, " is shutting down; retry"));
    (void)st.PublishCore(reply_subject, out, mode);
    return;
  }
  (*ss)->handler(*std::move(env),
                 ReplyCallback(ServeReply(*ss, std::move(reply_subject), std::move(id),
                                          std::move(type), mode)));
}

class ServeSubscription final : public Subscription {
 public:
  ServeSubscription(std::unique_ptr<std::shared_ptr<ServeState>> ss, natsSubscription* sub)
      : ss_(std::move(ss)), sub_(sub) {}
  ~ServeSubscription() override {
    {
      absl::MutexLock lock(&(*ss_)->mu);
      (*ss_)->closed = true;
    }
    CloseAsyncSub(sub_);
  }

 private:
  std::unique_ptr<std::shared_ptr<ServeState>> ss_;
  natsSubscription* sub_;
};

// ---------------------------------------------------------------------------
// Commands and events: consumers and deliveries

enum class Settle { kAck, kRetry, kDeadLetter };

struct ConsumerState : std::enable_shared_from_this<ConsumerState> {
  std::shared_ptr<State> st;
  DeliveryHandler handler;
  Kind kind = Kind::kCommand;
  std::string operation;
  std::string subject;
  std::string dlq_subject;
  std::string retry_subject;  // core NATS only
  bool jetstream = false;
  int max_in_flight = 256;
  absl::Mutex mu;
  int in_flight ABSL_GUARDED_BY(mu) = 0;
  bool closed ABSL_GUARDED_BY(mu) = false;

  bool IsClosed() {
    absl::MutexLock lock(&mu);
    return closed;
  }

  // Waits until a delivery may be handed out; false when closing.
  bool AcquireSlot(absl::Duration timeout) {
    absl::MutexLock lock(&mu);
    auto room = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
      return closed || in_flight < max_in_flight;
    };
    mu.AwaitWithTimeout(absl::Condition(&room), timeout);
    if (closed || in_flight >= max_in_flight) return false;
    ++in_flight;
    return true;
  }

  int Room() {
    absl::MutexLock lock(&mu);
    return max_in_flight - in_flight;
  }

  void Release() {
    absl::MutexLock lock(&mu);
    --in_flight;
  }

  void Apply(Envelope& env, const std::string& ack_subject, Settle action, absl::Duration delay,
             const absl::Status& reason);
  // Dead-letters a message that did not decode (`keep_data`: its body goes
  // along) or is too large (the body stays out).
  void DeadLetterRaw(natsMsg* msg, const ReceivedHeaders& headers, bool keep_data,
                     const absl::Status& reason, const std::string& ack_subject);
  void Deliver(Envelope env, std::string ack_subject);
};

class NatsDelivery final : public Delivery {
 public:
  NatsDelivery(Envelope env, std::shared_ptr<ConsumerState> cs, std::string ack_subject)
      : Delivery(std::move(env)), cs_(std::move(cs)), ack_subject_(std::move(ack_subject)) {}
  ~NatsDelivery() override {
    if (!settled_.exchange(true)) {
      cs_->Apply(envelope_, ack_subject_, Settle::kRetry, absl::ZeroDuration(), absl::OkStatus());
    }
  }
  void Ack() override { Do(Settle::kAck, absl::ZeroDuration(), absl::OkStatus()); }
  void Retry(absl::Duration delay) override { Do(Settle::kRetry, delay, absl::OkStatus()); }
  void DeadLetter(const absl::Status& reason) override {
    Do(Settle::kDeadLetter, absl::ZeroDuration(), reason);
  }

 private:
  void Do(Settle action, absl::Duration delay, const absl::Status& reason) {
    if (settled_.exchange(true)) return;
    cs_->Apply(envelope_, ack_subject_, action, delay, reason);
  }

  std::shared_ptr<ConsumerState> cs_;
  std::string ack_subject_;
  std::atomic<bool> settled_{false};
};

void ConsumerState::Deliver(Envelope env, std::string ack_subject) {
  handler(std::make_unique<NatsDelivery>(std::move(env), shared_from_this(), std::move(ack_subject)));
}

Envelope WithDeadLetterReason(Envelope env, const absl::Status& reason) {
  env.extensions[std::string(attr::kDeadLetterReason)] =
      reason.message().empty() ? std::string(CodeName(reason.code())) : std::string(reason.message());
  env.extensions[std::string(attr::kDeadLetterCode)] = std::string(CodeName(reason.code()));
  return env;
}

void ConsumerState::Apply(Envelope& env, const std::string& ack_subject, Settle action,
                          absl::Duration delay, const absl::Status& reason) {
  Release();
  State& s = *st;
  if (jetstream) {
    // After the subscription is gone the settlement is ignored; a NAK hands
    // the message to another consumer now instead of after ack_wait.
    if (IsClosed() || action == Settle::kRetry) {
      if (!IsClosed() && delay > absl::ZeroDuration()) {
        s.SendAck(ack_subject, absl::StrCat("-NAK {\"delay\": ", ToNanos(delay), "}"));
      } else {
        s.SendAck(ack_subject, "-NAK");
      }
      return;
    }
    if (action == Settle::kAck) {
      s.SendAck(ack_subject, "+ACK");
      return;
    }
    std::shared_ptr<State> keep = st;
    s.PublishJs(dlq_subject, WithDeadLetterReason(env, reason),
                [keep, ack_subject](absl::Status published) {
                  if (published.ok()) {
                    keep->dead_lettered.fetch_add(1);
                    keep->SendAck(ack_subject, "+TERM");
                  } else {
                    keep->SendAck(ack_subject, "-NAK");  // not lost: redelivered
                  }
                });
    return;
  }
  // Core NATS: the message exists only in this process; Retry republishes it
  // to this group's retry subject, DeadLetter to the dead-letter subject.
  if (s.closed()) return;
  switch (action) {
    case Settle::kAck:
      return;
    case Settle::kRetry: {
      Envelope again = env;
      again.attempt = env.attempt + 1;
      if (delay <= absl::ZeroDuration()) {
        (void)s.PublishCore(retry_subject, again);
        return;
      }
      std::weak_ptr<State> weak = st;
      std::string subject = retry_subject;
      s.clock()->RunAfter(delay, [weak, subject, again = std::move(again)] {
        if (auto live = weak.lock(); live && !live->closed()) (void)live->PublishCore(subject, again);
      });
      return;
    }
    case Settle::kDeadLetter:
      // Counted first: the dead-letter consumer may see it before we return.
      s.dead_lettered.fetch_add(1);
      if (!s.PublishCore(dlq_subject, WithDeadLetterReason(env, reason)).ok()) {
        s.dead_lettered.fetch_sub(1);
      }
      return;
  }
}

void ConsumerState::DeadLetterRaw(natsMsg* msg, const ReceivedHeaders& headers, bool keep_data,
                                  const absl::Status& reason, const std::string& ack_subject) {
  State& s = *st;
  s.bad_input.fetch_add(1);
  Envelope env;
  // A structured message refused for its size still reads: its own
  // attributes, without the payload.
  absl::StatusOr<Envelope> decoded = absl::UnknownError("not decoded");
  if (!keep_data && headers.mode == ContentMode::kStructured) decoded = DecodeMsg(msg, headers);
  if (decoded.ok()) {
    env = *std::move(decoded);
    env.data.clear();
  } else {
    // What the headers say (binary mode), the rest filled in.
    auto raw = [&headers](std::string_view key) { return std::string(headers.Get(key)); };
    env.id = raw("ce-id");
    if (env.id.empty()) env.id = NewMessageId();
    env.source = raw("ce-source");
    if (env.source.empty()) env.source = s.source();
    env.type = operation;
    env.time = s.clock()->Now();
    env.data_content_type = raw("ce-datacontenttype");
    if (env.data_content_type.empty()) env.data_content_type = std::string(headers.content_type);
    if (env.data_content_type.empty()) env.data_content_type = "application/octet-stream";
    env.style = kind == Kind::kEvent ? Style::kEvent : Style::kCommand;
    if (keep_data) env.data = MsgData(msg);
  }
  env = WithDeadLetterReason(std::move(env), reason);
  if (jetstream) {
    std::shared_ptr<State> keep = st;
    s.PublishJs(dlq_subject, env, [keep, ack_subject](absl::Status published) {
      if (published.ok()) {
        keep->dead_lettered.fetch_add(1);
        keep->SendAck(ack_subject, "+TERM");
      } else {
        keep->SendAck(ack_subject, "-NAK");
      }
    });
  } else {
    s.dead_lettered.fetch_add(1);
    if (!s.PublishCore(dlq_subject, env).ok()) s.dead_lettered.fetch_sub(1);
  }
}

// Core NATS consumers: one cnats delivery thread per subscription.
void OnCoreMsg(natsConnection*, natsSubscription*, natsMsg* raw, void* closure) {
  auto& cs = *static_cast<std::shared_ptr<ConsumerState>*>(closure);
  MsgPtr msg(raw);
  const ReceivedHeaders headers = ReadHeaders(raw);
  if (absl::Status size = cs->st->CheckSize(raw, headers, cs->operation); !size.ok()) {
    cs->DeadLetterRaw(raw, headers, false, size, "");  // attributes and reason only
    return;
  }
  absl::StatusOr<Envelope> env = DecodeMsg(raw, headers);
  if (!env.ok()) {
    cs->DeadLetterRaw(raw, headers, true, env.status(), "");
    return;
  }
  while (!cs->AcquireSlot(absl::Milliseconds(200))) {
    if (cs->IsClosed()) {
      // Not ours to handle any more: hand it back to the group.
      if (!cs->st->closed()) (void)cs->st->PublishCore(cs->retry_subject, *env);
      return;
    }
  }
  cs->Deliver(*std::move(env), "");
}

void HandleJsMsg(const std::shared_ptr<ConsumerState>& cs, natsMsg* raw) {
  const char* reply = natsMsg_GetReply(raw);
  std::string ack_subject = reply == nullptr ? "" : reply;
  const ReceivedHeaders headers = ReadHeaders(raw);
  if (absl::Status size = cs->st->CheckSize(raw, headers, cs->operation); !size.ok()) {
    // Dead-lettered with its attributes and the reason but not the payload,
    // so the copy always fits (and a reader with the same limit can read it).
    cs->DeadLetterRaw(raw, headers, false, size, ack_subject);
    return;
  }
  absl::StatusOr<Envelope> env = DecodeMsg(raw, headers);
  if (!env.ok()) {
    cs->DeadLetterRaw(raw, headers, true, env.status(), ack_subject);
    return;
  }
  jsMsgMetaData* meta = nullptr;
  if (natsMsg_GetMetaData(&meta, raw) == NATS_OK) {
    env->attempt = static_cast<int32_t>(std::max<uint64_t>(1, meta->NumDelivered));
    jsMsgMetaData_Destroy(meta);
  }
  {
    absl::MutexLock lock(&cs->mu);
    ++cs->in_flight;
  }
  cs->Deliver(*std::move(env), std::move(ack_subject));
}

class CoreConsumerSubscription final : public Subscription {
 public:
  CoreConsumerSubscription(std::unique_ptr<std::shared_ptr<ConsumerState>> cs,
                           natsSubscription* sub, natsSubscription* retry_sub)
      : cs_(std::move(cs)), sub_(sub), retry_sub_(retry_sub) {}
  ~CoreConsumerSubscription() override {
    {
      absl::MutexLock lock(&(*cs_)->mu);
      (*cs_)->closed = true;
    }
    CloseAsyncSub(sub_);
    CloseAsyncSub(retry_sub_);
  }

 private:
  std::unique_ptr<std::shared_ptr<ConsumerState>> cs_;
  natsSubscription* sub_;
  natsSubscription* retry_sub_;
};

// JetStream consumers: one fetch thread per subscription, pulling at most as
// many messages as max_in_flight leaves room for. The loop owns the cnats
// subscription, so a subscription destroyed from its own handler (on the
// fetch thread) leaves the loop to finish and free it.
class PullLoop {
 public:
  PullLoop(std::shared_ptr<ConsumerState> cs, natsSubscription* sub)
      : cs_(std::move(cs)), sub_(sub) {}
  ~PullLoop() { natsSubscription_Destroy(sub_); }

  // Wakes a Fetch waiting for messages; the loop then sees `closed`.
  void Stop() {
    {
      absl::MutexLock lock(&cs_->mu);
      cs_->closed = true;
    }
    natsSubscription_Unsubscribe(sub_);
  }

  void Run() {
    const int batch_max = std::max(1, cs_->st->settings().fetch_batch);
    while (true) {
      {
        absl::MutexLock lock(&cs_->mu);
        auto ready = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(cs_->mu) {
          return cs_->closed || cs_->in_flight < cs_->max_in_flight;
        };
        cs_->mu.AwaitWithTimeout(absl::Condition(&ready), absl::Milliseconds(250));
        if (cs_->closed) return;
      }
      int room = cs_->Room();
      if (room <= 0) continue;
      natsMsgList list{};
      jsErrCode jerr = static_cast<jsErrCode>(0);
      natsStatus s = natsSubscription_Fetch(&list, sub_, std::min(room, batch_max),
                                            kFetchTimeoutMs, &jerr);
      if (cs_->IsClosed()) {
        for (int i = 0; i < list.Count; ++i) {
          const char* reply = natsMsg_GetReply(list.Msgs[i]);
          if (reply != nullptr) cs_->st->SendAck(reply, "-NAK");
        }
        natsMsgList_Destroy(&list);
        return;
      }
      if (s == NATS_TIMEOUT) continue;
      if (s != NATS_OK) {
        natsMsgList_Destroy(&list);
        cs_->st->fetch_errors.fetch_add(1);
        absl::MutexLock lock(&cs_->mu);
        auto closing = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(cs_->mu) { return cs_->closed; };
        cs_->mu.AwaitWithTimeout(absl::Condition(&closing), kFetchErrorBackoff);
        continue;
      }
      for (int i = 0; i < list.Count; ++i) HandleJsMsg(cs_, list.Msgs[i]);
      natsMsgList_Destroy(&list);
    }
  }

 private:
  std::shared_ptr<ConsumerState> cs_;
  natsSubscription* const sub_;
};

class PullSubscription final : public Subscription {
 public:
  PullSubscription(std::shared_ptr<ConsumerState> cs, natsSubscription* sub)
      : loop_(std::make_shared<PullLoop>(std::move(cs), sub)),
        thread_([loop = loop_] { loop->Run(); }) {}
  ~PullSubscription() override {
    loop_->Stop();
    if (thread_.get_id() == std::this_thread::get_id()) {
      thread_.detach();  // destroyed from its own handler: the loop ends after it returns
    } else {
      thread_.join();
    }
  }

 private:
  std::shared_ptr<PullLoop> loop_;
  std::thread thread_;
};

// ---------------------------------------------------------------------------
// Reply inbox

struct InboxState {
  std::shared_ptr<State> st;
  ReplyHandler on_reply;
};

void OnInboxReply(natsConnection*, natsSubscription*, natsMsg* raw, void* closure) {
  auto* is = static_cast<InboxState*>(closure);
  MsgPtr msg(raw);
  const ReceivedHeaders headers = ReadHeaders(raw);
  if (!is->st->CheckSize(raw, headers, "a reply").ok()) {
    is->st->bad_input.fetch_add(1);
    return;
  }
  absl::StatusOr<Envelope> env = DecodeMsg(raw, headers);
  if (!env.ok()) {
    is->st->bad_input.fetch_add(1);
    return;
  }
  is->on_reply(*std::move(env));
}

class NatsReplyInbox final : public ReplyInbox {
 public:
  NatsReplyInbox(std::unique_ptr<InboxState> is, std::string address, natsSubscription* sub)
      : is_(std::move(is)), address_(std::move(address)), sub_(sub) {}
  ~NatsReplyInbox() override { CloseAsyncSub(sub_); }
  const std::string& address() const override { return address_; }

 private:
  std::unique_ptr<InboxState> is_;
  std::string address_;
  natsSubscription* sub_;
};

// ---------------------------------------------------------------------------
// The transport

class NatsTransportImpl final : public NatsTransport {
 public:
  explicit NatsTransportImpl(std::shared_ptr<State> st)
      : st_(std::move(st)), features_(NatsFeatures(st_->settings().jetstream)) {}
  ~NatsTransportImpl() override { st_->Shutdown(); }

  std::string_view name() const override { return st_->name(); }
  std::string_view type() const override { return "nats"; }
  const Features& features() const override { return features_; }

  NatsTransportStats stats() const override {
    NatsTransportStats out;
    out.bad_input = st_->bad_input.load();
    out.dead_lettered = st_->dead_lettered.load();
    out.publish_errors = st_->publish_errors.load();
    out.fetch_errors = st_->fetch_errors.load();
    out.async_errors = st_->async_errors.load();
    return out;
  }

  void Request(Envelope request, ReplyCallback on_reply) override {
    st_->Request(std::move(request), std::move(on_reply));
  }

  absl::StatusOr<std::unique_ptr<Subscription>> Serve(const Endpoint& endpoint,
                                                      RequestHandler handler) override {
    auto ss = std::make_unique<std::shared_ptr<ServeState>>(std::make_shared<ServeState>());
    (*ss)->st = st_;
    (*ss)->handler = std::move(handler);
    (*ss)->operation = endpoint.operation;
    (*ss)->max_in_flight = std::max(1, endpoint.max_in_flight);
    std::string subject = st_->Subject(Kind::kRequest, endpoint.operation, endpoint.address);
    std::string queue = QueueGroupName(endpoint.group.empty() ? endpoint.operation : endpoint.group);
    natsSubscription* sub = nullptr;
    natsStatus s = natsConnection_QueueSubscribe(&sub, st_->nc(), subject.c_str(), queue.c_str(),
                                                 &OnServeMsg, ss.get());
    if (s != NATS_OK) {
      return NatsError(s, absl::StrCat("cannot serve ", endpoint.operation, " on ", subject));
    }
    st_->ApplyPendingLimits(sub);
    // Makes the subscription known to the server before Serve returns, so a
    // request sent right after does not see "no responders".
    natsConnection_FlushTimeout(st_->nc(), 2000);
    return std::unique_ptr<Subscription>(new ServeSubscription(std::move(ss), sub));
  }

  void Enqueue(Envelope command, DoneCallback on_accepted) override {
    Send(Kind::kCommand, std::move(command), std::move(on_accepted));
  }

  void Publish(Envelope event, DoneCallback on_published) override {
    Send(Kind::kEvent, std::move(event), std::move(on_published));
  }

  absl::StatusOr<std::unique_ptr<Subscription>> Consume(const Endpoint& endpoint,
                                                        DeliveryHandler handler) override {
    return StartConsumer(Kind::kCommand, endpoint, std::move(handler));
  }

  absl::StatusOr<std::unique_ptr<Subscription>> Subscribe(const Endpoint& endpoint,
                                                          DeliveryHandler handler) override {
    return StartConsumer(Kind::kEvent, endpoint, std::move(handler));
  }

  absl::StatusOr<std::unique_ptr<ReplyInbox>> OpenInbox(ReplyHandler on_reply) override {
    natsInbox* inbox = nullptr;
    natsStatus s = natsInbox_Create(&inbox);
    if (s != NATS_OK) return NatsError(s, "cannot create an inbox");
    std::string address = inbox;
    natsInbox_Destroy(inbox);
    auto is = std::make_unique<InboxState>();
    is->st = st_;
    is->on_reply = std::move(on_reply);
    natsSubscription* sub = nullptr;
    s = natsConnection_Subscribe(&sub, st_->nc(), address.c_str(), &OnInboxReply, is.get());
    if (s != NATS_OK) return NatsError(s, absl::StrCat("cannot subscribe inbox ", address));
    natsSubscription_SetPendingLimits(sub, -1, -1);
    natsConnection_FlushTimeout(st_->nc(), 2000);
    return std::unique_ptr<ReplyInbox>(new NatsReplyInbox(std::move(is), address, sub));
  }

  void SendReply(const std::string& reply_to, Envelope reply, DoneCallback on_sent) override {
    if (reply_to.empty()) {
      std::move(on_sent)(absl::InvalidArgumentError("reply has no reply_to address"));
      return;
    }
    std::move(on_sent)(st_->PublishCore(reply_to, reply));
  }

  absl::StatusOr<int64_t> QueueDepth(const Endpoint& endpoint) override {
    if (!st_->settings().jetstream) {
      return absl::UnimplementedError("queue depth needs `jetstream: true` on a nats transport");
    }
    // Commands first: their consumer is named from the operation.
    for (Kind kind : {Kind::kCommand, Kind::kEvent}) {
      std::string subject = st_->Subject(kind, endpoint.operation, endpoint.address);
      std::string stream = StreamName(st_->settings().prefix, kind, subject);
      std::string durable = kind == Kind::kCommand ? CommandConsumerName(endpoint.operation)
                                                   : GroupConsumerName(endpoint.group);
      jsConsumerInfo* ci = nullptr;
      jsErrCode jerr = static_cast<jsErrCode>(0);
      natsStatus s = js_GetConsumerInfo(&ci, st_->js(), stream.c_str(), durable.c_str(), nullptr, &jerr);
      if (s == NATS_OK) {
        int64_t depth = static_cast<int64_t>(ci->NumPending);
        jsConsumerInfo_Destroy(ci);
        return depth;
      }
      if (kind == Kind::kCommand) {
        jsStreamInfo* si = nullptr;
        if (js_GetStreamInfo(&si, st_->js(), stream.c_str(), nullptr, &jerr) == NATS_OK) {
          int64_t depth = static_cast<int64_t>(si->State.Msgs);
          jsStreamInfo_Destroy(si);
          return depth;
        }
      }
    }
    return absl::NotFoundError(
        absl::StrCat("no JetStream queue for ", endpoint.operation, " on nats transport \"",
                     st_->name(), "\""));
  }

 private:
  void Send(Kind kind, Envelope env, DoneCallback done) {
    if (st_->closed()) {
      std::move(done)(absl::UnavailableError(
          absl::StrCat("nats transport \"", st_->name(), "\" is closed")));
      return;
    }
    std::string subject = st_->Subject(kind, env.type);
    if (!st_->settings().jetstream) {
      std::move(done)(st_->PublishCore(subject, env));
      return;
    }
    std::string stream = StreamName(st_->settings().prefix, kind, subject);
    absl::Status ensured = st_->EnsureStream(
        stream, subject, kind == Kind::kCommand ? js_WorkQueuePolicy : js_LimitsPolicy);
    if (!ensured.ok()) {
      std::move(done)(absl::UnavailableError(ensured.message()));
      return;
    }
    std::shared_ptr<State> st = st_;
    st_->PublishJs(subject, env, [st, stream, done = std::move(done)](absl::Status s) mutable {
      // The stream may have been deleted behind our back: look again next time.
      if (s.code() == absl::StatusCode::kUnavailable) st->ForgetStream(stream);
      std::move(done)(std::move(s));
    });
  }

  absl::StatusOr<std::unique_ptr<Subscription>> StartConsumer(Kind kind, const Endpoint& endpoint,
                                                              DeliveryHandler handler) {
    auto cs = std::make_shared<ConsumerState>();
    cs->st = st_;
    cs->handler = std::move(handler);
    cs->kind = kind;
    cs->operation = endpoint.operation;
    cs->subject = st_->Subject(kind, endpoint.operation, endpoint.address);
    cs->dlq_subject = st_->DeadLetterSubject(endpoint.operation);
    cs->jetstream = st_->settings().jetstream;
    cs->max_in_flight = std::max(1, endpoint.max_in_flight);
    const std::string group =
        kind == Kind::kCommand ? std::string(kCommandQueueGroup) : endpoint.group;
    cs->retry_subject = RetrySubject(st_->settings().prefix, group, cs->subject);

    if (!cs->jetstream) {
      auto holder = std::make_unique<std::shared_ptr<ConsumerState>>(cs);
      std::string queue = QueueGroupName(group);
      natsSubscription* sub = nullptr;
      natsSubscription* retry_sub = nullptr;
      natsStatus s = natsConnection_QueueSubscribe(&sub, st_->nc(), cs->subject.c_str(),
                                                   queue.c_str(), &OnCoreMsg, holder.get());
      if (s == NATS_OK) {
        s = natsConnection_QueueSubscribe(&retry_sub, st_->nc(), cs->retry_subject.c_str(),
                                          queue.c_str(), &OnCoreMsg, holder.get());
        if (s != NATS_OK) CloseAsyncSub(sub);
      }
      if (s != NATS_OK) {
        return NatsError(s, absl::StrCat("cannot subscribe ", endpoint.operation, " on ",
                                         cs->subject));
      }
      st_->ApplyPendingLimits(sub);
      st_->ApplyPendingLimits(retry_sub);
      natsConnection_FlushTimeout(st_->nc(), 2000);
      return std::unique_ptr<Subscription>(
          new CoreConsumerSubscription(std::move(holder), sub, retry_sub));
    }

    std::string prefix = st_->settings().prefix;
    std::string stream = StreamName(prefix, kind, cs->subject);
    absl::Status s = st_->EnsureStream(stream, cs->subject,
                                       kind == Kind::kCommand ? js_WorkQueuePolicy : js_LimitsPolicy);
    if (!s.ok()) return s;
    // The dead-letter queue exists before anything is dead-lettered, so
    // DeadLetter never blocks on topology.
    s = st_->EnsureStream(StreamName(prefix, Kind::kCommand, cs->dlq_subject), cs->dlq_subject,
                          js_WorkQueuePolicy);
    if (!s.ok()) return s;
    std::string durable = kind == Kind::kCommand ? CommandConsumerName(endpoint.operation)
                                                 : GroupConsumerName(endpoint.group);
    s = st_->EnsureConsumer(stream, durable);
    if (!s.ok()) return s;

    jsSubOptions so;
    jsSubOptions_Init(&so);
    so.Stream = stream.c_str();
    so.Consumer = durable.c_str();  // bound: the library never deletes it
    natsSubscription* sub = nullptr;
    jsErrCode jerr = static_cast<jsErrCode>(0);
    natsStatus ns = js_PullSubscribe(&sub, st_->js(), cs->subject.c_str(), durable.c_str(), nullptr,
                                     &so, &jerr);
    if (ns != NATS_OK) {
      return NatsError(ns, absl::StrCat("cannot pull from JetStream consumer ", durable, " of ",
                                        stream),
                       jerr);
    }
    return std::unique_ptr<Subscription>(new PullSubscription(std::move(cs), sub));
  }

  std::shared_ptr<State> st_;
  Features features_;
};

absl::StatusOr<Settings> ParseSettings(absl::string_view name, const v1::NatsOptions& o) {
  Settings s;
  if (!o.url().empty()) s.urls.push_back(o.url());
  for (const auto& u : o.urls()) s.urls.push_back(u);
  if (s.urls.empty()) s.urls.push_back("nats://127.0.0.1:4222");
  for (const auto& u : s.urls) {
    if (u.rfind("tls://", 0) == 0) s.secure = true;
  }
  s.conn_name = o.name().empty() ? absl::StrCat("switchboard-", name) : o.name();
  s.token = o.token();
  s.user = o.user();
  s.password = o.password();
  if (!s.token.empty() && !s.user.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "nats transport \"", name, "\": set either `token` or `user`/`password`, not both"));
  }
  if (o.has_tls()) {
    s.tls = o.tls();
    s.secure = true;
    if (s.tls.cert_file().empty() != s.tls.key_file().empty()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "nats transport \"", name, "\": `tls.cert_file` and `tls.key_file` go together"));
    }
  }
  s.jetstream = o.jetstream();
  if (o.max_reconnect() != 0) s.max_reconnect = o.max_reconnect();
  if (o.has_reconnect_wait()) {
    s.reconnect_wait = FromProto(o.reconnect_wait());
    // cnats counts milliseconds: a shorter wait would become none at all.
    if (s.reconnect_wait < absl::ZeroDuration() ||
        (s.reconnect_wait > absl::ZeroDuration() && s.reconnect_wait < absl::Milliseconds(1))) {
      return absl::InvalidArgumentError(
          absl::StrCat("nats transport \"", name, "\": `reconnect_wait` of ",
                       absl::FormatDuration(s.reconnect_wait), " must be 0 or at least 1ms"));
    }
  }
  if (o.has_ping_interval()) {
    s.ping_interval = FromProto(o.ping_interval());
    if (s.ping_interval < absl::Milliseconds(1)) {
      return absl::InvalidArgumentError(absl::StrCat(
          "nats transport \"", name, "\": `ping_interval` must be at least 1ms"));
    }
  }
  if (o.max_pings_out() < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("nats transport \"", name, "\": `max_pings_out` must not be negative"));
  }
  s.max_pings_out = o.max_pings_out();
  if (o.replicas() > 0) s.replicas = o.replicas();
  if (o.has_max_age()) s.max_age = FromProto(o.max_age());
  if (o.max_deliver() != 0) s.max_deliver = o.max_deliver();
  if (o.has_ack_wait()) s.ack_wait = FromProto(o.ack_wait());
  if (o.has_duplicate_window()) s.duplicate_window = FromProto(o.duplicate_window());
  if (o.fetch_batch() > 0) s.fetch_batch = o.fetch_batch();
  if (o.max_message_bytes() > 0) s.max_message_bytes = o.max_message_bytes();
  if (o.pending_messages_limit() < 0 || o.pending_bytes_limit() > INT32_MAX) {
    return absl::InvalidArgumentError(absl::StrCat(
        "nats transport \"", name, "\": `pending_messages_limit` must be >= 0 and "
        "`pending_bytes_limit` at most 2 GiB - 1 (0 = unlimited)"));
  }
  s.pending_messages_limit = o.pending_messages_limit();
  s.pending_bytes_limit = static_cast<int>(o.pending_bytes_limit());
  if (!o.subject_prefix().empty()) s.prefix = o.subject_prefix();
  if (!internal::ParseContentMode(o.content_mode(), &s.content_mode)) {
    return absl::InvalidArgumentError(
        absl::StrCat("nats transport \"", name, "\": `content_mode` is \"", o.content_mode(),
                     "\"; must be structured (the default) or binary"));
  }
  if (s.ack_wait <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError(
        absl::StrCat("nats transport \"", name, "\": `ack_wait` must be positive"));
  }
  return s;
}

}  // namespace

Features NatsFeatures(bool jetstream) {
  Features f;
  f.durable = jetstream;
  f.fan_out_to_groups = true;
  f.native_request_reply = true;
  f.ordering_per_key = false;
  f.broker_dedup = jetstream;
  f.redelivery_count = true;
  f.reply_routing = true;
  f.cross_process = true;
  f.delayed_redelivery = jetstream;
  return f;
}

absl::StatusOr<std::unique_ptr<Transport>> MakeNatsTransport(std::string_view name,
                                                             const v1::TransportConfig& config,
                                                             const TransportEnv& env) {
  absl::StatusOr<Settings> settings = ParseSettings(Sv(name), config.nats());
  if (!settings.ok()) return settings.status();
  absl::StatusOr<std::shared_ptr<State>> st = NewState(name, *std::move(settings), env);
  if (!st.ok()) return st.status();
  return std::unique_ptr<Transport>(new NatsTransportImpl(*std::move(st)));
}

}  // namespace switchboard::nats
