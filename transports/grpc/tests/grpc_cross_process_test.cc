// Calls a gRPC echo server running in another process (grpc_echo_server):
// round trip, status code mapping and deadlines across a process boundary.
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <string>

#include "gtest/gtest.h"
#include "grpc_test_util.h"
#include "switchboard/test/v1/echo.pb.h"

extern char** environ;

namespace switchboard::grpc::testing {
namespace {

class CrossProcessTest : public ::testing::Test {
 protected:
  void SetUp() override {
    int in[2], out[2];
    ASSERT_EQ(pipe(in), 0);
    ASSERT_EQ(pipe(out), 0);
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, in[0], 0);
    posix_spawn_file_actions_adddup2(&actions, out[1], 1);
    posix_spawn_file_actions_addclose(&actions, in[1]);
    posix_spawn_file_actions_addclose(&actions, out[0]);
    char* argv[] = {const_cast<char*>(GRPC_ECHO_SERVER_PATH), nullptr};
    ASSERT_EQ(posix_spawn(&pid_, GRPC_ECHO_SERVER_PATH, &actions, nullptr, argv, environ), 0);
    posix_spawn_file_actions_destroy(&actions);
    close(in[0]);
    close(out[1]);
    stdin_ = in[1];
    stdout_ = out[0];
    // "PORT <n>\n", within a bounded time.
    std::string line;
    absl::Time until = absl::Now() + kWait;
    while (line.find('\n') == std::string::npos && absl::Now() < until) {
      pollfd p{stdout_, POLLIN, 0};
      if (poll(&p, 1, 100) <= 0) continue;
      char buf[64];
      ssize_t n = read(stdout_, buf, sizeof buf);
      if (n <= 0) break;
      line.append(buf, n);
    }
    ASSERT_EQ(line.rfind("PORT ", 0), 0u) << "server said: " << line;
    port_ = std::stoi(line.substr(5));
    client_ = MustCreate("client", GrpcConfig("", "127.0.0.1:" + std::to_string(port_)));
    ASSERT_NE(client_, nullptr);
  }

  void TearDown() override {
    client_.reset();
    if (stdin_ >= 0) close(stdin_);  // the server exits on EOF
    if (pid_ > 0) {
      int status = 0;
      absl::Time until = absl::Now() + kWait;
      while (waitpid(pid_, &status, WNOHANG) == 0) {
        if (absl::Now() > until) {
          kill(pid_, SIGKILL);
          waitpid(pid_, &status, 0);
          break;
        }
        absl::SleepFor(absl::Milliseconds(10));
      }
    }
    if (stdout_ >= 0) close(stdout_);
  }

  Envelope Say(const test::v1::EchoRequest& req) {
    return NewEnvelope("switchboard.test.v1.Echo/Say", req.SerializeAsString());
  }

  pid_t pid_ = -1;
  int stdin_ = -1;
  int stdout_ = -1;
  int port_ = 0;
  std::unique_ptr<GrpcTransport> client_;
};

TEST_F(CrossProcessTest, RoundTrip) {
  test::v1::EchoRequest req;
  req.set_text("across");
  absl::StatusOr<Envelope> reply = RequestSync(*client_, Say(req));
  ASSERT_TRUE(reply.ok()) << reply.status();
  ASSERT_TRUE(reply->status.ok()) << reply->status;
  test::v1::EchoReply rep;
  ASSERT_TRUE(rep.ParseFromString(reply->data));
  EXPECT_EQ(rep.text(), "echo: across");
  EXPECT_EQ(rep.handled_by(), std::to_string(pid_));  // really the other process
  EXPECT_EQ(rep.attempt(), 1);
}

TEST_F(CrossProcessTest, ErrorCodesMapBothWays) {
  for (absl::StatusCode code :
       {absl::StatusCode::kInvalidArgument, absl::StatusCode::kNotFound,
        absl::StatusCode::kAlreadyExists, absl::StatusCode::kPermissionDenied,
        absl::StatusCode::kFailedPrecondition, absl::StatusCode::kUnavailable,
        absl::StatusCode::kResourceExhausted, absl::StatusCode::kInternal}) {
    test::v1::EchoRequest req;
    req.set_fail_code(static_cast<int>(code));
    req.set_fail_message("handler says " + std::to_string(static_cast<int>(code)));
    absl::Status s = RequestStatus(*client_, Say(req));
    EXPECT_EQ(s.code(), code) << s;
    EXPECT_EQ(s.message(), req.fail_message());
  }
}

TEST_F(CrossProcessTest, DeadlineIsEnforced) {
  test::v1::EchoRequest slow;
  slow.set_delay_ms(2000);
  Envelope env = Say(slow);
  env.deadline = absl::Now() + absl::Milliseconds(200);
  absl::Time start = absl::Now();
  absl::Status s = RequestStatus(*client_, env);
  EXPECT_EQ(s.code(), absl::StatusCode::kDeadlineExceeded) << s;
  EXPECT_LT(absl::Now() - start, absl::Seconds(1.5));

  test::v1::EchoRequest quick;
  quick.set_delay_ms(50);
  env = Say(quick);
  env.deadline = absl::Now() + absl::Seconds(5);
  EXPECT_TRUE(RequestStatus(*client_, env).ok());
}

TEST_F(CrossProcessTest, ServerGoneIsUnavailable) {
  close(stdin_);
  stdin_ = -1;
  int status = 0;
  absl::Time until = absl::Now() + kWait;
  while (waitpid(pid_, &status, WNOHANG) == 0 && absl::Now() < until) {
    absl::SleepFor(absl::Milliseconds(10));
  }
  pid_ = -1;
  test::v1::EchoRequest req;
  req.set_text("anyone?");
  EXPECT_EQ(RequestStatus(*client_, Say(req)).code(), absl::StatusCode::kUnavailable);
}

}  // namespace
}  // namespace switchboard::grpc::testing
