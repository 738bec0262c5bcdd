// transport_bench: every transport and style through Switchboard against the
// raw library doing the same work, side by side in one run.
//
//   transport_bench [--quick] [--transports=inproc,grpc,nats,nats-js,amqp]
//                   [--rounds=5] [--seconds=0.8] [--json=PATH] [--md=PATH]
//                   [--command="how it was started"] [--no-extras]
//                   [--styles=request,command,event] [--payloads=128,4096]
//                   [--concurrency=1,16] [--only=raw|sb]      (one row, for perf)
//                   [--inline-handlers]   (HandlerOptions.inline_execution on the sb side)
//                   [--raw-headers]   (raw cnats / Proton messages carry an envelope's headers)
//                   [--content-mode=binary]   (the sb side's NATS and AMQP content mode)
//                   [--grpc-unary-sends]   (grpc.unary_sends on the sb side)
//                   [--idle-spin=MICROS]  (node.handler_idle_spin on the sb side)
//   transport_bench --profile-calls=N [--profile-executor] [--profile-transport=grpc]
//                   [--profile-raw] [--profile-no-policies] [--profile-commands]
//                                                            (one at a time, for callgrind)
//   transport_bench --park-calls=N [--park-commands]
//                   (park N inproc requests or commands in this process; print their memory)
//
// For each transport x style x payload x concurrency it alternates rounds
// (raw, switchboard, raw, switchboard, ...) so that drift of a shared machine
// hits both sides alike, and reports the median of the rounds. Network
// transports run when their server is given (SWITCHBOARD_TEST_NATS_URL,
// SWITCHBOARD_TEST_AMQP_URL, SWITCHBOARD_TEST_RABBITMQ_MGMT; `make bench`
// starts them on loopback) and are skipped, with the reason, otherwise.
//
// The Switchboard side is a Node with the default policies of a service:
// timeout, retry with a budget, circuit breaker, idempotency (memory store),
// and the tracing and metrics middleware that every node runs.
#include <malloc.h>
#include <sys/resource.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "bench_workload.h"
#include "google/protobuf/empty.pb.h"
#include "switchboard/envelope.h"
#include "switchboard/idempotency.h"
#include "switchboard/node.h"

namespace switchboard::bench {
namespace {

using Clock = std::chrono::steady_clock;
using test::v1::EchoReply;
using test::v1::EchoRequest;

constexpr int kMaxConcurrency = 16;
constexpr Operation<EchoRequest, EchoReply> kSay{"bench.v1.Echo/Say"};
constexpr Operation<EchoRequest, google::protobuf::Empty> kWork{"bench.v1.Echo/Work"};
// An event's operation name is its message type.
constexpr Operation<EchoRequest, google::protobuf::Empty> kNotice{"switchboard.test.v1.EchoRequest"};

// ---------------------------------------------------------------------------
// Flags

struct Flags {
  bool quick = false;
  std::vector<std::string> transports = {"inproc", "grpc", "nats", "nats-js", "amqp"};
  int rounds = 5;
  double seconds = 0.8;
  double warmup = 0.2;
  std::string json_path;
  std::string md_path;
  std::string command;
  bool extras = true;
  // Only N inproc request/reply calls on one thread (for a profiler), then exit.
  int profile_calls = 0;
  bool profile_inline = true;
  std::string profile_transport = "inproc";
  bool profile_raw = false;
  // The profiled node has an empty policy.
  bool profile_no_policies = false;
  // Profile commands (send until the handler saw it) instead of requests.
  bool profile_commands = false;
  // Only park N calls in this process and print the memory they hold, then exit.
  int park_calls = 0;
  bool park_commands = false;
  // Narrow the table (for `perf record` of one row): empty means all.
  std::vector<std::string> styles;
  std::vector<size_t> payloads = {128, 4096};
  std::vector<int> concurrencies = {1, kMaxConcurrency};
  // "raw" or "sb": measure only that side of each row (the other reads 0).
  std::string only;
  // Handlers on the delivering thread (HandlerOptions.inline_execution).
  bool inline_handlers = false;
  // The raw NATS side sends and reads an envelope's header set too.
  bool raw_headers = false;
  // The NATS and AMQP transports' `content_mode`; empty: the default (structured).
  std::string content_mode;
  // node.handler_idle_spin in microseconds; negative: the node's default.
  int idle_spin_us = -1;
  // grpc.unary_sends: commands, events and replies as unary calls.
  bool grpc_unary_sends = false;
};

std::vector<std::string> Split(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream in(s);
  std::string item;
  while (std::getline(in, item, ','))
    if (!item.empty()) out.push_back(item);
  return out;
}

bool ParseFlags(int argc, char** argv, Flags* f) {
  bool rounds_set = false, seconds_set = false;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto value = [&](const char* name) -> std::optional<std::string> {
      std::string prefix = std::string(name) + "=";
      if (a.rfind(prefix, 0) == 0) return a.substr(prefix.size());
      return std::nullopt;
    };
    if (a == "--quick") {
      f->quick = true;
    } else if (a == "--no-extras") {
      f->extras = false;
    } else if (auto v = value("--profile-calls")) {
      f->profile_calls = std::max(1, std::atoi(v->c_str()));
    } else if (a == "--profile-executor") {
      f->profile_inline = false;
    } else if (auto v = value("--profile-transport")) {
      f->profile_transport = *v;
    } else if (a == "--park-commands") {
      f->park_commands = true;
    } else if (auto v = value("--park-calls")) {
      f->park_calls = std::max(1, std::atoi(v->c_str()));
    } else if (a == "--profile-commands") {
      f->profile_commands = true;
    } else if (a == "--profile-no-policies") {
      f->profile_no_policies = true;
    } else if (a == "--profile-raw") {
      f->profile_raw = true;
    } else if (auto v = value("--transports")) {
      f->transports = Split(*v);
    } else if (auto v = value("--styles")) {
      f->styles = Split(*v);
    } else if (auto v = value("--payloads")) {
      f->payloads.clear();
      for (const std::string& p : Split(*v)) f->payloads.push_back(std::stoul(p));
    } else if (auto v = value("--concurrency")) {
      f->concurrencies.clear();
      for (const std::string& c : Split(*v))
        f->concurrencies.push_back(std::clamp(std::atoi(c.c_str()), 1, kMaxConcurrency));
    } else if (a == "--raw-headers") {
      f->raw_headers = true;
    } else if (auto v = value("--content-mode")) {
      f->content_mode = *v;
    } else if (a == "--inline-handlers") {
      f->inline_handlers = true;
    } else if (a == "--grpc-unary-sends") {
      f->grpc_unary_sends = true;
    } else if (auto v = value("--idle-spin")) {
      f->idle_spin_us = std::max(0, std::atoi(v->c_str()));
    } else if (auto v = value("--only")) {
      f->only = *v;
      if (f->only != "raw" && f->only != "sb") {
        std::cerr << "transport_bench: --only is raw or sb\n";
        return false;
      }
    } else if (auto v = value("--rounds")) {
      f->rounds = std::max(1, std::atoi(v->c_str()));
      rounds_set = true;
    } else if (auto v = value("--seconds")) {
      f->seconds = std::max(0.01, std::atof(v->c_str()));
      seconds_set = true;
    } else if (auto v = value("--json")) {
      f->json_path = *v;
    } else if (auto v = value("--md")) {
      f->md_path = *v;
    } else if (auto v = value("--command")) {
      f->command = *v;
    } else {
      std::cerr << "transport_bench: unknown flag " << a << "\n";
      return false;
    }
  }
  if (f->quick) {
    if (!rounds_set) f->rounds = 2;
    if (!seconds_set) f->seconds = 0.1;
    f->warmup = 0.03;
  }
  return true;
}

// ---------------------------------------------------------------------------
// Measurement

struct Sample {
  double msgs_per_s = 0;
  double p50_us = 0;
  double p99_us = 0;
  uint64_t count = 0;
  uint64_t errors = 0;
  std::string first_error;
};

// Sequence numbers per slot, increasing over the whole run, so a late
// delivery from an earlier case never satisfies a later wait.
std::atomic<uint64_t> g_seq[kMaxConcurrency];

double Percentile(std::vector<double>& v, double q) {
  if (v.empty()) return 0;
  size_t k = std::min(v.size() - 1, static_cast<size_t>(q * static_cast<double>(v.size())));
  std::nth_element(v.begin(), v.begin() + static_cast<long>(k), v.end());
  return v[k];
}

Sample Measure(Workload& w, int concurrency, double seconds) {
  constexpr uint64_t kMaxUnitsPerSlot = 20'000'000;
  constexpr uint64_t kMaxErrorsPerSlot = 20;
  std::vector<std::vector<double>> lat(concurrency);
  std::vector<uint64_t> errors(concurrency, 0);
  std::vector<std::string> first_error(concurrency);
  std::atomic<int> ready{0};
  std::atomic<bool> go{false};
  Clock::time_point start, end;
  std::vector<std::thread> threads;
  for (int slot = 0; slot < concurrency; ++slot) {
    threads.emplace_back([&, slot] {
      lat[slot].reserve(1 << 16);
      ready.fetch_add(1);
      while (!go.load(std::memory_order_acquire)) std::this_thread::yield();
      Clock::time_point stop = end;
      for (uint64_t n = 0; n < kMaxUnitsPerSlot; ++n) {
        Clock::time_point t0 = Clock::now();
        if (t0 >= stop) break;
        uint64_t seq = g_seq[slot].fetch_add(1) + 1;
        absl::Status s = w.RunOnce(slot, seq);
        Clock::time_point t1 = Clock::now();
        if (s.ok()) {
          lat[slot].push_back(std::chrono::duration<double, std::micro>(t1 - t0).count());
        } else {
          if (errors[slot]++ == 0) first_error[slot] = s.ToString();
          if (errors[slot] >= kMaxErrorsPerSlot) break;
        }
      }
    });
  }
  while (ready.load() < concurrency) std::this_thread::yield();
  start = Clock::now();
  end = start + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(seconds));
  go.store(true, std::memory_order_release);
  for (auto& t : threads) t.join();
  double elapsed = std::chrono::duration<double>(Clock::now() - start).count();
  Sample out;
  std::vector<double> all;
  for (int slot = 0; slot < concurrency; ++slot) {
    all.insert(all.end(), lat[slot].begin(), lat[slot].end());
    out.errors += errors[slot];
    if (out.first_error.empty()) out.first_error = first_error[slot];
  }
  out.count = all.size();
  out.msgs_per_s = elapsed > 0 ? static_cast<double>(all.size()) / elapsed : 0;
  out.p50_us = Percentile(all, 0.50);
  out.p99_us = Percentile(all, 0.99);
  return out;
}

