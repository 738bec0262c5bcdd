// The Send stream: commands, events and replies as frames on one stream per
// target (transport.proto, Send), against Switchboard servers and against
// plain gRPC servers on 127.0.0.1: one without Send, one that never
// answers, one that answers garbage.
#include <grpcpp/generic/async_generic_service.h>
#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>

#include <atomic>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "absl/synchronization/notification.h"
#include "gmock/gmock.h"
#include "grpc_test_util.h"
#include "gtest/gtest.h"
#include "switchboard/clock.h"
#include "switchboard/v1/envelope.pb.h"
#include "switchboard/v1/transport.pb.h"

namespace switchboard::grpc::testing {
namespace {

using ::testing::HasSubstr;

std::string Local(int port) { return "127.0.0.1:" + std::to_string(port); }

Endpoint Ep(std::string operation) {
  Endpoint e;
  e.operation = operation;
  e.group = std::move(operation);
  return e;
}

std::string Bytes(const ::grpc::ByteBuffer& buffer) {
  std::vector<::grpc::Slice> slices;
  std::string out;
  if (!buffer.Dump(&slices).ok()) return out;
  for (const ::grpc::Slice& s : slices) {
    out.append(reinterpret_cast<const char*>(s.begin()), s.size());
  }
  return out;
}

::grpc::ByteBuffer Buffer(const std::string& bytes) {
  ::grpc::Slice slice(bytes);
  return ::grpc::ByteBuffer(&slice, 1);
}

// Sends `n` commands at once; returns how many were accepted.
int EnqueueMany(Transport& t, const std::string& op, int n, std::set<std::string>* ids) {
  std::atomic<int> ok{0};
  std::atomic<int> answered{0};
  absl::Notification all;
  for (int i = 0; i < n; ++i) {
    Envelope cmd = NewEnvelope(op, "c" + std::to_string(i));
    ids->insert(cmd.id);
    t.Enqueue(std::move(cmd), [&, n](absl::Status s) {
      if (s.ok()) ok.fetch_add(1);
      if (answered.fetch_add(1) + 1 == n) all.Notify();
    });
  }
  EXPECT_TRUE(all.WaitForNotificationWithTimeout(kWait)) << answered.load() << " of " << n;
  return ok.load();
}

TEST(GrpcSendStreamTest, CommandsAndRepliesTravelAsFramesOnOneStream) {
  auto server = MustCreate("server", GrpcConfig("127.0.0.1:0"));
  ASSERT_NE(server, nullptr);
  const std::string op = "test.v1.Orders/Place";
  Collector consumer;
  auto consuming = server->Consume(Ep(op), consumer.Handler());
  ASSERT_TRUE(consuming.ok()) << consuming.status();
  auto client = MustCreate("client", GrpcConfig("", Local(server->bound_port())));
  ASSERT_NE(client, nullptr);

  std::set<std::string> sent;
  ASSERT_EQ(EnqueueMany(*client, op, 200, &sent), 200);
  std::vector<Envelope> got = consumer.WaitFor(200);
  ASSERT_EQ(got.size(), 200u);
  std::set<std::string> received;
  for (const Envelope& e : got) received.insert(e.id);
  EXPECT_EQ(received, sent);

  // A reply to an inbox of the server's node takes the same stream.
  absl::Notification replied;
  Envelope seen;
  auto inbox = server->OpenInbox([&](Envelope reply) {
    seen = std::move(reply);
    replied.Notify();
  });
  ASSERT_TRUE(inbox.ok()) << inbox.status();
  Envelope reply = NewEnvelope(op, "done");
  reply.correlation_id = "c-1";
  EXPECT_TRUE(DoneSync([&](DoneCallback cb) {
                client->SendReply((*inbox)->address(), reply, std::move(cb));
              }).ok());
  ASSERT_TRUE(replied.WaitForNotificationWithTimeout(kWait));
  EXPECT_EQ(seen.id, reply.id);
  EXPECT_EQ(seen.correlation_id, "c-1");
  // A closed inbox is NOT_FOUND, as the unary Reply answers.
  const std::string address = (*inbox)->address();
  inbox->reset();
  absl::Status closed = DoneSync(
      [&](DoneCallback cb) { client->SendReply(address, NewEnvelope(op), std::move(cb)); });
  EXPECT_EQ(closed.code(), absl::StatusCode::kNotFound) << closed;

  EXPECT_EQ(client->stats().streamed_sends, 202u);
  EXPECT_EQ(client->stats().unary_sends, 0u);
}

TEST(GrpcSendStreamTest, UnarySendsAndTargetsOfSeveralServersUseUnaryCalls) {
  auto server = MustCreate("server", GrpcConfig("127.0.0.1:0"));
  ASSERT_NE(server, nullptr);
  const std::string op = "test.v1.Orders/Unary";
  Collector consumer;
  auto consuming = server->Consume(Ep(op), consumer.Handler());
  ASSERT_TRUE(consuming.ok()) << consuming.status();
  const std::string one = Local(server->bound_port());

  v1::TransportConfig unary = GrpcConfig("", one);
  unary.mutable_grpc()->set_unary_sends(true);
  auto client = MustCreate("unary", unary);
  ASSERT_NE(client, nullptr);
  std::set<std::string> sent;
  ASSERT_EQ(EnqueueMany(*client, op, 20, &sent), 20);
  EXPECT_EQ(client->stats().unary_sends, 20u);
  EXPECT_EQ(client->stats().streamed_sends, 0u);

  // gRPC spreads a list's calls over its servers; a stream would not.
  auto listed = MustCreate("listed", GrpcConfig("", one + "," + one));
  ASSERT_NE(listed, nullptr);
  EXPECT_TRUE(EnqueueSync(*listed, NewEnvelope(op)).ok());
  EXPECT_EQ(listed->stats().unary_sends, 1u);
  EXPECT_EQ(listed->stats().streamed_sends, 0u);

  auto named = MustCreate("named", GrpcConfig("", "localhost:" +
                                                      std::to_string(server->bound_port())));
  ASSERT_NE(named, nullptr);
  EXPECT_TRUE(EnqueueSync(*named, NewEnvelope(op)).ok());
  EXPECT_EQ(named->stats().streamed_sends, 1u);

  // A large command goes alone, as a unary call.
  EXPECT_TRUE(EnqueueSync(*named, NewEnvelope(op, std::string(64 * 1024, 'x'))).ok());
  EXPECT_EQ(named->stats().unary_sends, 1u);
  EXPECT_EQ(consumer.WaitFor(23).size(), 23u);
}

// A gRPC server that is not Switchboard. Enqueue answers Accepted and
// records the command; Send, when `send` is set, records each batch and
// then stays silent or answers with `send_reply` bytes; with
// `end_first_stream` its first Send stream ends UNAVAILABLE after one batch
// and the later ones ack every frame.
class PlainService final : public ::grpc::CallbackGenericService {
 public:
  bool send = false;
  std::string send_reply;  // empty: never answer
  bool end_first_stream = false;

