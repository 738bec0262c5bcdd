// The gRPC transport against real servers on 127.0.0.1 (ports chosen by the
// OS): request/reply, status and deadline mapping, metadata seen by a plain
// gRPC server, commands, events, replies, limits, malformed input and TLS.
#include <grpcpp/generic/async_generic_service.h>
#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>

#include <atomic>
#include <cstdlib>
#include <iostream>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>

#include "absl/strings/match.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "grpc_test_util.h"
#include "gtest/gtest.h"
#include "switchboard/v1/envelope.pb.h"
#include "switchboard/v1/transport.grpc.pb.h"
#include "switchboard/v1/transport.pb.h"

namespace switchboard::grpc::testing {
namespace {

using ::testing::HasSubstr;

std::string Local(int port) { return "127.0.0.1:" + std::to_string(port); }

Endpoint Ep(std::string operation, std::string group = "") {
  Endpoint e;
  e.operation = std::move(operation);
  e.group = group.empty() ? e.operation : std::move(group);
  return e;
}

// A pair: `server` listens and serves, `client` targets it ("*").
struct Pair {
  std::unique_ptr<GrpcTransport> server;
  std::unique_ptr<GrpcTransport> client;
};

Pair MakePair(v1::TransportConfig server_config = GrpcConfig("127.0.0.1:0")) {
  Pair p;
  p.server = MustCreate("server", server_config);
  if (p.server == nullptr) return p;
  p.client = MustCreate("client", GrpcConfig("127.0.0.1:0", Local(p.server->bound_port())));
  return p;
}

// Replies with the request's data reversed, or fails as the data says.
RequestHandler EchoHandler() {
  return [](Envelope request, ReplyCallback reply) {
    Envelope out;
    out.id = NewMessageId();
    out.type = request.type;
    out.correlation_id = request.id;
    if (absl::StartsWith(request.data, "fail:")) {
      int code = std::stoi(request.data.substr(5, request.data.find(':', 5) - 5));
      out.status = absl::Status(static_cast<absl::StatusCode>(code),
                                request.data.substr(request.data.find(':', 5) + 1));
    } else {
      out.data = std::string(request.data.rbegin(), request.data.rend());
    }
    std::move(reply)(std::move(out));
  };
}

TEST(GrpcTransportTest, ListensOnAnOsChosenPortAndDeclaresFeatures) {
  auto t = MustCreate("t", GrpcConfig("127.0.0.1:0"));
  ASSERT_NE(t, nullptr);
  EXPECT_GT(t->bound_port(), 0);
  EXPECT_EQ(t->advertised_address(), Local(t->bound_port()));
  EXPECT_EQ(t->type(), "grpc");
  const Features& f = t->features();
  EXPECT_FALSE(f.durable);
  EXPECT_TRUE(f.fan_out_to_groups);
  EXPECT_TRUE(f.native_request_reply);
  EXPECT_FALSE(f.broker_dedup);
  EXPECT_TRUE(f.redelivery_count);
  EXPECT_TRUE(f.reply_routing);
  EXPECT_TRUE(f.cross_process);
  EXPECT_TRUE(f.delayed_redelivery);
}

TEST(GrpcTransportTest, BadConfigIsRefusedWithTheOptionNamed) {
  TransportEnv env;
  v1::TransportConfig config = GrpcConfig("127.0.0.1:0");
  config.mutable_grpc()->mutable_tls()->set_ca_file("/nonexistent/ca.pem");
  auto t = CreateGrpcTransport("t", config, env);
  EXPECT_EQ(t.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(t.status().message()), HasSubstr("grpc.tls.ca_file"));

  auto first = MustCreate("first", GrpcConfig("127.0.0.1:0"));
  ASSERT_NE(first, nullptr);
  auto taken = CreateGrpcTransport("taken", GrpcConfig(Local(first->bound_port())), env);
  EXPECT_EQ(taken.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(std::string(taken.status().message()), HasSubstr("grpc.listen"));
}

TEST(GrpcTransportTest, RequestRoundTripsAcrossTheChannel) {
  Pair p = MakePair();
  ASSERT_NE(p.client, nullptr);
  auto serving = p.server->Serve(Ep("test.v1.Echo/Say"), EchoHandler());
  ASSERT_TRUE(serving.ok()) << serving.status();
  Envelope req = NewEnvelope("test.v1.Echo/Say", "hello");
  req.extensions["tenant"] = "acme";
  absl::StatusOr<Envelope> reply = RequestSync(*p.client, req);
  ASSERT_TRUE(reply.ok()) << reply.status();
  EXPECT_TRUE(reply->status.ok()) << reply->status;
  EXPECT_EQ(reply->data, "olleh");
  EXPECT_EQ(reply->correlation_id, req.id);
}

TEST(GrpcTransportTest, HandlerErrorsKeepCodeAndMessage) {
  Pair p = MakePair();
  ASSERT_NE(p.client, nullptr);
  auto serving = p.server->Serve(Ep("test.v1.Echo/Say"), EchoHandler());
  ASSERT_TRUE(serving.ok());
  for (int code = 1; code <= 16; ++code) {
    std::string message = "failure number " + std::to_string(code) + " with \"quotes\" %";
    absl::Status s = RequestStatus(
        *p.client, NewEnvelope("test.v1.Echo/Say", "fail:" + std::to_string(code) + ":" + message));
    EXPECT_EQ(static_cast<int>(s.code()), code) << s;
    EXPECT_EQ(s.message(), message);
  }
}

int ThreadCount() {
  int n = 0;
  for ([[maybe_unused]] const auto& e : std::filesystem::directory_iterator("/proc/self/task")) ++n;
  return n;
}

TEST(GrpcTransportTest, ManyCallsInFlightUseABoundedNumberOfThreads) {
  Pair p = MakePair();
  ASSERT_NE(p.client, nullptr);
  constexpr int kCalls = 2000;
  // The handler parks every call until all of them are in flight at once.
  absl::Mutex mu;
  std::vector<std::pair<Envelope, ReplyCallback>> parked;
  auto serving = p.server->Serve(Ep("test.v1.Echo/Park"), [&](Envelope req, ReplyCallback reply) {
    absl::MutexLock lock(&mu);
    parked.emplace_back(std::move(req), std::move(reply));
  });
  ASSERT_TRUE(serving.ok());
  const int threads_before = ThreadCount();
  std::atomic<int> ok{0}, done{0};
  const absl::Time start = absl::Now();
  for (int i = 0; i < kCalls; ++i) {
    Envelope req = NewEnvelope("test.v1.Echo/Park", std::to_string(i));
    req.deadline = absl::Now() + absl::Seconds(30);
    p.client->Request(std::move(req), [&, i](absl::StatusOr<Envelope> r) {
      if (r.ok() && r->status.ok() && r->data == std::to_string(i)) ok.fetch_add(1);
      done.fetch_add(1);
    });
  }
  {
    absl::MutexLock lock(&mu);
    auto all = [&]() ABSL_NO_THREAD_SAFETY_ANALYSIS { return parked.size() == size_t{kCalls}; };
    ASSERT_TRUE(mu.AwaitWithTimeout(absl::Condition(&all), kWait)) << parked.size();
  }
  const int threads_in_flight = ThreadCount();
  const absl::Duration to_park = absl::Now() - start;
  {
    absl::MutexLock lock(&mu);
    for (auto& [req, reply] : parked) {
      Envelope out;
      out.id = NewMessageId();
      out.type = req.type;
      out.data = req.data;
      std::move(reply)(std::move(out));
    }
    parked.clear();
  }
  absl::Time until = absl::Now() + kWait;
  while (done.load() < kCalls && absl::Now() < until) absl::SleepFor(absl::Milliseconds(5));
  const absl::Duration total = absl::Now() - start;
  EXPECT_EQ(ok.load(), kCalls);
  // gRPC's callback threads, not one per call.
  EXPECT_LT(threads_in_flight, threads_before + 64)
      << threads_before << " threads before, " << threads_in_flight << " with " << kCalls
      << " calls in flight";
  std::cout << "[ measure  ] " << kCalls << " concurrent calls: all in flight after " << to_park
            << ", all answered after " << total << "; threads " << threads_before << " -> "
            << threads_in_flight << "\n";
}

TEST(GrpcTransportTest, LongErrorMessagesArriveWhole) {
  Pair p = MakePair();
  ASSERT_NE(p.client, nullptr);
  auto serving = p.server->Serve(Ep("test.v1.Echo/Say"), EchoHandler());
  ASSERT_TRUE(serving.ok());
  std::string message(20000, 'm');
  for (size_t i = 0; i < message.size(); i += 7) message[i] = ' ';
  absl::Status s = RequestStatus(*p.client, NewEnvelope("test.v1.Echo/Say", "fail:9:" + message));
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(s.message(), message);
}

TEST(GrpcTransportTest, KeepaliveOptionsAreApplied) {
  v1::TransportConfig server_config = GrpcConfig("127.0.0.1:0");
  server_config.mutable_grpc()->mutable_keepalive_time()->set_seconds(10);
  server_config.mutable_grpc()->mutable_keepalive_timeout()->set_seconds(5);
  Pair p = MakePair(server_config);
  ASSERT_NE(p.client, nullptr);
  v1::TransportConfig client_config = GrpcConfig("", Local(p.server->bound_port()));
  client_config.mutable_grpc()->mutable_keepalive_time()->set_seconds(10);
  client_config.mutable_grpc()->mutable_keepalive_timeout()->set_seconds(5);
  auto client = MustCreate("keepalive", client_config);
  ASSERT_NE(client, nullptr);
  auto serving = p.server->Serve(Ep("test.v1.Echo/Say"), EchoHandler());
  ASSERT_TRUE(serving.ok());
  absl::StatusOr<Envelope> r = RequestSync(*client, NewEnvelope("test.v1.Echo/Say", "ka"));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->data, "ak");
}

TEST(GrpcTransportTest, DeadlineBecomesTheGrpcDeadline) {
  Pair p = MakePair();
  ASSERT_NE(p.client, nullptr);
  absl::Mutex mu;
  std::vector<ReplyCallback> parked;  // never answered before the deadline
  auto serving = p.server->Serve(Ep("test.v1.Echo/Slow"),
                                 [&](Envelope, ReplyCallback reply) {
                                   absl::MutexLock lock(&mu);
                                   parked.push_back(std::move(reply));
                                 });
  ASSERT_TRUE(serving.ok());
  Envelope req = NewEnvelope("test.v1.Echo/Slow");
  req.deadline = absl::Now() + absl::Milliseconds(300);
  absl::Time start = absl::Now();
  absl::Status s = RequestStatus(*p.client, req);
  absl::Duration took = absl::Now() - start;
  EXPECT_EQ(s.code(), absl::StatusCode::kDeadlineExceeded) << s;
  EXPECT_GE(took, absl::Milliseconds(250));
  EXPECT_LT(took, absl::Seconds(3));

  Envelope expired = NewEnvelope("test.v1.Echo/Slow");
  expired.deadline = absl::Now() - absl::Seconds(1);
  EXPECT_EQ(RequestStatus(*p.client, expired).code(), absl::StatusCode::kDeadlineExceeded);

  absl::MutexLock lock(&mu);
  for (ReplyCallback& r : parked) std::move(r)(absl::CancelledError("late"));
}

TEST(GrpcTransportTest, NoServerIsUnavailableFast) {
  Pair p = MakePair();
  ASSERT_NE(p.client, nullptr);
  absl::Time start = absl::Now();
  absl::Status s = RequestStatus(*p.client, NewEnvelope("test.v1.Nobody/Home"));
  EXPECT_EQ(s.code(), absl::StatusCode::kUnavailable) << s;
  EXPECT_THAT(std::string(s.message()), HasSubstr("no handler for test.v1.Nobody/Home"));

  // A target that is down: nothing listens on the port of a closed server.
  int dead_port = 0;
  {
    auto gone = MustCreate("gone", GrpcConfig("127.0.0.1:0"));
    ASSERT_NE(gone, nullptr);
    dead_port = gone->bound_port();
  }
  auto lonely = MustCreate("lonely", GrpcConfig("", Local(dead_port)));
  ASSERT_NE(lonely, nullptr);
  Envelope req = NewEnvelope("test.v1.Echo/Say");
  req.deadline = absl::Now() + absl::Seconds(20);
  s = RequestStatus(*lonely, req);
  EXPECT_EQ(s.code(), absl::StatusCode::kUnavailable) << s;
  EXPECT_LT(absl::Now() - start, absl::Seconds(5));

  // Stopped serving: unavailable again.
  auto serving = p.server->Serve(Ep("test.v1.Echo/Say"), EchoHandler());
  ASSERT_TRUE(serving.ok());
  EXPECT_TRUE(RequestStatus(*p.client, NewEnvelope("test.v1.Echo/Say", "x")).ok());
  serving->reset();
  EXPECT_EQ(RequestStatus(*p.client, NewEnvelope("test.v1.Echo/Say", "x")).code(),
            absl::StatusCode::kUnavailable);
}

TEST(GrpcTransportTest, CommandsAreAcceptedRetriedAndDeadLettered) {
  Pair p = MakePair();
  ASSERT_NE(p.client, nullptr);
  // First delivery: retry; second: dead-letter with a reason.
  Collector consumer([](Delivery& d) {
    if (d.envelope().attempt == 1) {
      d.Retry(absl::ZeroDuration());
    } else {
      d.DeadLetter(absl::FailedPreconditionError("order 7 is closed"));
    }
  });
  Collector dead;
  auto consuming = p.server->Consume(Ep("test.v1.Orders/Place", "test.v1.Orders/Place"),
                                     consumer.Handler());
  ASSERT_TRUE(consuming.ok()) << consuming.status();
  auto dlq = p.server->Consume(Ep(DeadLetterAddress("test.v1.Orders/Place"), DeadLetterAddress("test.v1.Orders/Place")),
                               dead.Handler());
  ASSERT_TRUE(dlq.ok()) << dlq.status();

  Envelope cmd = NewEnvelope("test.v1.Orders/Place", "payload");
  ASSERT_TRUE(EnqueueSync(*p.client, cmd).ok());
  std::vector<Envelope> got = consumer.WaitFor(2);
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[0].id, cmd.id);
  EXPECT_EQ(got[0].attempt, 1);
  EXPECT_EQ(got[1].attempt, 2);
  EXPECT_EQ(got[1].type, "test.v1.Orders/Place");
  std::vector<Envelope> dead_letters = dead.WaitFor(1);
  ASSERT_EQ(dead_letters.size(), 1u);
  EXPECT_EQ(dead_letters[0].id, cmd.id);
  EXPECT_EQ(dead_letters[0].data, "payload");
  EXPECT_EQ(dead_letters[0].extensions["deadletterreason"], "order 7 is closed");
  EXPECT_EQ(dead_letters[0].extensions["deadlettercode"], "FAILED_PRECONDITION");
}

TEST(GrpcTransportTest, DeadLettersGoToAnExplicitTarget) {
  Pair p = MakePair();
  ASSERT_NE(p.client, nullptr);
  // The dead-letter queue is consumed on `client`; `server` is told so.
  p.server->SetTarget(DeadLetterAddress("test.v1.Orders/Bad"), p.client->advertised_address());
  Collector consumer([](Delivery& d) { d.DeadLetter(absl::InvalidArgumentError("bad order")); });
  Collector dead;
  auto consuming = p.server->Consume(Ep("test.v1.Orders/Bad", "g"),
                                     consumer.Handler());
  ASSERT_TRUE(consuming.ok());
  auto dlq = p.client->Consume(Ep(DeadLetterAddress("test.v1.Orders/Bad"), "d"),
                               dead.Handler());
  ASSERT_TRUE(dlq.ok());
  ASSERT_TRUE(EnqueueSync(*p.client, NewEnvelope("test.v1.Orders/Bad", "b")).ok());
  std::vector<Envelope> got = dead.WaitFor(1);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].type, "test.v1.Orders/Bad");
  EXPECT_EQ(got[0].extensions["deadlettercode"], "INVALID_ARGUMENT");
  EXPECT_EQ(got[0].extensions.count("sbqueuedtype"), 0u);
}