double Median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  size_t n = v.size();
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

Sample MedianOf(const std::vector<Sample>& rounds) {
  Sample out;
  std::vector<double> t, p50, p99;
  for (const Sample& s : rounds) {
    t.push_back(s.msgs_per_s);
    p50.push_back(s.p50_us);
    p99.push_back(s.p99_us);
    out.count += s.count;
    out.errors += s.errors;
    if (out.first_error.empty()) out.first_error = s.first_error;
  }
  out.msgs_per_s = Median(t);
  out.p50_us = Median(p50);
  out.p99_us = Median(p99);
  return out;
}

// ---------------------------------------------------------------------------
// The raw inproc baseline: a plain function call doing the same serialize
// and parse as the stack.

class RawInproc : public Workload {
 public:
  RawInproc(Style style, size_t payload) : style_(style), payload_(payload) {}

  absl::Status RunOnce(int slot, uint64_t seq) override {
    std::string bytes = MakeRequest(slot, seq, payload_).SerializeAsString();
    if (style_ == Style::kRequest) {
      absl::StatusOr<std::string> reply = EchoBytes(bytes);
      if (!reply.ok()) return reply.status();
      EchoReply parsed;
      if (!parsed.ParseFromString(*reply)) return absl::InternalError("bad reply");
      return absl::OkStatus();
    }
    EchoRequest in;
    if (!in.ParseFromString(bytes)) return absl::InternalError("bad request");
    int s = 0;
    uint64_t q = 0;
    if (!ParseSlot(in.text(), &s, &q) || s != slot || q != seq) return absl::InternalError("slot");
    return absl::OkStatus();
  }

 private:
  Style style_;
  size_t payload_;
};

// ---------------------------------------------------------------------------
// The Switchboard side: one node per transport with all three operations.

v1::Policy DefaultPolicy() {
  v1::Policy p;
  p.mutable_timeout()->set_seconds(5);
  p.mutable_retry()->set_attempts(3);
  p.mutable_retry()->set_budget(0.2);
  p.mutable_circuit_breaker()->set_failure_rate(0.5);
  p.mutable_idempotency()->set_store("memory");
  return p;
}

struct Env {
  std::string run_id;
  // An empty policy (no timeout, retry, breaker or idempotency; tracing and
  // metrics stay): what the node itself costs.
  bool no_policies = false;
  bool raw_headers = false;
  std::string content_mode;
  int idle_spin_us = -1;
  bool grpc_unary_sends = false;
  std::string nats_url;
  std::string amqp_url;
  std::string amqp_mgmt;
};