  ::grpc::ServerGenericBidiReactor* CreateReactor(
      ::grpc::GenericCallbackServerContext* ctx) override {
    if (ctx->method() == kMethodEnqueue) return new EnqueueReactor(this);
    if (ctx->method() == kMethodSend && send) return new SendReactor(this);
    return ::grpc::CallbackGenericService::CreateReactor(ctx);  // UNIMPLEMENTED
  }

  std::vector<std::string> enqueued() {
    absl::MutexLock lock(&mu_);
    return enqueued_;
  }
  // Waits for a batch (bounded).
  std::vector<v1::SendBatch> WaitForBatches(size_t n) {
    absl::MutexLock lock(&mu_);
    auto enough = [this, n]() ABSL_NO_THREAD_SAFETY_ANALYSIS { return batches_.size() >= n; };
    mu_.AwaitWithTimeout(absl::Condition(&enough), kWait);
    return batches_;
  }
  int bad_batches() {
    absl::MutexLock lock(&mu_);
    return bad_batches_;
  }

 private:
  class EnqueueReactor final : public ::grpc::ServerGenericBidiReactor {
   public:
    explicit EnqueueReactor(PlainService* s) : s_(s) { StartRead(&in_); }
    void OnReadDone(bool ok) override {
      v1::EnqueueRequest req;
      if (!ok || !req.ParseFromString(Bytes(in_))) {
        Finish(::grpc::Status(::grpc::StatusCode::INVALID_ARGUMENT, "bad"));
        return;
      }
      {
        absl::MutexLock lock(&s_->mu_);
        s_->enqueued_.push_back(req.command().id());
      }
      v1::Accepted accepted;
      accepted.set_id(req.command().id());
      out_ = Buffer(accepted.SerializeAsString());
      StartWriteAndFinish(&out_, ::grpc::WriteOptions(), ::grpc::Status::OK);
    }
    void OnDone() override { delete this; }

