// The AMQP transport against a real RabbitMQ (scripts/with-servers.sh): the
// SPI primitives, settlement outcomes, dead-lettering of garbage sent by a
// raw Proton client, and a durable command surviving a broker restart.
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <future>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "amqp_test_env.h"
#include "amqp_wire.h"
#include "gtest/gtest.h"
#include "proton/connection.hpp"
#include "proton/container.hpp"
#include "proton/binary.hpp"
#include "proton/delivery.hpp"
#include "proton/message.hpp"
#include "proton/message_id.hpp"
#include "proton/messaging_handler.hpp"
#include "proton/receiver_options.hpp"
#include "proton/sender.hpp"
#include "proton/sender_options.hpp"
#include "proton/source_options.hpp"
#include "proton/target_options.hpp"
#include "proton/tracker.hpp"
#include "switchboard/amqp/amqp_transport.h"
#include "switchboard/clock.h"
#include "switchboard/envelope.h"
#include "switchboard/internal/cloudevent_wire.h"

namespace switchboard::amqp {
namespace {

using testing::NewTestTransport;
using testing::UniqueId;

constexpr absl::Duration kWait = absl::Seconds(10);

// A waitable list of what handlers received.
template <class T>
class Box {
 public:
  void Add(T v) {
    absl::MutexLock l(&mu_);
    items_.push_back(std::move(v));
  }
  bool WaitForCount(size_t n, absl::Duration timeout = kWait) {
    absl::MutexLock l(&mu_);
    auto ready = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return items_.size() >= n; };
    return mu_.AwaitWithTimeout(absl::Condition(&ready), timeout);
  }
  std::vector<T> Items() {
    absl::MutexLock l(&mu_);
    return items_;
  }

 private:
  absl::Mutex mu_;
  std::vector<T> items_ ABSL_GUARDED_BY(mu_);
};

#define ADD_FAILURE_IF_NOT_ALL(all, attempt) \
  if (!(all)) ADD_FAILURE() << "attempt seen: " << (attempt)

Endpoint MakeEndpoint(const std::string& operation, const std::string& group) {
  Endpoint ep;
  ep.operation = operation;
  ep.group = group;
  return ep;
}

Envelope MakeEnvelope(const std::string& type, const std::string& text) {
  Envelope e;
  e.id = NewMessageId();
  e.source = "//amqp-test";
  e.type = type;
  e.time = absl::FromUnixMillis(absl::ToUnixMillis(absl::Now()));
  e.data = text;
  return e;
}

absl::Status Await(std::function<void(DoneCallback)> start, absl::Duration timeout = kWait) {
  auto p = std::make_shared<std::promise<absl::Status>>();
  auto f = p->get_future();
  start([p](absl::Status s) { p->set_value(std::move(s)); });
  if (f.wait_for(std::chrono::milliseconds(absl::ToInt64Milliseconds(timeout))) !=
      std::future_status::ready) {
    return absl::DeadlineExceededError("test: no callback in time");
  }
  return f.get();
}

// A raw Proton client that is not the transport: sends one message, or
// receives messages from a queue. Bounded everywhere; the close of the
// connection is never waited for (RabbitMQ may stall it for 30 s).
class RawClient : public proton::messaging_handler {
 public:
  RawClient(std::string url, std::string address, bool durable)
      : url_(std::move(url)), address_(std::move(address)), durable_(durable), container_(*this) {}

  ~RawClient() override {
    container_.stop();
    if (thread_.joinable()) {
      if (exited_.wait_for(std::chrono::seconds(3)) == std::future_status::ready) {
        thread_.join();
      } else {
        thread_.detach();  // A stalled close; the process ends soon anyway.
        leaked_ = true;
      }
    }
  }

  // Sends `msg` and waits for the broker's accept.
  bool Send(proton::message msg) {
    to_send_ = std::move(msg);
    sending_ = true;
    Run();
    return done_future_.wait_for(std::chrono::seconds(10)) == std::future_status::ready &&
           done_future_.get();
  }

  // Receives up to `n` messages within the timeout.
  std::vector<proton::message> Receive(size_t n, absl::Duration timeout = kWait) {
    want_ = n;
    Run();
    absl::MutexLock l(&mu_);
    auto ready = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return received_.size() >= want_; };
    mu_.AwaitWithTimeout(absl::Condition(&ready), timeout);
    return received_;
  }

 private:
  void Run() {
    done_future_ = done_.get_future();
    auto exited = std::make_shared<std::promise<void>>();
    exited_ = exited->get_future();
    thread_ = std::thread([this, exited] {
      try {
        container_.run();
      } catch (const std::exception&) {
      }
      exited->set_value();
    });
  }

  void on_container_start(proton::container& c) override { c.connect(url_); }