absl::StatusOr<v1::TransportConfig> TransportFor(const std::string& name, const Env& env) {
  v1::TransportConfig t;
  if (name == "inproc") {
    t.set_type("inproc");
    // A bus of its own per node: nodes on one bus would share the handlers.
    static std::atomic<int> buses{0};
    t.mutable_inproc()->set_bus("bench-" + env.run_id + "-" + std::to_string(buses.fetch_add(1)));
  } else if (name == "grpc") {
    t.set_type("grpc");
    t.mutable_grpc()->set_listen("127.0.0.1:0");
    t.mutable_grpc()->set_unary_sends(env.grpc_unary_sends);
  } else if (name == "nats" || name == "nats-js") {
    if (env.nats_url.empty()) return absl::NotFoundError("SWITCHBOARD_TEST_NATS_URL is not set");
    t.set_type("nats");
    t.mutable_nats()->set_url(env.nats_url);
    t.mutable_nats()->set_jetstream(name == "nats-js");
    t.mutable_nats()->set_subject_prefix("sbbench" + env.run_id + (name == "nats-js" ? "j" : "c"));
    t.mutable_nats()->mutable_max_age()->set_seconds(600);
    t.mutable_nats()->set_content_mode(env.content_mode);
  } else if (name == "amqp") {
    if (env.amqp_url.empty()) return absl::NotFoundError("SWITCHBOARD_TEST_AMQP_URL is not set");
    t.set_type("amqp");
    t.mutable_amqp()->set_url(env.amqp_url);
    t.mutable_amqp()->set_management_url(env.amqp_mgmt);
    t.mutable_amqp()->set_address_prefix("sbbench" + env.run_id + ".");
    t.mutable_amqp()->mutable_close_timeout()->set_nanos(500'000'000);
    t.mutable_amqp()->set_content_mode(env.content_mode);
  } else {
    return absl::InvalidArgumentError("unknown transport " + name);
  }
  return t;
}

class SwitchboardSide {
 public:
  static absl::StatusOr<std::unique_ptr<SwitchboardSide>> Create(const std::string& transport,
                                                                 const Env& env,
                                                                 bool inline_execution,
                                                                 bool requests_only = false,
                                                                 bool without_events = false) {
    absl::StatusOr<v1::TransportConfig> t = TransportFor(transport, env);
    if (!t.ok()) return t.status();
    v1::Config config;
    (*config.mutable_transports())["t"] = *t;
    config.mutable_node()->set_default_transport("t");
    config.mutable_node()->set_default_policy("bench");
    config.mutable_node()->set_source("//bench/" + env.run_id);
    if (env.idle_spin_us >= 0) {
      auto* spin = config.mutable_node()->mutable_handler_idle_spin();
      spin->set_seconds(env.idle_spin_us / 1'000'000);
      spin->set_nanos(env.idle_spin_us % 1'000'000 * 1000);
    }
    (*config.mutable_policies())["bench"] = env.no_policies ? v1::Policy() : DefaultPolicy();
    auto bind = [&](std::string_view op, v1::Style style) -> v1::OperationBinding& {
      auto& b = (*config.mutable_operations())[std::string(op)];
      b.set_style(style);
      b.set_transport("t");
      b.set_policy("bench");
      return b;
    };
    bind(kSay.name, v1::STYLE_REQUEST);
    bind(kWork.name, v1::STYLE_COMMAND);
    bind(kNotice.name, v1::STYLE_EVENT).add_groups("bench");
    absl::StatusOr<std::unique_ptr<Node>> node = Node::Create(config);
    if (!node.ok()) return node.status();
    auto side = std::unique_ptr<SwitchboardSide>(new SwitchboardSide(*std::move(node)));
    // The same connections as the raw baseline: raw core NATS sends on one
    // connection and receives on another, so the handlers run on a second
    // node with its own connection, as in two services. The raw JetStream
    // and AMQP baselines use one connection, and so does one node.
    if (transport == "nats") {
      absl::StatusOr<std::unique_ptr<Node>> handlers = Node::Create(config);
      if (!handlers.ok()) return handlers.status();
      side->handler_node_ = *std::move(handlers);
    }
    absl::Status s = side->Register(inline_execution, requests_only, without_events);
    if (!s.ok()) return s;
    return side;
  }

  // The node that calls; the handlers are on handler_node().
  Node& node() { return *node_; }
  Node& handler_node() { return handler_node_ ? *handler_node_ : *node_; }
  SlotSignals& signals() { return signals_; }

 private:
  explicit SwitchboardSide(std::unique_ptr<Node> node) : node_(std::move(node)) {}

  absl::Status Register(bool inline_execution, bool requests_only, bool without_events) {
    Node& handlers = handler_node();
    HandlerOptions options;
    options.inline_execution = inline_execution;
    auto say = handlers.Handle(
        kSay,
        [](Context&, const EchoRequest& req) -> absl::StatusOr<EchoReply> {
          EchoReply r;
          r.set_text(req.text());
          r.set_blob(req.blob());
          return r;
        },
        options);
    if (!say.ok()) return say.status();
    regs_.push_back(*std::move(say));
    if (requests_only) return absl::OkStatus();
    auto consume = [this](Context&, const EchoRequest& req)
        -> absl::StatusOr<google::protobuf::Empty> {
      int slot = 0;
      uint64_t seq = 0;
      if (ParseSlot(req.text(), &slot, &seq)) signals_.Done(slot, seq);
      return google::protobuf::Empty();
    };
    auto work = handlers.Handle(kWork, consume, options);
    if (!work.ok()) return work.status();
    regs_.push_back(*std::move(work));
    if (without_events) return absl::OkStatus();
    HandlerOptions group = options;
    group.group = "bench";
    auto notice = handlers.Handle(kNotice, consume, group);
    if (!notice.ok()) return notice.status();
    regs_.push_back(*std::move(notice));
    return absl::OkStatus();
  }

  std::unique_ptr<Node> node_;
  std::unique_ptr<Node> handler_node_;  // core NATS only
  SlotSignals signals_{kMaxConcurrency};
  std::vector<HandlerRegistration> regs_;
};

class SwitchboardWorkload : public Workload {
 public:
  SwitchboardWorkload(SwitchboardSide& side, Style style, size_t payload)
      : side_(side), style_(style), payload_(payload) {}

  absl::Status RunOnce(int slot, uint64_t seq) override {
    EchoRequest req = MakeRequest(slot, seq, payload_);
    absl::Duration wait = absl::FromChrono(kUnitTimeout);
    if (style_ == Style::kRequest) {
      absl::StatusOr<EchoReply> r = side_.node().Call(kSay, req).GetFor(wait);
      return r.status();
    }
    auto accepted =
        side_.node().Call(style_ == Style::kCommand ? kWork : kNotice, req).GetFor(wait);
    if (!accepted.ok()) return accepted.status();
    if (!side_.signals().Wait(slot, seq))
      return absl::DeadlineExceededError("handler did not see the message in time");
    return absl::OkStatus();
  }

 private:
  SwitchboardSide& side_;
  Style style_;
  size_t payload_;
};

// ---------------------------------------------------------------------------
// Results

struct Row {
  std::string transport;
  std::string style;
  size_t payload = 0;
  int concurrency = 0;
  std::string raw_kind;  // what the raw side is
  Sample raw;
  Sample sb;
  std::string skipped;  // reason, when not measured
};

struct Extras {
  bool measured = false;
  double raw_calls_per_s = 0;
  double executor_calls_per_s = 0;
  double inline_calls_per_s = 0;
  double executor_cpu_us_per_call = 0;
  double inline_cpu_us_per_call = 0;
  double no_policies_calls_per_s = 0;
  double no_policies_cpu_us_per_call = 0;
  // Parked in a process of their own (`--park-calls=N`): heap bytes in use
  // (mallinfo2) and resident set growth, each divided by the calls.
  double heap_bytes_per_in_flight_call = 0;
  double rss_bytes_per_in_flight_call = 0;
  // The same for commands: the consumer's side of a delivered command.
  double heap_bytes_per_in_flight_command = 0;
  int in_flight_calls = 0;
  double memory_store_lookups_per_s = 0;
  double memory_store_begin_complete_per_s = 0;
};

