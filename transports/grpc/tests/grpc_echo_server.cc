// A small process that serves switchboard.test.v1.Echo/Say over the gRPC
// transport, for the cross-process test. Prints "PORT <n>" once listening and
// exits when its stdin closes (so it never outlives the test).
#include <unistd.h>

#include <cstdio>
#include <string>

#include "switchboard/clock.h"
#include "switchboard/grpc/grpc_transport.h"
#include "switchboard/test/v1/echo.pb.h"
#include "switchboard/v1/config.pb.h"

int main() {
  using namespace switchboard;
  v1::TransportConfig config;
  config.set_type("grpc");
  config.mutable_grpc()->set_listen("127.0.0.1:0");
  TransportEnv env;
  env.source = "//grpc-echo-server/" + std::to_string(getpid());
  auto transport = grpc::CreateGrpcTransport("rpc", config, env);
  if (!transport.ok()) {
    std::fprintf(stderr, "grpc_echo_server: %s\n", transport.status().ToString().c_str());
    return 1;
  }
  const std::string pid = std::to_string(getpid());
  Endpoint endpoint;
  endpoint.operation = "switchboard.test.v1.Echo/Say";
  endpoint.group = endpoint.operation;
  auto serving = (*transport)->Serve(
      endpoint, [pid](Envelope request, ReplyCallback reply) {
        test::v1::EchoRequest req;
        Envelope out;
        out.id = NewMessageId();
        out.type = request.type;
        out.correlation_id = request.id;
        if (!req.ParseFromString(request.data)) {
          out.status = absl::InvalidArgumentError("not an EchoRequest");
        } else if (req.fail_code() != 0) {
          out.status = absl::Status(static_cast<absl::StatusCode>(req.fail_code()),
                                    req.fail_message());
        } else {
          test::v1::EchoReply rep;
          rep.set_text("echo: " + req.text());
          rep.set_handled_by(pid);
          rep.set_attempt(request.attempt);
          out.data = rep.SerializeAsString();
        }
        if (req.delay_ms() > 0) {
          auto shared = std::make_shared<ReplyCallback>(std::move(reply));
          Clock::Real().RunAfter(absl::Milliseconds(req.delay_ms()),
                                 [shared, out]() mutable { std::move(*shared)(std::move(out)); });
          return;
        }
        std::move(reply)(std::move(out));
      });
  if (!serving.ok()) {
    std::fprintf(stderr, "grpc_echo_server: %s\n", serving.status().ToString().c_str());
    return 1;
  }
  std::printf("PORT %d\n", (*transport)->bound_port());
  std::fflush(stdout);
  char buf[64];
  while (read(0, buf, sizeof buf) > 0) {
  }
  return 0;
}