TEST(GrpcTransportTest, EventsReachEachGroupOnceThroughTheHub) {
  auto hub = MustCreate("hub", GrpcConfig("127.0.0.1:0"));
  ASSERT_NE(hub, nullptr);
  const std::string at = Local(hub->bound_port());
  auto pub = MustCreate("pub", GrpcConfig("", at));
  auto a = MustCreate("a", GrpcConfig("", at));
  auto b1 = MustCreate("b1", GrpcConfig("", at));
  auto b2 = MustCreate("b2", GrpcConfig("", at));
  ASSERT_TRUE(pub && a && b1 && b2);
  Collector ga, gb1, gb2, local;
  auto sa = a->Subscribe(Ep("test.v1.Ticked", "alpha"), ga.Handler());
  auto sb1 = b1->Subscribe(Ep("test.v1.Ticked", "beta"), gb1.Handler());
  auto sb2 = b2->Subscribe(Ep("test.v1.Ticked", "beta"), gb2.Handler());
  // The hub may subscribe too (it talks to itself over gRPC).
  auto sl = hub->Subscribe(Ep("test.v1.Ticked", "gamma"), local.Handler());
  ASSERT_TRUE(sa.ok() && sb1.ok() && sb2.ok() && sl.ok()) << sa.status() << sb1.status();
  constexpr int kEvents = 20;
  for (int i = 0; i < kEvents; ++i) {
    ASSERT_TRUE(PublishSync(*pub, NewEnvelope("test.v1.Ticked", std::to_string(i))).ok());
  }
  EXPECT_EQ(ga.WaitFor(kEvents).size(), size_t{kEvents});
  EXPECT_EQ(local.WaitFor(kEvents).size(), size_t{kEvents});
  absl::Time until = absl::Now() + kWait;
  while (gb1.size() + gb2.size() < size_t{kEvents} && absl::Now() < until) {
    absl::SleepFor(absl::Milliseconds(10));
  }
  EXPECT_EQ(gb1.size() + gb2.size(), size_t{kEvents});
  EXPECT_GT(gb1.size(), 0u);  // round robin between the group's streams
  EXPECT_GT(gb2.size(), 0u);
  std::vector<Envelope> got = ga.WaitFor(kEvents);
  EXPECT_EQ(got[0].type, "test.v1.Ticked");
  EXPECT_EQ(got[0].extensions.count("sbqueuedtype"), 0u);
}