   private:
    PlainService* s_;
    ::grpc::ByteBuffer in_, out_;
  };

  class SendReactor final : public ::grpc::ServerGenericBidiReactor {
   public:
    explicit SendReactor(PlainService* s) : s_(s) {
      {
        absl::MutexLock lock(&s_->mu_);
        index_ = s_->send_streams_++;
      }
      StartRead(&in_);
    }
    void OnReadDone(bool ok) override {
      if (!ok) return;  // the client went away: OnCancel finishes
      v1::SendBatch batch;
      const bool parsed = batch.ParseFromString(Bytes(in_));
      {
        absl::MutexLock lock(&s_->mu_);
        if (parsed) {
          s_->batches_.push_back(batch);
        } else {
          ++s_->bad_batches_;
        }
      }
      if (s_->end_first_stream && index_ == 0) {
        FinishOnce(::grpc::Status(::grpc::StatusCode::UNAVAILABLE, "the plain server is going away"));
        return;
      }
      std::string reply = s_->send_reply;
      if (s_->end_first_stream) {
        v1::AckBatch acks;
        for (const v1::SendFrame& f : batch.frames()) acks.add_acks()->set_seq(f.seq());
        reply = acks.SerializeAsString();
      }
      if (!reply.empty() && !writing_) {
        writing_ = true;
        out_ = Buffer(reply);
        StartWrite(&out_);
      }
      StartRead(&in_);
    }
    void OnWriteDone(bool) override { writing_ = false; }
    void OnCancel() override { FinishOnce(::grpc::Status::CANCELLED); }
    void OnDone() override { delete this; }

   private:
    // OnCancel may come after this reactor finished on its own.
    void FinishOnce(const ::grpc::Status& status) {
      if (!finished_.exchange(true)) Finish(status);
    }

    PlainService* s_;
    int index_ = 0;
    ::grpc::ByteBuffer in_, out_;
    std::atomic<bool> writing_{false};
    std::atomic<bool> finished_{false};
  };

  absl::Mutex mu_;
  std::vector<std::string> enqueued_ ABSL_GUARDED_BY(mu_);
  std::vector<v1::SendBatch> batches_ ABSL_GUARDED_BY(mu_);
  int bad_batches_ ABSL_GUARDED_BY(mu_) = 0;
  int send_streams_ ABSL_GUARDED_BY(mu_) = 0;
};

struct PlainServer {
  PlainService service;
  std::unique_ptr<::grpc::Server> server;
  int port = 0;