  void on_connection_open(proton::connection& conn) override {
    if (sending_) {
      proton::sender_options so;
      proton::target_options to;
      if (durable_) to.durability_mode(proton::target::UNSETTLED_STATE);
      so.target(to);
      conn.open_sender(address_, so);
    } else {
      proton::receiver_options ro;
      proton::source_options so;
      if (durable_) so.durability_mode(proton::source::UNSETTLED_STATE);
      ro.source(so);
      conn.open_receiver(address_, ro);
    }
  }

  void on_sendable(proton::sender& s) override {
    if (sent_) return;
    sent_ = true;
    s.send(to_send_);
  }

  void on_tracker_accept(proton::tracker&) override { Finish(true); }
  void on_tracker_reject(proton::tracker&) override { Finish(false); }
  void on_tracker_release(proton::tracker&) override { Finish(false); }
  void on_sender_error(proton::sender&) override { Finish(false); }

  void on_message(proton::delivery& d, proton::message& m) override {
    absl::MutexLock l(&mu_);
    received_.push_back(m);
    d.accept();
  }

  void Finish(bool ok) {
    if (finished_) return;
    finished_ = true;
    done_.set_value(ok);
  }

  std::string url_;
  std::string address_;
  bool durable_;
  proton::container container_;
  std::thread thread_;
  std::future<void> exited_;
  std::promise<bool> done_;
  std::future<bool> done_future_;
  proton::message to_send_;
  bool sending_ = false;
  bool sent_ = false;
  bool finished_ = false;
  bool leaked_ = false;
  size_t want_ = 0;
  absl::Mutex mu_;
  std::vector<proton::message> received_ ABSL_GUARDED_BY(mu_);
};

class AmqpIntegrationTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (testing::TestAmqpUrl().empty()) {
      if (testing::ServersRequired()) {
        FAIL() << "SWITCHBOARD_TEST_AMQP_URL is not set (SWITCHBOARD_REQUIRE_SERVERS=1)";
      }
      GTEST_SKIP() << "SWITCHBOARD_TEST_AMQP_URL is not set; run under scripts/with-servers.sh";
    }
    prefix_ = absl::StrCat("sbi.", UniqueId(), ".");
  }

  std::unique_ptr<Transport> NewTransport() {
    TransportEnv env;
    env.clock = &Clock::Real();
    env.source = "//amqp-test";
    auto t = NewTestTransport(prefix_, env);
    EXPECT_TRUE(t.ok()) << t.status();
    return t.ok() ? *std::move(t) : nullptr;
  }

  std::string prefix_;
};