TEST(GrpcTransportTest, EventSubscribersRetryLocallyWithAttemptCount) {
  auto hub = MustCreate("hub", GrpcConfig("127.0.0.1:0"));
  ASSERT_NE(hub, nullptr);
  auto sub = MustCreate("sub", GrpcConfig("", Local(hub->bound_port())));
  ASSERT_NE(sub, nullptr);
  Collector c([](Delivery& d) {
    if (d.envelope().attempt < 3) {
      d.Retry(absl::Milliseconds(1));
    } else {
      d.Ack();
    }
  });
  auto s = sub->Subscribe(Ep("test.v1.Retried", "g"), c.Handler());
  ASSERT_TRUE(s.ok()) << s.status();
  ASSERT_TRUE(PublishSync(*hub, NewEnvelope("test.v1.Retried")).ok());
  std::vector<Envelope> got = c.WaitFor(3);
  ASSERT_EQ(got.size(), 3u);
  EXPECT_EQ(got[2].attempt, 3);
}

TEST(GrpcTransportTest, SubscriptionsComeBackAfterTheHubRestarts) {
  auto hub = MustCreate("hub", GrpcConfig("127.0.0.1:0"));
  ASSERT_NE(hub, nullptr);
  const int port = hub->bound_port();
  auto sub = MustCreate("sub", GrpcConfig("", Local(port)));
  ASSERT_NE(sub, nullptr);
  Collector c;
  auto s = sub->Subscribe(Ep("test.v1.Restarted", "g"), c.Handler());
  ASSERT_TRUE(s.ok()) << s.status();
  ASSERT_TRUE(PublishSync(*hub, NewEnvelope("test.v1.Restarted", "before")).ok());
  ASSERT_EQ(c.WaitFor(1).size(), 1u);

  hub.reset();
  hub = MustCreate("hub2", GrpcConfig(Local(port)));
  ASSERT_NE(hub, nullptr);
  // Events published before the stream is back are lost (at-most-once on
  // the wire): publish until one arrives, within a bound.
  absl::Time until = absl::Now() + kWait;
  while (c.size() < 2 && absl::Now() < until) {
    ASSERT_TRUE(PublishSync(*hub, NewEnvelope("test.v1.Restarted", "after")).ok());
    c.WaitFor(2, absl::Milliseconds(100));
  }
  std::vector<Envelope> got = c.WaitFor(2, absl::ZeroDuration());
  ASSERT_GE(got.size(), 2u) << "the subscription did not come back";
  EXPECT_EQ(got[1].data, "after");
}

