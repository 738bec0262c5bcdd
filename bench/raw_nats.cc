// The raw NATS baselines with cnats, against the same nats-server as the
// Switchboard node:
//   request            natsConnection_Request to a responder that publishes
//                      the echo to the reply subject
//   command (core)     publish to a queue-group subscription
//   event (core)       publish to a plain subscription
//   command, event     js_Publish (waits for the server's ack), one pull
//   (JetStream)        consumer fetching batches and acking each message
// Connections use natsOptions_SetSendAsap like the Switchboard transport, so
// both sides pay the same flush policy. With `envelope_headers`, messages are
// natsMsg with the headers of a Switchboard envelope of the same operation
// (values of the same length), set one by one and read back one by one.
#include <nats/nats.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "bench_workload.h"

namespace switchboard::bench {
namespace {

absl::Status Err(natsStatus s, const std::string& what) {
  return absl::UnavailableError(what + ": " + natsStatus_GetText(s) + " " + nats_GetLastError(nullptr));
}

// What a Switchboard NATS message of the benchmark's operations carries
// besides its payload (transports/nats/src/nats_wire.cc, EnvelopeToHeaders).
// Ids and times change per message, as the real ones do.
struct HeaderSet {
  std::vector<std::pair<std::string, std::string>> fields;
};

HeaderSet EnvelopeLikeHeaders(Style style, uint64_t seq) {
  const EnvelopeLikeIds ids = MakeEnvelopeLikeIds(seq);
  const char* id = ids.id;
  const char* trace = ids.trace;
  char time[40];
  std::snprintf(time, sizeof time, "2026-11-23T14:%02llu:%02llu.123456Z",
                static_cast<unsigned long long>(seq / 60 % 60),
                static_cast<unsigned long long>(seq % 60));
  const char* style_name = style == Style::kRequest   ? "request"
                           : style == Style::kCommand ? "command"
                                                      : "event";
  HeaderSet h;
  // An envelope's first attempt with its id as the idempotency key: no
  // Content-Type, ce-idempotencykey or ce-attempt (transports/nats/README.md).
  h.fields = {{"ce-id", id},
              {"ce-source", "//sbbench/bench-node"},
              {"ce-specversion", "1.0"},
              {"ce-type", "switchboard.test.v1.Echo.Echo"},
              {"ce-time", time},
              {"ce-datacontenttype", "application/protobuf"},
              {"ce-traceparent", trace},
              {"traceparent", trace},
              {"ce-expirytime", time},
              {"ce-style", style_name}};
  return h;
}

// The message of `data` with the envelope's headers (caller destroys it).
natsStatus NewMessageWithHeaders(natsMsg** msg, const char* subject, const char* reply,
                                 const std::string& data, Style style, uint64_t seq) {
  natsStatus s = natsMsg_Create(msg, subject, reply, data.data(), static_cast<int>(data.size()));
  if (s != NATS_OK) return s;
  for (const auto& [k, v] : EnvelopeLikeHeaders(style, seq).fields) {
    s = natsMsgHeader_Set(*msg, k.c_str(), v.c_str());
    if (s != NATS_OK) break;
  }
  return s;
}

// Reads every header back (what a receiver mapping them to an envelope
// does); false when one is missing.
bool ReadAllHeaders(natsMsg* msg) {
  const char** keys = nullptr;
  int count = 0;
  if (natsMsgHeader_Keys(msg, &keys, &count) != NATS_OK) return false;
  size_t total = 0;
  for (int i = 0; i < count; ++i) {
    const char* value = nullptr;
    if (natsMsgHeader_Get(msg, keys[i], &value) == NATS_OK && value != nullptr)
      total += std::string(value).size();
  }
  free(static_cast<void*>(keys));
  return count > 0 && total > 0;
}

class RawNats : public Workload {
 public:
  static absl::StatusOr<std::unique_ptr<Workload>> Create(const RawOptions& o) {
    if (o.url.empty()) return absl::NotFoundError("SWITCHBOARD_TEST_NATS_URL is not set");
    auto w = std::unique_ptr<RawNats>(new RawNats(o));
    if (absl::Status s = w->Start(); !s.ok()) return s;
    return std::unique_ptr<Workload>(std::move(w));
  }

  ~RawNats() override {
    stop_.store(true);
    if (fetcher_.joinable()) fetcher_.join();
    if (sub_ != nullptr) natsSubscription_Destroy(sub_);
    if (js_ != nullptr) jsCtx_Destroy(js_);
    for (natsConnection* nc : {send_nc_, recv_nc_})
      if (nc != nullptr) natsConnection_Destroy(nc);
  }

