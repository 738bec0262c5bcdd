// The generated API: typed client, handler interface and registration, event
// helpers; the style comes from config only; protoc errors for what
// Switchboard cannot carry.
#include <cstdio>
#include <string>

#include "absl/synchronization/notification.h"
#include "edge/deep/v1/edge.switchboard.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace {

using ::testing::HasSubstr;

class CounterImpl final : public edge::deep::v1::CounterHandler {
 public:
  absl::StatusOr<edge::deep::v1::Counted> Add(switchboard::Context& ctx,
                                             const edge::deep::v1::Outer::Inner& request) override {
    last_style_ = switchboard::StyleName(ctx.style());
    count_ += static_cast<int64_t>(request.value().size());
    edge::deep::v1::Counted c;
    c.set_count(count_);
    return c;
  }
  absl::StatusOr<google::protobuf::Empty> Reset(switchboard::Context&,
                                                const google::protobuf::Empty&) override {
    count_ = 0;
    reset_.Notify();
    return google::protobuf::Empty();
  }
  absl::StatusOr<edge::deep::v1::Counted> Peek(switchboard::Context&,
                                              const google::protobuf::Empty&) override {
    edge::deep::v1::Counted c;
    c.set_count(count_);
    return c;
  }
  std::atomic<int64_t> count_{0};
  std::string_view last_style_;
  absl::Notification reset_;
};

switchboard::v1::Config Config(switchboard::v1::Style add_style, bool reply) {
  switchboard::v1::Config config;
  auto& t = (*config.mutable_transports())["local"];
  t.set_type("inproc");
  t.mutable_inproc()->set_bus("codegen-" + switchboard::NewMessageId());
  if (add_style != switchboard::v1::STYLE_UNSPECIFIED) {
    auto& b = (*config.mutable_operations())["edge.deep.v1.Counter/Add"];
    b.set_style(add_style);
    b.set_reply(reply);
    b.set_transport("local");
  }
  return config;
}

TEST(CodegenTest, OperationNamesFollowTheProto) {
  EXPECT_EQ(edge::deep::v1::Counter::kAdd.name, "edge.deep.v1.Counter/Add");
  EXPECT_EQ(edge::deep::v1::CounterChangedEvent::kOperation.name, "edge.deep.v1.CounterChanged");
  EXPECT_THAT(edge::deep::v1::CounterChangedEvent::DeclaredGroups(),
              ::testing::ElementsAre("audit", "cache"));
}

// The style changes by config only; the same generated client and handler work.
TEST(CodegenTest, StyleChangesByConfigAndTheClientKeepsWorking) {
  struct Case {
    switchboard::v1::Style style;
    bool reply;
    std::string_view expected;
  };
  for (Case c : {Case{switchboard::v1::STYLE_UNSPECIFIED, false, "request"},  // the .proto default
                 Case{switchboard::v1::STYLE_REQUEST, false, "request"},
                 Case{switchboard::v1::STYLE_COMMAND, true, "command"}}) {
    auto node = switchboard::Node::Create(Config(c.style, c.reply));
    ASSERT_TRUE(node.ok()) << node.status();
    CounterImpl impl;
    auto regs = edge::deep::v1::RegisterCounter(**node, impl);
    ASSERT_TRUE(regs.ok()) << regs.status();
    edge::deep::v1::CounterClient client(**node);
    edge::deep::v1::Outer::Inner in;
    in.set_value("four");
    auto counted = client.Add(in).GetFor(absl::Seconds(10));
    ASSERT_TRUE(counted.ok()) << counted.status();
    EXPECT_EQ(counted->count(), 4);
    EXPECT_EQ(impl.last_style_, c.expected);
    // Reset is a command by its .proto default: fire and forget.
    ASSERT_TRUE(client.Reset(google::protobuf::Empty()).GetFor(absl::Seconds(10)).ok());
    ASSERT_TRUE(impl.reset_.WaitForNotificationWithTimeout(absl::Seconds(10)));
    auto peek = client.Peek(google::protobuf::Empty()).GetFor(absl::Seconds(10));
    ASSERT_TRUE(peek.ok()) << peek.status();
    EXPECT_EQ(peek->count(), 0);
  }
}

TEST(CodegenTest, EventHelpersPublishAndSubscribe) {
  auto node = switchboard::Node::Create(Config(switchboard::v1::STYLE_UNSPECIFIED, false));
  ASSERT_TRUE(node.ok());
  absl::Notification got;
  std::atomic<int64_t> seen{0};
  auto sub = edge::deep::v1::CounterChangedEvent::Subscribe(
      **node, "audit",
      [&](switchboard::Context&, const edge::deep::v1::CounterChanged& e)
          -> absl::StatusOr<google::protobuf::Empty> {
        seen = e.count();
        got.Notify();
        return google::protobuf::Empty();
      });
  ASSERT_TRUE(sub.ok()) << sub.status();
  edge::deep::v1::CounterChanged e;
  e.set_count(42);
  ASSERT_TRUE(edge::deep::v1::CounterChangedEvent::Publish(**node, e).GetFor(absl::Seconds(10)).ok());
  ASSERT_TRUE(got.WaitForNotificationWithTimeout(absl::Seconds(10)));
  EXPECT_EQ(seen, 42);
}

// Runs protoc with the plugin on a bad .proto; returns its exit status and
// what it printed.
std::pair<int, std::string> RunProtoc(const std::string& proto) {
  std::string out_dir = ::testing::TempDir() + "/codegen-" + switchboard::NewMessageId();
  std::string mkdir = "mkdir -p " + out_dir;
  EXPECT_EQ(std::system(mkdir.c_str()), 0);
  std::string cmd = std::string(PROTOC_PATH) + " --plugin=protoc-gen-switchboard=" + PLUGIN_PATH +
                    " -I" + BAD_PROTO_DIR + " -I" + PROTO_ROOT + " -I" + PROTOBUF_INCLUDE +
                    " --switchboard_out=" + out_dir + " " + BAD_PROTO_DIR + "/" + proto + " 2>&1";
  FILE* pipe = popen(cmd.c_str(), "r");
  std::string output;
  char buf[512];
  while (fgets(buf, sizeof buf, pipe) != nullptr) output += buf;
  int status = pclose(pipe);
  return {status, output};
}

TEST(CodegenTest, StreamingMethodIsAClearProtocError) {
  auto [status, output] = RunProtoc("streaming.proto");
  EXPECT_NE(status, 0);
  EXPECT_THAT(output, HasSubstr("bad.v1.Clock.Watch is a streaming method"));
}

TEST(CodegenTest, NameClashIsAClearProtocError) {
  auto [status, output] = RunProtoc("clash.proto");
  EXPECT_NE(status, 0);
  EXPECT_THAT(output, HasSubstr("generated name `EchoClient`"));
}

TEST(CodegenTest, EventStyleOnAMethodIsAClearProtocError) {
  auto [status, output] = RunProtoc("event_method.proto");
  EXPECT_NE(status, 0);
  EXPECT_THAT(output, HasSubstr("declares style STYLE_EVENT"));
}

}  // namespace