  bool Start() {
    ::grpc::ServerBuilder builder;
    builder.AddListeningPort("127.0.0.1:0", ::grpc::InsecureServerCredentials(), &port);
    builder.RegisterCallbackGenericService(&service);
    server = builder.BuildAndStart();
    return server != nullptr && port != 0;
  }
  ~PlainServer() {
    if (server) server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(2));
  }
};

std::unique_ptr<GrpcTransport> ClientWithClock(int port, Clock* clock) {
  TransportEnv env;
  env.source = "//test/client";
  env.clock = clock;
  auto t = CreateGrpcTransport("client", GrpcConfig("", Local(port)), env);
  if (!t.ok()) {
    ADD_FAILURE() << t.status();
    return nullptr;
  }
  return *std::move(t);
}

TEST(GrpcSendStreamTest, AServerWithoutSendGetsUnaryCalls) {
  PlainServer plain;
  ASSERT_TRUE(plain.Start());
  auto client = MustCreate("client", GrpcConfig("", Local(plain.port)));
  ASSERT_NE(client, nullptr);
  std::vector<std::string> sent;
  for (int i = 0; i < 5; ++i) {
    Envelope cmd = NewEnvelope("test.v1.Orders/Plain", "p");
    sent.push_back(cmd.id);
    absl::Status s = EnqueueSync(*client, cmd);
    EXPECT_TRUE(s.ok()) << i << ": " << s;
  }
  EXPECT_EQ(plain.service.enqueued(), sent);
  // The first went to the stream, which the server refused as UNIMPLEMENTED;
  // from then on the target gets unary calls only.
  EXPECT_EQ(client->stats().streamed_sends, 1u);
  EXPECT_EQ(client->stats().unary_sends, 5u);
}

// A plain server whose Send streams read every batch and never answer, and a
// client on a fake clock.
class SilentServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    plain.service.send = true;
    ASSERT_TRUE(plain.Start());
    client = ClientWithClock(plain.port, &clock);
    ASSERT_NE(client, nullptr);
  }

  PlainServer plain;
  FakeClock clock{absl::Now()};
  std::unique_ptr<GrpcTransport> client;  // closed before the server
};

TEST_F(SilentServerTest, AFrameNobodyAnswersEndsAtItsTimeoutOnTheTransportsClock) {

  Envelope plain_cmd = NewEnvelope("test.v1.Orders/Silent", "no deadline");
  Envelope due_cmd = NewEnvelope("test.v1.Orders/Silent", "deadline in 2 s");
  due_cmd.deadline = clock.Now() + absl::Seconds(2);
  absl::Notification plain_done, due_done;
  absl::Status plain_status, due_status;
  client->Enqueue(plain_cmd, [&](absl::Status s) {
    plain_status = s;
    plain_done.Notify();
  });
  client->Enqueue(due_cmd, [&](absl::Status s) {
    due_status = s;
    due_done.Notify();
  });

  // What went out reads as protobuf's SendBatch.
  std::vector<v1::SendBatch> batches = plain.service.WaitForBatches(1);
  ASSERT_FALSE(batches.empty());
  std::vector<v1::SendFrame> frames;
  for (const v1::SendBatch& b : plain.service.WaitForBatches(2)) {
    frames.insert(frames.end(), b.frames().begin(), b.frames().end());
  }
  ASSERT_EQ(frames.size(), 2u);
  EXPECT_EQ(frames[0].seq(), 1u);
  EXPECT_EQ(frames[1].seq(), 2u);
  ASSERT_TRUE(frames[0].has_enqueue());
  EXPECT_EQ(frames[0].enqueue().command().id(), plain_cmd.id);
  EXPECT_EQ(frames[0].enqueue().command().type(), plain_cmd.type);
  EXPECT_EQ(frames[0].enqueue().command().data(), "no deadline");
  EXPECT_EQ(frames[1].enqueue().command().id(), due_cmd.id);
  EXPECT_EQ(plain.service.bad_batches(), 0);

  // Nothing answers: each ends when its time is up, not before.
  clock.Advance(absl::Milliseconds(1999));
  EXPECT_FALSE(due_done.HasBeenNotified());
  clock.Advance(absl::Milliseconds(1));
  ASSERT_TRUE(due_done.HasBeenNotified());
  EXPECT_EQ(due_status.code(), absl::StatusCode::kDeadlineExceeded) << due_status;
  EXPECT_THAT(due_status.message(), HasSubstr("no answer on the Send stream in time"));
  EXPECT_FALSE(plain_done.HasBeenNotified());
  clock.Advance(absl::Seconds(28) - absl::Milliseconds(1));  // 30 s after sending, less 1 ms
  EXPECT_FALSE(plain_done.HasBeenNotified());
  clock.Advance(absl::Milliseconds(1));
  ASSERT_TRUE(plain_done.HasBeenNotified());
  EXPECT_EQ(plain_status.code(), absl::StatusCode::kDeadlineExceeded) << plain_status;
}