  absl::Status RunOnce(int slot, uint64_t seq) override {
    std::string bytes = MakeRequest(slot, seq, options_.payload_bytes).SerializeAsString();
    const int len = static_cast<int>(bytes.size());
    if (options_.style == Style::kRequest) {
      natsMsg* reply = nullptr;
      natsStatus s = NATS_OK;
      if (options_.envelope_headers) {
        natsMsg* request = nullptr;
        s = NewMessageWithHeaders(&request, subject_.c_str(), nullptr, bytes, options_.style, seq);
        if (s == NATS_OK)
          s = natsConnection_RequestMsg(&reply, send_nc_, request,
                                        std::chrono::milliseconds(kUnitTimeout).count());
        natsMsg_Destroy(request);
        if (s == NATS_OK && !ReadAllHeaders(reply)) {
          natsMsg_Destroy(reply);
          return absl::InternalError("reply without headers");
        }
      } else {
        s = natsConnection_Request(&reply, send_nc_, subject_.c_str(), bytes.data(), len,
                                   std::chrono::milliseconds(kUnitTimeout).count());
      }
      if (s != NATS_OK) return Err(s, "request");
      test::v1::EchoReply parsed;
      bool ok = parsed.ParseFromArray(natsMsg_GetData(reply), natsMsg_GetDataLength(reply));
      natsMsg_Destroy(reply);
      return ok ? absl::OkStatus() : absl::InternalError("bad reply");
    }
    if (options_.jetstream) {
      jsPubAck* ack = nullptr;
      jsErrCode jerr = static_cast<jsErrCode>(0);
      natsStatus s = NATS_OK;
      if (options_.envelope_headers) {
        natsMsg* msg = nullptr;
        s = NewMessageWithHeaders(&msg, subject_.c_str(), nullptr, bytes, options_.style, seq);
        if (s == NATS_OK) s = js_PublishMsg(&ack, js_, msg, nullptr, &jerr);
        natsMsg_Destroy(msg);
      } else {
        s = js_Publish(&ack, js_, subject_.c_str(), bytes.data(), len, nullptr, &jerr);
      }
      if (ack != nullptr) jsPubAck_Destroy(ack);
      if (s != NATS_OK) return Err(s, "js_Publish");
    } else if (options_.envelope_headers) {
      natsMsg* msg = nullptr;
      natsStatus s = NewMessageWithHeaders(&msg, subject_.c_str(), nullptr, bytes, options_.style, seq);
      if (s == NATS_OK) s = natsConnection_PublishMsg(send_nc_, msg);
      natsMsg_Destroy(msg);
      if (s != NATS_OK) return Err(s, "publish");
    } else {
      natsStatus s = natsConnection_Publish(send_nc_, subject_.c_str(), bytes.data(), len);
      if (s != NATS_OK) return Err(s, "publish");
    }
    if (!signals_.Wait(slot, seq)) return absl::DeadlineExceededError("message not consumed in time");
    return absl::OkStatus();
  }

 private:
  explicit RawNats(const RawOptions& o) : options_(o), signals_(o.concurrency) {
    const char* kind = o.style == Style::kRequest ? "req" : o.style == Style::kCommand ? "cmd" : "evt";
    subject_ = "rawbench." + o.run_id + (o.jetstream ? ".js." : ".core.") + kind;
    stream_ = "RAWBENCH_" + o.run_id + "_" + kind;
  }

  absl::Status Connect(natsConnection** nc) {
    natsOptions* opts = nullptr;
    natsStatus s = natsOptions_Create(&opts);
    if (s == NATS_OK) s = natsOptions_SetURL(opts, options_.url.c_str());
    if (s == NATS_OK) s = natsOptions_SetSendAsap(opts, true);
    if (s == NATS_OK) s = natsOptions_SetTimeout(opts, 5000);
    if (s == NATS_OK) s = natsConnection_Connect(nc, opts);
    natsOptions_Destroy(opts);
    return s == NATS_OK ? absl::OkStatus() : Err(s, "connect");
  }

  static void OnRequest(natsConnection* nc, natsSubscription*, natsMsg* msg, void* closure) {
    auto* self = static_cast<RawNats*>(closure);
    absl::StatusOr<std::string> reply =
        EchoBytes(std::string(natsMsg_GetData(msg), natsMsg_GetDataLength(msg)));
    const char* to = natsMsg_GetReply(msg);
    if (self->options_.envelope_headers) {
      if (reply.ok() && to != nullptr && ReadAllHeaders(msg)) {
        natsMsg* out = nullptr;
        if (NewMessageWithHeaders(&out, to, nullptr, *reply, Style::kRequest,
                                  self->replies_.fetch_add(1)) == NATS_OK)
          natsConnection_PublishMsg(nc, out);
        natsMsg_Destroy(out);
      }
    } else if (reply.ok() && to != nullptr) {
      natsConnection_Publish(nc, to, reply->data(), static_cast<int>(reply->size()));
    }
    natsMsg_Destroy(msg);
  }

