// SPI-level tests of the inproc transport: every behaviour promised by
// transport.h and inproc_transport.h, on a FakeClock.
#include "switchboard/inproc_transport.h"

#include <atomic>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "switchboard/clock.h"
#include "switchboard/executor.h"
#include "switchboard/status.h"
#include "switchboard/v1/config.pb.h"

namespace switchboard {
namespace {

using ::testing::HasSubstr;

// A bus name unique to each test, so tests never share queues.
std::string UniqueBus() {
  static std::atomic<int> n{0};
  const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
  return absl::StrCat("test-", info->name(), "-", n.fetch_add(1));
}

std::string NextId() {
  static std::atomic<int> n{0};
  return absl::StrCat("msg-", n.fetch_add(1));
}

Envelope MakeEnvelope(std::string type, std::string data = "") {
  Envelope env;
  env.id = NextId();
  env.source = "//test";
  env.type = std::move(type);
  env.data = std::move(data);
  return env;
}

class InprocTransportTest : public ::testing::Test {
 protected:
  void SetUp() override { bus_ = UniqueBus(); }

  std::unique_ptr<Transport> NewTransport(uint64_t max_depth = 0, std::string bus = "") {
    v1::TransportConfig config;
    config.set_type("inproc");
    config.mutable_inproc()->set_bus(bus.empty() ? bus_ : bus);
    if (max_depth > 0) config.mutable_inproc()->set_max_queue_depth(max_depth);
    TransportEnv env;
    env.clock = &clock_;
    env.executor = &executor_;
    env.source = "//test";
    auto t = MakeInprocTransport("local", config, env);
    EXPECT_TRUE(t.ok()) << t.status();
    return *std::move(t);
  }

  static void Enqueue(Transport& t, Envelope env) {
    std::optional<absl::Status> accepted;
    t.Enqueue(std::move(env), [&](absl::Status s) { accepted = s; });
    ASSERT_TRUE(accepted.has_value());
    ASSERT_TRUE(accepted->ok()) << *accepted;
  }

  static void Publish(Transport& t, Envelope env) {
    std::optional<absl::Status> published;
    t.Publish(std::move(env), [&](absl::Status s) { published = s; });
    ASSERT_TRUE(published.has_value());
    ASSERT_TRUE(published->ok()) << *published;
  }

  static std::unique_ptr<Subscription> Consume(Transport& t, const std::string& op,
                                               DeliveryHandler h, int max_in_flight = 256) {
    Endpoint ep;
    ep.operation = op;
    ep.group = op;
    ep.max_in_flight = max_in_flight;
    auto sub = t.Consume(ep, std::move(h));
    EXPECT_TRUE(sub.ok()) << sub.status();
    return sub.ok() ? *std::move(sub) : nullptr;
  }

  static std::unique_ptr<Subscription> Subscribe(Transport& t, const std::string& type,
                                                 const std::string& group, DeliveryHandler h) {
    Endpoint ep;
    ep.operation = type;
    ep.group = group;
    auto sub = t.Subscribe(ep, std::move(h));
    EXPECT_TRUE(sub.ok()) << sub.status();
    return sub.ok() ? *std::move(sub) : nullptr;
  }

  static std::unique_ptr<Subscription> Serve(Transport& t, const std::string& op, RequestHandler h) {
    Endpoint ep;
    ep.operation = op;
    ep.group = op;
    auto sub = t.Serve(ep, std::move(h));
    EXPECT_TRUE(sub.ok()) << sub.status();
    return sub.ok() ? *std::move(sub) : nullptr;
  }

  static int64_t Depth(Transport& t, const std::string& op, const std::string& group = "") {
    Endpoint ep;
    ep.operation = op;
    ep.group = group;
    auto d = t.QueueDepth(ep);
    EXPECT_TRUE(d.ok()) << d.status();
    return d.ok() ? *d : -1;
  }

