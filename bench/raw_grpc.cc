// The raw gRPC baseline: a callback unary echo on a generic service, called
// through the generic stub's callback UnaryCall, both in this process over
// 127.0.0.1 like the Switchboard node it is compared with. Every style maps to
// the same unary call: gRPC has no queue. Switchboard's gRPC commands and
// events end in a local queue of the receiving node; they travel as frames on
// its Send stream, or as unary calls (Enqueue, Publish) with
// grpc.unary_sends.
#include <grpcpp/generic/async_generic_service.h>
#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>

#include <condition_variable>
#include <mutex>

#include "bench_workload.h"

namespace switchboard::bench {
namespace {

constexpr char kMethod[] = "/bench.v1.RawEcho/Say";

std::string ToString(const grpc::ByteBuffer& buffer) {
  std::vector<grpc::Slice> slices;
  std::string out;
  if (!buffer.Dump(&slices).ok()) return out;
  for (const grpc::Slice& s : slices)
    out.append(reinterpret_cast<const char*>(s.begin()), s.size());
  return out;
}

grpc::ByteBuffer ToBuffer(const std::string& bytes) {
  grpc::Slice slice(bytes);
  return grpc::ByteBuffer(&slice, 1);
}

// One unary call: read the request, answer, finish.
class EchoReactor : public grpc::ServerGenericBidiReactor {
 public:
  EchoReactor() { StartRead(&request_); }

  void OnReadDone(bool ok) override {
    if (!ok) {
      Finish(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "no request"));
      return;
    }
    absl::StatusOr<std::string> reply = EchoBytes(ToString(request_));
    if (!reply.ok()) {
      Finish(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "bad request"));
      return;
    }
    reply_ = ToBuffer(*reply);
    StartWriteAndFinish(&reply_, grpc::WriteOptions(), grpc::Status::OK);
  }

  void OnDone() override { delete this; }

 private:
  grpc::ByteBuffer request_;
  grpc::ByteBuffer reply_;
};

class EchoService : public grpc::CallbackGenericService {
 public:
  grpc::ServerGenericBidiReactor* CreateReactor(grpc::GenericCallbackServerContext*) override {
    return new EchoReactor();
  }
};

class RawGrpc : public Workload {
 public:
  static absl::StatusOr<std::unique_ptr<Workload>> Create(const RawOptions& options) {
    auto w = std::unique_ptr<RawGrpc>(new RawGrpc(options));
    grpc::ServerBuilder builder;
    int port = 0;
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
    builder.RegisterCallbackGenericService(&w->service_);
    w->server_ = builder.BuildAndStart();
    if (w->server_ == nullptr || port == 0)
      return absl::UnavailableError("raw gRPC server did not start");
    w->channel_ = grpc::CreateChannel("127.0.0.1:" + std::to_string(port),
                                      grpc::InsecureChannelCredentials());
    w->stub_ = std::make_unique<grpc::GenericStub>(w->channel_);
    return std::unique_ptr<Workload>(std::move(w));
  }

  absl::Status RunOnce(int slot, uint64_t seq) override {
    grpc::ByteBuffer request = ToBuffer(MakeRequest(slot, seq, options_.payload_bytes).SerializeAsString());
    grpc::ByteBuffer response;
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + kUnitTimeout);
    std::mutex mu;
    std::condition_variable cv;
    bool done = false;
    grpc::Status status;
    stub_->UnaryCall(&ctx, kMethod, grpc::StubOptions(), &request, &response,
                     [&](grpc::Status s) {
                       std::lock_guard<std::mutex> lock(mu);
                       status = std::move(s);
                       done = true;
                       cv.notify_one();
                     });
    {
      std::unique_lock<std::mutex> lock(mu);
      // The call's own deadline ends it; this bound only guards the runner.
      if (!cv.wait_for(lock, kUnitTimeout + std::chrono::seconds(1), [&] { return done; })) {
        ctx.TryCancel();
        cv.wait(lock, [&] { return done; });
        return absl::DeadlineExceededError("raw gRPC call did not finish");
      }
    }
    if (!status.ok())
      return absl::Status(static_cast<absl::StatusCode>(status.error_code()),
                          status.error_message());
    test::v1::EchoReply reply;
    if (!reply.ParseFromString(ToString(response))) return absl::InternalError("bad reply");
    return absl::OkStatus();
  }

 private:
  explicit RawGrpc(const RawOptions& options) : options_(options) {}

  RawOptions options_;
  EchoService service_;
  std::unique_ptr<grpc::Server> server_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<grpc::GenericStub> stub_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<Workload>> MakeRawGrpc(const RawOptions& options) {
  return RawGrpc::Create(options);
}

}  // namespace switchboard::bench
