// The raw AMQP 1.0 baseline with Qpid Proton C++ through the same RabbitMQ as
// the Switchboard node:
//   request   client sends to a request queue; a receiver answers each
//             message on a reply queue; the client's receiver gets the reply
//   command   durable messages to a durable queue (UNSETTLED_STATE termini),
//             accepted by the receiver
//   event     durable messages to /topic/<key>, received from a durable queue
//             bound to amq.topic (declared through the management API), as a
//             Switchboard subscriber group receives them
// A command or event is done when the receiver has it and the broker has
// accepted it from the sender: a Switchboard send completes on that accept
// (as js_Publish waits for JetStream's ack).
// One connection on one container thread. Proton objects are touched only on
// that thread: callers hand sends over through the connection's work queue.
// With `envelope_headers` each message carries what a Switchboard envelope
// puts on an AMQP message (the message id, content type and creation time,
// and the CloudEvents application properties, values of the same length)
// and the receiver reads every property.
#include <proton/connection.hpp>
#include <proton/connection_options.hpp>
#include <proton/container.hpp>
#include <proton/delivery.hpp>
#include <proton/message.hpp>
#include <proton/messaging_handler.hpp>
#include <proton/receiver.hpp>
#include <proton/receiver_options.hpp>
#include <proton/sender.hpp>
#include <proton/sender_options.hpp>
#include <proton/source_options.hpp>
#include <proton/target_options.hpp>
#include <proton/tracker.hpp>
#include <proton/transport.hpp>
#include <proton/work_queue.hpp>

#include <proton/codec/map.hpp>
#include <proton/message_id.hpp>
#include <proton/scalar.hpp>
#include <proton/timestamp.hpp>

#include <atomic>
#include <condition_variable>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <utility>

#include "bench_workload.h"
#include "management_client.h"

namespace switchboard::bench {
namespace {

constexpr int kCredit = 256;

// What transports/amqp/src/amqp_wire.cc (EnvelopeEncoder) writes for the
// benchmark's operations; ids and times change per message.
void AddEnvelopeProperties(Style style, uint64_t seq, proton::message* m) {
  const EnvelopeLikeIds ids = MakeEnvelopeLikeIds(seq);
  const std::string id = ids.id, trace = ids.trace;
  const proton::timestamp now(1'800'000'000'000 + static_cast<int64_t>(seq));
  m->id(proton::message_id(id));
  m->creation_time(now);
  m->content_type("application/protobuf");
  // A first attempt with its id as the idempotency key: neither travels.
  auto& p = m->properties();
  p.put("cloudEvents_id", id);
  p.put("cloudEvents_source", std::string("//sbbench/bench-node"));
  p.put("cloudEvents_specversion", std::string("1.0"));
  p.put("cloudEvents_type", std::string("switchboard.test.v1.Echo.Echo"));
  p.put("cloudEvents_time", now);
  p.put("cloudEvents_traceparent", trace);
  p.put("traceparent", trace);
  p.put("cloudEvents_expirytime", now);
  p.put("cloudEvents_style", std::string(style == Style::kRequest   ? "request"
                                         : style == Style::kCommand ? "command"
                                                                    : "event"));
}

// Reads every application property back (what a receiver mapping them to an
// envelope does); false when there are none.
bool ReadAllProperties(const proton::message& m) {
  std::map<std::string, proton::scalar> props;
  proton::get(m.properties().value(), props);
  size_t total = 0;
  for (const auto& [k, v] : props) total += k.size() + proton::to_string(v).size();
  return !props.empty() && total > 0;
}

class RawAmqp : public Workload, public proton::messaging_handler {
 public:
  static absl::StatusOr<std::unique_ptr<Workload>> Create(const RawOptions& o) {
    if (o.url.empty()) return absl::NotFoundError("SWITCHBOARD_TEST_AMQP_URL is not set");
    auto w = std::unique_ptr<RawAmqp>(new RawAmqp(o));
    if (o.style == Style::kEvent) {
      // The group queue, as the Switchboard transport provisions it.
      auto mgmt = amqp::ManagementClient::Create(o.management_url, "guest", "guest");
      if (!mgmt.ok()) return mgmt.status();
      if (absl::Status s = (*mgmt)->DeclareQueue(w->event_queue_, /*durable=*/true,
                                                 /*auto_delete=*/false);
          !s.ok())
        return s;
      if (absl::Status s = (*mgmt)->Bind("amq.topic", w->event_queue_, w->event_key_); !s.ok())
        return s;
    }
    w->thread_ = std::thread([raw = w.get()] {
      try {
        raw->container_.run();
      } catch (const std::exception& e) {
        raw->Fail(e.what());
      }
    });
    std::unique_lock<std::mutex> lock(w->mu_);
    bool ready = w->cv_.wait_for(lock, std::chrono::seconds(15), [&] {
      return w->links_open_ >= w->links_needed_ || !w->error_.empty();
    });
    if (!ready || !w->error_.empty()) {
      std::string why = w->error_.empty() ? "links did not open within 15 s" : w->error_;
      lock.unlock();
      // Proton may stall while closing; the process leaves with _Exit, so the
      // container thread is left behind rather than waited for.
      w->thread_.detach();
      (void)w.release();
      return absl::UnavailableError("raw AMQP: " + why);
    }
    return std::unique_ptr<Workload>(std::move(w));
  }