  FakeClock clock_;
  InlineExecutor executor_;
  std::string bus_;
};

// ---------------------------------------------------------------------------
// Basics.

TEST(InprocFeaturesTest, DeclaresWhatItPromises) {
  Features f = InprocFeatures();
  EXPECT_FALSE(f.durable);
  EXPECT_TRUE(f.fan_out_to_groups);
  EXPECT_TRUE(f.native_request_reply);
  EXPECT_TRUE(f.ordering_per_key);
  EXPECT_FALSE(f.broker_dedup);
  EXPECT_TRUE(f.redelivery_count);
  EXPECT_TRUE(f.reply_routing);
  EXPECT_FALSE(f.cross_process);
  EXPECT_TRUE(f.delayed_redelivery);
}

TEST(InprocFeaturesTest, DeadLetterAddressAppendsDlq) {
  EXPECT_EQ(DeadLetterAddress("orders.v1.Orders/PlaceOrder"), "orders.v1.Orders/PlaceOrder.dlq");
}

TEST_F(InprocTransportTest, NameTypeAndFeatures) {
  auto t = NewTransport();
  EXPECT_EQ(t->name(), "local");
  EXPECT_EQ(t->type(), "inproc");
  EXPECT_TRUE(t->features().fan_out_to_groups);
  EXPECT_FALSE(t->features().durable);
}

// ---------------------------------------------------------------------------
// Request / reply.

TEST_F(InprocTransportTest, RequestRoundTrip) {
  auto server_side = NewTransport();
  auto client_side = NewTransport();
  auto sub = Serve(*server_side, "svc/Echo", [](Envelope req, ReplyCallback reply) {
    Envelope rep = MakeEnvelope("svc/Echo", "echo:" + req.data);
    rep.correlation_id = req.id;
    std::move(reply)(std::move(rep));
  });
  std::optional<absl::StatusOr<Envelope>> got;
  Envelope req = MakeEnvelope("svc/Echo", "hi");
  const std::string id = req.id;
  client_side->Request(std::move(req), [&](absl::StatusOr<Envelope> r) { got = std::move(r); });
  ASSERT_TRUE(got.has_value());
  ASSERT_TRUE(got->ok()) << got->status();
  EXPECT_EQ((*got)->data, "echo:hi");
  EXPECT_EQ((*got)->correlation_id, id);
}

TEST_F(InprocTransportTest, RequestWithoutServerIsUnavailableAtOnce) {
  auto t = NewTransport();
  std::optional<absl::StatusOr<Envelope>> got;
  Envelope req = MakeEnvelope("svc/Nobody");
  req.deadline = clock_.Now() + absl::Seconds(30);
  t->Request(std::move(req), [&](absl::StatusOr<Envelope> r) { got = std::move(r); });
  ASSERT_TRUE(got.has_value()) << "must fail promptly, not at the deadline";
  EXPECT_EQ(got->status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(got->status().message(),
              HasSubstr(absl::StrCat("no handler serves svc/Nobody on inproc bus ", bus_)));
  EXPECT_EQ(clock_.PendingTimers(), 0u);
}

TEST_F(InprocTransportTest, RequestDeadlineExceededFiresOnClockAndOnlyOnce) {
  auto t = NewTransport();
  ReplyCallback held;
  auto sub = Serve(*t, "svc/Slow", [&](Envelope, ReplyCallback reply) { held = std::move(reply); });
  int calls = 0;
  std::optional<absl::StatusOr<Envelope>> got;
  Envelope req = MakeEnvelope("svc/Slow");
  req.deadline = clock_.Now() + absl::Milliseconds(200);
  t->Request(std::move(req), [&](absl::StatusOr<Envelope> r) {
    ++calls;
    got = std::move(r);
  });
  EXPECT_EQ(calls, 0);
  clock_.Advance(absl::Milliseconds(199));
  EXPECT_EQ(calls, 0);
  clock_.Advance(absl::Milliseconds(1));
  ASSERT_EQ(calls, 1);
  EXPECT_EQ(got->status().code(), absl::StatusCode::kDeadlineExceeded);
  // The late reply is dropped: exactly one callback.
  ASSERT_TRUE(held);
  std::move(held)(MakeEnvelope("svc/Slow"));
  EXPECT_EQ(calls, 1);
}

TEST_F(InprocTransportTest, ReplyBeforeDeadlineWinsAndTheDeadlineNeverFires) {
  auto t = NewTransport();
  auto sub = Serve(*t, "svc/Fast", [](Envelope req, ReplyCallback reply) {
    std::move(reply)(MakeEnvelope(req.type, "ok"));
  });
  int calls = 0;
  Envelope req = MakeEnvelope("svc/Fast");
  req.deadline = clock_.Now() + absl::Seconds(1);
  t->Request(std::move(req), [&](absl::StatusOr<Envelope> r) {
    ++calls;
    EXPECT_TRUE(r.ok());
  });
  EXPECT_EQ(calls, 1);
  clock_.Advance(absl::Seconds(2));
  EXPECT_EQ(calls, 1);
  EXPECT_EQ(clock_.PendingTimers(), 0u);
}

TEST_F(InprocTransportTest, DeadlinesInAnyOrderExpireEachAtItsTime) {
  auto t = NewTransport();
  std::vector<ReplyCallback> held;
  auto sub = Serve(*t, "svc/Hold", [&](Envelope, ReplyCallback reply) { held.push_back(std::move(reply)); });
  std::vector<std::string> expired;
  for (int ms : {300, 100, 200, 100, 400}) {
    Envelope req = MakeEnvelope("svc/Hold", absl::StrCat(ms));
    req.deadline = clock_.Now() + absl::Milliseconds(ms);
    t->Request(std::move(req), [&expired, ms](absl::StatusOr<Envelope> r) {
      expired.push_back(r.ok() ? "ok" : absl::StrCat(ms));
      if (!r.ok()) {
        EXPECT_EQ(r.status().code(), absl::StatusCode::kDeadlineExceeded);
      }
    });
  }
  // The last one is answered in time.
  std::move(held[4])(MakeEnvelope("svc/Hold"));
  ASSERT_THAT(expired, ::testing::ElementsAre("ok"));
  expired.clear();
  clock_.Advance(absl::Milliseconds(99));
  EXPECT_TRUE(expired.empty());
  clock_.Advance(absl::Milliseconds(1));
  EXPECT_THAT(expired, ::testing::ElementsAre("100", "100"));
  clock_.Advance(absl::Milliseconds(100));
  EXPECT_THAT(expired, ::testing::ElementsAre("100", "100", "200"));
  clock_.Advance(absl::Milliseconds(300));
  EXPECT_THAT(expired, ::testing::ElementsAre("100", "100", "200", "300"));
  EXPECT_EQ(clock_.PendingTimers(), 0u);
}

TEST_F(InprocTransportTest, RequestWithPassedDeadlineFailsWithoutCallingHandler) {
  auto t = NewTransport();
  int handled = 0;
  auto sub = Serve(*t, "svc/Late", [&](Envelope, ReplyCallback reply) {
    ++handled;
    std::move(reply)(absl::InternalError("should not run"));
  });
  std::optional<absl::StatusOr<Envelope>> got;
  Envelope req = MakeEnvelope("svc/Late");
  req.deadline = clock_.Now() - absl::Milliseconds(1);
  t->Request(std::move(req), [&](absl::StatusOr<Envelope> r) { got = std::move(r); });
  ASSERT_TRUE(got.has_value());
  EXPECT_EQ(got->status().code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_EQ(handled, 0);
}

TEST_F(InprocTransportTest, HandlerErrorTravelsInTheReplyUnchanged) {
  auto t = NewTransport();
  auto sub = Serve(*t, "svc/Err", [](Envelope req, ReplyCallback reply) {
    Envelope rep = MakeEnvelope(req.type);
    rep.status = absl::PermissionDeniedError("not yours");
    std::move(reply)(std::move(rep));
  });
  std::optional<absl::StatusOr<Envelope>> got;
  t->Request(MakeEnvelope("svc/Err"), [&](absl::StatusOr<Envelope> r) { got = std::move(r); });
  ASSERT_TRUE(got.has_value());
  ASSERT_TRUE(got->ok());
  EXPECT_EQ((*got)->status.code(), absl::StatusCode::kPermissionDenied);
  EXPECT_EQ((*got)->status.message(), "not yours");
}

TEST_F(InprocTransportTest, RequestsAreSpreadRoundRobinOverServers) {
  auto a = NewTransport();
  auto b = NewTransport();
  std::map<std::string, int> served;
  auto make = [&](std::string who) {
    return [&served, who](Envelope req, ReplyCallback reply) {
      ++served[who];
      std::move(reply)(MakeEnvelope(req.type));
    };
  };
  auto s1 = Serve(*a, "svc/RR", make("a"));
  auto s2 = Serve(*b, "svc/RR", make("b"));
  for (int i = 0; i < 10; ++i) {
    a->Request(MakeEnvelope("svc/RR"), [](absl::StatusOr<Envelope> r) { EXPECT_TRUE(r.ok()); });
  }
  EXPECT_EQ(served["a"], 5);
  EXPECT_EQ(served["b"], 5);
}

TEST_F(InprocTransportTest, DestroyedServerNoLongerServes) {
  auto t = NewTransport();
  auto sub = Serve(*t, "svc/Gone", [](Envelope req, ReplyCallback reply) {
    std::move(reply)(MakeEnvelope(req.type));
  });
  sub.reset();
  std::optional<absl::StatusOr<Envelope>> got;
  t->Request(MakeEnvelope("svc/Gone"), [&](absl::StatusOr<Envelope> r) { got = std::move(r); });
  ASSERT_TRUE(got.has_value());
  EXPECT_EQ(got->status().code(), absl::StatusCode::kUnavailable);
}

TEST_F(InprocTransportTest, BusesAreIsolatedAndSharedByName) {
  auto here = NewTransport();
  auto same = NewTransport();
  auto other = NewTransport(0, bus_ + "-other");
  auto sub = Serve(*here, "svc/Bus", [](Envelope req, ReplyCallback reply) {
    std::move(reply)(MakeEnvelope(req.type));
  });
  std::optional<absl::StatusOr<Envelope>> a, b;
  same->Request(MakeEnvelope("svc/Bus"), [&](absl::StatusOr<Envelope> r) { a = std::move(r); });
  other->Request(MakeEnvelope("svc/Bus"), [&](absl::StatusOr<Envelope> r) { b = std::move(r); });
  ASSERT_TRUE(a.has_value() && b.has_value());
  EXPECT_TRUE(a->ok());
  EXPECT_EQ(b->status().code(), absl::StatusCode::kUnavailable);
}

// ---------------------------------------------------------------------------
// Commands.

TEST_F(InprocTransportTest, CommandIsDeliveredAndAckRemovesIt) {
  auto t = NewTransport();
  std::vector<std::unique_ptr<Delivery>> got;
  auto sub = Consume(*t, "svc/Do", [&](std::unique_ptr<Delivery> d) { got.push_back(std::move(d)); });
  Enqueue(*t, MakeEnvelope("svc/Do", "payload"));
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0]->envelope().data, "payload");
  EXPECT_EQ(got[0]->envelope().attempt, 1);
  got[0]->Ack();
  got.clear();  // destroying a settled delivery does nothing
  EXPECT_EQ(Depth(*t, "svc/Do"), 0);
  clock_.Advance(absl::Minutes(1));
  EXPECT_TRUE(got.empty());
}

TEST_F(InprocTransportTest, CommandsWaitForAConsumerInFifoOrder) {
  auto t = NewTransport();
  for (int i = 0; i < 5; ++i) Enqueue(*t, MakeEnvelope("svc/Wait", absl::StrCat(i)));
  EXPECT_EQ(Depth(*t, "svc/Wait"), 5);
  std::vector<std::string> order;
  auto sub = Consume(*t, "svc/Wait", [&](std::unique_ptr<Delivery> d) {
    order.push_back(d->envelope().data);
    d->Ack();
  });
  EXPECT_THAT(order, ::testing::ElementsAre("0", "1", "2", "3", "4"));
  EXPECT_EQ(Depth(*t, "svc/Wait"), 0);
}

TEST_F(InprocTransportTest, CommandsOutliveTheSendingTransportOnTheBus) {
  {
    auto sender = NewTransport();
    Enqueue(*sender, MakeEnvelope("svc/Keep", "kept"));
  }
  auto receiver = NewTransport();
  std::vector<std::string> got;
  auto sub = Consume(*receiver, "svc/Keep", [&](std::unique_ptr<Delivery> d) {
    got.push_back(d->envelope().data);
    d->Ack();
  });
  EXPECT_THAT(got, ::testing::ElementsAre("kept"));
}

TEST_F(InprocTransportTest, CompetingConsumersEachCommandToExactlyOne) {
  auto t = NewTransport();
  std::map<int, int> per_consumer;
  std::map<std::string, int> per_message;
  std::vector<std::unique_ptr<Subscription>> subs;
  for (int c = 0; c < 3; ++c) {
    subs.push_back(Consume(*t, "svc/Work", [&, c](std::unique_ptr<Delivery> d) {
      ++per_consumer[c];
      ++per_message[d->envelope().data];
      d->Ack();
    }));
  }
  for (int i = 0; i < 30; ++i) Enqueue(*t, MakeEnvelope("svc/Work", absl::StrCat(i)));
  EXPECT_EQ(per_message.size(), 30u);
  for (const auto& [m, n] : per_message) EXPECT_EQ(n, 1) << m;
  EXPECT_EQ(per_consumer[0], 10);
  EXPECT_EQ(per_consumer[1], 10);
  EXPECT_EQ(per_consumer[2], 10);
}

TEST_F(InprocTransportTest, MaxInFlightBoundsUnsettledDeliveriesPerConsumer) {
  auto t = NewTransport();
  std::vector<std::unique_ptr<Delivery>> held;
  auto sub = Consume(
      *t, "svc/Slow", [&](std::unique_ptr<Delivery> d) { held.push_back(std::move(d)); },
      /*max_in_flight=*/2);
  for (int i = 0; i < 5; ++i) Enqueue(*t, MakeEnvelope("svc/Slow", absl::StrCat(i)));
  ASSERT_EQ(held.size(), 2u);
  EXPECT_EQ(Depth(*t, "svc/Slow"), 3);
  held[0]->Ack();
  ASSERT_EQ(held.size(), 3u);
  EXPECT_EQ(held[2]->envelope().data, "2");
  held[1]->Ack();
  held[2]->Ack();
  EXPECT_EQ(held.size(), 5u);
  held[3]->Ack();
  held[4]->Ack();
  EXPECT_EQ(Depth(*t, "svc/Slow"), 0);
}

TEST_F(InprocTransportTest, RetryRedeliversWithAttemptPlusOne) {
  auto t = NewTransport();
  std::vector<int> attempts;
  auto sub = Consume(*t, "svc/Flaky", [&](std::unique_ptr<Delivery> d) {
    attempts.push_back(d->envelope().attempt);
    if (d->envelope().attempt < 3) {
      d->Retry(absl::ZeroDuration());
    } else {
      d->Ack();
    }
  });
  Enqueue(*t, MakeEnvelope("svc/Flaky"));
  EXPECT_THAT(attempts, ::testing::ElementsAre(1, 2, 3));
  EXPECT_EQ(Depth(*t, "svc/Flaky"), 0);
}

TEST_F(InprocTransportTest, RetryDelayIsHonouredOnTheClock) {
  auto t = NewTransport();
  std::vector<int> attempts;
  auto sub = Consume(*t, "svc/Later", [&](std::unique_ptr<Delivery> d) {
    attempts.push_back(d->envelope().attempt);
    if (d->envelope().attempt == 1) {
      d->Retry(absl::Seconds(5));
    } else {
      d->Ack();
    }
  });
  Enqueue(*t, MakeEnvelope("svc/Later"));
  EXPECT_THAT(attempts, ::testing::ElementsAre(1));
  EXPECT_EQ(Depth(*t, "svc/Later"), 1) << "a delayed message still counts as waiting";
  clock_.Advance(absl::Milliseconds(4999));
  EXPECT_THAT(attempts, ::testing::ElementsAre(1));
  clock_.Advance(absl::Milliseconds(1));
  EXPECT_THAT(attempts, ::testing::ElementsAre(1, 2));
  EXPECT_EQ(Depth(*t, "svc/Later"), 0);
}

TEST_F(InprocTransportTest, RetryMayGoToAnotherConsumer) {
  auto t = NewTransport();
  std::vector<std::pair<int, int>> seen;  // (consumer, attempt)
  std::vector<std::unique_ptr<Subscription>> subs;
  for (int c = 0; c < 2; ++c) {
    subs.push_back(Consume(*t, "svc/Hop", [&, c](std::unique_ptr<Delivery> d) {
      seen.emplace_back(c, d->envelope().attempt);
      if (c == 0) {
        d->Retry(absl::ZeroDuration());
      } else {
        d->Ack();
      }
    }));
  }
  Enqueue(*t, MakeEnvelope("svc/Hop"));
  EXPECT_THAT(seen, ::testing::ElementsAre(std::make_pair(0, 1), std::make_pair(1, 2)));
}

TEST_F(InprocTransportTest, DeadLetterMovesTheMessageWithItsReason) {
  auto t = NewTransport();
  auto sub = Consume(*t, "svc/Poison", [&](std::unique_ptr<Delivery> d) {
    d->DeadLetter(absl::InvalidArgumentError("payload does not parse"));
  });
  Enqueue(*t, MakeEnvelope("svc/Poison", "garbage"));
  EXPECT_EQ(Depth(*t, "svc/Poison"), 0);
  EXPECT_EQ(Depth(*t, DeadLetterAddress("svc/Poison")), 1);
  std::vector<Envelope> dead;
  auto dlq = Consume(*t, DeadLetterAddress("svc/Poison"), [&](std::unique_ptr<Delivery> d) {
    dead.push_back(d->envelope());
    d->Ack();
  });
  ASSERT_EQ(dead.size(), 1u);
  EXPECT_EQ(dead[0].data, "garbage");
  EXPECT_EQ(dead[0].type, "svc/Poison");
  EXPECT_EQ(dead[0].extensions.at("deadletterreason"), "payload does not parse");
  EXPECT_EQ(dead[0].extensions.at("deadlettercode"), "INVALID_ARGUMENT");
  EXPECT_EQ(Depth(*t, DeadLetterAddress("svc/Poison")), 0);
}

TEST_F(InprocTransportTest, DestroyedUnsettledDeliveryIsRedelivered) {
  auto t = NewTransport();
  std::vector<int> attempts;
  auto sub = Consume(*t, "svc/Drop", [&](std::unique_ptr<Delivery> d) {
    attempts.push_back(d->envelope().attempt);
    if (d->envelope().attempt == 2) d->Ack();
    // attempt 1: dropped unsettled -> Retry(0)
  });
  Enqueue(*t, MakeEnvelope("svc/Drop"));
  EXPECT_THAT(attempts, ::testing::ElementsAre(1, 2));
  EXPECT_EQ(Depth(*t, "svc/Drop"), 0);
}

TEST_F(InprocTransportTest, SettlingTwiceCountsOnce) {
  auto t = NewTransport();
  std::vector<std::unique_ptr<Delivery>> held;
  auto sub = Consume(*t, "svc/Twice", [&](std::unique_ptr<Delivery> d) { held.push_back(std::move(d)); });
  Enqueue(*t, MakeEnvelope("svc/Twice"));
  ASSERT_EQ(held.size(), 1u);
  held[0]->Ack();
  held[0]->Retry(absl::ZeroDuration());
  held[0]->DeadLetter(absl::InternalError("x"));
  EXPECT_EQ(held.size(), 1u);
  EXPECT_EQ(Depth(*t, "svc/Twice"), 0);
  EXPECT_EQ(Depth(*t, DeadLetterAddress("svc/Twice")), 0);
}

TEST_F(InprocTransportTest, UnsettledDeliveriesOfADestroyedConsumerGoToOthers) {
  auto t = NewTransport();
  std::vector<std::unique_ptr<Delivery>> held_by_a;
  auto a = Consume(*t, "svc/Move", [&](std::unique_ptr<Delivery> d) { held_by_a.push_back(std::move(d)); });
  Enqueue(*t, MakeEnvelope("svc/Move", "m"));
  ASSERT_EQ(held_by_a.size(), 1u);
  std::vector<std::pair<std::string, int>> got_by_b;
  auto b = Consume(*t, "svc/Move", [&](std::unique_ptr<Delivery> d) {
    got_by_b.emplace_back(d->envelope().data, d->envelope().attempt);
    d->Ack();
  });
  EXPECT_TRUE(got_by_b.empty());
  a.reset();
  EXPECT_THAT(got_by_b, ::testing::ElementsAre(std::make_pair(std::string("m"), 2)));
  // The orphaned delivery's settlement is ignored.
  held_by_a[0]->Retry(absl::ZeroDuration());
  held_by_a.clear();
  EXPECT_EQ(got_by_b.size(), 1u);
  EXPECT_EQ(Depth(*t, "svc/Move"), 0);
}

TEST_F(InprocTransportTest, QueueDepthBoundRefusesWithResourceExhausted) {
  auto t = NewTransport(/*max_depth=*/3);
  for (int i = 0; i < 3; ++i) Enqueue(*t, MakeEnvelope("svc/Full"));
  std::optional<absl::Status> accepted;
  t->Enqueue(MakeEnvelope("svc/Full"), [&](absl::Status s) { accepted = s; });
  ASSERT_TRUE(accepted.has_value());
  EXPECT_EQ(accepted->code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(accepted->message(), HasSubstr("max_queue_depth"));
  EXPECT_EQ(Depth(*t, "svc/Full"), 3);
}

TEST_F(InprocTransportTest, InlineSettlementOfManyMessagesDoesNotRecurse) {
  auto t = NewTransport();
  constexpr int kCount = 20000;
  for (int i = 0; i < kCount; ++i) Enqueue(*t, MakeEnvelope("svc/Many"));
  int handled = 0;
  auto sub = Consume(
      *t, "svc/Many",
      [&](std::unique_ptr<Delivery> d) {
        ++handled;
        d->Ack();
      },
      /*max_in_flight=*/1);
  EXPECT_EQ(handled, kCount);
}

TEST_F(InprocTransportTest, HandlerMayDestroyItsOwnSubscription) {
  auto t = NewTransport();
  std::unique_ptr<Subscription> sub;
  int handled = 0;
  sub = Consume(*t, "svc/Self", [&](std::unique_ptr<Delivery> d) {
    ++handled;
    d->Ack();
    sub.reset();
  });
  Enqueue(*t, MakeEnvelope("svc/Self"));
  Enqueue(*t, MakeEnvelope("svc/Self"));
  EXPECT_EQ(handled, 1);
  EXPECT_EQ(Depth(*t, "svc/Self"), 1);
}

TEST_F(InprocTransportTest, DestroyingASubscriptionWaitsForTheRunningHandler) {
  auto t = NewTransport();
  absl::Notification started, release;
  std::atomic<bool> destroyed{false};
  auto sub = Consume(*t, "svc/Wait", [&](std::unique_ptr<Delivery> d) {
    started.Notify();
    release.WaitForNotificationWithTimeout(absl::Seconds(10));
    d->Ack();
  });
  std::thread sender([&] { Enqueue(*t, MakeEnvelope("svc/Wait")); });
  ASSERT_TRUE(started.WaitForNotificationWithTimeout(absl::Seconds(10)));
  std::thread destroyer([&] {
    sub.reset();
    destroyed = true;
  });
  // The destroyer cannot finish while the handler runs.
  EXPECT_FALSE(destroyed.load());
  release.Notify();
  destroyer.join();
  sender.join();
  EXPECT_TRUE(destroyed.load());
  EXPECT_EQ(Depth(*t, "svc/Wait"), 0);
}

// ---------------------------------------------------------------------------
// Events.

TEST_F(InprocTransportTest, EventsFanOutToEveryGroupAndOneConsumerPerGroup) {
  auto t = NewTransport();
  std::map<std::string, int> per_subscriber;
  std::map<std::string, std::map<std::string, int>> per_group_event;
  std::vector<std::unique_ptr<Subscription>> subs;
  for (std::string g : {"payment", "notification", "analytics"}) {
    for (int s = 0; s < 2; ++s) {
      subs.push_back(Subscribe(*t, "svc.Happened", g, [&, g, s](std::unique_ptr<Delivery> d) {
        ++per_subscriber[absl::StrCat(g, s)];
        ++per_group_event[g][d->envelope().data];
        d->Ack();
      }));
    }
  }
  for (int i = 0; i < 6; ++i) Publish(*t, MakeEnvelope("svc.Happened", absl::StrCat(i)));
  ASSERT_EQ(per_group_event.size(), 3u);
  for (const auto& [g, events] : per_group_event) {
    EXPECT_EQ(events.size(), 6u) << g;
    for (const auto& [e, n] : events) EXPECT_EQ(n, 1) << g << " " << e;
  }
  for (const auto& [s, n] : per_subscriber) EXPECT_EQ(n, 3) << s;
  EXPECT_EQ(per_subscriber.size(), 6u);
}

TEST_F(InprocTransportTest, EventsBeforeAGroupExistsAreNotDeliveredToIt) {
  auto t = NewTransport();
  Publish(*t, MakeEnvelope("svc.Early", "before"));
  std::vector<std::string> got;
  auto sub = Subscribe(*t, "svc.Early", "late", [&](std::unique_ptr<Delivery> d) {
    got.push_back(d->envelope().data);
    d->Ack();
  });
  Publish(*t, MakeEnvelope("svc.Early", "after"));
  EXPECT_THAT(got, ::testing::ElementsAre("after"));
}

TEST_F(InprocTransportTest, EventGroupPersistsWhileItsSubscribersAreAway) {
  auto t = NewTransport();
  auto sub = Subscribe(*t, "svc.Kept", "g", [](std::unique_ptr<Delivery> d) { d->Ack(); });
  sub.reset();
  Publish(*t, MakeEnvelope("svc.Kept", "while away"));
  EXPECT_EQ(Depth(*t, "svc.Kept", "g"), 1);
  std::vector<std::string> got;
  sub = Subscribe(*t, "svc.Kept", "g", [&](std::unique_ptr<Delivery> d) {
    got.push_back(d->envelope().data);
    d->Ack();
  });
  EXPECT_THAT(got, ::testing::ElementsAre("while away"));
}

TEST_F(InprocTransportTest, EventRetryAndDeadLetterArePerGroup) {
  auto t = NewTransport();
  std::vector<int> a_attempts;
  int b_count = 0;
  auto a = Subscribe(*t, "svc.Ev", "a", [&](std::unique_ptr<Delivery> d) {
    a_attempts.push_back(d->envelope().attempt);
    if (d->envelope().attempt < 2) {
      d->Retry(absl::Seconds(1));
    } else {
      d->DeadLetter(absl::FailedPreconditionError("gave up"));
    }
  });
  auto b = Subscribe(*t, "svc.Ev", "b", [&](std::unique_ptr<Delivery> d) {
    ++b_count;
    d->Ack();
  });
  Publish(*t, MakeEnvelope("svc.Ev"));
  EXPECT_EQ(b_count, 1);
  EXPECT_THAT(a_attempts, ::testing::ElementsAre(1));
  clock_.Advance(absl::Seconds(1));
  EXPECT_THAT(a_attempts, ::testing::ElementsAre(1, 2));
  EXPECT_EQ(b_count, 1);
  EXPECT_EQ(Depth(*t, DeadLetterAddress("svc.Ev")), 1);
}

TEST_F(InprocTransportTest, PublishWithoutGroupsSucceeds) {
  auto t = NewTransport();
  Publish(*t, MakeEnvelope("svc.Nobody"));
  EXPECT_EQ(Depth(*t, "svc.Nobody", "any"), 0);
}

// ---------------------------------------------------------------------------
// Inboxes.

TEST_F(InprocTransportTest, InboxReceivesRepliesAndAddressesAreUnique) {
  auto t = NewTransport();
  auto other = NewTransport();
  std::vector<std::string> got;
  auto inbox = t->OpenInbox([&](Envelope reply) { got.push_back(reply.data); });
  ASSERT_TRUE(inbox.ok()) << inbox.status();
  auto inbox2 = t->OpenInbox([](Envelope) {});
  ASSERT_TRUE(inbox2.ok());
  EXPECT_NE((*inbox)->address(), (*inbox2)->address());
  EXPECT_THAT((*inbox)->address(), ::testing::StartsWith(absl::StrCat("inproc://", bus_, "/inbox/")));

  std::optional<absl::Status> sent;
  other->SendReply((*inbox)->address(), MakeEnvelope("svc/Reply", "r1"),
                   [&](absl::Status s) { sent = s; });
  ASSERT_TRUE(sent.has_value());
  EXPECT_TRUE(sent->ok()) << *sent;
  EXPECT_THAT(got, ::testing::ElementsAre("r1"));

  const std::string address = (*inbox)->address();
  inbox->reset();
  sent.reset();
  other->SendReply(address, MakeEnvelope("svc/Reply", "r2"), [&](absl::Status s) { sent = s; });
  ASSERT_TRUE(sent.has_value());
  EXPECT_EQ(sent->code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(got.size(), 1u);
}

TEST_F(InprocTransportTest, SendReplyReachesAnInboxOnAnotherBus) {
  auto here = NewTransport();
  auto elsewhere = NewTransport(0, bus_ + "-elsewhere");
  std::vector<std::string> got;
  auto inbox = elsewhere->OpenInbox([&](Envelope reply) { got.push_back(reply.data); });
  ASSERT_TRUE(inbox.ok()) << inbox.status();
  std::optional<absl::Status> sent;
  here->SendReply((*inbox)->address(), MakeEnvelope("svc/Reply", "across"),
                  [&](absl::Status s) { sent = s; });
  ASSERT_TRUE(sent.has_value());
  EXPECT_TRUE(sent->ok()) << *sent;
  EXPECT_THAT(got, ::testing::ElementsAre("across"));
}

TEST_F(InprocTransportTest, SendReplyToUnknownAddressIsNotFound) {
  auto t = NewTransport();
  for (std::string address : {"inproc://nosuchbus/inbox/1", "garbage", ""}) {
    std::optional<absl::Status> sent;
    t->SendReply(address, MakeEnvelope("svc/Reply"), [&](absl::Status s) { sent = s; });
    ASSERT_TRUE(sent.has_value()) << address;
    EXPECT_EQ(sent->code(), absl::StatusCode::kNotFound) << address;
  }
}

}  // namespace
}  // namespace switchboard