// Many frames nobody answers, with deadlines in the reverse order of their
// sending: each ends at its own deadline, in the order of the deadlines.
TEST_F(SilentServerTest, UnansweredFramesEndInTheOrderOfTheirDeadlines) {
  constexpr int kFrames = 2000;
  absl::Mutex mu;
  std::vector<int> ended;  // frame numbers, in the order they ended
  int deadline_exceeded = 0;
  for (int i = 0; i < kFrames; ++i) {
    Envelope cmd = NewEnvelope("test.v1.Orders/Silent", "frame " + std::to_string(i));
    cmd.deadline = clock.Now() + absl::Milliseconds(kFrames - i);  // the last sent is due first
    client->Enqueue(cmd, [&, i](absl::Status s) {
      absl::MutexLock lock(&mu);
      ended.push_back(i);
      if (s.code() == absl::StatusCode::kDeadlineExceeded) ++deadline_exceeded;
    });
  }
  for (int ms = 1; ms <= kFrames; ++ms) {
    clock.Advance(absl::Milliseconds(1));
    absl::MutexLock lock(&mu);
    ASSERT_EQ(ended.size(), static_cast<size_t>(ms)) << "after " << ms << " ms";
    ASSERT_EQ(ended.back(), kFrames - ms);
  }
  absl::MutexLock lock(&mu);
  EXPECT_EQ(deadline_exceeded, kFrames);
}

// A stream that ends takes its frames with it, with its status; the next
// frame opens another stream. The acks of the second stream are written by
// protobuf's own AckBatch.
TEST(GrpcSendStreamTest, AStreamThatEndsEndsItsFramesAndTheNextFrameOpensAnother) {
  PlainServer plain;
  plain.service.send = true;
  plain.service.end_first_stream = true;
  ASSERT_TRUE(plain.Start());
  auto client = MustCreate("client", GrpcConfig("", Local(plain.port)));
  ASSERT_NE(client, nullptr);
  absl::Status first = EnqueueSync(*client, NewEnvelope("test.v1.Orders/Ended", "1"));
  EXPECT_EQ(first.code(), absl::StatusCode::kUnavailable) << first;
  EXPECT_THAT(first.message(), HasSubstr("the plain server is going away"));
  EXPECT_THAT(first.message(), HasSubstr("test.v1.Orders/Ended via gRPC target"));
  absl::Status second = EnqueueSync(*client, NewEnvelope("test.v1.Orders/Ended", "2"));
  EXPECT_TRUE(second.ok()) << second;
  EXPECT_EQ(plain.service.WaitForBatches(2).size(), 2u);
  EXPECT_EQ(client->stats().streamed_sends, 2u);
  EXPECT_EQ(client->stats().unary_sends, 0u);
  EXPECT_EQ(client->stats().malformed, 0u);
}

TEST(GrpcSendStreamTest, AcksThatDoNotReadEndTheStreamAndAreCounted) {
  PlainServer plain;
  plain.service.send = true;
  plain.service.send_reply = std::string("\x0a\xff\xff\xff\xff\x0f garbage", 12);
  ASSERT_TRUE(plain.Start());
  auto client = MustCreate("client", GrpcConfig("", Local(plain.port)));
  ASSERT_NE(client, nullptr);
  absl::Status s = EnqueueSync(*client, NewEnvelope("test.v1.Orders/Garbled", "g"));
  EXPECT_EQ(s.code(), absl::StatusCode::kInternal) << s;
  EXPECT_THAT(s.message(), HasSubstr("malformed acks"));
  EXPECT_EQ(client->stats().malformed, 1u);
}

