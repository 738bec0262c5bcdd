// The NATS transport against a real nats-server (scripts/with-servers.sh):
// broker dedup, fast failure without responders, bad input from a foreign
// client, secrets in error text, and the basic paths of each style in both
// modes. Every name carries a unique run id.
#include <nats/nats.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <set>
#include <deque>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "io/cloudevents/v1/cloudevents.pb.h"
#include "nats_names.h"
#include "nats_test_env.h"
#include "switchboard/clock.h"
#include "switchboard/envelope.h"
#include "switchboard/nats/nats_transport.h"
#include "switchboard/status.h"

namespace switchboard::nats {
namespace {

using ::switchboard::nats::testing::NewTestTransport;
using ::switchboard::nats::testing::TestConfig;
using ::switchboard::nats::testing::TestNatsUrl;
using ::switchboard::nats::testing::UniqueId;
using ::testing::HasSubstr;
using ::testing::Not;

constexpr absl::Duration kWait = absl::Seconds(10);

// A bounded hand-off from transport threads to the test thread.
template <typename T>
class Inbox {
 public:
  // Transport threads push while the test may already be done with the
  // inbox: each side holds the state, so the last Unlock never touches a
  // destroyed mutex.
  void Push(T v) {
    std::shared_ptr<State> s = s_;
    absl::MutexLock lock(&s->mu);
    s->items.push_back(std::move(v));
  }
  // Empty pointer on timeout.
  std::unique_ptr<T> Pop(absl::Duration timeout = kWait) {
    std::shared_ptr<State> s = s_;
    absl::MutexLock lock(&s->mu);
    auto ready = [&s]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(s->mu) { return !s->items.empty(); };
    if (!s->mu.AwaitWithTimeout(absl::Condition(&ready), timeout)) return nullptr;
    auto out = std::make_unique<T>(std::move(s->items.front()));
    s->items.pop_front();
    return out;
  }
  size_t size() {
    absl::MutexLock lock(&s_->mu);
    return s_->items.size();
  }

 private:
  struct State {
    absl::Mutex mu;
    std::deque<T> items ABSL_GUARDED_BY(mu);
  };
  std::shared_ptr<State> s_ = std::make_shared<State>();
};

// Waits for a DoneCallback.
class Done {
 public:
  DoneCallback Callback() {
    return [this](absl::Status s) {
      status_ = s;
      n_.Notify();
    };
  }
  absl::Status Wait() {
    if (!n_.WaitForNotificationWithTimeout(kWait)) return absl::DeadlineExceededError("no callback");
    return status_;
  }

 private:
  absl::Notification n_;
  absl::Status status_;
};

Envelope MakeEnvelope(const std::string& type, std::string data = "payload") {
  Envelope e;
  e.id = NewMessageId();
  e.source = "//nats-integration";
  e.type = type;
  e.time = absl::Now();
  e.data = std::move(data);
  return e;
}

Endpoint Ep(std::string operation, std::string group = "", int max_in_flight = 256) {
  Endpoint e;
  e.operation = std::move(operation);
  e.group = std::move(group);
  e.max_in_flight = max_in_flight;
  return e;
}

NatsTransportStats Stats(Transport& t) { return dynamic_cast<NatsTransport&>(t).stats(); }

// The dead-letter consumer can see a message before the publisher's
// acknowledgement (which bumps the counter) is processed: poll, bounded.
int64_t DeadLettered(Transport& t, int64_t want) {
  absl::Time until = absl::Now() + absl::Seconds(5);
  while (Stats(t).dead_lettered < want && absl::Now() < until) absl::SleepFor(absl::Milliseconds(5));
  return Stats(t).dead_lettered;
}

class NatsTest : public ::testing::TestWithParam<bool> {
 protected:
  void SetUp() override {
    SB_REQUIRE_NATS();
    prefix_ = absl::StrCat("sbit.", UniqueId());
    auto t = NewTestTransport(jetstream(), prefix_);
    ASSERT_TRUE(t.ok()) << t.status();
    transport_ = *std::move(t);
  }
  bool jetstream() const { return GetParam(); }
  std::string Op(std::string_view what) { return absl::StrCat("it.v1.", std::string(what), "_", UniqueId()); }

  // A consumer of an operation that counts what reaches its handler, and one
  // of its dead-letter address that keeps what arrives there.
  struct Watched {
    std::atomic<int> calls{0};
    Inbox<std::unique_ptr<Delivery>> dead;
    std::unique_ptr<Subscription> consumer;
    std::unique_ptr<Subscription> dlq;
  };
  std::unique_ptr<Watched> WatchWithDeadLetters(const std::string& op) {
    auto w = std::make_unique<Watched>();
    auto consumer = transport_->Consume(Ep(op), [w = w.get()](std::unique_ptr<Delivery> d) {
      ++w->calls;
      d->Ack();
    });
    EXPECT_TRUE(consumer.ok()) << consumer.status();
    auto dlq = transport_->Consume(Ep(DeadLetterAddress(op)), [w = w.get()](
                                                                  std::unique_ptr<Delivery> d) {
      w->dead.Push(std::move(d));
    });
    EXPECT_TRUE(dlq.ok()) << dlq.status();
    if (!consumer.ok() || !dlq.ok()) return nullptr;
    w->consumer = *std::move(consumer);
    w->dlq = *std::move(dlq);
    return w;
  }