  // Left running: see Create. The runner keeps every raw workload until it
  // exits with _Exit.
  ~RawAmqp() override {
    if (thread_.joinable()) thread_.detach();
  }

  absl::Status RunOnce(int slot, uint64_t seq) override {
    std::string bytes = MakeRequest(slot, seq, options_.payload_bytes).SerializeAsString();
    bool queued = work_queue_->add([this, slot, seq, bytes = std::move(bytes)]() mutable {
      proton::message m;
      m.body(proton::binary(bytes.begin(), bytes.end()));
      m.content_type("application/protobuf");
      if (options_.envelope_headers) AddEnvelopeProperties(options_.style, seq, &m);
      if (options_.style != Style::kRequest) m.durable(true);
      if (options_.style == Style::kRequest) m.reply_to(reply_address_);
      proton::tracker t = client_sender_.send(m);
      if (options_.style != Style::kRequest) awaiting_accept_[TagKey(t.tag())] = {slot, seq};
    });
    if (!queued) return absl::UnavailableError("raw AMQP: connection closed");
    if (!signals_.Wait(slot, seq)) return absl::DeadlineExceededError("no delivery in time");
    if (options_.style != Style::kRequest && !accepted_.Wait(slot, seq)) {
      return absl::DeadlineExceededError("the broker did not accept the message in time");
    }
    return absl::OkStatus();
  }

 private:
  explicit RawAmqp(const RawOptions& o)
      : options_(o), signals_(o.concurrency), accepted_(o.concurrency) {
    const char* kind = o.style == Style::kRequest ? "req" : o.style == Style::kCommand ? "cmd" : "evt";
    std::string base = "rawbench." + o.run_id + "." + kind;
    if (o.style == Style::kEvent) {
      address_ = "/topic/" + base;
      event_key_ = base;
      event_queue_ = base + ".group";
    } else {
      address_ = "/queue/" + base;
    }
    reply_address_ = "/queue/" + base + ".reply";
    links_needed_ = o.style == Style::kRequest ? 4 : 2;
    // amqp://user:password@host:port -> credentials and the plain URL.
    std::string url = o.url;
    size_t scheme = url.find("://");
    size_t at = url.find('@');
    if (scheme != std::string::npos && at != std::string::npos && at > scheme) {
      std::string creds = url.substr(scheme + 3, at - scheme - 3);
      size_t colon = creds.find(':');
      user_ = creds.substr(0, colon);
      if (colon != std::string::npos) password_ = creds.substr(colon + 1);
      url = url.substr(0, scheme + 3) + url.substr(at + 1);
    }
    url_ = url;
  }

  void Fail(const std::string& why) {
    std::lock_guard<std::mutex> lock(mu_);
    if (error_.empty()) error_ = why;
    cv_.notify_all();
  }

  void on_container_start(proton::container& c) override {
    proton::connection_options co;
    co.sasl_enabled(true);
    co.sasl_allow_insecure_mechs(true);
    if (!user_.empty()) co.user(user_);
    if (!password_.empty()) co.password(password_);
    c.connect(url_, co);
  }