TEST(GrpcTransportTest, EventTargetsGetOneCopyPerGroup) {
  auto pay = MustCreate("pay", GrpcConfig("127.0.0.1:0"));
  auto note = MustCreate("note", GrpcConfig("127.0.0.1:0"));
  ASSERT_TRUE(pay && note);
  v1::TransportConfig pub_config = GrpcConfig("");
  (*pub_config.mutable_grpc()->mutable_event_targets())["payment"] = pay->advertised_address();
  (*pub_config.mutable_grpc()->mutable_event_targets())["notification"] =
      note->advertised_address();
  auto pub = MustCreate("pub", pub_config);
  ASSERT_NE(pub, nullptr);
  Collector cp, cn;
  // Subscribers that receive pushed copies name the hub as themselves.
  auto sp = pay->Subscribe(Ep("test.v1.Paid", "payment"), cp.Handler());
  auto sn = note->Subscribe(Ep("test.v1.Paid", "notification"), cn.Handler());
  ASSERT_TRUE(sp.ok() && sn.ok());
  ASSERT_TRUE(PublishSync(*pub, NewEnvelope("test.v1.Paid", "1")).ok());
  EXPECT_EQ(cp.WaitFor(1).size(), 1u);
  EXPECT_EQ(cn.WaitFor(1).size(), 1u);
  absl::SleepFor(absl::Milliseconds(100));  // a duplicate would show up now
  EXPECT_EQ(cp.size(), 1u);
  EXPECT_EQ(cn.size(), 1u);
}

TEST(GrpcTransportTest, RepliesReachTheInbox) {
  Pair p = MakePair();
  ASSERT_NE(p.client, nullptr);
  absl::Notification got;
  Envelope received;
  auto inbox = p.client->OpenInbox([&](Envelope reply) {
    received = std::move(reply);
    got.Notify();
  });
  ASSERT_TRUE(inbox.ok()) << inbox.status();
  EXPECT_THAT((*inbox)->address(),
              HasSubstr("grpc://" + p.client->advertised_address() + "/inbox/"));
  Envelope reply = NewEnvelope("test.v1.Orders/Place", "done");
  reply.correlation_id = "corr-1";
  absl::Status sent = DoneSync([&](DoneCallback cb) {
    p.server->SendReply((*inbox)->address(), reply, std::move(cb));
  });
  ASSERT_TRUE(sent.ok()) << sent;
  ASSERT_TRUE(got.WaitForNotificationWithTimeout(kWait));
  EXPECT_EQ(received.correlation_id, "corr-1");
  EXPECT_EQ(received.data, "done");

  std::string address = (*inbox)->address();
  inbox->reset();
  absl::Status closed = DoneSync([&](DoneCallback cb) {
    p.server->SendReply(address, NewEnvelope("t"), std::move(cb));
  });
  EXPECT_EQ(closed.code(), absl::StatusCode::kNotFound) << closed;
  absl::Status bad = DoneSync([&](DoneCallback cb) {
    p.server->SendReply("nats://x", NewEnvelope("t"), std::move(cb));
  });
  EXPECT_EQ(bad.code(), absl::StatusCode::kInvalidArgument);
}

