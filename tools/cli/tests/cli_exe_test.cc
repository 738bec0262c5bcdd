// Runs the `switchboard` executable and checks its exit codes and output.
#include <sys/wait.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace {

using ::testing::HasSubstr;

struct RunResult {
  int code = -1;
  std::string out;
  std::string err;
};

std::string Slurp(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// `args` is appended to the executable's path as is (quote it).
RunResult Switchboard(const std::string& args) {
  std::string base = ::testing::TempDir() + "/sb_cli_" +
                     ::testing::UnitTest::GetInstance()->current_test_info()->name();
  // `timeout` bounds a run that would otherwise hang.
  std::string cmd = "timeout 60 " SWITCHBOARD_CLI " " + args + " >" + base + ".out 2>" + base + ".err";
  int status = std::system(cmd.c_str());
  RunResult r;
  r.code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  r.out = Slurp(base + ".out");
  r.err = Slurp(base + ".err");
  return r;
}

const std::string kData = SWITCHBOARD_CLI_TESTDATA;
const std::string kSrc = SWITCHBOARD_SOURCE_DIR;
const std::string kEchoProto = " --proto " + kSrc + "/tests/protos/switchboard/test/v1/echo.proto -I " + kSrc +
                               "/tests/protos -I " + kSrc + "/proto";

TEST(CliExeTest, LintCleanConfigExitsZero) {
  RunResult r = Switchboard("lint " + kData + "/clean.yaml");
  EXPECT_EQ(r.code, 0) << r.out << r.err;
  EXPECT_EQ(r.out, "");
}

TEST(CliExeTest, LintErrorExitsOneWithFileLineIdAndFix) {
  RunResult r = Switchboard("lint " + kData + "/errors.yaml");
  EXPECT_EQ(r.code, 1) << r.out << r.err;
  EXPECT_THAT(r.out, HasSubstr(kData + "/errors.yaml:3: SB012 error: "));
  EXPECT_THAT(r.out, HasSubstr(kData + "/errors.yaml:5: SB001 error: "));
  EXPECT_THAT(r.out, HasSubstr(". fix: "));
  EXPECT_THAT(r.out, ::testing::Not(HasSubstr("s3cret")));
}

TEST(CliExeTest, LintLoadErrorExitsOne) {
  RunResult r = Switchboard("lint " + kData + "/broken.yaml");
  EXPECT_EQ(r.code, 1);
  EXPECT_THAT(r.err, HasSubstr("broken.yaml:2:"));
  EXPECT_THAT(r.err, HasSubstr("hint: did you mean `timeout`?"));
}

TEST(CliExeTest, GraphPrintsMermaid) {
  RunResult r = Switchboard("graph " + kData + "/clean.yaml");
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("flowchart LR\n  subgraph t0[\"bus: nats (jetstream)\"]"));
  RunResult dot = Switchboard("graph " + kData + "/clean.yaml --format dot");
  EXPECT_EQ(dot.code, 0) << dot.err;
  EXPECT_THAT(dot.out, HasSubstr("digraph switchboard {"));
}

TEST(CliExeTest, CallWithBadJsonIsInvalidArgumentExitTwo) {
  RunResult r = Switchboard("call " + kData + "/echo-inproc.yaml switchboard.test.v1.Echo/Say '{\"text\": [1,' " +
                      kEchoProto);
  EXPECT_EQ(r.code, 2) << r.out << r.err;
  EXPECT_THAT(r.err, HasSubstr("INVALID_ARGUMENT: the payload is not JSON of switchboard.test.v1.EchoRequest"));
}

TEST(CliExeTest, CallWithNoHandlerFailsFastExitOne) {
  // The tool's own node serves nothing: a request has no live handler.
  RunResult r = Switchboard("call " + kData + "/echo-inproc.yaml switchboard.test.v1.Echo/Say '{\"text\": \"hi\"}' " +
                      kEchoProto);
  EXPECT_EQ(r.code, 1) << r.out << r.err;
  EXPECT_THAT(r.err, HasSubstr("UNAVAILABLE"));
}

TEST(CliExeTest, UnknownCommandIsUsageError) {
  RunResult r = Switchboard("frobnicate");
  EXPECT_EQ(r.code, 2);
  EXPECT_THAT(r.err, HasSubstr("usage:"));
}

}  // namespace