  std::string prefix_;
  std::unique_ptr<Transport> transport_;
};

TEST_P(NatsTest, RequestReplyCarriesPayloadAndHandlerStatus) {
  std::string op = Op("Echo/Call");
  auto sub = transport_->Serve(Ep(op, op), [](Envelope req, ReplyCallback reply) {
    if (req.data == "fail") {
      std::move(reply)(absl::NotFoundError("no such thing"));
      return;
    }
    Envelope out = req;
    out.id = NewMessageId();
    out.data = "echo:" + req.data;
    std::move(reply)(out);
  });
  ASSERT_TRUE(sub.ok()) << sub.status();

  for (const char* body : {"hello", "fail"}) {
    Envelope req = MakeEnvelope(op, body);
    req.deadline = absl::Now() + absl::Seconds(5);
    Inbox<absl::StatusOr<Envelope>> replies;
    transport_->Request(req, [&](absl::StatusOr<Envelope> r) { replies.Push(std::move(r)); });
    auto r = replies.Pop();
    ASSERT_NE(r, nullptr);
    ASSERT_TRUE(r->ok()) << r->status();
    if (std::string(body) == "hello") {
      EXPECT_EQ((*r)->data, "echo:hello");
      EXPECT_TRUE((*r)->status.ok());
    } else {
      EXPECT_EQ((*r)->status.code(), absl::StatusCode::kNotFound);
      EXPECT_EQ((*r)->status.message(), "no such thing");
    }
  }
}

TEST_P(NatsTest, NoRespondersFailsFastWithUnavailable) {
  std::string op = Op("Nobody/Home");
  Envelope req = MakeEnvelope(op);
  req.deadline = absl::Now() + absl::Seconds(5);
  Inbox<absl::StatusOr<Envelope>> replies;
  absl::Time start = absl::Now();
  transport_->Request(req, [&](absl::StatusOr<Envelope> r) { replies.Push(std::move(r)); });
  auto r = replies.Pop();
  absl::Duration took = absl::Now() - start;
  ASSERT_NE(r, nullptr);
  EXPECT_EQ(r->status().code(), absl::StatusCode::kUnavailable) << r->status();
  EXPECT_THAT(std::string(r->status().message()), HasSubstr(op));
  EXPECT_LT(took, absl::Milliseconds(100));
  std::printf("no-responders: Unavailable after %.3f ms\n", absl::ToDoubleMilliseconds(took));
}

TEST_P(NatsTest, SilentServerGivesDeadlineExceededAtTheDeadline) {
  std::string op = Op("Slow/Call");
  std::vector<ReplyCallback> parked;
  absl::Mutex mu;
  auto sub = transport_->Serve(Ep(op), [&](Envelope, ReplyCallback reply) {
    absl::MutexLock lock(&mu);
    parked.push_back(std::move(reply));
  });
  ASSERT_TRUE(sub.ok()) << sub.status();
  Envelope req = MakeEnvelope(op);
  req.deadline = absl::Now() + absl::Milliseconds(300);
  Inbox<absl::StatusOr<Envelope>> replies;
  absl::Time start = absl::Now();
  transport_->Request(req, [&](absl::StatusOr<Envelope> r) { replies.Push(std::move(r)); });
  auto r = replies.Pop();
  ASSERT_NE(r, nullptr);
  EXPECT_EQ(r->status().code(), absl::StatusCode::kDeadlineExceeded) << r->status();
  EXPECT_GE(absl::Now() - start, absl::Milliseconds(250));
  absl::MutexLock lock(&mu);
  for (auto& p : parked) std::move(p)(absl::CancelledError("late"));
}

TEST_P(NatsTest, RequestDeadlineRunsOnTheInjectedClock) {
  FakeClock clock;
  auto t = NewTestTransport(jetstream(), prefix_, &clock);
  ASSERT_TRUE(t.ok()) << t.status();
  std::string op = Op("Parked/Call");
  std::vector<ReplyCallback> parked;
  absl::Mutex mu;
  auto sub = (*t)->Serve(Ep(op), [&](Envelope, ReplyCallback reply) {
    absl::MutexLock lock(&mu);
    parked.push_back(std::move(reply));
  });
  ASSERT_TRUE(sub.ok()) << sub.status();
  Envelope req = MakeEnvelope(op);
  req.deadline = clock.Now() + absl::Hours(1);
  Inbox<absl::StatusOr<Envelope>> replies;
  (*t)->Request(req, [&](absl::StatusOr<Envelope> r) { replies.Push(std::move(r)); });
  {
    absl::MutexLock lock(&mu);
    auto arrived = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) { return !parked.empty(); };
    ASSERT_TRUE(mu.AwaitWithTimeout(absl::Condition(&arrived), kWait));
  }
  EXPECT_EQ(replies.size(), 0u);
  clock.Advance(absl::Hours(1));  // fires the deadline timer on this thread
  auto r = replies.Pop(absl::ZeroDuration());
  ASSERT_NE(r, nullptr);
  EXPECT_EQ(r->status().code(), absl::StatusCode::kDeadlineExceeded) << r->status();
  absl::MutexLock lock(&mu);
  for (auto& p : parked) std::move(p)(absl::CancelledError("late"));  // a late reply is dropped
}

TEST_P(NatsTest, CommandRetryRedeliversWithNextAttemptThenDeadLetters) {
  std::string op = Op("Work/Do");
  Inbox<std::unique_ptr<Delivery>> work, dead;
  auto consumer = transport_->Consume(Ep(op, op),
                                      [&](std::unique_ptr<Delivery> d) { work.Push(std::move(d)); });
  ASSERT_TRUE(consumer.ok()) << consumer.status();
  auto dlq = transport_->Consume(Ep(DeadLetterAddress(op), DeadLetterAddress(op)),
                                 [&](std::unique_ptr<Delivery> d) { dead.Push(std::move(d)); });
  ASSERT_TRUE(dlq.ok()) << dlq.status();

  Done accepted;
  Envelope cmd = MakeEnvelope(op, "job");
  cmd.idempotency_key = "k-" + UniqueId();
  transport_->Enqueue(cmd, accepted.Callback());
  ASSERT_TRUE(accepted.Wait().ok());

  auto first = work.Pop();
  ASSERT_NE(first, nullptr);
  EXPECT_EQ((*first)->envelope().attempt, 1);
  EXPECT_EQ((*first)->envelope().id, cmd.id);
  EXPECT_EQ((*first)->envelope().data, "job");
  (*first)->Retry(absl::Milliseconds(50));

  auto second = work.Pop();
  ASSERT_NE(second, nullptr);
  EXPECT_EQ((*second)->envelope().attempt, 2);
  (*second)->DeadLetter(absl::FailedPreconditionError("cannot do it"));

  auto d = dead.Pop();
  ASSERT_NE(d, nullptr);
  EXPECT_EQ((*d)->envelope().id, cmd.id);
  EXPECT_EQ((*d)->envelope().data, "job");
  EXPECT_EQ((*d)->envelope().extensions.at(std::string(attr::kDeadLetterReason)), "cannot do it");
  EXPECT_EQ((*d)->envelope().extensions.at(std::string(attr::kDeadLetterCode)),
            "FAILED_PRECONDITION");
  (*d)->Ack();
  EXPECT_EQ(work.Pop(absl::Milliseconds(300)), nullptr) << "dead-lettered command came back";
  EXPECT_EQ(DeadLettered(*transport_, 1), 1);
}

TEST_P(NatsTest, EventsFanOutToEachGroupOncePerGroup) {
  std::string type = Op("Thing.Happened");
  Inbox<std::string> got;
  std::vector<std::unique_ptr<Subscription>> subs;
  for (const char* group : {"payment", "payment", "analytics"}) {
    auto s = transport_->Subscribe(Ep(type, group),
                                   [&got, group](std::unique_ptr<Delivery> d) {
                                     got.Push(absl::StrCat(group, ":", d->envelope().data));
                                     d->Ack();
                                   });
    ASSERT_TRUE(s.ok()) << s.status();
    subs.push_back(*std::move(s));
  }
  Done published;
  transport_->Publish(MakeEnvelope(type, "e1"), published.Callback());
  ASSERT_TRUE(published.Wait().ok());
  std::multiset<std::string> seen;
  for (int i = 0; i < 2; ++i) {
    auto v = got.Pop();
    ASSERT_NE(v, nullptr);
    seen.insert(*v);
  }
  EXPECT_EQ(got.Pop(absl::Milliseconds(300)), nullptr);
  EXPECT_EQ(seen, (std::multiset<std::string>{"analytics:e1", "payment:e1"}));
}

TEST_P(NatsTest, ReplyInboxReceivesSentReplies) {
  Inbox<Envelope> replies;
  auto inbox = transport_->OpenInbox([&](Envelope e) { replies.Push(std::move(e)); });
  ASSERT_TRUE(inbox.ok()) << inbox.status();
  Envelope reply = MakeEnvelope("it.v1.Reply", "r1");
  reply.correlation_id = "c-1";
  Done sent;
  transport_->SendReply((*inbox)->address(), reply, sent.Callback());
  ASSERT_TRUE(sent.Wait().ok());
  auto r = replies.Pop();
  ASSERT_NE(r, nullptr);
  EXPECT_EQ(r->correlation_id, "c-1");
  EXPECT_EQ(r->data, "r1");
}

TEST_P(NatsTest, UndecodableRequestGetsInvalidArgumentReply) {
  std::string op = Op("Strict/Call");
  std::atomic<int> calls{0};
  auto sub = transport_->Serve(Ep(op), [&](Envelope, ReplyCallback reply) {
    ++calls;
    std::move(reply)(absl::InternalError("should not run"));
  });
  ASSERT_TRUE(sub.ok()) << sub.status();

  natsConnection* nc = nullptr;
  ASSERT_EQ(natsConnection_ConnectTo(&nc, TestNatsUrl().c_str()), NATS_OK);
  natsMsg* req = nullptr;
  std::string subject = OperationSubject(prefix_, Kind::kRequest, op);
  ASSERT_EQ(natsMsg_Create(&req, subject.c_str(), nullptr, "x", 1), NATS_OK);
  natsMsgHeader_Set(req, "ce-type", op.c_str());  // no ce-id, no ce-specversion
  natsMsg* reply = nullptr;
  ASSERT_EQ(natsConnection_RequestMsg(&reply, nc, req, 5000), NATS_OK);
  const char* code = nullptr;
  ASSERT_EQ(natsMsgHeader_Get(reply, "ce-statuscode", &code), NATS_OK);
  EXPECT_STREQ(code, "3");
  const char* message = nullptr;
  ASSERT_EQ(natsMsgHeader_Get(reply, "ce-statusmessage", &message), NATS_OK);
  EXPECT_THAT(std::string(message), HasSubstr("ce-id"));
  natsMsg_Destroy(reply);
  natsMsg_Destroy(req);
  natsConnection_Destroy(nc);
  EXPECT_EQ(calls.load(), 0);
  EXPECT_EQ(Stats(*transport_).bad_input, 1);
}

TEST_P(NatsTest, BadHeadersFromAForeignPublisherAreDeadLetteredWithTheReason) {
  std::string op = Op("Strict/Work");
  std::unique_ptr<Watched> watched = WatchWithDeadLetters(op);
  ASSERT_NE(watched, nullptr);

  natsConnection* nc = nullptr;
  ASSERT_EQ(natsConnection_ConnectTo(&nc, TestNatsUrl().c_str()), NATS_OK);
  natsMsg* msg = nullptr;
  std::string subject = OperationSubject(prefix_, Kind::kCommand, op);
  ASSERT_EQ(natsMsg_Create(&msg, subject.c_str(), nullptr, "garbage", 7), NATS_OK);
  natsMsgHeader_Set(msg, "ce-id", "foreign-1");
  natsMsgHeader_Set(msg, "ce-type", op.c_str());
  natsMsgHeader_Set(msg, "ce-specversion", "1.0");
  natsMsgHeader_Set(msg, "ce-attempt", "many");
  if (jetstream()) {
    jsCtx* js = nullptr;
    ASSERT_EQ(natsConnection_JetStream(&js, nc, nullptr), NATS_OK);
    jsPubAck* ack = nullptr;
    ASSERT_EQ(js_PublishMsg(&ack, js, msg, nullptr, nullptr), NATS_OK);
    jsPubAck_Destroy(ack);
    jsCtx_Destroy(js);
  } else {
    ASSERT_EQ(natsConnection_PublishMsg(nc, msg), NATS_OK);
    ASSERT_EQ(natsConnection_FlushTimeout(nc, 2000), NATS_OK);
  }
  natsMsg_Destroy(msg);
  natsConnection_Destroy(nc);

  auto d = watched->dead.Pop();
  ASSERT_NE(d, nullptr);
  const Envelope& e = (*d)->envelope();
  EXPECT_EQ(e.id, "foreign-1");
  EXPECT_EQ(e.data, "garbage");
  EXPECT_THAT(e.extensions.at(std::string(attr::kDeadLetterReason)), HasSubstr("ce-attempt"));
  EXPECT_EQ(e.extensions.at(std::string(attr::kDeadLetterCode)), "INVALID_ARGUMENT");
  (*d)->Ack();
  EXPECT_EQ(watched->calls.load(), 0);
  EXPECT_EQ(DeadLettered(*transport_, 1), 1);
  EXPECT_EQ(Stats(*transport_).bad_input, 1);
}

// The header a plain client reads, or "" without it.
std::string HeaderOf(natsMsg* msg, const char* key) {
  const char* value = nullptr;
  return natsMsgHeader_Get(msg, key, &value) == NATS_OK && value != nullptr ? value : "";
}

TEST_P(NatsTest, APlainClientCallsInTheCloudEventsProtobufFormat) {
  std::string op = Op("Plain/Call");
  auto sub = transport_->Serve(Ep(op), [](Envelope req, ReplyCallback reply) {
    Envelope out;
    out.data = req.data == "ping" && req.id == "plain-1" && req.extensions["tenant"] == "acme"
                   ? "pong"
                   : "unexpected request";
    out.data_content_type = "text/plain";
    std::move(reply)(std::move(out));
  });
  ASSERT_TRUE(sub.ok()) << sub.status();

  io::cloudevents::v1::CloudEvent ce;
  ce.set_id("plain-1");
  ce.set_source("//plain-client");
  ce.set_spec_version("1.0");
  ce.set_type(op);
  (*ce.mutable_attributes())["datacontenttype"].set_ce_string("text/plain");
  (*ce.mutable_attributes())["tenant"].set_ce_string("acme");
  ce.set_text_data("ping");
  const std::string body = ce.SerializeAsString();
  natsConnection* nc = nullptr;
  ASSERT_EQ(natsConnection_ConnectTo(&nc, TestNatsUrl().c_str()), NATS_OK);
  natsMsg* req = nullptr;
  std::string subject = OperationSubject(prefix_, Kind::kRequest, op);
  ASSERT_EQ(natsMsg_Create(&req, subject.c_str(), nullptr, body.data(),
                           static_cast<int>(body.size())),
            NATS_OK);
  natsMsgHeader_Set(req, "Content-Type", "application/cloudevents+protobuf");
  natsMsg* reply = nullptr;
  ASSERT_EQ(natsConnection_RequestMsg(&reply, nc, req, 5000), NATS_OK);
  // The reply comes back in the request's format, every attribute in it.
  EXPECT_EQ(HeaderOf(reply, "Content-Type"), "application/cloudevents+protobuf");
  EXPECT_EQ(HeaderOf(reply, "ce-id"), "");
  io::cloudevents::v1::CloudEvent got;
  ASSERT_TRUE(got.ParseFromArray(natsMsg_GetData(reply), natsMsg_GetDataLength(reply)));
  EXPECT_EQ(got.text_data(), "pong");
  EXPECT_EQ(got.attributes().at("correlationid").ce_string(), "plain-1");
  EXPECT_EQ(got.attributes().at("datacontenttype").ce_string(), "text/plain");
  EXPECT_FALSE(got.id().empty());
  natsMsg_Destroy(reply);
  natsMsg_Destroy(req);
  natsConnection_Destroy(nc);
  EXPECT_EQ(Stats(*transport_).bad_input, 0);
}

TEST_P(NatsTest, ContentModeDecidesWhatAPlainSubscriberSees) {
  std::string op = Op("Seen/Happened");
  natsConnection* nc = nullptr;
  ASSERT_EQ(natsConnection_ConnectTo(&nc, TestNatsUrl().c_str()), NATS_OK);
  natsSubscription* sub = nullptr;
  std::string subject = OperationSubject(prefix_, Kind::kEvent, op);
  ASSERT_EQ(natsConnection_SubscribeSync(&sub, nc, subject.c_str()), NATS_OK);
  ASSERT_EQ(natsConnection_FlushTimeout(nc, 2000), NATS_OK);
  auto binary = NewTestTransport(jetstream(), prefix_, nullptr, "binary");
  ASSERT_TRUE(binary.ok()) << binary.status();

  // One at a time: two connections' messages may arrive in either order.
  Envelope structured_event = MakeEnvelope(op, "first");
  Done sent;
  transport_->Publish(structured_event, sent.Callback());
  ASSERT_TRUE(sent.Wait().ok());
  // Structured (the default): one header, the envelope in the body.
  natsMsg* msg = nullptr;
  ASSERT_EQ(natsSubscription_NextMsg(&msg, sub, 5000), NATS_OK);
  EXPECT_EQ(HeaderOf(msg, "Content-Type"), "application/cloudevents+protobuf");
  EXPECT_EQ(HeaderOf(msg, "ce-id"), "");
  io::cloudevents::v1::CloudEvent ce;
  ASSERT_TRUE(ce.ParseFromArray(natsMsg_GetData(msg), natsMsg_GetDataLength(msg)));
  EXPECT_EQ(ce.id(), structured_event.id);
  EXPECT_EQ(ce.binary_data(), "first");
  natsMsg_Destroy(msg);

  Envelope binary_event = MakeEnvelope(op, "second");
  Done sent_binary;
  (*binary)->Publish(binary_event, sent_binary.Callback());
  ASSERT_TRUE(sent_binary.Wait().ok());
  // Binary: the data as the body, the attributes as headers.
  ASSERT_EQ(natsSubscription_NextMsg(&msg, sub, 5000), NATS_OK);
  EXPECT_EQ(HeaderOf(msg, "Content-Type"), "");
  EXPECT_EQ(HeaderOf(msg, "ce-id"), binary_event.id);
  EXPECT_EQ(std::string(natsMsg_GetData(msg), natsMsg_GetDataLength(msg)), "second");
  natsMsg_Destroy(msg);
  natsSubscription_Destroy(sub);
  natsConnection_Destroy(nc);
}

TEST_P(NatsTest, UnreadableStructuredMessagesAreDeadLetteredWithTheReason) {
  std::string op = Op("Strict/Structured");
  std::unique_ptr<Watched> watched = WatchWithDeadLetters(op);
  ASSERT_NE(watched, nullptr);

  natsConnection* nc = nullptr;
  ASSERT_EQ(natsConnection_ConnectTo(&nc, TestNatsUrl().c_str()), NATS_OK);
  jsCtx* js = nullptr;
  if (jetstream()) {
    ASSERT_EQ(natsConnection_JetStream(&js, nc, nullptr), NATS_OK);
  }
  std::string subject = OperationSubject(prefix_, Kind::kCommand, op);
  auto send = [&](const char* content_type, std::string_view body) {
    natsMsg* msg = nullptr;
    ASSERT_EQ(natsMsg_Create(&msg, subject.c_str(), nullptr, body.data(),
                             static_cast<int>(body.size())),
              NATS_OK);
    natsMsgHeader_Set(msg, "Content-Type", content_type);
    if (js != nullptr) {
      jsPubAck* ack = nullptr;
      ASSERT_EQ(js_PublishMsg(&ack, js, msg, nullptr, nullptr), NATS_OK);
      jsPubAck_Destroy(ack);
    } else {
      ASSERT_EQ(natsConnection_PublishMsg(nc, msg), NATS_OK);
    }
    natsMsg_Destroy(msg);
  };
  send("application/cloudevents+protobuf", "\x0A\x09short");  // id: a length beyond the end
  send("application/cloudevents+json", R"({"specversion": "1.0"})");
  ASSERT_EQ(natsConnection_FlushTimeout(nc, 2000), NATS_OK);
  if (js != nullptr) jsCtx_Destroy(js);
  natsConnection_Destroy(nc);

  std::vector<std::string> reasons;
  for (int i = 0; i < 2; ++i) {
    auto d = watched->dead.Pop();
    ASSERT_NE(d, nullptr);
    const Envelope& e = (*d)->envelope();
    // Nothing is lost: the body goes along under its own media type.
    EXPECT_THAT(e.data, ::testing::AnyOf("\x0A\x09short", R"({"specversion": "1.0"})"));
    EXPECT_THAT(e.data_content_type, HasSubstr("application/cloudevents+"));
    EXPECT_EQ(e.extensions.at(std::string(attr::kDeadLetterCode)), "INVALID_ARGUMENT");
    reasons.push_back(e.extensions.at(std::string(attr::kDeadLetterReason)));
    (*d)->Ack();
  }
  EXPECT_THAT(reasons, ::testing::UnorderedElementsAre(
                           HasSubstr("not a protobuf CloudEvent: field `id` does not read"),
                           HasSubstr("format application/cloudevents+json are not supported")));
  EXPECT_EQ(watched->calls.load(), 0);
  EXPECT_EQ(DeadLettered(*transport_, 2), 2);
  EXPECT_EQ(Stats(*transport_).bad_input, 2);
}

TEST_P(NatsTest, SubscriptionTeardownIsPrompt) {
  std::string op = Op("Idle/Work");
  auto consumer = transport_->Consume(Ep(op), [](std::unique_ptr<Delivery> d) { d->Ack(); });
  ASSERT_TRUE(consumer.ok()) << consumer.status();
  absl::SleepFor(absl::Milliseconds(50));  // let the fetch loop block in a pull
  absl::Time start = absl::Now();
  consumer->reset();
  absl::Duration took = absl::Now() - start;
  EXPECT_LT(took, absl::Milliseconds(500));
  std::printf("consumer teardown: %.3f ms\n", absl::ToDoubleMilliseconds(took));
}

TEST_P(NatsTest, UnsettledDeliveryIsRedelivered) {
  std::string op = Op("Drop/Work");
  Inbox<std::unique_ptr<Delivery>> work;
  auto consumer = transport_->Consume(Ep(op),
                                      [&](std::unique_ptr<Delivery> d) { work.Push(std::move(d)); });
  ASSERT_TRUE(consumer.ok()) << consumer.status();
  Done accepted;
  transport_->Enqueue(MakeEnvelope(op, "x"), accepted.Callback());
  ASSERT_TRUE(accepted.Wait().ok());
  auto first = work.Pop();
  ASSERT_NE(first, nullptr);
  first->reset();  // destroyed unsettled = Retry(0)
  auto second = work.Pop();
  ASSERT_NE(second, nullptr);
  EXPECT_EQ((*second)->envelope().attempt, 2);
  (*second)->Ack();
}

// A receiver with a small `max_message_bytes`; the senders (the fixture's
// transport and a raw client) keep the default 8 MiB.
constexpr uint64_t kSmallLimit = 64 * 1024;

std::unique_ptr<Transport> SmallLimitTransport(bool jetstream, const std::string& prefix,
                                               int pending_messages = 0) {
  v1::TransportConfig config = TestConfig(jetstream, prefix);
  config.mutable_nats()->set_max_message_bytes(kSmallLimit);
  config.mutable_nats()->set_pending_messages_limit(pending_messages);
  TransportEnv env;
  env.clock = &Clock::Real();
  env.source = absl::StrCat("//nats-small/", UniqueId());
  auto t = MakeNatsTransport("small", config, env);
  EXPECT_TRUE(t.ok()) << t.status();
  return t.ok() ? *std::move(t) : nullptr;
}

TEST_P(NatsTest, OversizedRequestGetsResourceExhaustedBeforeTheHandler) {
  std::string op = Op("Big/Call");
  auto small = SmallLimitTransport(jetstream(), prefix_);
  ASSERT_NE(small, nullptr);
  std::atomic<int> calls{0};
  auto sub = small->Serve(Ep(op), [&](Envelope req, ReplyCallback reply) {
    ++calls;
    Envelope out = req;
    out.id = NewMessageId();
    out.data = "ok:" + req.data;
    std::move(reply)(out);
  });
  ASSERT_TRUE(sub.ok()) << sub.status();

  // A raw client: a valid envelope whose payload alone is over the limit.
  natsConnection* nc = nullptr;
  ASSERT_EQ(natsConnection_ConnectTo(&nc, TestNatsUrl().c_str()), NATS_OK);
  std::string subject = OperationSubject(prefix_, Kind::kRequest, op);
  std::string big(kSmallLimit + 1, 'x');
  natsMsg* req = nullptr;
  ASSERT_EQ(natsMsg_Create(&req, subject.c_str(), nullptr, big.data(), static_cast<int>(big.size())),
            NATS_OK);
  natsMsgHeader_Set(req, "ce-id", "big-1");
  natsMsgHeader_Set(req, "ce-source", "//raw");
  natsMsgHeader_Set(req, "ce-type", op.c_str());
  natsMsgHeader_Set(req, "ce-specversion", "1.0");
  natsMsg* reply = nullptr;
  ASSERT_EQ(natsConnection_RequestMsg(&reply, nc, req, 5000), NATS_OK);
  const char* code = nullptr;
  ASSERT_EQ(natsMsgHeader_Get(reply, "ce-statuscode", &code), NATS_OK);
  EXPECT_STREQ(code, "8");  // RESOURCE_EXHAUSTED
  const char* message = nullptr;
  ASSERT_EQ(natsMsgHeader_Get(reply, "ce-statusmessage", &message), NATS_OK);
  EXPECT_THAT(std::string(message), HasSubstr("max_message_bytes"));
  natsMsg_Destroy(reply);
  natsMsg_Destroy(req);

  // The header block counts too: a payload under the limit with a long
  // header over it.
  std::string under(kSmallLimit - 64, 'x');
  std::string long_subject(256, 's');
  ASSERT_EQ(natsMsg_Create(&req, subject.c_str(), nullptr, under.data(),
                           static_cast<int>(under.size())),
            NATS_OK);
  natsMsgHeader_Set(req, "ce-id", "big-2");
  natsMsgHeader_Set(req, "ce-source", "//raw");
  natsMsgHeader_Set(req, "ce-type", op.c_str());
  natsMsgHeader_Set(req, "ce-specversion", "1.0");
  natsMsgHeader_Set(req, "ce-subject", long_subject.c_str());
  ASSERT_EQ(natsConnection_RequestMsg(&reply, nc, req, 5000), NATS_OK);
  code = nullptr;
  ASSERT_EQ(natsMsgHeader_Get(reply, "ce-statuscode", &code), NATS_OK);
  EXPECT_STREQ(code, "8");
  natsMsg_Destroy(reply);
  natsMsg_Destroy(req);
  natsConnection_Destroy(nc);
  EXPECT_EQ(calls.load(), 0);
  EXPECT_EQ(Stats(*small).bad_input, 2);

  // Through the transport: the caller sees the status; a normal-size
  // request right after is served.
  for (const std::string& body : {std::string(2 * kSmallLimit, 'y'), std::string("small")}) {
    Envelope e = MakeEnvelope(op, body);
    e.deadline = absl::Now() + absl::Seconds(5);
    Inbox<absl::StatusOr<Envelope>> replies;
    transport_->Request(e, [&](absl::StatusOr<Envelope> r) { replies.Push(std::move(r)); });
    auto r = replies.Pop();
    ASSERT_NE(r, nullptr);
    ASSERT_TRUE(r->ok()) << r->status();
    if (body == "small") {
      EXPECT_TRUE((*r)->status.ok()) << (*r)->status;
      EXPECT_EQ((*r)->data, "ok:small");
    } else {
      EXPECT_EQ((*r)->status.code(), absl::StatusCode::kResourceExhausted) << (*r)->status;
    }
  }
  EXPECT_EQ(calls.load(), 1);
  EXPECT_EQ(Stats(*small).bad_input, 3);
}

TEST_P(NatsTest, OversizedCommandIsDeadLetteredWithTheReasonAndTheNextIsProcessed) {
  std::string op = Op("Big/Work");
  auto small = SmallLimitTransport(jetstream(), prefix_);
  ASSERT_NE(small, nullptr);
  Inbox<std::string> handled;
  Inbox<std::unique_ptr<Delivery>> dead;
  auto consumer = small->Consume(Ep(op), [&](std::unique_ptr<Delivery> d) {
    handled.Push(d->envelope().data);
    d->Ack();
  });
  ASSERT_TRUE(consumer.ok()) << consumer.status();
  // The dead-letter copy has no payload, so a reader with the same limit
  // can read it.
  auto dlq = small->Consume(Ep(DeadLetterAddress(op)),
                            [&](std::unique_ptr<Delivery> d) { dead.Push(std::move(d)); });
  ASSERT_TRUE(dlq.ok()) << dlq.status();

  Envelope big = MakeEnvelope(op, std::string(kSmallLimit + 100, 'z'));
  Done accepted_big;
  transport_->Enqueue(big, accepted_big.Callback());
  ASSERT_TRUE(accepted_big.Wait().ok());
  Done accepted_small;
  transport_->Enqueue(MakeEnvelope(op, "next"), accepted_small.Callback());
  ASSERT_TRUE(accepted_small.Wait().ok());

  auto d = dead.Pop();
  ASSERT_NE(d, nullptr);
  const Envelope& e = (*d)->envelope();
  EXPECT_EQ(e.id, big.id);
  EXPECT_EQ(e.type, op);
  EXPECT_TRUE(e.data.empty());
  EXPECT_THAT(e.extensions.at(std::string(attr::kDeadLetterReason)),
              HasSubstr("`max_message_bytes` (65536)"));
  EXPECT_EQ(e.extensions.at(std::string(attr::kDeadLetterCode)), "RESOURCE_EXHAUSTED");
  (*d)->Ack();
  auto next = handled.Pop();
  ASSERT_NE(next, nullptr);
  EXPECT_EQ(*next, "next");
  EXPECT_EQ(handled.Pop(absl::Milliseconds(300)), nullptr);  // the big one never reached it
  EXPECT_EQ(dead.Pop(absl::Milliseconds(300)), nullptr);     // and was not redelivered
  EXPECT_EQ(Stats(*small).bad_input, 1);
  EXPECT_EQ(DeadLettered(*small, 1), 1);
}

TEST(NatsConfig, AnUnknownContentModeIsRejectedNamingTheSetting) {
  // Checked before connecting: no server needed.
  v1::TransportConfig config = TestConfig(false, "sbit.config", "sometimes");
  TransportEnv env;
  auto t = MakeNatsTransport("bad", config, env);
  EXPECT_EQ(t.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(t.status().message()), HasSubstr("`content_mode` is \"sometimes\""));
}

TEST(NatsConfig, BadPendingLimitsAreRejectedNamingTheSetting) {
  // Checked before connecting: no server needed.
  v1::TransportConfig config = TestConfig(false, "sbit.config");
  config.mutable_nats()->set_pending_messages_limit(-1);
  TransportEnv env;
  auto t = MakeNatsTransport("bad", config, env);
  EXPECT_EQ(t.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(t.status().message()), HasSubstr("pending_messages_limit"));
}

TEST(NatsConfig, AReconnectWaitBelowAMillisecondIsRejected) {
  // cnats counts milliseconds: 500us would silently become no wait at all.
  v1::TransportConfig config = TestConfig(false, "sbit.config");
  config.mutable_nats()->mutable_reconnect_wait()->set_nanos(500'000);
  TransportEnv env;
  auto t = MakeNatsTransport("bad", config, env);
  EXPECT_EQ(t.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(t.status().message()), HasSubstr("`reconnect_wait` of 500us"));
  config.mutable_nats()->mutable_reconnect_wait()->set_seconds(-1);
  config.mutable_nats()->mutable_reconnect_wait()->set_nanos(0);
  t = MakeNatsTransport("bad", config, env);
  EXPECT_EQ(t.status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(NatsCorePendingLimits, ASlowCoreConsumerBuffersAtMostTheLimit) {
  SB_REQUIRE_NATS();
  const std::string prefix = absl::StrCat("sbit.", UniqueId());
  constexpr int kLimit = 16;
  constexpr int kSent = 500;
  auto slow = SmallLimitTransport(/*jetstream=*/false, prefix, kLimit);
  ASSERT_NE(slow, nullptr);
  auto sender = NewTestTransport(false, prefix);
  ASSERT_TRUE(sender.ok()) << sender.status();
  std::string op = absl::StrCat("it.v1.Slow/Work_", UniqueId());
  absl::Notification release;
  std::atomic<int> handled{0};
  // One delivery at a time, the first held until everything was sent: the
  // client library's buffer of the subscription fills up to the limit.
  auto consumer = slow->Consume(Ep(op, "", /*max_in_flight=*/1), [&](std::unique_ptr<Delivery> d) {
    release.WaitForNotificationWithTimeout(kWait);
    ++handled;
    d->Ack();
  });
  ASSERT_TRUE(consumer.ok()) << consumer.status();
  for (int i = 0; i < kSent; ++i) {
    Done sent;
    (*sender)->Enqueue(MakeEnvelope(op, absl::StrCat(i)), sent.Callback());
    ASSERT_TRUE(sent.Wait().ok());
  }
  // Bounded: the server has forwarded everything once the slow consumer was
  // reported (cnats reports it on the first drop).
  absl::Time until = absl::Now() + kWait;
  while (Stats(*slow).async_errors == 0 && absl::Now() < until) absl::SleepFor(absl::Milliseconds(5));
  EXPECT_GE(Stats(*slow).async_errors, 1);
  absl::SleepFor(absl::Milliseconds(200));  // the rest of the burst arrives (and is dropped)
  release.Notify();
  until = absl::Now() + absl::Seconds(2);
  int last = -1;
  while (handled.load() != last && absl::Now() < until) {
    last = handled.load();
    absl::SleepFor(absl::Milliseconds(100));
  }
  // The held one, the buffered ones, and at most one in hand-over.
  EXPECT_GE(handled.load(), 1);
  EXPECT_LE(handled.load(), 1 + kLimit + 1);
  std::printf("core pending limit %d: %d of %d handled, the rest dropped by the client\n", kLimit,
              handled.load(), kSent);
}

INSTANTIATE_TEST_SUITE_P(Modes, NatsTest, ::testing::Values(true, false),
                         [](const ::testing::TestParamInfo<bool>& i) {
                           return i.param ? "JetStream" : "CoreNats";
                         });

class NatsJetStreamTest : public NatsTest {};

TEST_P(NatsJetStreamTest, SameIdempotencyKeyTwiceStoresOneMessage) {
  std::string op = Op("Dedup/Put");
  std::string key = "idem-" + UniqueId();
  for (int i = 0; i < 2; ++i) {
    Envelope cmd = MakeEnvelope(op, absl::StrCat("copy", i));
    cmd.idempotency_key = key;  // different ids, same key
    Done accepted;
    transport_->Enqueue(cmd, accepted.Callback());
    ASSERT_TRUE(accepted.Wait().ok());
  }
  absl::StatusOr<int64_t> depth = transport_->QueueDepth(Ep(op));
  ASSERT_TRUE(depth.ok()) << depth.status();
  EXPECT_EQ(*depth, 1);

  // Cross-check with a plain client: the stream holds one message.
  natsConnection* nc = nullptr;
  ASSERT_EQ(natsConnection_ConnectTo(&nc, TestNatsUrl().c_str()), NATS_OK);
  jsCtx* js = nullptr;
  ASSERT_EQ(natsConnection_JetStream(&js, nc, nullptr), NATS_OK);
  std::string subject = OperationSubject(prefix_, Kind::kCommand, op);
  jsStreamInfo* si = nullptr;
  ASSERT_EQ(js_GetStreamInfo(&si, js, StreamName(prefix_, Kind::kCommand, subject).c_str(), nullptr,
                             nullptr),
            NATS_OK);
  EXPECT_EQ(si->State.Msgs, 1u);
  jsStreamInfo_Destroy(si);
  jsCtx_Destroy(js);
  natsConnection_Destroy(nc);
}

TEST_P(NatsJetStreamTest, CommandsWaitForAConsumerAndQueueDepthCountsThem) {
  std::string op = Op("Later/Work");
  for (int i = 0; i < 3; ++i) {
    Done accepted;
    transport_->Enqueue(MakeEnvelope(op, absl::StrCat(i)), accepted.Callback());
    ASSERT_TRUE(accepted.Wait().ok());
  }
  absl::StatusOr<int64_t> depth = transport_->QueueDepth(Ep(op));
  ASSERT_TRUE(depth.ok()) << depth.status();
  EXPECT_EQ(*depth, 3);
  // A second process (transport) consumes them.
  auto other = NewTestTransport(true, prefix_);
  ASSERT_TRUE(other.ok()) << other.status();
  Inbox<std::string> got;
  auto consumer = (*other)->Consume(Ep(op, "", 1),
                                    [&](std::unique_ptr<Delivery> d) {
                                      got.Push(d->envelope().data);
                                      d->Ack();
                                    });
  ASSERT_TRUE(consumer.ok()) << consumer.status();
  for (int i = 0; i < 3; ++i) {
    auto v = got.Pop();
    ASSERT_NE(v, nullptr);
    EXPECT_EQ(*v, absl::StrCat(i));
  }
}

TEST_P(NatsJetStreamTest, TwoInstancesShareOneWorkQueueConsumer) {
  std::string op = Op("Shared/Work");
  auto other = NewTestTransport(true, prefix_);
  ASSERT_TRUE(other.ok()) << other.status();
  Inbox<std::string> got;
  auto handler = [&got](std::unique_ptr<Delivery> d) {
    got.Push(d->envelope().data);
    d->Ack();
  };
  auto a = transport_->Consume(Ep(op), handler);
  ASSERT_TRUE(a.ok()) << a.status();
  auto b = (*other)->Consume(Ep(op), handler);
  ASSERT_TRUE(b.ok()) << b.status();  // not error 10100
  for (int i = 0; i < 10; ++i) {
    Done accepted;
    transport_->Enqueue(MakeEnvelope(op, absl::StrCat(i)), accepted.Callback());
    ASSERT_TRUE(accepted.Wait().ok());
  }
  std::set<std::string> seen;
  for (int i = 0; i < 10; ++i) {
    auto v = got.Pop();
    ASSERT_NE(v, nullptr);
    seen.insert(*v);
  }
  EXPECT_EQ(seen.size(), 10u);
  EXPECT_EQ(got.Pop(absl::Milliseconds(300)), nullptr);
}

INSTANTIATE_TEST_SUITE_P(Modes, NatsJetStreamTest, ::testing::Values(true),
                         [](const ::testing::TestParamInfo<bool>&) { return "JetStream"; });

TEST_P(NatsJetStreamTest, RequestLatencyOnLoopback) {
  std::string op = Op("Fast/Echo");
  auto sub = transport_->Serve(Ep(op), [](Envelope req, ReplyCallback reply) {
    std::move(reply)(std::move(req));
  });
  ASSERT_TRUE(sub.ok()) << sub.status();
  std::vector<double> micros;
  for (int i = 0; i < 500; ++i) {
    Envelope req = MakeEnvelope(op, std::string(128, 'x'));
    req.deadline = absl::Now() + absl::Seconds(5);
    absl::Notification done;
    absl::Status status;
    absl::Time start = absl::Now();
    transport_->Request(req, [&](absl::StatusOr<Envelope> r) {
      status = r.status();
      done.Notify();
    });
    ASSERT_TRUE(done.WaitForNotificationWithTimeout(kWait));
    ASSERT_TRUE(status.ok()) << status;
    micros.push_back(absl::ToDoubleMicroseconds(absl::Now() - start));
  }
  std::sort(micros.begin(), micros.end());
  double p50 = micros[micros.size() / 2], p99 = micros[micros.size() * 99 / 100];
  std::printf("request/reply over the transport, 128 B: p50 %.0f us, p99 %.0f us\n", p50, p99);
  EXPECT_LT(p50, 5000.0);
}

// Restarts the shared nats-server: kept in its own suite so a filter can
// leave it out when tests run in parallel against one server.
TEST(NatsRestart, JetStreamQueueSurvivesABrokerRestart) {
  SB_REQUIRE_NATS();
  const char* restart = std::getenv("SWITCHBOARD_TEST_NATS_RESTART");
  if (restart == nullptr) GTEST_SKIP() << "SWITCHBOARD_TEST_NATS_RESTART is not set";
  std::string prefix = absl::StrCat("sbrs.", UniqueId());
  auto t = NewTestTransport(true, prefix);
  ASSERT_TRUE(t.ok()) << t.status();
  std::string op = absl::StrCat("it.v1.Restart_", UniqueId());
  Inbox<std::string> got;
  auto consumer = (*t)->Consume(Ep(op), [&](std::unique_ptr<Delivery> d) {
    got.Push(d->envelope().data);
    d->Ack();
  });
  ASSERT_TRUE(consumer.ok()) << consumer.status();

  Done before;
  (*t)->Enqueue(MakeEnvelope(op, "before"), before.Callback());
  ASSERT_TRUE(before.Wait().ok());
  auto first = got.Pop();
  ASSERT_NE(first, nullptr);
  EXPECT_EQ(*first, "before");

  // Queued while nobody consumes: must survive the restart on disk.
  consumer->reset();
  Done queued;
  (*t)->Enqueue(MakeEnvelope(op, "queued"), queued.Callback());
  ASSERT_TRUE(queued.Wait().ok());
  // A request parked at a silent server when the connection drops.
  std::string slow = absl::StrCat("it.v1.Parked_", UniqueId());
  std::vector<ReplyCallback> parked;
  absl::Mutex parked_mu;
  auto server = (*t)->Serve(Ep(slow), [&](Envelope, ReplyCallback reply) {
    absl::MutexLock lock(&parked_mu);
    parked.push_back(std::move(reply));
  });
  ASSERT_TRUE(server.ok()) << server.status();
  Inbox<absl::StatusOr<Envelope>> replies;
  Envelope req = MakeEnvelope(slow);
  req.deadline = absl::Now() + absl::Seconds(30);
  (*t)->Request(req, [&](absl::StatusOr<Envelope> r) { replies.Push(std::move(r)); });
  {
    absl::MutexLock lock(&parked_mu);
    auto arrived = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(parked_mu) { return !parked.empty(); };
    ASSERT_TRUE(parked_mu.AwaitWithTimeout(absl::Condition(&arrived), kWait));
  }

  ASSERT_EQ(std::system(restart), 0);
  auto lost = replies.Pop();
  ASSERT_NE(lost, nullptr) << "request still waiting after the connection dropped";
  EXPECT_EQ(lost->status().code(), absl::StatusCode::kUnavailable) << lost->status();
  server->reset();
  {
    absl::MutexLock lock(&parked_mu);
    for (auto& p : parked) std::move(p)(absl::CancelledError("gone"));
  }

  consumer = (*t)->Consume(Ep(op), [&](std::unique_ptr<Delivery> d) {
    got.Push(d->envelope().data);
    d->Ack();
  });
  ASSERT_TRUE(consumer.ok()) << consumer.status();
  absl::Status accepted = absl::UnavailableError("not tried");
  for (absl::Time until = absl::Now() + absl::Seconds(15); !accepted.ok() && absl::Now() < until;) {
    Done after;
    (*t)->Enqueue(MakeEnvelope(op, "after"), after.Callback());
    accepted = after.Wait();
    if (!accepted.ok()) absl::SleepFor(absl::Milliseconds(100));
  }
  ASSERT_TRUE(accepted.ok()) << accepted;
  std::set<std::string> seen;
  for (int i = 0; i < 2; ++i) {
    auto v = got.Pop(absl::Seconds(15));
    ASSERT_NE(v, nullptr) << "after restart, got only " << seen.size();
    seen.insert(*v);
  }
  EXPECT_EQ(seen, (std::set<std::string>{"queued", "after"}));
}

// A request server and its client, both kept across a nats-server restart:
// the client reconnects and the server's subscription comes back without
// being opened again.
TEST(NatsRestart, RequestReplyRecoversAfterBrokerRestart) {
  SB_REQUIRE_NATS();
  const char* restart = std::getenv("SWITCHBOARD_TEST_NATS_RESTART");
  if (restart == nullptr) GTEST_SKIP() << "SWITCHBOARD_TEST_NATS_RESTART is not set";
  std::string prefix = absl::StrCat("sbrr.", UniqueId());
  auto client = NewTestTransport(false, prefix);
  auto server = NewTestTransport(false, prefix);
  ASSERT_TRUE(client.ok()) << client.status();
  ASSERT_TRUE(server.ok()) << server.status();
  std::string op = absl::StrCat("it.v1.Echo_", UniqueId());
  auto served = (*server)->Serve(Ep(op), [](Envelope req, ReplyCallback reply) {
    Envelope rep;
    rep.data = "echo:" + req.data;
    std::move(reply)(std::move(rep));
  });
  ASSERT_TRUE(served.ok()) << served.status();
  auto ask = [&](const std::string& text) {
    Inbox<absl::StatusOr<Envelope>> replies;
    Envelope req = MakeEnvelope(op, text);
    req.deadline = absl::Now() + absl::Seconds(2);
    (*client)->Request(req, [&](absl::StatusOr<Envelope> r) { replies.Push(std::move(r)); });
    auto r = replies.Pop(absl::Seconds(5));
    return r == nullptr ? absl::StatusOr<Envelope>(absl::DeadlineExceededError("no callback"))
                        : *std::move(r);
  };
  absl::StatusOr<Envelope> before = ask("before");
  ASSERT_TRUE(before.ok()) << before.status();
  EXPECT_EQ(before->data, "echo:before");

  ASSERT_EQ(std::system(restart), 0);

  absl::StatusOr<Envelope> after = absl::UnavailableError("not tried");
  for (absl::Time until = absl::Now() + absl::Seconds(20); !after.ok() && absl::Now() < until;) {
    after = ask("after");
    if (!after.ok()) absl::SleepFor(absl::Milliseconds(200));
  }
  ASSERT_TRUE(after.ok()) << after.status();
  EXPECT_EQ(after->data, "echo:after");
}

TEST(NatsConnect, FailureIsUnavailableWithRedactedUrl) {
  v1::TransportConfig config;
  config.set_type("nats");
  // Port 1 on loopback: nothing listens there.
  config.mutable_nats()->set_url("nats://alice:s3cr3t-pw@127.0.0.1:1");
  TransportEnv env;
  auto t = MakeNatsTransport("bus", config, env);
  ASSERT_FALSE(t.ok());
  EXPECT_EQ(t.status().code(), absl::StatusCode::kUnavailable);
  std::string text(t.status().message());
  EXPECT_THAT(text, HasSubstr("127.0.0.1:1"));
  EXPECT_THAT(text, Not(HasSubstr("s3cr3t-pw")));
  EXPECT_THAT(text, Not(HasSubstr("alice")));

  config.mutable_nats()->set_url("nats://127.0.0.1:1");
  config.mutable_nats()->set_token("t0ken-value");
  t = MakeNatsTransport("bus", config, env);
  ASSERT_FALSE(t.ok());
  EXPECT_EQ(t.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(std::string(t.status().message()), Not(HasSubstr("t0ken-value")));

  config.mutable_nats()->set_user("bob");
  config.mutable_nats()->set_password("hunter2");
  t = MakeNatsTransport("bus", config, env);
  EXPECT_EQ(t.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(t.status().message()), Not(HasSubstr("hunter2")));
}

TEST(NatsConnect, FeaturesFollowTheMode) {
  Features js = NatsFeatures(true);
  EXPECT_TRUE(js.durable);
  EXPECT_TRUE(js.broker_dedup);
  EXPECT_TRUE(js.delayed_redelivery);
  Features core = NatsFeatures(false);
  EXPECT_FALSE(core.durable);
  EXPECT_FALSE(core.broker_dedup);
  EXPECT_TRUE(core.native_request_reply);
  EXPECT_TRUE(core.cross_process);
}

}  // namespace
}  // namespace switchboard::nats