TEST(GrpcTransportTest, OversizedMessagesAreResourceExhausted) {
  v1::TransportConfig small = GrpcConfig("127.0.0.1:0");
  small.mutable_grpc()->set_max_message_bytes(64 * 1024);
  Pair p = MakePair(small);
  ASSERT_NE(p.client, nullptr);
  auto serving = p.server->Serve(Ep("test.v1.Echo/Say"), EchoHandler());
  ASSERT_TRUE(serving.ok());
  absl::Status s = RequestStatus(*p.client, NewEnvelope("test.v1.Echo/Say", std::string(256 * 1024, 'x')));
  EXPECT_EQ(s.code(), absl::StatusCode::kResourceExhausted) << s;
  EXPECT_FALSE(s.message().empty());
  // Counted on the receiving side (gRPC may answer before the service
  // hears of it), not as malformed.
  for (int i = 0; i < 5000 && p.server->stats().unreadable == 0; ++i) {
    absl::SleepFor(absl::Milliseconds(1));
  }
  EXPECT_EQ(p.server->stats().unreadable, 1u);
  EXPECT_EQ(p.server->stats().malformed, 0u);
  // The server is still there.
  EXPECT_TRUE(RequestStatus(*p.client, NewEnvelope("test.v1.Echo/Say", "small")).ok());
  EXPECT_EQ(p.server->stats().unreadable, 1u);
  // The limit also holds for what this transport sends.
  auto limited = MustCreate("limited", [&] {
    v1::TransportConfig c = GrpcConfig("", Local(p.server->bound_port()));
    c.mutable_grpc()->set_max_message_bytes(1024);
    return c;
  }());
  ASSERT_NE(limited, nullptr);
  EXPECT_EQ(RequestStatus(*limited, NewEnvelope("test.v1.Echo/Say", std::string(4096, 'y'))).code(),
            absl::StatusCode::kResourceExhausted);
}

// A client that is not Switchboard: the generic stub with raw bytes.
::grpc::Status RawCall(int port, const std::string& method, const std::string& body,
                       std::string* response = nullptr,
                       std::multimap<std::string, std::string> metadata = {}) {
  auto channel = ::grpc::CreateChannel(Local(port), ::grpc::InsecureChannelCredentials());
  ::grpc::GenericStub stub(channel);
  ::grpc::ClientContext ctx;
  for (const auto& [k, v] : metadata) ctx.AddMetadata(k, v);
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  ::grpc::Slice slice(body);
  ::grpc::ByteBuffer request(&slice, 1), reply;
  absl::Notification done;
  ::grpc::Status result;
  stub.UnaryCall(&ctx, method, ::grpc::StubOptions(), &request, &reply,
                 [&](::grpc::Status s) {
                   result = std::move(s);
                   done.Notify();
                 });
  if (!done.WaitForNotificationWithTimeout(kWait)) {
    return ::grpc::Status(::grpc::StatusCode::UNKNOWN, "test: no answer");
  }
  if (response != nullptr) {
    std::vector<::grpc::Slice> slices;
    (void)reply.Dump(&slices);
    response->clear();
    for (auto& s : slices) response->append(reinterpret_cast<const char*>(s.begin()), s.size());
  }
  return result;
}

// A PublishRequest with a group goes to that group's local queue only; one
// without goes through the hub to every subscribed group.
TEST(GrpcTransportTest, APublishedGroupReachesThatGroupOnly) {
  auto pay = MustCreate("pay", GrpcConfig("127.0.0.1:0"));
  ASSERT_NE(pay, nullptr);
  Collector c;
  auto sub = pay->Subscribe(Ep("test.v1.Paid", "payment"), c.Handler());
  ASSERT_TRUE(sub.ok()) << sub.status();
  auto publish = [&](std::string_view group, std::string_view data) {
    v1::PublishRequest req;
    ToProto(NewEnvelope("test.v1.Paid", std::string(data)), req.mutable_event());
    req.set_group(std::string(group));
    return RawCall(pay->bound_port(), std::string(kMethodPublish), req.SerializeAsString());
  };
  ::grpc::Status s = publish("audit", "for audit");  // a group nobody here consumes
  ASSERT_TRUE(s.ok()) << s.error_message();
  s = publish("payment", "for payment");
  ASSERT_TRUE(s.ok()) << s.error_message();
  std::vector<Envelope> got = c.WaitFor(1);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].data, "for payment");
  s = publish("", "through the hub");
  ASSERT_TRUE(s.ok()) << s.error_message();
  got = c.WaitFor(2);
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[1].data, "through the hub");
  absl::SleepFor(absl::Milliseconds(100));  // the audit copy would show up now
  EXPECT_EQ(c.size(), 2u);
}

// A client that opens a call and half-closes it without a request message:
// the call is refused, and counted as unreadable, not as malformed.
TEST(GrpcTransportTest, ACallWithoutARequestMessageIsCountedUnreadable) {
  auto server = MustCreate("server", GrpcConfig("127.0.0.1:0"));
  ASSERT_NE(server, nullptr);
  auto serving = server->Serve(Ep("test.v1.Echo/Say"), EchoHandler());
  ASSERT_TRUE(serving.ok());
  class HalfClose final : public ::grpc::ClientBidiReactor<::grpc::ByteBuffer, ::grpc::ByteBuffer> {
   public:
    void OnDone(const ::grpc::Status& s) override {
      status = s;
      done.Notify();
    }
    ::grpc::Status status;
    absl::Notification done;
  };
  auto channel =
      ::grpc::CreateChannel(Local(server->bound_port()), ::grpc::InsecureChannelCredentials());
  ::grpc::GenericStub stub(channel);
  ::grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  HalfClose call;
  stub.PrepareBidiStreamingCall(&ctx, std::string(kMethodCall), ::grpc::StubOptions(), &call);
  call.StartWritesDone();
  call.StartCall();
  ASSERT_TRUE(call.done.WaitForNotificationWithTimeout(kWait));
  EXPECT_EQ(call.status.error_code(), ::grpc::StatusCode::INVALID_ARGUMENT)
      << call.status.error_message();
  EXPECT_THAT(call.status.error_message(), HasSubstr("no request message"));
  EXPECT_EQ(server->stats().unreadable, 1u);
  EXPECT_EQ(server->stats().malformed, 0u);
}