std::string ReadFileText(const char* path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

std::string Trim(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ' || s.back() == '\t')) s.pop_back();
  size_t i = 0;
  while (i < s.size() && (s[i] == ' ' || s[i] == '\t')) ++i;
  return s.substr(i);
}

std::string FieldOf(const std::string& text, const std::string& key) {
  std::stringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(key, 0) == 0) {
      size_t colon = line.find(':');
      if (colon != std::string::npos) return Trim(line.substr(colon + 1));
    }
  }
  return "";
}

// Bytes the allocator has handed out and not had back, in every arena.
size_t HeapBytesInUse() {
  struct mallinfo2 m = mallinfo2();
  return m.uordblks + m.hblkhd;
}

long RssKib() {
  std::string v = FieldOf(ReadFileText("/proc/self/status"), "VmRSS");
  return std::atol(v.c_str());
}

double CpuSeconds() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  return static_cast<double>(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
         static_cast<double>(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

struct Machine {
  int nproc = 0;
  std::string cpu;
  std::string memory;
  std::string kernel;
  std::string date;
  std::string load_start;
  std::string load_end;
};

Machine DescribeMachine() {
  Machine m;
  m.nproc = static_cast<int>(sysconf(_SC_NPROCESSORS_ONLN));
  m.cpu = FieldOf(ReadFileText("/proc/cpuinfo"), "model name");
  m.memory = FieldOf(ReadFileText("/proc/meminfo"), "MemTotal");
  utsname u{};
  if (uname(&u) == 0) m.kernel = std::string(u.sysname) + " " + u.release + " " + u.machine;
  char buf[64];
  std::time_t now = std::time(nullptr);
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&now));
  m.date = buf;
  m.load_start = Trim(ReadFileText("/proc/loadavg"));
  return m;
}

std::string JsonEscape(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (static_cast<unsigned char>(c) < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\u%04x", c);
      out += buf;
    } else {
      out += c;
    }
  }
  return out;
}

std::string Num(double v, int precision = 1) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", precision, v);
  return buf;
}

std::string SampleJson(const Sample& s) {
  return "{\"msgs_per_s\": " + Num(s.msgs_per_s) + ", \"p50_us\": " + Num(s.p50_us) +
         ", \"p99_us\": " + Num(s.p99_us) + ", \"count\": " + std::to_string(s.count) +
         ", \"errors\": " + std::to_string(s.errors) + ", \"first_error\": \"" +
         JsonEscape(s.first_error) + "\"}";
}

double Ratio(double a, double b) { return b > 0 ? a / b : 0; }

// Targets from the issue: throughput ratio at least, p99 ratio at most.
struct Target {
  double min_throughput_ratio = 0;
  double max_p99_ratio = 0;  // 0: no p99 target
};

std::optional<Target> TargetFor(const std::string& transport) {
  if (transport == "grpc" || transport == "nats" || transport == "nats-js")
    return Target{0.95, 1.05};
  if (transport == "amqp") return Target{0.9, 0};
  return std::nullopt;
}

std::string Verdict(const Row& r) {
  auto t = TargetFor(r.transport);
  if (!t || !r.skipped.empty()) return "";
  bool ok = Ratio(r.sb.msgs_per_s, r.raw.msgs_per_s) >= t->min_throughput_ratio;
  if (t->max_p99_ratio > 0) ok = ok && Ratio(r.sb.p99_us, r.raw.p99_us) <= t->max_p99_ratio;
  return ok ? "met" : "missed";
}

std::string JsonReport(const Flags& flags, const Machine& m, const std::vector<Row>& rows,
                       const Extras& x, const std::vector<std::string>& notes) {
  std::string j = "{\n";
  j += "  \"machine\": {\"nproc\": " + std::to_string(m.nproc) + ", \"cpu\": \"" +
       JsonEscape(m.cpu) + "\", \"memory\": \"" + JsonEscape(m.memory) + "\", \"kernel\": \"" +
       JsonEscape(m.kernel) + "\", \"loadavg_start\": \"" + JsonEscape(m.load_start) +
       "\", \"loadavg_end\": \"" + JsonEscape(m.load_end) + "\"},\n";
  j += "  \"date\": \"" + m.date + "\",\n";
  j += "  \"command\": \"" + JsonEscape(flags.command) + "\",\n";
  j += "  \"settings\": {\"quick\": " + std::string(flags.quick ? "true" : "false") +
       ", \"rounds\": " + std::to_string(flags.rounds) + ", \"seconds_per_round\": " +
       Num(flags.seconds, 3) + ", \"warmup_seconds\": " + Num(flags.warmup, 3) +
       ", \"statistic\": \"median of rounds\"},\n";
  j += "  \"rows\": [\n";
  for (size_t i = 0; i < rows.size(); ++i) {
    const Row& r = rows[i];
    j += "    {\"transport\": \"" + r.transport + "\", \"style\": \"" + r.style +
         "\", \"payload_bytes\": " + std::to_string(r.payload) +
         ", \"concurrency\": " + std::to_string(r.concurrency) + ", \"raw_kind\": \"" +
         JsonEscape(r.raw_kind) + "\"";
    if (!r.skipped.empty()) {
      j += ", \"skipped\": \"" + JsonEscape(r.skipped) + "\"}";
    } else {
      j += ", \"raw\": " + SampleJson(r.raw) + ", \"switchboard\": " + SampleJson(r.sb) +
           ", \"throughput_ratio\": " + Num(Ratio(r.sb.msgs_per_s, r.raw.msgs_per_s), 3) +
           ", \"p50_ratio\": " + Num(Ratio(r.sb.p50_us, r.raw.p50_us), 3) +
           ", \"p99_ratio\": " + Num(Ratio(r.sb.p99_us, r.raw.p99_us), 3) + ", \"target\": \"" +
           Verdict(r) + "\"}";
    }
    j += i + 1 < rows.size() ? ",\n" : "\n";
  }
  j += "  ],\n";
  j += "  \"inproc\": {\"measured\": " + std::string(x.measured ? "true" : "false") +
       ", \"raw_function_calls_per_s\": " + Num(x.raw_calls_per_s) +
       ", \"request_reply_calls_per_s_one_thread\": " + Num(x.executor_calls_per_s) +
       ", \"request_reply_calls_per_s_one_thread_inline\": " + Num(x.inline_calls_per_s) +
       ", \"cpu_us_per_call\": " + Num(x.executor_cpu_us_per_call, 2) +
       ", \"cpu_us_per_call_inline\": " + Num(x.inline_cpu_us_per_call, 2) +
       ", \"request_reply_calls_per_s_one_thread_inline_no_policies\": " +
       Num(x.no_policies_calls_per_s) +
       ", \"cpu_us_per_call_inline_no_policies\": " + Num(x.no_policies_cpu_us_per_call, 2) +
       ", \"in_flight_calls\": " + std::to_string(x.in_flight_calls) +
       ", \"heap_bytes_per_in_flight_call\": " + Num(x.heap_bytes_per_in_flight_call) +
       ", \"rss_bytes_per_in_flight_call\": " + Num(x.rss_bytes_per_in_flight_call) +
       ", \"heap_bytes_per_in_flight_command\": " + Num(x.heap_bytes_per_in_flight_command) +
       "},\n";
  j += "  \"idempotency\": {\"memory_store_lookups_per_s\": " +
       Num(x.memory_store_lookups_per_s) +
       ", \"memory_store_begin_complete_per_s\": " + Num(x.memory_store_begin_complete_per_s) +
       "},\n";
  j += "  \"notes\": [";
  for (size_t i = 0; i < notes.size(); ++i)
    j += (i ? ", \"" : "\"") + JsonEscape(notes[i]) + "\"";
  j += "]\n}\n";
  return j;
}