  void on_connection_open(proton::connection& conn) override {
    work_queue_ = &conn.work_queue();
    proton::sender_options so;
    proton::receiver_options ro;
    ro.credit_window(kCredit);
    if (options_.style == Style::kCommand) {
      so.target(proton::target_options().durability_mode(proton::target::UNSETTLED_STATE));
      ro.source(proton::source_options().durability_mode(proton::source::UNSETTLED_STATE));
    }
    server_receiver_ = conn.open_receiver(
        options_.style == Style::kEvent ? "/amq/queue/" + event_queue_ : address_, ro);
    client_sender_ = conn.open_sender(address_, so);
    if (options_.style == Style::kRequest) {
      server_sender_ = conn.open_sender(reply_address_, proton::sender_options());
      proton::receiver_options rr;
      rr.credit_window(kCredit);
      client_receiver_ = conn.open_receiver(reply_address_, rr);
    }
  }

  void LinkOpened() {
    std::lock_guard<std::mutex> lock(mu_);
    ++links_open_;
    cv_.notify_all();
  }
  void on_sender_open(proton::sender&) override { LinkOpened(); }
  void on_receiver_open(proton::receiver&) override { LinkOpened(); }

  void on_message(proton::delivery& d, proton::message& m) override {
    if (options_.envelope_headers && !ReadAllProperties(m)) return;
    proton::binary body = proton::get<proton::binary>(m.body());
    std::string bytes(body.begin(), body.end());
    if (options_.style == Style::kRequest && d.receiver() == server_receiver_) {
      absl::StatusOr<std::string> reply = EchoBytes(bytes);
      if (!reply.ok()) return;
      proton::message out;
      out.body(proton::binary(reply->begin(), reply->end()));
      out.content_type("application/protobuf");
      if (options_.envelope_headers) AddEnvelopeProperties(options_.style, replies_++, &out);
      server_sender_.send(out);
      return;
    }
    int slot = 0;
    uint64_t seq = 0;
    if (options_.style == Style::kRequest) {
      test::v1::EchoReply reply;
      if (!reply.ParseFromString(bytes) || !ParseSlot(reply.text(), &slot, &seq)) return;
    } else {
      test::v1::EchoRequest req;
      if (!req.ParseFromString(bytes) || !ParseSlot(req.text(), &slot, &seq)) return;
    }
    signals_.Done(slot, seq);
  }

  static std::string TagKey(const proton::binary& tag) { return std::string(tag.begin(), tag.end()); }

  void on_tracker_accept(proton::tracker& t) override {
    auto it = awaiting_accept_.find(TagKey(t.tag()));
    if (it == awaiting_accept_.end()) return;
    accepted_.Done(it->second.first, it->second.second);
    awaiting_accept_.erase(it);
  }

  void on_error(const proton::error_condition& e) override { Fail(e.what()); }
  void on_transport_error(proton::transport& t) override { Fail(t.error().what()); }

  RawOptions options_;
  SlotSignals signals_;
  SlotSignals accepted_;  // the broker accepted the slot's message (commands, events)
  // Sent commands and events by delivery tag: (slot, seq). Container thread only.
  std::map<std::string, std::pair<int, uint64_t>> awaiting_accept_;
  std::string url_, user_, password_;
  std::string address_, reply_address_;
  std::string event_key_, event_queue_;  // events: the routing key and the group queue
  int links_needed_ = 2;
  proton::container container_{*this};
  std::thread thread_;
  // Set on the container thread before the links open; read by callers
  // after Create saw them open (the mutex orders the two).
  proton::work_queue* work_queue_ = nullptr;
  proton::sender client_sender_, server_sender_;
  proton::receiver server_receiver_, client_receiver_;
  uint64_t replies_ = 0;  // container thread only
  std::mutex mu_;
  std::condition_variable cv_;
  int links_open_ = 0;
  std::string error_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<Workload>> MakeRawAmqp(const RawOptions& options) {
  return RawAmqp::Create(options);
}

}  // namespace switchboard::bench