TEST(GrpcTransportTest, MalformedRequestsAreInvalidArgument) {
  auto server = MustCreate("server", GrpcConfig("127.0.0.1:0"));
  ASSERT_NE(server, nullptr);
  auto serving = server->Serve(Ep("test.v1.Echo/Say"), EchoHandler());
  ASSERT_TRUE(serving.ok());
  constexpr char kGarbage[] = "\xff\xff\xff\xff\x0f garbage \x01\x02";
  const std::string garbage(kGarbage, sizeof(kGarbage) - 1);
  for (std::string_view method : {kMethodCall, kMethodEnqueue, kMethodPublish, kMethodReply,
                                  kMethodSubscribe}) {
    ::grpc::Status s = RawCall(server->bound_port(), std::string(method), garbage);
    EXPECT_EQ(s.error_code(), ::grpc::StatusCode::INVALID_ARGUMENT) << method << ": "
                                                                    << s.error_message();
    EXPECT_THAT(s.error_message(), HasSubstr("malformed")) << method;
  }
  // The reply names the message the body should have been.
  for (auto [method, message] :
       {std::pair{kMethodEnqueue, "switchboard.v1.EnqueueRequest"},
        std::pair{kMethodPublish, "switchboard.v1.PublishRequest"},
        std::pair{kMethodReply, "switchboard.v1.ReplyRequest"}}) {
    ::grpc::Status s = RawCall(server->bound_port(), std::string(method), garbage);
    EXPECT_THAT(s.error_message(), HasSubstr(std::string("is not a ") + message)) << method;
  }
  // A well-formed protobuf that is not a valid envelope (no id, no type).
  v1::Envelope empty;
  ::grpc::Status s = RawCall(server->bound_port(), std::string(kMethodCall), empty.SerializeAsString());
  EXPECT_EQ(s.error_code(), ::grpc::StatusCode::INVALID_ARGUMENT) << s.error_message();
  EXPECT_THAT(s.error_message(), HasSubstr("malformed envelope"));
  // The same inside a command and an event.
  v1::EnqueueRequest enqueue;
  enqueue.mutable_command();
  enqueue.set_queue("test.v1.Echo/Say");
  s = RawCall(server->bound_port(), std::string(kMethodEnqueue), enqueue.SerializeAsString());
  EXPECT_EQ(s.error_code(), ::grpc::StatusCode::INVALID_ARGUMENT) << s.error_message();
  EXPECT_THAT(s.error_message(), HasSubstr("malformed envelope"));
  v1::PublishRequest publish;
  publish.mutable_event()->set_id("e-1");  // no type
  s = RawCall(server->bound_port(), std::string(kMethodPublish), publish.SerializeAsString());
  EXPECT_EQ(s.error_code(), ::grpc::StatusCode::INVALID_ARGUMENT) << s.error_message();
  EXPECT_THAT(s.error_message(), HasSubstr("malformed envelope"));
  EXPECT_GE(server->stats().malformed, 11u);
  // Unknown methods are UNIMPLEMENTED, and the server still serves.
  EXPECT_EQ(RawCall(server->bound_port(), "/switchboard.v1.Switchboard/Nope", "").error_code(),
            ::grpc::StatusCode::UNIMPLEMENTED);
  auto client = MustCreate("client", GrpcConfig("", Local(server->bound_port())));
  ASSERT_NE(client, nullptr);
  EXPECT_TRUE(RequestStatus(*client, NewEnvelope("test.v1.Echo/Say", "ok")).ok());
}

// One value of metadata a client received, or "<missing>".
std::string ReceivedValue(const std::multimap<::grpc::string_ref, ::grpc::string_ref>& md,
                          const std::string& key) {
  auto it = md.find(key);
  return it == md.end() ? std::string("<missing>")
                        : std::string(it->second.data(), it->second.size());
}