  void Consume(const char* data, int len) {
    test::v1::EchoRequest req;
    int slot = 0;
    uint64_t seq = 0;
    if (req.ParseFromArray(data, len) && ParseSlot(req.text(), &slot, &seq)) signals_.Done(slot, seq);
  }

  static void OnMessage(natsConnection*, natsSubscription*, natsMsg* msg, void* closure) {
    auto* self = static_cast<RawNats*>(closure);
    if (!self->options_.envelope_headers || ReadAllHeaders(msg))
      self->Consume(natsMsg_GetData(msg), natsMsg_GetDataLength(msg));
    natsMsg_Destroy(msg);
  }

  absl::Status Start() {
    if (absl::Status s = Connect(&send_nc_); !s.ok()) return s;
    if (absl::Status s = Connect(&recv_nc_); !s.ok()) return s;
    natsStatus s = NATS_OK;
    if (options_.style == Style::kRequest) {
      s = natsConnection_Subscribe(&sub_, recv_nc_, subject_.c_str(), &OnRequest, this);
    } else if (!options_.jetstream) {
      s = options_.style == Style::kCommand
              ? natsConnection_QueueSubscribe(&sub_, recv_nc_, subject_.c_str(), "work", &OnMessage,
                                              this)
              : natsConnection_Subscribe(&sub_, recv_nc_, subject_.c_str(), &OnMessage, this);
    } else {
      return StartJetStream();
    }
    if (s == NATS_OK) s = natsConnection_Flush(recv_nc_);
    return s == NATS_OK ? absl::OkStatus() : Err(s, "subscribe");
  }

  absl::Status StartJetStream() {
    natsStatus s = natsConnection_JetStream(&js_, send_nc_, nullptr);
    if (s != NATS_OK) return Err(s, "jetstream");
    jsStreamConfig cfg;
    jsStreamConfig_Init(&cfg);
    cfg.Name = stream_.c_str();
    const char* subjects[] = {subject_.c_str()};
    cfg.Subjects = subjects;
    cfg.SubjectsLen = 1;
    cfg.Retention = options_.style == Style::kCommand ? js_WorkQueuePolicy : js_LimitsPolicy;
    cfg.Storage = js_FileStorage;
    cfg.MaxAge = int64_t{600} * 1'000'000'000;
    jsErrCode jerr = static_cast<jsErrCode>(0);
    s = js_AddStream(nullptr, js_, &cfg, nullptr, &jerr);
    if (s != NATS_OK) return Err(s, "add stream");
    jsSubOptions so;
    jsSubOptions_Init(&so);
    so.Stream = stream_.c_str();
    so.Config.AckPolicy = js_AckExplicit;
    so.Config.AckWait = int64_t{30} * 1'000'000'000;
    std::string durable = "rawbench_" + options_.run_id;
    s = js_PullSubscribe(&sub_, js_, subject_.c_str(), durable.c_str(), nullptr, &so, &jerr);
    if (s != NATS_OK) return Err(s, "pull subscribe");
    fetcher_ = std::thread([this] { FetchLoop(); });
    return absl::OkStatus();
  }

  void FetchLoop() {
    constexpr int kBatch = 64;
    constexpr int64_t kFetchTimeoutMs = 200;
    while (!stop_.load()) {
      natsMsgList list{};
      jsErrCode jerr = static_cast<jsErrCode>(0);
      natsStatus s = natsSubscription_Fetch(&list, sub_, kBatch, kFetchTimeoutMs, &jerr);
      if (s != NATS_OK && s != NATS_TIMEOUT) {
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
        continue;
      }
      for (int i = 0; i < list.Count; ++i) {
        natsMsg* m = list.Msgs[i];
        if (!options_.envelope_headers || ReadAllHeaders(m))
          Consume(natsMsg_GetData(m), natsMsg_GetDataLength(m));
        natsMsg_Ack(m, nullptr);
      }
      natsMsgList_Destroy(&list);
    }
  }

  RawOptions options_;
  SlotSignals signals_;
  std::string subject_;
  std::string stream_;
  natsConnection* send_nc_ = nullptr;
  natsConnection* recv_nc_ = nullptr;
  jsCtx* js_ = nullptr;
  natsSubscription* sub_ = nullptr;
  std::atomic<bool> stop_{false};
  std::atomic<uint64_t> replies_{0};
  std::thread fetcher_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<Workload>> MakeRawNats(const RawOptions& options) {
  return RawNats::Create(options);
}

}  // namespace switchboard::bench