// A client of Send written with the generated messages: what any gRPC
// client of transport.proto would send.
// With `read_acks` false it reads nothing until StartReading().
class RawSendStream final : public ::grpc::ClientBidiReactor<::grpc::ByteBuffer, ::grpc::ByteBuffer> {
 public:
  explicit RawSendStream(int port, bool read_acks = true)
      : stub_(::grpc::CreateCustomChannel(Local(port), ::grpc::InsecureChannelCredentials(),
                                          SmallWindow())) {
    stub_.PrepareBidiStreamingCall(&ctx_, std::string(kMethodSend), ::grpc::StubOptions(), this);
    if (read_acks) StartRead(&in_);
    StartCall();
  }
  void StartReading() { StartRead(&in_); }

  // What this client lets the server send before it reads: a fixed 16 KiB
  // (gRPC would otherwise grow the window to megabytes).
  static ::grpc::ChannelArguments SmallWindow() {
    ::grpc::ChannelArguments args;
    args.SetInt(GRPC_ARG_HTTP2_BDP_PROBE, 0);
    args.SetInt(GRPC_ARG_HTTP2_STREAM_LOOKAHEAD_BYTES, 16 * 1024);
    return args;
  }
  // A reactor must outlive its stream.
  ~RawSendStream() override {
    ctx_.TryCancel();
    (void)WaitForEnd();
  }

  // False when the write failed or did not complete within `wait`; then it
  // may still complete later (WaitForWrite), and no other may start before.
  bool Write(const std::string& bytes, absl::Duration wait = kWait) {
    out_ = Buffer(bytes);
    absl::MutexLock lock(&mu_);
    written_ = false;
    StartWrite(&out_);
    auto done = [this]() ABSL_NO_THREAD_SAFETY_ANALYSIS { return written_; };
    return mu_.AwaitWithTimeout(absl::Condition(&done), wait) && write_ok_;
  }
  bool WaitForWrite() {
    absl::MutexLock lock(&mu_);
    auto done = [this]() ABSL_NO_THREAD_SAFETY_ANALYSIS { return written_; };
    return mu_.AwaitWithTimeout(absl::Condition(&done), kWait) && write_ok_;
  }

  std::vector<v1::Ack> WaitForAcks(size_t n) {
    absl::MutexLock lock(&mu_);
    auto enough = [this, n]() ABSL_NO_THREAD_SAFETY_ANALYSIS {
      return acks_.size() >= n || finished_;
    };
    mu_.AwaitWithTimeout(absl::Condition(&enough), kWait);
    return acks_;
  }

  ::grpc::Status WaitForEnd() {
    absl::MutexLock lock(&mu_);
    auto done = [this]() ABSL_NO_THREAD_SAFETY_ANALYSIS { return finished_; };
    if (!mu_.AwaitWithTimeout(absl::Condition(&done), kWait)) {
      return ::grpc::Status(::grpc::StatusCode::DEADLINE_EXCEEDED, "test: stream did not end");
    }
    return status_;
  }

  void OnWriteDone(bool ok) override {
    absl::MutexLock lock(&mu_);
    written_ = true;
    write_ok_ = ok;
  }
  void OnReadDone(bool ok) override {
    if (!ok) return;
    v1::AckBatch batch;
    const bool parsed = batch.ParseFromString(Bytes(in_));
    {
      absl::MutexLock lock(&mu_);
      if (!parsed) bad_acks_ = true;
      for (const v1::Ack& a : batch.acks()) acks_.push_back(a);
    }
    StartRead(&in_);
  }
  void OnDone(const ::grpc::Status& s) override {
    absl::MutexLock lock(&mu_);
    status_ = s;
    finished_ = true;
  }

  void Cancel() { ctx_.TryCancel(); }
  bool bad_acks() {
    absl::MutexLock lock(&mu_);
    return bad_acks_;
  }