std::string TableText(const std::vector<Row>& rows, bool markdown) {
  std::string out;
  char buf[512];
  if (markdown) {
    out +=
        "| transport | style | payload | conc | raw msgs/s | sb msgs/s | ratio | raw p50 us | sb p50 "
        "us | raw p99 us | sb p99 us | p99 ratio | target |\n";
    out += "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|\n";
  } else {
    std::snprintf(buf, sizeof buf, "%-8s %-8s %6s %4s %11s %11s %6s %9s %9s %9s %9s %6s %s\n",
                  "transp", "style", "bytes", "conc", "raw msg/s", "sb msg/s", "ratio", "raw p50",
                  "sb p50", "raw p99", "sb p99", "p99 x", "target");
    out += buf;
  }
  for (const Row& r : rows) {
    if (!r.skipped.empty()) {
      if (markdown) {
        std::snprintf(buf, sizeof buf, "| %s | %s | %zu | %d | skipped: %s |||||||||\n",
                      r.transport.c_str(), r.style.c_str(), r.payload, r.concurrency,
                      r.skipped.c_str());
      } else {
        std::snprintf(buf, sizeof buf, "%-8s %-8s %6zu %4d skipped: %s\n", r.transport.c_str(),
                      r.style.c_str(), r.payload, r.concurrency, r.skipped.c_str());
      }
      out += buf;
      continue;
    }
    std::string verdict = Verdict(r);
    if (r.sb.errors + r.raw.errors > 0)
      verdict += " (errors raw " + std::to_string(r.raw.errors) + ", sb " +
                 std::to_string(r.sb.errors) + ")";
    std::snprintf(buf, sizeof buf,
                  markdown ? "| %s | %s | %zu | %d | %.0f | %.0f | %.2f | %.1f | %.1f | %.1f | %.1f "
                             "| %.2f | %s |\n"
                           : "%-8s %-8s %6zu %4d %11.0f %11.0f %6.2f %9.1f %9.1f %9.1f %9.1f "
                             "%6.2f %s\n",
                  r.transport.c_str(), r.style.c_str(), r.payload, r.concurrency,
                  r.raw.msgs_per_s, r.sb.msgs_per_s, Ratio(r.sb.msgs_per_s, r.raw.msgs_per_s),
                  r.raw.p50_us, r.sb.p50_us, r.raw.p99_us, r.sb.p99_us,
                  Ratio(r.sb.p99_us, r.raw.p99_us), verdict.c_str());
    out += buf;
  }
  return out;
}

std::string ExtrasText(const Extras& x, bool markdown) {
  if (!x.measured) return "inproc extras: not measured\n";
  char buf[2048];
  const char* fmt =
      markdown
          ? "| measure | value | target |\n|---|---:|---|\n"
            "| plain function call (serialize + parse both ways), calls/s, one thread | %.0f | |\n"
            "| inproc request/reply, calls/s, one caller thread, handler on the executor | %.0f | "
            ">= 1,000,000 per core: %s |\n"
            "| inproc request/reply, calls/s, one thread, `inline_execution = true` | %.0f | >= "
            "1,000,000 per core: %s |\n"
            "| CPU time per call (all threads, getrusage), executor | %.2f us | |\n"
            "| CPU time per call (all threads, getrusage), inline | %.2f us | |\n"
            "| the same, inline, an empty policy (tracing and metrics only), calls/s / CPU per "
            "call | %.0f / %.2f us | |\n"
            "| memory per in-flight call (%d parked on an async handler, a process of their "
            "own): heap in use / resident set growth | %.0f B / %.0f B | < 1 KiB: %s |\n"
            "| the same for commands (the consumer's side only): heap in use | %.0f B | |\n"
            "| idempotency memory store, lookups/s (completed key, one thread) | %.0f | |\n"
            "| idempotency memory store, begin + complete/s (one thread) | %.0f | |\n"
          : "inproc request/reply, one caller thread:\n"
            "  plain function call (same serialize/parse)   %12.0f calls/s\n"
            "  node, handler on the executor                %12.0f calls/s  (target 1,000,000 "
            "per core: %s)\n"
            "  node, inline_execution = true                %12.0f calls/s  (target 1,000,000 "
            "per core: %s)\n"
            "  CPU per call, executor                       %12.2f us\n"
            "  CPU per call, inline                         %12.2f us\n"
            "  inline, empty policy: calls/s, CPU per call  %12.0f  %.2f us\n"
            "  per in-flight call (%d parked): heap %8.0f B, RSS %.0f B  (target < 1 KiB: %s)\n"
            "  per in-flight command, consumer side: heap %8.0f B\n"
            "idempotency memory store:\n"
            "  lookups/s (completed key)                    %12.0f\n"
            "  begin + complete/s                           %12.0f\n";
  // Calls per core: CPU time per call is what a core spends on one call.
  auto per_core = [](double cpu_us) { return cpu_us > 0 ? 1e6 / cpu_us : 0; };
  std::snprintf(buf, sizeof buf, fmt, x.raw_calls_per_s, x.executor_calls_per_s,
                per_core(x.executor_cpu_us_per_call) >= 1e6 ? "met" : "missed",
                x.inline_calls_per_s, per_core(x.inline_cpu_us_per_call) >= 1e6 ? "met" : "missed",
                x.executor_cpu_us_per_call, x.inline_cpu_us_per_call, x.no_policies_calls_per_s,
                x.no_policies_cpu_us_per_call, x.in_flight_calls,
                x.heap_bytes_per_in_flight_call, x.rss_bytes_per_in_flight_call,
                x.heap_bytes_per_in_flight_call > 0 &&
                        std::max(x.heap_bytes_per_in_flight_call, x.rss_bytes_per_in_flight_call) <
                            1024
                    ? "met"
                    : "missed",
                x.heap_bytes_per_in_flight_command, x.memory_store_lookups_per_s, x.memory_store_begin_complete_per_s);
  return buf;
}

// ---------------------------------------------------------------------------
// Inproc extras

struct OneThread {
  double calls_per_s = 0;
  double cpu_us_per_call = 0;
};