TEST(GrpcTransportTest, PlainGrpcClientsUseThePublishedServiceAndMetadata) {
  auto server = MustCreate("server", GrpcConfig("127.0.0.1:0"));
  ASSERT_NE(server, nullptr);
  Envelope seen;
  auto serving = server->Serve(Ep("test.v1.Echo/Say"),
                               [&](Envelope request, ReplyCallback reply) {
                                 seen = request;
                                 EchoHandler()(std::move(request), std::move(reply));
                               });
  ASSERT_TRUE(serving.ok());
  auto channel = ::grpc::CreateChannel(Local(server->bound_port()),
                                       ::grpc::InsecureChannelCredentials());
  auto stub = v1::Switchboard::NewStub(channel);
  // Only the payload in the body; the attributes as metadata.
  v1::Envelope request;
  request.set_data("abc");
  v1::Envelope reply;
  ::grpc::ClientContext ctx;
  ctx.AddMetadata("ce-id", "plain-1");
  ctx.AddMetadata("ce-type", "test.v1.Echo/Say");
  ctx.AddMetadata("ce-source", "//plain");
  ctx.AddMetadata("traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01");
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  ::grpc::Status s = stub->Call(&ctx, request, &reply);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(reply.data(), "cba");
  EXPECT_EQ(seen.id, "plain-1");
  EXPECT_EQ(seen.source, "//plain");
  EXPECT_EQ(seen.traceparent, "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01");
  // The gRPC deadline (grpc-timeout) becomes the envelope's deadline.
  EXPECT_TRUE(seen.has_deadline());
  EXPECT_LT(seen.deadline, absl::Now() + absl::Seconds(11));
  // The reply's attributes are in its body; by default none is repeated as
  // metadata.
  EXPECT_EQ(reply.correlation_id(), "plain-1");
  EXPECT_EQ(reply.type(), "test.v1.Echo/Say");
  for (const auto& [key, value] : ctx.GetServerInitialMetadata()) {
    EXPECT_NE(std::string_view(key.data(), key.size()).substr(0, 3), "ce-")
        << std::string_view(key.data(), key.size());
  }

  // A handler error: the gRPC status, plus the reply attributes as trailers.
  v1::Envelope failing;
  failing.set_id("plain-2");
  failing.set_type("test.v1.Echo/Say");
  failing.set_data("fail:5:order 9 not found");
  ::grpc::ClientContext ctx2;
  s = stub->Call(&ctx2, failing, &reply);
  EXPECT_EQ(s.error_code(), ::grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(s.error_message(), "order 9 not found");
  // An error reply has no body: all its attributes are trailers.
  auto trailer = [&](const std::string& key) {
    return ReceivedValue(ctx2.GetServerTrailingMetadata(), key);
  };
  EXPECT_EQ(trailer("ce-correlationid"), "plain-2");
  EXPECT_EQ(trailer("ce-type"), "test.v1.Echo/Say");
  EXPECT_EQ(trailer("ce-statuscode"), "5");
  EXPECT_NE(trailer("ce-id"), "<missing>");
}

// With `full_metadata: true` a reply with a body repeats its attributes as
// initial metadata, for readers that see only metadata.
TEST(GrpcTransportTest, FullMetadataRepeatsTheReplyAttributesAsInitialMetadata) {
  v1::TransportConfig config = GrpcConfig("127.0.0.1:0");
  config.mutable_grpc()->set_full_metadata(true);
  auto server = MustCreate("server", config);
  ASSERT_NE(server, nullptr);
  auto serving = server->Serve(Ep("test.v1.Echo/Say"), EchoHandler());
  ASSERT_TRUE(serving.ok());
  auto stub = v1::Switchboard::NewStub(::grpc::CreateChannel(
      Local(server->bound_port()), ::grpc::InsecureChannelCredentials()));
  v1::Envelope request;
  request.set_id("plain-3");
  request.set_type("test.v1.Echo/Say");
  request.set_data("abc");
  v1::Envelope reply;
  ::grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  ::grpc::Status s = stub->Call(&ctx, request, &reply);
  ASSERT_TRUE(s.ok()) << s.error_message();
  auto get = [&](const std::string& key) {
    return ReceivedValue(ctx.GetServerInitialMetadata(), key);
  };
  EXPECT_EQ(get("ce-correlationid"), "plain-3");
  EXPECT_EQ(get("ce-type"), "test.v1.Echo/Say");
  EXPECT_EQ(get("ce-id"), reply.id());
}

// A gRPC server that is not Switchboard: records the metadata it receives.
class RecordingService final : public ::grpc::CallbackGenericService {
 public:
  ::grpc::ServerGenericBidiReactor* CreateReactor(
      ::grpc::GenericCallbackServerContext* ctx) override {
    {
      absl::MutexLock lock(&mu);
      metadata.clear();
      for (const auto& [k, v] : ctx->client_metadata()) {
        metadata.emplace(std::string(k.data(), k.size()), std::string(v.data(), v.size()));
      }
      remaining = ctx->deadline() - std::chrono::system_clock::now();
    }
    class Reactor final : public ::grpc::ServerGenericBidiReactor {
     public:
      Reactor() { StartRead(&in_); }
      void OnReadDone(bool ok) override {
        if (!ok) return Finish(::grpc::Status::CANCELLED);
        std::vector<::grpc::Slice> slices;
        (void)in_.Dump(&slices);
        std::string bytes;
        for (auto& s : slices) bytes.append(reinterpret_cast<const char*>(s.begin()), s.size());
        v1::Envelope env;
        env.ParseFromString(bytes);
        env.set_data("pong");
        ::grpc::Slice slice(env.SerializeAsString());
        out_ = ::grpc::ByteBuffer(&slice, 1);
        StartWriteAndFinish(&out_, ::grpc::WriteOptions(), ::grpc::Status::OK);
      }
      void OnDone() override { delete this; }

     private:
      ::grpc::ByteBuffer in_, out_;
    };
    return new Reactor;
  }
  absl::Mutex mu;
  std::multimap<std::string, std::string> metadata;
  std::chrono::system_clock::duration remaining{};
};

// Default: the routing set (ce-type, traceparent, tracestate); with
// `full_metadata: true` every attribute.
class MetadataSetTest : public ::testing::TestWithParam<bool> {};
INSTANTIATE_TEST_SUITE_P(RoutingAndFull, MetadataSetTest, ::testing::Bool());

TEST_P(MetadataSetTest, AttributesTravelAsMetadataToAPlainServer) {
  const bool full = GetParam();
  RecordingService service;
  ::grpc::ServerBuilder builder;
  int port = 0;
  builder.AddListeningPort("127.0.0.1:0", ::grpc::InsecureServerCredentials(), &port);
  builder.RegisterCallbackGenericService(&service);
  std::unique_ptr<::grpc::Server> server = builder.BuildAndStart();
  ASSERT_NE(server, nullptr);
  v1::TransportConfig config = GrpcConfig("", Local(port));
  config.mutable_grpc()->set_full_metadata(full);
  auto client = MustCreate("client", config);
  ASSERT_NE(client, nullptr);
  Envelope req = NewEnvelope("test.v1.Echo/Say", "ping");
  req.traceparent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
  req.tracestate = "congo=t61rcWkgMzE";
  req.idempotency_key = "idem 1";
  req.deadline = absl::Now() + absl::Seconds(5);
  req.style = Style::kRequest;
  absl::StatusOr<Envelope> reply = RequestSync(*client, req);
  ASSERT_TRUE(reply.ok()) << reply.status();
  EXPECT_EQ(reply->data, "pong");
  absl::MutexLock lock(&service.mu);
  auto get = [&](const std::string& k) {
    auto it = service.metadata.find(k);
    return it == service.metadata.end() ? std::string("<missing>") : it->second;
  };
  EXPECT_EQ(get("ce-type"), "test.v1.Echo/Say");
  EXPECT_EQ(get("traceparent"), req.traceparent);
  EXPECT_EQ(get("tracestate"), req.tracestate);
  if (full) {
    EXPECT_EQ(get("ce-id"), req.id);
    EXPECT_EQ(get("ce-source"), "//test");
    EXPECT_EQ(get("ce-specversion"), "1.0");
    EXPECT_EQ(get("ce-idempotencykey"), "idem%201");
    EXPECT_EQ(get("ce-style"), "request");
    EXPECT_NE(get("ce-expirytime"), "<missing>");
  } else {
    EXPECT_EQ(get("ce-id"), "<missing>");
    EXPECT_EQ(get("ce-source"), "<missing>");
    EXPECT_EQ(get("ce-specversion"), "<missing>");
    EXPECT_EQ(get("ce-idempotencykey"), "<missing>");
    EXPECT_EQ(get("ce-style"), "<missing>");
    EXPECT_EQ(get("ce-expirytime"), "<missing>");
  }
  // The deadline is gRPC's own.
  EXPECT_GT(service.remaining, std::chrono::seconds(3));
  EXPECT_LE(service.remaining, std::chrono::seconds(6));
  server->Shutdown();
}

// ---- TLS ----

class TlsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() / ("sb-grpc-tls-" + NewMessageId());
    std::filesystem::create_directories(dir_);
    const std::string d = dir_.string();
    const std::string ec = "-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes";
    std::string script =
        "set -e; cd '" + d + "'; "
        "openssl req -x509 " + ec + " -keyout ca.key -out ca.crt -days 1 -subj /CN=sb-test-ca "
        "-addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign; "
        "openssl req " + ec + " -keyout server.key -out server.csr -subj /CN=localhost; "
        "printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\\n' > server.ext; "
        "openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial "
        "-out server.crt -days 1 -extfile server.ext; "
        "openssl req " + ec + " -keyout client.key -out client.csr -subj /CN=sb-test-client; "
        "openssl x509 -req -in client.csr -CA ca.crt -CAkey ca.key -CAcreateserial "
        "-out client.crt -days 1; "
        "openssl req -x509 " + ec + " -keyout other.key -out other.crt -days 1 -subj /CN=other";
    const std::string cmd = "bash -c \"" + script + "\" > '" + d + "/openssl.log' 2>&1";
    ASSERT_EQ(std::system(cmd.c_str()), 0) << "openssl failed, see " << d << "/openssl.log";
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::string F(const std::string& name) const { return (dir_ / name).string(); }

  v1::TransportConfig ServerConfig(bool mutual) const {
    v1::TransportConfig c = GrpcConfig("127.0.0.1:0");
    v1::TlsOptions* tls = c.mutable_grpc()->mutable_tls();
    tls->set_ca_file(F("ca.crt"));
    tls->set_cert_file(F("server.crt"));
    tls->set_key_file(F("server.key"));
    tls->set_mutual(mutual);
    return c;
  }
  v1::TransportConfig ClientConfig(int port, const std::string& cert, const std::string& key,
                                   const std::string& ca = "ca.crt") const {
    v1::TransportConfig c = GrpcConfig("", Local(port));
    v1::TlsOptions* tls = c.mutable_grpc()->mutable_tls();
    tls->set_ca_file(F(ca));
    if (!cert.empty()) tls->set_cert_file(F(cert));
    if (!key.empty()) tls->set_key_file(F(key));
    return c;
  }

  std::filesystem::path dir_;
};

