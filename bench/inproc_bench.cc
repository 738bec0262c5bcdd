// inproc_bench: request/reply through the whole stack (node, policy chain,
// inproc transport) against a plain function call doing the same work.
//
//   inproc_bench --benchmark_min_time=1
#include <benchmark/benchmark.h>

#include "switchboard/node.h"
#include "switchboard/test/v1/echo.pb.h"

namespace {

using switchboard::test::v1::EchoReply;
using switchboard::test::v1::EchoRequest;

constexpr switchboard::Operation<EchoRequest, EchoReply> kSay{"bench.Echo/Say"};

switchboard::v1::Config BenchConfig() {
  switchboard::v1::Config config;
  auto& t = (*config.mutable_transports())["local"];
  t.set_type("inproc");
  t.mutable_inproc()->set_bus("bench-" + switchboard::NewMessageId());
  auto& b = (*config.mutable_operations())[std::string(kSay.name)];
  b.set_style(switchboard::v1::STYLE_REQUEST);
  b.set_transport("local");
  b.set_policy("default");
  auto& p = (*config.mutable_policies())["default"];
  p.mutable_timeout()->set_seconds(5);
  return config;
}

absl::StatusOr<EchoReply> Echo(switchboard::Context&, const EchoRequest& req) {
  EchoReply r;
  r.set_text(req.text());
  return r;
}

// The raw baseline: serialize, call, parse, as the stack does, without it.
void BM_RawFunctionCall(benchmark::State& state) {
  EchoRequest req;
  req.set_text(std::string(state.range(0), 'x'));
  for (auto _ : state) {
    std::string bytes = req.SerializeAsString();
    EchoRequest in;
    in.ParseFromString(bytes);
    EchoReply out;
    out.set_text(in.text());
    std::string reply_bytes = out.SerializeAsString();
    EchoReply parsed;
    parsed.ParseFromString(reply_bytes);
    benchmark::DoNotOptimize(parsed);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_RawFunctionCall)->Arg(128)->Arg(4096);

// One caller thread, one call at a time, handler on the executor.
void BM_InprocRequestReply(benchmark::State& state) {
  auto node = switchboard::Node::Create(BenchConfig()).value();
  switchboard::HandlerOptions options;
  options.inline_execution = state.range(1) != 0;
  auto reg = node->Handle(kSay, &Echo, options).value();
  EchoRequest req;
  req.set_text(std::string(state.range(0), 'x'));
  for (auto _ : state) {
    auto reply = node->Call(kSay, req).Get();
    if (!reply.ok()) state.SkipWithError("call failed");
    benchmark::DoNotOptimize(reply);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_InprocRequestReply)->Args({128, 0})->Args({128, 1})->Args({4096, 1})->UseRealTime();

}  // namespace

BENCHMARK_MAIN();