 private:
  ::grpc::GenericStub stub_;
  ::grpc::ClientContext ctx_;
  ::grpc::ByteBuffer in_, out_;
  absl::Mutex mu_;
  bool written_ ABSL_GUARDED_BY(mu_) = false;
  bool write_ok_ ABSL_GUARDED_BY(mu_) = false;
  bool finished_ ABSL_GUARDED_BY(mu_) = false;
  bool bad_acks_ ABSL_GUARDED_BY(mu_) = false;
  std::vector<v1::Ack> acks_ ABSL_GUARDED_BY(mu_);
  ::grpc::Status status_ ABSL_GUARDED_BY(mu_);
};

v1::Envelope ProtoEnvelope(const std::string& type, const std::string& id) {
  v1::Envelope e;
  e.set_id(id);
  e.set_type(type);
  e.set_source("//raw");
  e.set_spec_version("1.0");
  e.set_data("raw");
  return e;
}

TEST(GrpcSendStreamTest, EachFrameIsAnsweredAndABatchThatDoesNotReadEndsTheStream) {
  auto server = MustCreate("server", GrpcConfig("127.0.0.1:0"));
  ASSERT_NE(server, nullptr);
  const std::string op = "test.v1.Orders/Raw";
  Collector consumer;
  auto consuming = server->Consume(Ep(op), consumer.Handler());
  ASSERT_TRUE(consuming.ok()) << consuming.status();

  v1::SendBatch batch;
  v1::SendFrame* good = batch.add_frames();
  good->set_seq(7);
  *good->mutable_enqueue()->mutable_command() = ProtoEnvelope(op, "raw-1");
  v1::SendFrame* untyped = batch.add_frames();  // an envelope without a type
  untyped->set_seq(8);
  untyped->mutable_enqueue()->mutable_command()->set_id("raw-2");
  v1::SendFrame* empty = batch.add_frames();  // no request at all
  empty->set_seq(9);
  v1::SendFrame* event = batch.add_frames();  // to the hub: no group subscribed
  event->set_seq(10);
  *event->mutable_publish()->mutable_event() = ProtoEnvelope("test.v1.Orders/Placed", "raw-3");
  v1::SendFrame* reply = batch.add_frames();  // to an inbox that does not exist
  reply->set_seq(11);
  reply->mutable_reply()->set_inbox("nope");
  *reply->mutable_reply()->mutable_reply() = ProtoEnvelope(op, "raw-4");

  const uint64_t malformed_before = server->stats().malformed;
  auto stream = std::make_unique<RawSendStream>(server->bound_port());
  ASSERT_TRUE(stream->Write(batch.SerializeAsString()));
  std::vector<v1::Ack> acks = stream->WaitForAcks(5);
  ASSERT_EQ(acks.size(), 5u);
  EXPECT_FALSE(stream->bad_acks());
  std::map<uint64_t, v1::Ack> by_seq;
  for (const v1::Ack& a : acks) by_seq[a.seq()] = a;
  EXPECT_EQ(by_seq[7].code(), 0) << by_seq[7].message();
  EXPECT_EQ(by_seq[8].code(), static_cast<int>(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(by_seq[8].message(), HasSubstr("malformed Send frame 8"));
  EXPECT_THAT(by_seq[8].message(), HasSubstr("switchboard.v1.EnqueueRequest"));
  EXPECT_EQ(by_seq[9].code(), static_cast<int>(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(by_seq[9].message(), HasSubstr("carries no request"));
  EXPECT_EQ(by_seq[10].code(), 0) << by_seq[10].message();
  EXPECT_EQ(by_seq[11].code(), static_cast<int>(absl::StatusCode::kNotFound));
  EXPECT_THAT(by_seq[11].message(), HasSubstr("no reply inbox \"nope\""));
  std::vector<Envelope> got = consumer.WaitFor(1);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].id, "raw-1");
  EXPECT_EQ(server->stats().malformed, malformed_before + 2);

  // Bytes that are not a SendBatch end the stream.
  ASSERT_TRUE(stream->Write(std::string("\x0a\xff\xff\xff\xff\x0f garbage", 12)));
  ::grpc::Status end = stream->WaitForEnd();
  EXPECT_EQ(end.error_code(), ::grpc::StatusCode::INVALID_ARGUMENT) << end.error_message();
  EXPECT_THAT(end.error_message(), HasSubstr("malformed batch on Send"));
  EXPECT_EQ(server->stats().malformed, malformed_before + 3);
}

// A client that sends and never reads its acks: once the acks it does not
// read fill the stream's window, the server stops reading it (instead of
// keeping every ack in memory); it reads again when the client does.
TEST(GrpcSendStreamTest, AServerStopsReadingAClientThatDoesNotReadItsAcks) {
  auto server = MustCreate("server", GrpcConfig("127.0.0.1:0"));
  ASSERT_NE(server, nullptr);
  const std::string op = "test.v1.Orders/Flood";
  std::atomic<int> consumed{0};
  auto consuming = server->Consume(Ep(op), [&](std::unique_ptr<Delivery> d) {
    d->Ack();
    consumed.fetch_add(1);
  });
  ASSERT_TRUE(consuming.ok()) << consuming.status();
  auto stream = std::make_unique<RawSendStream>(server->bound_port(), /*read_acks=*/false);
  constexpr int kPerBatch = 500;
  constexpr int kMaxBatches = 400;  // 200,000 frames: far more than the window holds
  int sent = 0;
  bool stalled = false;
  for (int b = 0; b < kMaxBatches && !stalled; ++b) {
    v1::SendBatch batch;
    for (int i = 0; i < kPerBatch; ++i) {
      v1::SendFrame* f = batch.add_frames();
      f->set_seq(++sent);
      *f->mutable_enqueue()->mutable_command() = ProtoEnvelope(op, "f-" + std::to_string(sent));
    }
    stalled = !stream->Write(batch.SerializeAsString(), absl::Milliseconds(500));
  }
  ASSERT_TRUE(stalled) << "the server read " << sent << " frames without a pause";
  EXPECT_GE(server->stats().send_read_pauses, 1u);
  EXPECT_LT(consumed.load(), sent);
  // The client reads: the server reads the rest, and every frame is answered.
  stream->StartReading();
  EXPECT_TRUE(stream->WaitForWrite());
  EXPECT_EQ(stream->WaitForAcks(sent).size(), static_cast<size_t>(sent));
  for (int i = 0; i < 1000 && consumed.load() < sent; ++i) absl::SleepFor(absl::Milliseconds(10));
  EXPECT_EQ(consumed.load(), sent);
}

TEST(GrpcSendStreamTest, AClientThatHalfClosesGetsEveryAckThenTheEnd) {
  auto server = MustCreate("server", GrpcConfig("127.0.0.1:0"));
  ASSERT_NE(server, nullptr);
  const std::string op = "test.v1.Orders/HalfClose";
  Collector consumer;
  auto consuming = server->Consume(Ep(op), consumer.Handler());
  ASSERT_TRUE(consuming.ok()) << consuming.status();
  v1::SendBatch batch;
  for (int i = 1; i <= 3; ++i) {
    v1::SendFrame* f = batch.add_frames();
    f->set_seq(i);
    *f->mutable_enqueue()->mutable_command() = ProtoEnvelope(op, "hc-" + std::to_string(i));
  }
  auto stream = std::make_unique<RawSendStream>(server->bound_port());
  ASSERT_TRUE(stream->Write(batch.SerializeAsString()));
  stream->StartWritesDone();
  ::grpc::Status end = stream->WaitForEnd();
  EXPECT_TRUE(end.ok()) << end.error_message();
  EXPECT_EQ(stream->WaitForAcks(3).size(), 3u);
  EXPECT_EQ(consumer.WaitFor(3).size(), 3u);
}

}  // namespace
}  // namespace switchboard::grpc::testing