TEST_F(TlsTest, ServerTlsAcceptsClientsThatTrustItsCa) {
  auto server = MustCreate("server", ServerConfig(/*mutual=*/false));
  ASSERT_NE(server, nullptr);
  auto serving = server->Serve(Ep("test.v1.Echo/Say"), EchoHandler());
  ASSERT_TRUE(serving.ok());
  auto client = MustCreate("client", ClientConfig(server->bound_port(), "", ""));
  ASSERT_NE(client, nullptr);
  absl::StatusOr<Envelope> r = RequestSync(*client, NewEnvelope("test.v1.Echo/Say", "tls"));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->data, "slt");
  // A client that does not trust the server's CA is refused.
  auto wary = MustCreate("wary", ClientConfig(server->bound_port(), "", "", "other.crt"));
  ASSERT_NE(wary, nullptr);
  EXPECT_EQ(RequestStatus(*wary, NewEnvelope("test.v1.Echo/Say", "x")).code(),
            absl::StatusCode::kUnavailable);
}

TEST_F(TlsTest, MutualTlsNeedsAValidClientCertificate) {
  auto server = MustCreate("server", ServerConfig(/*mutual=*/true));
  ASSERT_NE(server, nullptr);
  auto serving = server->Serve(Ep("test.v1.Echo/Say"), EchoHandler());
  ASSERT_TRUE(serving.ok());

  auto good = MustCreate("good", ClientConfig(server->bound_port(), "client.crt", "client.key"));
  ASSERT_NE(good, nullptr);
  absl::StatusOr<Envelope> r = RequestSync(*good, NewEnvelope("test.v1.Echo/Say", "mtls"));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->data, "sltm");

  auto anonymous = MustCreate("anonymous", ClientConfig(server->bound_port(), "", ""));
  ASSERT_NE(anonymous, nullptr);
  absl::Status s = RequestStatus(*anonymous, NewEnvelope("test.v1.Echo/Say", "x"));
  EXPECT_EQ(s.code(), absl::StatusCode::kUnavailable) << s;

  // A certificate from a CA the server does not trust is refused as well.
  auto stranger = MustCreate("stranger", ClientConfig(server->bound_port(), "other.crt", "other.key"));
  ASSERT_NE(stranger, nullptr);
  EXPECT_EQ(RequestStatus(*stranger, NewEnvelope("test.v1.Echo/Say", "x")).code(),
            absl::StatusCode::kUnavailable);
}

}  // namespace
}  // namespace switchboard::grpc::testing