template <class Fn>
OneThread TimeOneThread(double seconds, Fn fn) {
  constexpr uint64_t kMaxCalls = 100'000'000;
  double cpu0 = CpuSeconds();
  Clock::time_point start = Clock::now();
  Clock::time_point end =
      start + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(seconds));
  uint64_t n = 0;
  while (n < kMaxCalls) {
    // Check the clock every 64 calls: a clock read is a measurable part of a
    // sub-microsecond call.
    for (int i = 0; i < 64; ++i, ++n) fn();
    if (Clock::now() >= end) break;
  }
  double elapsed = std::chrono::duration<double>(Clock::now() - start).count();
  OneThread out;
  out.calls_per_s = static_cast<double>(n) / elapsed;
  out.cpu_us_per_call = (CpuSeconds() - cpu0) * 1e6 / static_cast<double>(n);
  return out;
}

struct ParkedMemory {
  double heap_bytes_per_call = 0;
  double rss_bytes_per_call = 0;
};

// Parks `calls` inproc requests (or commands) on an asynchronous handler that holds them, and
// measures the heap in use and the resident set before and after. Run in a process of its own
// (`--park-calls=N`): in the benchmark's process the pages freed by earlier rows are used
// again and the resident set does not grow with the calls. A parked request holds both sides
// of the call; a command's caller is done once it is accepted, so a parked command is the
// consumer's side alone.
template <class Rep>
absl::StatusOr<ParkedMemory> ParkCalls(Node& node, const Operation<EchoRequest, Rep>& op,
                                       int calls) {
  std::mutex mu;
  std::vector<Promise<Rep>> parked;
  bool hold = false;
  int answered = 0;  // before `hold`
  HandlerOptions options;
  options.max_in_flight = calls;
  auto reg = node.Handle(
      op,
      [&](Context&, const EchoRequest&) {
        auto [p, f] = MakePromise<Rep>();
        std::lock_guard<std::mutex> lock(mu);
        if (hold) {
          parked.push_back(std::move(p));
        } else {
          ++answered;
          p.Set(Rep());
        }
        return std::move(f);
      },
      options);
  if (!reg.ok()) return reg.status();
  EchoRequest req = MakeRequest(0, 0, 128);
  // Warm up: threads, spare envelopes and everything made once.
  constexpr int kWarmUp = 1000;
  for (int i = 0; i < kWarmUp; ++i) {
    auto reply = node.Call(op, req).GetFor(absl::Seconds(5));
    if (!reply.ok()) return reply.status();
  }
  // A command's call ends when it is accepted: wait for the handler too.
  for (int waited = 0;; ++waited) {
    {
      std::lock_guard<std::mutex> lock(mu);
      if (answered >= kWarmUp) {
        hold = true;
        break;
      }
    }
    if (waited == 3000) return absl::DeadlineExceededError("warm-up calls not handled");
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  parked.reserve(calls);
  std::vector<Future<Rep>> futures;
  futures.reserve(calls);
  const size_t heap_before = HeapBytesInUse();
  const long rss_before = RssKib();
  for (int i = 0; i < calls; ++i) futures.push_back(node.Call(op, req));
  for (int waited = 0; waited < 3000; ++waited) {
    {
      std::lock_guard<std::mutex> lock(mu);
      if (static_cast<int>(parked.size()) >= calls) break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  const size_t heap_after = HeapBytesInUse();
  const long rss_after = RssKib();
  size_t held = 0;
  {
    std::lock_guard<std::mutex> lock(mu);
    held = parked.size();
    for (auto& p : parked) p.Set(Rep());
    parked.clear();
  }
  for (auto& f : futures) (void)std::move(f).GetFor(absl::Seconds(5));
  if (held != static_cast<size_t>(calls))
    return absl::DeadlineExceededError("only " + std::to_string(held) + " of " +
                                       std::to_string(calls) + " calls reached the handler");
  ParkedMemory m;
  m.heap_bytes_per_call =
      (static_cast<double>(heap_after) - static_cast<double>(heap_before)) / calls;
  m.rss_bytes_per_call = static_cast<double>(rss_after - rss_before) * 1024.0 / calls;
  return m;
}

absl::StatusOr<ParkedMemory> ParkCalls(const Env& env, int calls, bool commands) {
  // Requests only: the command operation is free for the parking handler.
  auto side = SwitchboardSide::Create("inproc", env, false, true);
  if (!side.ok()) return side.status();
  if (commands) return ParkCalls((*side)->node(), kWork, calls);
  return ParkCalls((*side)->node(), Operation<EchoRequest, EchoReply>{"bench.v1.Park/Hold"},
                   calls);
}

// Runs `ParkCalls` in a new process of this binary and reads its answer.
absl::StatusOr<ParkedMemory> ParkCallsInNewProcess(int calls, bool commands) {
  // popen runs a shell, whose /proc/self/exe is the shell: name this binary.
  std::error_code error;
  std::string self = std::filesystem::read_symlink("/proc/self/exe", error).string();
  if (error) return absl::InternalError("cannot read /proc/self/exe: " + error.message());
  std::string command = "'" + self + "' --park-calls=" + std::to_string(calls) +
                        (commands ? " --park-commands" : "");
  FILE* child = popen(command.c_str(), "r");
  if (child == nullptr) return absl::InternalError("popen failed");
  ParkedMemory m;
  int read = std::fscanf(child, "parked heap %lf rss %lf", &m.heap_bytes_per_call,
                         &m.rss_bytes_per_call);
  int rc = pclose(child);
  if (read != 2 || rc != 0)
    return absl::InternalError("`" + command + "` exited " + std::to_string(rc) +
                               " without a measurement");
  return m;
}

Extras MeasureExtras(const Flags& flags, const Env& env) {
  Extras x;
  double seconds = flags.quick ? 0.2 : 2.0;
  EchoRequest req = MakeRequest(0, 1, 128);
  {
    RawInproc raw(Style::kRequest, 128);
    x.raw_calls_per_s = TimeOneThread(seconds, [&] { (void)raw.RunOnce(0, 1); }).calls_per_s;
  }
  for (int pass = 0; pass < 3; ++pass) {
    // The executor, inline, inline without policies.
    const bool inline_execution = pass > 0;
    Env pass_env = env;
    pass_env.no_policies = pass == 2;
    auto side = SwitchboardSide::Create("inproc", pass_env, inline_execution);
    if (!side.ok()) {
      std::cerr << "inproc extras: " << side.status() << "\n";
      return x;
    }
    Node& node = (*side)->node();
    uint64_t failures = 0;
    auto call = [&] {
      if (!node.Call(kSay, req).GetFor(absl::Seconds(5)).ok()) ++failures;
    };
    TimeOneThread(flags.warmup, call);
    OneThread t = TimeOneThread(seconds, call);
    if (failures > 0) std::cerr << "inproc extras: " << failures << " calls failed\n";
    double* calls_per_s[] = {&x.executor_calls_per_s, &x.inline_calls_per_s,
                             &x.no_policies_calls_per_s};
    double* cpu_us[] = {&x.executor_cpu_us_per_call, &x.inline_cpu_us_per_call,
                        &x.no_policies_cpu_us_per_call};
    *calls_per_s[pass] = t.calls_per_s;
    *cpu_us[pass] = t.cpu_us_per_call;
  }
  x.in_flight_calls = 10'000;
  if (auto parked = ParkCallsInNewProcess(x.in_flight_calls, false); parked.ok()) {
    x.heap_bytes_per_in_flight_call = parked->heap_bytes_per_call;
    x.rss_bytes_per_in_flight_call = parked->rss_bytes_per_call;
  } else {
    std::cerr << "inproc extras: parked calls: " << parked.status() << "\n";
  }
  if (auto parked = ParkCallsInNewProcess(x.in_flight_calls, true); parked.ok()) {
    x.heap_bytes_per_in_flight_command = parked->heap_bytes_per_call;
  } else {
    std::cerr << "inproc extras: parked commands: " << parked.status() << "\n";
  }

  IdempotencyStoreOptions o;
  o.ns = "bench.v1.Echo/Say";
  o.max_entries = 1'000'000;
  o.counters = std::make_shared<IdempotencyCounters>();
  std::unique_ptr<IdempotencyStore> store = MakeMemoryIdempotencyStore(o);
  constexpr int kKeys = 100'000;
  std::vector<std::string> keys;
  keys.reserve(kKeys);
  for (int i = 0; i < kKeys; ++i) keys.push_back("order-" + std::to_string(i));
  absl::Time lease = absl::Now() + absl::Seconds(600);
  IdempotencyOutcome outcome;
  outcome.data = std::string(64, 'r');
  outcome.content_type = std::string(kContentTypeProtobuf);
  for (const std::string& k : keys) {
    auto b = store->Begin(k, lease);
    if (b.ok() && b->state == IdempotencyState::kNew) (void)store->Complete(k, b->claim, outcome);
  }
  {
    // Fresh keys each call, in a store of the default size (so it also pays
    // for LRU eviction once full).
    IdempotencyStoreOptions fresh_options = o;
    fresh_options.max_entries = 100'000;
    std::unique_ptr<IdempotencyStore> fresh = MakeMemoryIdempotencyStore(fresh_options);
    uint64_t next = 0;
    x.memory_store_begin_complete_per_s =
        TimeOneThread(seconds / 2, [&] {
          std::string k = "new-" + std::to_string(next++);
          auto b = fresh->Begin(k, lease);
          if (b.ok() && b->state == IdempotencyState::kNew)
            (void)fresh->Complete(k, b->claim, outcome);
        }).calls_per_s;
  }
  size_t i = 0;
  x.memory_store_lookups_per_s =
      TimeOneThread(seconds / 2, [&] { (void)store->Begin(keys[(i++ * 7919) % kKeys], lease); })
          .calls_per_s;
  x.measured = true;
  return x;
}

// ---------------------------------------------------------------------------
// The run

std::string RawKind(const std::string& transport, Style style) {
  if (transport == "inproc") return "plain function call, same serialize/parse";
  if (transport == "grpc") return "gRPC C++ callback unary echo (generic stub and service)";
  if (transport == "nats")
    return style == Style::kRequest   ? "cnats request/reply"
           : style == Style::kCommand ? "cnats queue-group publish/subscribe"
                                      : "cnats publish/subscribe";
  if (transport == "nats-js")
    return style == Style::kRequest ? "cnats request/reply"
                                    : "cnats JetStream publish/fetch/ack";
  if (transport == "amqp")
    return style == Style::kRequest   ? "Proton send/receive with a reply queue"
           : style == Style::kCommand ? "Proton durable send/receive (queue)"
                                      : "Proton send/receive (topic)";
  return "";
}

absl::StatusOr<std::unique_ptr<Workload>> MakeRaw(const std::string& transport, Style style,
                                                  size_t payload, const Env& env) {
  if (transport == "inproc") return std::unique_ptr<Workload>(new RawInproc(style, payload));
  RawOptions o;
  o.style = style;
  o.payload_bytes = payload;
  o.concurrency = kMaxConcurrency;
  o.run_id = env.run_id + StyleName(style) + std::to_string(payload);
  if (transport == "grpc") return MakeRawGrpc(o);
  if (transport == "nats" || transport == "nats-js") {
    o.url = env.nats_url;
    o.jetstream = transport == "nats-js";
    o.envelope_headers = env.raw_headers;
    return MakeRawNats(o);
  }
  if (transport == "amqp") {
    o.url = env.amqp_url;
    o.management_url = env.amqp_mgmt;
    o.envelope_headers = env.raw_headers;
    return MakeRawAmqp(o);
  }
  return absl::InvalidArgumentError("unknown transport " + transport);
}

std::string Getenv(const char* name) {
  const char* v = std::getenv(name);
  return v == nullptr ? "" : v;
}

int Main(int argc, char** argv) {
  Flags flags;
  if (!ParseFlags(argc, argv, &flags)) return 2;
  if (flags.command.empty()) {
    for (int i = 0; i < argc; ++i) flags.command += (i ? " " : "") + std::string(argv[i]);
  }
  Machine machine = DescribeMachine();
  Env env;
  env.run_id = std::to_string(getpid()) + "x" + std::to_string(std::time(nullptr) % 100000);
  env.raw_headers = flags.raw_headers;
  env.content_mode = flags.content_mode;
  env.idle_spin_us = flags.idle_spin_us;
  env.grpc_unary_sends = flags.grpc_unary_sends;
  env.no_policies = flags.profile_no_policies;
  env.nats_url = Getenv("SWITCHBOARD_TEST_NATS_URL");
  env.amqp_url = Getenv("SWITCHBOARD_TEST_AMQP_URL");
  env.amqp_mgmt = Getenv("SWITCHBOARD_TEST_RABBITMQ_MGMT");
  if (flags.park_calls > 0) {
    auto parked = ParkCalls(env, flags.park_calls, flags.park_commands);
    if (!parked.ok()) {
      std::cerr << parked.status() << "\n";
      return 1;
    }
    std::printf("parked heap %.1f rss %.1f\n", parked->heap_bytes_per_call,
                parked->rss_bytes_per_call);
    std::fflush(stdout);
    std::_Exit(0);
  }
  if (flags.profile_calls > 0) {
    // valgrind --tool=callgrind transport_bench --profile-calls=20000: requests of 128 B, one
    // at a time, through a node (or the raw library with --profile-raw).
    int failed = 0;
    // Raw workloads stay alive until _Exit, as in the full run: a raw Proton
    // workload leaves its container thread running, which must not outlive it.
    absl::StatusOr<std::unique_ptr<Workload>> raw = absl::UnknownError("unused");
    if (flags.profile_raw) {
      raw = MakeRaw(flags.profile_transport, Style::kRequest, 128, env);
      if (!raw.ok()) {
        std::cerr << raw.status() << "\n";
        return 1;
      }
      for (int i = 0; i < flags.profile_calls; ++i)
        if (!(*raw)->RunOnce(0, g_seq[0].fetch_add(1) + 1).ok()) ++failed;
    } else {
      // No events: under a profiler the event subscription of a network transport can
      // take longer to confirm than the transport allows.
      auto side = SwitchboardSide::Create(flags.profile_transport, env, flags.profile_inline,
                                          !flags.profile_commands, true);
      if (!side.ok()) {
        std::cerr << side.status() << "\n";
        return 1;
      }
      auto unit = SwitchboardWorkload(**side, flags.profile_commands ? Style::kCommand
                                                                     : Style::kRequest,
                                      128);
      for (int i = 0; i < flags.profile_calls; ++i)
        if (!unit.RunOnce(0, g_seq[0].fetch_add(1) + 1).ok()) ++failed;
    }
    std::printf("%d calls, %d failed\n", flags.profile_calls, failed);
    std::fflush(stdout);
    std::_Exit(failed == 0 ? 0 : 1);
  }
  std::vector<std::string> notes;
  if (flags.raw_headers)
    notes.push_back("--raw-headers: the raw NATS messages carry the header set of a Switchboard "
                    "envelope (13 headers), the raw AMQP messages its application properties "
                    "and message fields, and the raw receivers read every one");
  if (flags.grpc_unary_sends)
    notes.push_back("--grpc-unary-sends: the Switchboard side's gRPC commands and events are "
                    "unary calls (Enqueue, Publish), not frames on a Send stream");
  if (!flags.content_mode.empty())
    notes.push_back("--content-mode=" + flags.content_mode +
                    ": the Switchboard side's NATS and AMQP transports send in that content mode");
  std::printf("transport_bench: %d rounds x %.2f s per side, median of rounds; load %s\n",
              flags.rounds, flags.seconds, machine.load_start.c_str());
  std::printf("%s", TableText({}, false).c_str());
  std::fflush(stdout);

  std::vector<Row> rows;
  // Everything connected to a broker stays alive until the process leaves:
  // closing costs time (and can stall) and is not what is measured.
  std::vector<std::unique_ptr<Workload>> kept_raw;
  std::vector<std::unique_ptr<SwitchboardSide>> kept_sides;
  const std::vector<size_t>& payloads = flags.payloads;
  const std::vector<int>& concurrencies = flags.concurrencies;
  for (const std::string& transport : flags.transports) {
    std::vector<Style> styles = {Style::kRequest, Style::kCommand, Style::kEvent};
    // JetStream changes commands and events only; its requests are core NATS.
    if (transport == "nats-js") styles = {Style::kCommand, Style::kEvent};
    if (!flags.styles.empty()) {
      std::erase_if(styles, [&](Style s) {
        return std::find(flags.styles.begin(), flags.styles.end(), StyleName(s)) ==
               flags.styles.end();
      });
    }
    auto add_skipped = [&](Style style, const std::string& why) {
      for (size_t p : payloads)
        for (int c : concurrencies)
          rows.push_back(Row{transport, StyleName(style), p, c, RawKind(transport, style), {}, {},
                             why});
    };
    auto side = SwitchboardSide::Create(transport, env, flags.inline_handlers);
    if (!side.ok()) {
      std::string why = side.status().ToString();
      std::printf("%s: skipped (%s)\n", transport.c_str(), why.c_str());
      for (Style s : styles) add_skipped(s, why);
      continue;
    }
    for (Style style : styles) {
      for (size_t payload : payloads) {
        auto raw = MakeRaw(transport, style, payload, env);
        if (!raw.ok()) {
          for (int c : concurrencies)
            rows.push_back(Row{transport, StyleName(style), payload, c, RawKind(transport, style),
                               {}, {}, raw.status().ToString()});
          std::printf("%s %s %zu: raw baseline unavailable: %s\n", transport.c_str(),
                      StyleName(style), payload, raw.status().ToString().c_str());
          continue;
        }
        SwitchboardWorkload sb(**side, style, payload);
        for (int conc : concurrencies) {
          const bool do_raw = flags.only != "sb", do_sb = flags.only != "raw";
          if (do_raw) Measure(**raw, conc, flags.warmup);
          if (do_sb) Measure(sb, conc, flags.warmup);
          std::vector<Sample> raw_rounds, sb_rounds;
          for (int r = 0; r < flags.rounds; ++r) {
            raw_rounds.push_back(do_raw ? Measure(**raw, conc, flags.seconds) : Sample{});
            sb_rounds.push_back(do_sb ? Measure(sb, conc, flags.seconds) : Sample{});
          }
          Row row{transport, StyleName(style), payload, conc, RawKind(transport, style),
                  MedianOf(raw_rounds), MedianOf(sb_rounds), ""};
          rows.push_back(row);
          std::printf("%s", TableText({row}, false).substr(TableText({}, false).size()).c_str());
          if (!row.sb.first_error.empty())
            std::printf("    switchboard error: %s\n", row.sb.first_error.c_str());
          if (!row.raw.first_error.empty())
            std::printf("    raw error: %s\n", row.raw.first_error.c_str());
          std::fflush(stdout);
        }
        kept_raw.push_back(*std::move(raw));
      }
    }
    kept_sides.push_back(*std::move(side));
  }

  Extras extras;
  if (flags.extras) extras = MeasureExtras(flags, env);
  machine.load_end = Trim(ReadFileText("/proc/loadavg"));
  if (machine.nproc <= 2)
    notes.push_back("inproc calls/s per core is derived from the CPU time per call (1 s / CPU "
                    "per call), since the caller and executor threads share the cores");

  std::printf("\n%s\n%s", TableText(rows, false).c_str(), ExtrasText(extras, false).c_str());
  std::printf("load average at start: %s; at end: %s\n", machine.load_start.c_str(),
              machine.load_end.c_str());

  std::string json = JsonReport(flags, machine, rows, extras, notes);
  if (!flags.json_path.empty()) {
    std::ofstream out(flags.json_path);
    out << json;
    if (!out) std::cerr << "transport_bench: cannot write " << flags.json_path << "\n";
  }
  if (!flags.md_path.empty()) {
    std::ofstream out(flags.md_path);
    out << "## Results of " << machine.date << "\n\n";
    out << "- Machine: " << machine.nproc << " CPUs (" << machine.cpu << "), " << machine.memory
        << " memory, " << machine.kernel << "\n";
    out << "- Load average (1, 5, 15 min): at start `" << machine.load_start << "`, at end `"
        << machine.load_end << "`\n";
    out << "- Command: `" << flags.command << "`\n";
    out << "- " << flags.rounds << " rounds of " << Num(flags.seconds, 2)
        << " s per side, alternating raw and Switchboard; each number is the median of the "
           "rounds. Latencies in microseconds.\n\n";
    out << TableText(rows, true) << "\n";
    out << ExtrasText(extras, true) << "\n";
    for (const std::string& n : notes) out << "- " << n << "\n";
  }
  std::fflush(stdout);
  // Broker client libraries may stall while closing connections (Proton
  // through RabbitMQ can take 30 s): the results are written, so leave
  // without running destructors.
  std::_Exit(0);
}

}  // namespace
}  // namespace switchboard::bench

int main(int argc, char** argv) { return switchboard::bench::Main(argc, argv); }