// Checked before connecting: no broker needed.
TEST(AmqpOptionsTest, AnUnknownContentModeIsRejectedNamingTheSetting) {
  // Checked before connecting: no broker needed.
  v1::TransportConfig cfg;
  cfg.set_type("amqp");
  cfg.mutable_amqp()->set_url("amqp://127.0.0.1:1");
  cfg.mutable_amqp()->set_content_mode("sometimes");
  auto t = MakeAmqpTransport("bad", cfg, {});
  ASSERT_FALSE(t.ok());
  EXPECT_EQ(t.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(absl::StrContains(t.status().message(), "`content_mode` is \"sometimes\""))
      << t.status();
}

TEST(AmqpOptionsTest, ReconnectDelaysBelowAMillisecondOrOutOfOrderAreRejected) {
  v1::TransportConfig cfg;
  cfg.set_type("amqp");
  cfg.mutable_amqp()->set_url("amqp://127.0.0.1:1");
  // The backoff counts milliseconds: 100us would silently become no wait.
  cfg.mutable_amqp()->mutable_reconnect_initial()->set_nanos(100'000);
  auto t = MakeAmqpTransport("bad", cfg, {});
  ASSERT_FALSE(t.ok());
  EXPECT_EQ(t.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(absl::StrContains(t.status().message(), "`reconnect_initial` of 100us")) << t.status();

  cfg.mutable_amqp()->mutable_reconnect_initial()->set_nanos(0);
  cfg.mutable_amqp()->mutable_reconnect_initial()->set_seconds(2);
  cfg.mutable_amqp()->mutable_reconnect_max()->set_seconds(1);
  t = MakeAmqpTransport("bad", cfg, {});
  ASSERT_FALSE(t.ok());
  EXPECT_EQ(t.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(absl::StrContains(t.status().message(), "must not be below `reconnect_initial`"))
      << t.status();

  // Without `reconnect_max`, a long initial delay is its own bound: the
  // options are fine, and the unreachable broker is what fails.
  cfg.mutable_amqp()->clear_reconnect_max();
  cfg.mutable_amqp()->mutable_reconnect_initial()->set_seconds(10);
  cfg.mutable_amqp()->mutable_connect_timeout()->set_nanos(200'000'000);
  cfg.mutable_amqp()->mutable_close_timeout()->set_nanos(100'000'000);
  t = MakeAmqpTransport("slow", cfg, {});
  ASSERT_FALSE(t.ok());
  EXPECT_EQ(t.status().code(), absl::StatusCode::kUnavailable) << t.status();
}

TEST_F(AmqpIntegrationTest, BadUrlFailsWithUnavailable) {
  v1::TransportConfig cfg = testing::TestConfig(prefix_);
  cfg.mutable_amqp()->set_url("amqp://guest:secret@127.0.0.1:1");
  cfg.mutable_amqp()->mutable_connect_timeout()->set_seconds(1);
  const absl::Time start = absl::Now();
  auto t = MakeAmqpTransport("mq", cfg, {});
  ASSERT_FALSE(t.ok());
  EXPECT_EQ(t.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(t.status().message().find("secret"), std::string::npos) << t.status();
  EXPECT_LT(absl::Now() - start, absl::Seconds(5));
}

TEST_F(AmqpIntegrationTest, CommandIsAcceptedConsumedAndAcked) {
  auto t = NewTransport();
  ASSERT_NE(t, nullptr);
  const std::string op = "it.v1.Jobs/Run";
  Box<Envelope> got;
  Endpoint ep = MakeEndpoint(op, op);
  auto sub = t->Consume(ep, [&](std::unique_ptr<Delivery> d) {
    got.Add(d->envelope());
    d->Ack();
  });
  ASSERT_TRUE(sub.ok()) << sub.status();
  Envelope cmd = MakeEnvelope(op, "job-1");
  cmd.idempotency_key = "k1";
  cmd.deadline = absl::Now() + absl::Minutes(1);
  ASSERT_TRUE(Await([&](DoneCallback done) { t->Enqueue(cmd, std::move(done)); }).ok());
  ASSERT_TRUE(got.WaitForCount(1));
  Envelope e = got.Items()[0];
  EXPECT_EQ(e.id, cmd.id);
  EXPECT_EQ(e.data, "job-1");
  EXPECT_EQ(e.attempt, 1);
  EXPECT_EQ(e.idempotency_key, "k1");
  EXPECT_EQ(absl::ToUnixMillis(e.deadline), absl::ToUnixMillis(cmd.deadline));
  // Acked: nothing comes again.
  EXPECT_FALSE(got.WaitForCount(2, absl::Milliseconds(500)));
}

TEST_F(AmqpIntegrationTest, RetryRedeliversWithNextAttemptAfterDelay) {
  auto t = NewTransport();
  ASSERT_NE(t, nullptr);
  const std::string op = "it.v1.Jobs/Retry";
  Box<std::pair<int, absl::Time>> got;
  Endpoint ep = MakeEndpoint(op, op);
  auto sub = t->Consume(ep, [&](std::unique_ptr<Delivery> d) {
    const int attempt = d->envelope().attempt;
    got.Add({attempt, absl::Now()});
    if (attempt == 1) {
      d->Retry(absl::ZeroDuration());
    } else if (attempt == 2) {
      d->Retry(absl::Milliseconds(400));
    } else {
      d->Ack();
    }
  });
  ASSERT_TRUE(sub.ok()) << sub.status();
  ASSERT_TRUE(Await([&](DoneCallback done) {
                t->Enqueue(MakeEnvelope(op, "x"), std::move(done));
              }).ok());
  bool all = got.WaitForCount(3);
  auto items = got.Items();
  for (const auto& [attempt, when] : items) ADD_FAILURE_IF_NOT_ALL(all, attempt);
  ASSERT_TRUE(all) << items.size() << " deliveries";
  EXPECT_EQ(items[0].first, 1);
  EXPECT_EQ(items[1].first, 2);
  EXPECT_EQ(items[2].first, 3);
  EXPECT_GE(items[2].second - items[1].second, absl::Milliseconds(350));
}

TEST_F(AmqpIntegrationTest, UnsettledDeliveryOfAClosedConsumerComesBackWithNextAttempt) {
  auto t = NewTransport();
  ASSERT_NE(t, nullptr);
  const std::string op = "it.v1.Jobs/Crash";
  Endpoint ep = MakeEndpoint(op, op);
  absl::Mutex mu;
  std::vector<std::unique_ptr<Delivery>> held;
  auto first = t->Consume(ep, [&](std::unique_ptr<Delivery> d) {
    absl::MutexLock l(&mu);
    held.push_back(std::move(d));
  });
  ASSERT_TRUE(first.ok()) << first.status();
  ASSERT_TRUE(Await([&](DoneCallback done) {
                t->Enqueue(MakeEnvelope(op, "x"), std::move(done));
              }).ok());
  {
    absl::MutexLock l(&mu);
    auto ready = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) { return !held.empty(); };
    ASSERT_TRUE(mu.AwaitWithTimeout(absl::Condition(&ready), kWait));
  }
  // The consumer goes away without settling (as a crash would).
  first->reset();
  {
    absl::MutexLock l(&mu);
    held.clear();  // settlements after the close are ignored
  }
  Box<int> attempts;
  auto second = t->Consume(ep, [&](std::unique_ptr<Delivery> d) {
    attempts.Add(d->envelope().attempt);
    d->Ack();
  });
  ASSERT_TRUE(second.ok()) << second.status();
  ASSERT_TRUE(attempts.WaitForCount(1));
  EXPECT_EQ(attempts.Items()[0], 2);
  EXPECT_FALSE(attempts.WaitForCount(2, absl::Milliseconds(300)));
}

TEST_F(AmqpIntegrationTest, DeadLetterCarriesTheReason) {
  auto t = NewTransport();
  ASSERT_NE(t, nullptr);
  const std::string op = "it.v1.Jobs/Poison";
  Endpoint ep = MakeEndpoint(op, op);
  auto sub = t->Consume(ep, [&](std::unique_ptr<Delivery> d) {
    d->DeadLetter(absl::InvalidArgumentError("bad order"));
  });
  ASSERT_TRUE(sub.ok()) << sub.status();
  Box<Envelope> dead;
  Endpoint dlq = MakeEndpoint(DeadLetterAddress(op), DeadLetterAddress(op));
  auto dsub = t->Consume(dlq, [&](std::unique_ptr<Delivery> d) {
    dead.Add(d->envelope());
    d->Ack();
  });
  ASSERT_TRUE(dsub.ok()) << dsub.status();
  Envelope cmd = MakeEnvelope(op, "poison");
  ASSERT_TRUE(Await([&](DoneCallback done) { t->Enqueue(cmd, std::move(done)); }).ok());
  ASSERT_TRUE(dead.WaitForCount(1));
  Envelope e = dead.Items()[0];
  EXPECT_EQ(e.id, cmd.id);
  EXPECT_EQ(e.extensions["deadletterreason"], "bad order");
  EXPECT_EQ(e.extensions["deadlettercode"], "INVALID_ARGUMENT");
}

TEST_F(AmqpIntegrationTest, GarbageFromRawSenderIsDeadLetteredWithReason) {
  auto t = NewTransport();
  ASSERT_NE(t, nullptr);
  const std::string op = "it.v1.Jobs/Garbage";
  Box<Envelope> got;
  Endpoint ep = MakeEndpoint(op, op);
  auto sub = t->Consume(ep, [&](std::unique_ptr<Delivery> d) {
    got.Add(d->envelope());
    d->Ack();
  });
  ASSERT_TRUE(sub.ok()) << sub.status();

  const std::string queue = prefix_ + "it.v1.Jobs.Garbage";
  {
    RawClient raw(testing::TestAmqpUrl(), "/queue/" + queue, /*durable=*/true);
    proton::message garbage;
    garbage.body(std::string("\x01\x02 not an envelope"));
    garbage.properties().put("cloudEvents_attempt", std::string("lots"));
    garbage.durable(true);
    ASSERT_TRUE(raw.Send(garbage));
  }
  RawClient reader(testing::TestAmqpUrl(), "/queue/" + prefix_ + "it.v1.Jobs.Garbage.dlq",
                   /*durable=*/true);
  auto dead = reader.Receive(1);
  ASSERT_EQ(dead.size(), 1u);
  const auto& props = dead[0].properties();
  ASSERT_TRUE(props.exists("cloudEvents_deadletterreason"));
  EXPECT_NE(proton::get<std::string>(props.get("cloudEvents_deadletterreason")).find("cloudEvents_id"),
            std::string::npos);
  EXPECT_EQ(proton::get<std::string>(props.get("cloudEvents_deadlettercode")), "INVALID_ARGUMENT");
  EXPECT_TRUE(got.Items().empty());
}

// A receiver with a small `max_message_bytes`; senders keep the default.
constexpr uint64_t kSmallLimit = 64 * 1024;

std::unique_ptr<Transport> SmallLimitTransport(const std::string& prefix) {
  v1::TransportConfig cfg = testing::TestConfig(prefix);
  cfg.mutable_amqp()->set_max_message_bytes(kSmallLimit);
  TransportEnv env;
  env.clock = &Clock::Real();
  env.source = "//amqp-small";
  auto t = MakeAmqpTransport("small", cfg, env);
  EXPECT_TRUE(t.ok()) << t.status();
  return t.ok() ? *std::move(t) : nullptr;
}

int64_t BadInput(Transport& t) { return dynamic_cast<AmqpTransport&>(t).stats().bad_input; }

// `content_mode` on both sides: the dead-letter copy is the raw message
// without its body (binary) or the envelope of the body without its payload
// (structured); either way it reads as the envelope with the reason.
void OversizedCommandIsDeadLettered(const std::string& prefix, const std::string& content_mode) {
  TransportEnv env;
  env.clock = &Clock::Real();
  env.source = "//amqp-test";
  auto sender = NewTestTransport(prefix, env, content_mode);
  ASSERT_TRUE(sender.ok()) << sender.status();
  v1::TransportConfig cfg = testing::TestConfig(prefix, content_mode);
  cfg.mutable_amqp()->set_max_message_bytes(kSmallLimit);
  auto small = MakeAmqpTransport("small", cfg, env);
  ASSERT_TRUE(small.ok()) << small.status();
  const std::string op = "it.v1.Jobs/Big";
  Box<std::string> got;
  auto sub = (*small)->Consume(MakeEndpoint(op, op), [&](std::unique_ptr<Delivery> d) {
    got.Add(d->envelope().data);
    d->Ack();
  });
  ASSERT_TRUE(sub.ok()) << sub.status();
  Envelope big = MakeEnvelope(op, std::string(kSmallLimit + 100, 'z'));
  ASSERT_TRUE(Await([&](DoneCallback done) { (*sender)->Enqueue(big, std::move(done)); }).ok());
  ASSERT_TRUE(Await([&](DoneCallback done) {
                (*sender)->Enqueue(MakeEnvelope(op, "next"), std::move(done));
              }).ok());
  ASSERT_TRUE(got.WaitForCount(1));
  EXPECT_EQ(got.Items(), std::vector<std::string>{"next"});

  RawClient reader(testing::TestAmqpUrl(), "/queue/" + prefix + "it.v1.Jobs.Big.dlq",
                   /*durable=*/true);
  auto dead = reader.Receive(1);
  ASSERT_EQ(dead.size(), 1u);
  EXPECT_EQ(ContentModeOf(dead[0]),
            content_mode == "binary" ? ContentMode::kBinary : ContentMode::kStructured);
  auto e = MessageToEnvelope(dead[0]);
  ASSERT_TRUE(e.ok()) << e.status();
  EXPECT_EQ(e->id, big.id);
  EXPECT_TRUE(e->data.empty());
  EXPECT_NE(e->extensions.at(std::string(attr::kDeadLetterReason))
                .find("`max_message_bytes` (65536)"),
            std::string::npos);
  EXPECT_EQ(e->extensions.at(std::string(attr::kDeadLetterCode)), "RESOURCE_EXHAUSTED");
  EXPECT_EQ(BadInput(**small), 1);
  // Settled: not redelivered to the consumer.
  EXPECT_FALSE(got.WaitForCount(2, absl::Milliseconds(300)));
}

TEST_F(AmqpIntegrationTest, OversizedCommandIsDeadLetteredWithTheReasonAndTheNextIsProcessed) {
  OversizedCommandIsDeadLettered(prefix_, "");
}

TEST_F(AmqpIntegrationTest, OversizedBinaryCommandIsDeadLetteredWithTheReason) {
  OversizedCommandIsDeadLettered(prefix_, "binary");
}

TEST_F(AmqpIntegrationTest, ContentModeDecidesWhatARawReceiverSees) {
  TransportEnv env;
  env.clock = &Clock::Real();
  env.source = "//amqp-test";
  for (const std::string mode : {"", "binary"}) {
    // A queue per mode: a reader's link may keep credit a moment after it closed.
    const std::string op = "it.v1.Jobs/Seen" + std::string(mode.empty() ? "Structured" : "Binary");
    const std::string queue = "/queue/" + prefix_ + "it.v1.Jobs." + op.substr(op.find('/') + 1);
    auto t = NewTestTransport(prefix_, env, mode);
    ASSERT_TRUE(t.ok()) << t.status();
    Envelope sent = MakeEnvelope(op, "payload-" + mode);
    ASSERT_TRUE(Await([&](DoneCallback done) { (*t)->Enqueue(sent, std::move(done)); }).ok());
    RawClient reader(testing::TestAmqpUrl(), queue, /*durable=*/true);
    auto got = reader.Receive(1);
    ASSERT_EQ(got.size(), 1u) << mode;
    if (mode.empty()) {
      // Structured: the envelope is the body; no application properties.
      EXPECT_EQ(got[0].content_type(), "application/cloudevents+protobuf");
      EXPECT_TRUE(got[0].properties().empty());
      Envelope body;
      ASSERT_TRUE(internal::ReadCloudEventWire(
                      std::string(proton::get<proton::binary>(got[0].body())), &body)
                      .ok());
      EXPECT_EQ(body.id, sent.id);
      EXPECT_EQ(body.data, sent.data);
    } else {
      // Binary: the data is the body, the attributes application properties.
      EXPECT_EQ(proton::get<std::string>(got[0].properties().get("cloudEvents_id")), sent.id);
      EXPECT_EQ(std::string(proton::get<proton::binary>(got[0].body())), sent.data);
    }
  }
}

TEST_F(AmqpIntegrationTest, OversizedRequestGetsResourceExhaustedBeforeTheHandler) {
  auto client = NewTransport();
  auto server = SmallLimitTransport(prefix_);
  ASSERT_NE(client, nullptr);
  ASSERT_NE(server, nullptr);
  const std::string op = "it.v1.Echo/Big";
  std::atomic<int> calls{0};
  auto sub = server->Serve(MakeEndpoint(op, op), [&](Envelope req, ReplyCallback reply) {
    ++calls;
    Envelope rep;
    rep.type = req.type;
    rep.data = "ok:" + req.data;
    std::move(reply)(rep);
  });
  ASSERT_TRUE(sub.ok()) << sub.status();
  for (const std::string& text : {std::string(2 * kSmallLimit, 'y'), std::string("small")}) {
    Envelope req = MakeEnvelope(op, text);
    req.deadline = absl::Now() + absl::Seconds(5);
    auto p = std::make_shared<std::promise<absl::StatusOr<Envelope>>>();
    auto f = p->get_future();
    client->Request(req, [p](absl::StatusOr<Envelope> r) { p->set_value(std::move(r)); });
    ASSERT_EQ(f.wait_for(std::chrono::seconds(6)), std::future_status::ready);
    auto r = f.get();
    ASSERT_TRUE(r.ok()) << r.status();
    if (text == "small") {
      EXPECT_TRUE(r->status.ok()) << r->status;
      EXPECT_EQ(r->data, "ok:small");
    } else {
      EXPECT_EQ(r->status.code(), absl::StatusCode::kResourceExhausted) << r->status;
      EXPECT_NE(r->status.message().find("max_message_bytes"), std::string::npos) << r->status;
    }
  }
  EXPECT_EQ(calls.load(), 1);
  EXPECT_EQ(BadInput(*server), 1);
}

// A server in the default (structured) mode answers a binary request from a
// plain client in binary mode: replies follow their requests.
TEST_F(AmqpIntegrationTest, AReplyTravelsInItsRequestsContentMode) {
  auto server = NewTransport();
  ASSERT_NE(server, nullptr);
  const std::string op = "it.v1.Echo/Mirror";
  auto sub = server->Serve(MakeEndpoint(op, op), [](Envelope req, ReplyCallback reply) {
    Envelope rep;
    rep.data = "ok:" + req.data;
    std::move(reply)(std::move(rep));
  });
  ASSERT_TRUE(sub.ok()) << sub.status();

  const std::string reply_queue = "/queue/" + prefix_ + "raw.replies";
  Envelope req = MakeEnvelope(op, "binary");
  req.reply_to = reply_queue;
  req.style = Style::kRequest;
  proton::message msg;
  ASSERT_TRUE(EnvelopeToMessage(req, /*durable=*/false, &msg, ContentMode::kBinary).ok());
  RawClient reader(testing::TestAmqpUrl(), reply_queue, /*durable=*/false);
  {
    // The server declared its auto-delete queue: the existing-queue address.
    RawClient raw(testing::TestAmqpUrl(), "/amq/queue/" + prefix_ + "req.it.v1.Echo.Mirror",
                  /*durable=*/false);
    ASSERT_TRUE(raw.Send(msg));
  }
  auto got = reader.Receive(1);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(ContentModeOf(got[0]), ContentMode::kBinary);
  EXPECT_TRUE(got[0].properties().exists("cloudEvents_id"));  // attributes as properties
  EXPECT_EQ(proton::get<std::string>(got[0].correlation_id()), req.id);
  auto rep = MessageToEnvelope(got[0]);
  ASSERT_TRUE(rep.ok()) << rep.status();
  EXPECT_EQ(rep->data, "ok:binary");
}

TEST_F(AmqpIntegrationTest, RequestReplyAndFailFastWithoutServer) {
  auto client = NewTransport();
  auto server = NewTransport();
  ASSERT_NE(client, nullptr);
  ASSERT_NE(server, nullptr);
  const std::string op = "it.v1.Echo/Say";

  // No server: Unavailable well before the deadline.
  {
    Envelope req = MakeEnvelope(op, "hello");
    req.deadline = absl::Now() + absl::Seconds(5);
    auto p = std::make_shared<std::promise<absl::StatusOr<Envelope>>>();
    auto f = p->get_future();
    const absl::Time start = absl::Now();
    client->Request(req, [p](absl::StatusOr<Envelope> r) { p->set_value(std::move(r)); });
    ASSERT_EQ(f.wait_for(std::chrono::seconds(6)), std::future_status::ready);
    auto r = f.get();
    EXPECT_EQ(r.status().code(), absl::StatusCode::kUnavailable) << r.status();
    EXPECT_LT(absl::Now() - start, absl::Seconds(2));
  }

  Endpoint ep = MakeEndpoint(op, op);
  auto sub = server->Serve(ep, [](Envelope req, ReplyCallback reply) {
    if (req.data == "fail") {
      std::move(reply)(absl::NotFoundError("no such thing"));
      return;
    }
    Envelope rep;
    rep.type = req.type;
    rep.data = "echo:" + req.data;
    std::move(reply)(rep);
  });
  ASSERT_TRUE(sub.ok()) << sub.status();
  for (const std::string text : {"hello", "fail"}) {
    Envelope req = MakeEnvelope(op, text);
    req.deadline = absl::Now() + absl::Seconds(5);
    auto p = std::make_shared<std::promise<absl::StatusOr<Envelope>>>();
    auto f = p->get_future();
    client->Request(req, [p](absl::StatusOr<Envelope> r) { p->set_value(std::move(r)); });
    ASSERT_EQ(f.wait_for(std::chrono::seconds(6)), std::future_status::ready);
    auto r = f.get();
    ASSERT_TRUE(r.ok()) << r.status();
    if (text == "hello") {
      EXPECT_EQ(r->data, "echo:hello");
      EXPECT_TRUE(r->status.ok());
    } else {
      EXPECT_EQ(r->status.code(), absl::StatusCode::kNotFound);
      EXPECT_EQ(r->status.message(), "no such thing");
    }
  }

  // A server that never answers: DeadlineExceeded at the deadline.
  const std::string slow = "it.v1.Echo/Slow";
  Endpoint slow_ep = MakeEndpoint(slow, slow);
  std::vector<ReplyCallback> parked;
  absl::Mutex parked_mu;
  auto slow_sub = server->Serve(slow_ep, [&](Envelope, ReplyCallback reply) {
    absl::MutexLock l(&parked_mu);
    parked.push_back(std::move(reply));
  });
  ASSERT_TRUE(slow_sub.ok()) << slow_sub.status();
  Envelope req = MakeEnvelope(slow, "zzz");
  req.deadline = absl::Now() + absl::Milliseconds(500);
  auto p = std::make_shared<std::promise<absl::StatusOr<Envelope>>>();
  auto f = p->get_future();
  client->Request(req, [p](absl::StatusOr<Envelope> r) { p->set_value(std::move(r)); });
  ASSERT_EQ(f.wait_for(std::chrono::seconds(5)), std::future_status::ready);
  EXPECT_EQ(f.get().status().code(), absl::StatusCode::kDeadlineExceeded);
  absl::MutexLock l(&parked_mu);
  for (auto& r : parked) std::move(r)(absl::CancelledError("test over"));
}

TEST_F(AmqpIntegrationTest, EventsReachEveryGroupOnce) {
  auto pub = NewTransport();
  auto sub_t = NewTransport();
  ASSERT_NE(pub, nullptr);
  ASSERT_NE(sub_t, nullptr);
  const std::string type = "it.v1.ThingHappened";
  Box<std::string> a, b;
  auto sa = sub_t->Subscribe(MakeEndpoint(type, "alpha"),
                             [&](std::unique_ptr<Delivery> d) {
                               a.Add(d->envelope().data);
                               d->Ack();
                             });
  ASSERT_TRUE(sa.ok()) << sa.status();
  auto sb = sub_t->Subscribe(MakeEndpoint(type, "beta"),
                             [&](std::unique_ptr<Delivery> d) {
                               b.Add(d->envelope().data);
                               d->Ack();
                             });
  ASSERT_TRUE(sb.ok()) << sb.status();
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(Await([&](DoneCallback done) {
                  pub->Publish(MakeEnvelope(type, absl::StrCat("e", i)), std::move(done));
                }).ok());
  }
  ASSERT_TRUE(a.WaitForCount(3));
  ASSERT_TRUE(b.WaitForCount(3));
  EXPECT_FALSE(a.WaitForCount(4, absl::Milliseconds(300)));
}

TEST_F(AmqpIntegrationTest, DurableCommandSurvivesBrokerRestart) {
  const std::string restart = testing::TestRestartCommand();
  if (restart.empty()) GTEST_SKIP() << "SWITCHBOARD_TEST_AMQP_RESTART is not set";
  auto t = NewTransport();
  ASSERT_NE(t, nullptr);
  const std::string op = "it.v1.Jobs/Durable";
  Envelope cmd = MakeEnvelope(op, "survivor");
  ASSERT_TRUE(Await([&](DoneCallback done) { t->Enqueue(cmd, std::move(done)); }).ok());

  ASSERT_EQ(std::system(restart.c_str()), 0) << restart;

  // The same transport reconnects by itself and consumes the command.
  Box<Envelope> got;
  Endpoint ep = MakeEndpoint(op, op);
  absl::StatusOr<std::unique_ptr<Subscription>> sub = absl::UnavailableError("not yet");
  const absl::Time until = absl::Now() + absl::Seconds(30);
  while (!sub.ok() && absl::Now() < until) {
    sub = t->Consume(ep, [&](std::unique_ptr<Delivery> d) {
      got.Add(d->envelope());
      d->Ack();
    });
    if (!sub.ok()) absl::SleepFor(absl::Milliseconds(200));
  }
  ASSERT_TRUE(sub.ok()) << sub.status();
  ASSERT_TRUE(got.WaitForCount(1, absl::Seconds(20)));
  EXPECT_EQ(got.Items()[0].id, cmd.id);
  EXPECT_EQ(got.Items()[0].data, "survivor");
}

// A request server and a client that both live across a broker restart.
// Their queues (auto-delete, non-durable) are gone after it; each transport
// connects again with new links, provisions the queues and reopens them.
// Meanwhile a third transport, closed while the broker is away, says why a
// send failed and closes without waiting out its reconnect delay.
TEST_F(AmqpIntegrationTest, RequestReplyRecoversAfterBrokerRestart) {
  const std::string restart = testing::TestRestartCommand();
  if (restart.empty()) GTEST_SKIP() << "SWITCHBOARD_TEST_AMQP_RESTART is not set";
  auto t = NewTransport();
  auto server = NewTransport();
  // Its attempts after the first one wait 5 s each.
  v1::TransportConfig slow = testing::TestConfig(prefix_);
  slow.mutable_amqp()->mutable_reconnect_initial()->set_seconds(5);
  slow.mutable_amqp()->mutable_reconnect_initial()->set_nanos(0);  // TestConfig's is 100ms
  slow.mutable_amqp()->mutable_reconnect_max()->set_seconds(5);
  TransportEnv env;
  env.clock = &Clock::Real();
  env.source = "//amqp-test";
  auto made = MakeAmqpTransport("doomed", slow, env);
  ASSERT_TRUE(made.ok()) << made.status();
  std::unique_ptr<Transport> doomed = *std::move(made);
  ASSERT_NE(t, nullptr);
  ASSERT_NE(server, nullptr);
  const std::string echo = "it.v1.Echo/AfterRestart";
  auto served = server->Serve(MakeEndpoint(echo, echo), [](Envelope req, ReplyCallback reply) {
    Envelope rep;
    rep.data = "echo:" + req.data;
    std::move(reply)(rep);
  });
  ASSERT_TRUE(served.ok()) << served.status();

  std::atomic<int> restart_rc{-1};
  std::thread restarter([&] { restart_rc = std::system(restart.c_str()); });
  absl::Status offline = absl::OkStatus();
  const absl::Time offline_until = absl::Now() + absl::Seconds(30);
  while (absl::Now() < offline_until) {
    offline = Await([&](DoneCallback done) {
      doomed->Enqueue(MakeEnvelope("it.v1.Jobs/WhileAway", "x"), std::move(done));
    });
    if (absl::StrContains(offline.message(), "not connected to the broker")) break;
    absl::SleepFor(absl::Milliseconds(100));
  }
  EXPECT_EQ(offline.code(), absl::StatusCode::kUnavailable) << offline;
  EXPECT_TRUE(absl::StrContains(offline.message(), "not connected to the broker (reconnecting"))
      << offline;
  // Its next attempt is seconds away; closing does not wait for it.
  absl::SleepFor(absl::Milliseconds(500));
  const absl::Time closing = absl::Now();
  doomed.reset();
  EXPECT_LT(absl::Now() - closing, absl::Seconds(1));
  restarter.join();
  ASSERT_EQ(restart_rc.load(), 0) << restart;

  absl::StatusOr<Envelope> reply = absl::UnavailableError("not yet");
  const absl::Time reply_until = absl::Now() + absl::Seconds(30);
  while (!reply.ok() && absl::Now() < reply_until) {
    Envelope req = MakeEnvelope(echo, "again");
    req.deadline = absl::Now() + absl::Seconds(2);
    auto p = std::make_shared<std::promise<absl::StatusOr<Envelope>>>();
    auto f = p->get_future();
    t->Request(req, [p](absl::StatusOr<Envelope> r) { p->set_value(std::move(r)); });
    if (f.wait_for(std::chrono::seconds(4)) != std::future_status::ready) break;
    reply = f.get();
    if (!reply.ok()) absl::SleepFor(absl::Milliseconds(300));
  }
  ASSERT_TRUE(reply.ok()) << reply.status();
  EXPECT_EQ(reply->data, "echo:again");
}

}  // namespace
}  // namespace switchboard::amqp
