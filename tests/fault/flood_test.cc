// flood_test.cc: a flood of commands to a slow consumer, on inproc, NATS
// JetStream and AMQP (RabbitMQ), with the process's memory measured.
//
// The consumer is gated: while the gate is closed it holds every delivery
// unsettled (a consumer whose handlers are all busy), so the transport may
// hand it no more than its prefetch (max_in_flight / fetch batch / link
// credit); the publisher pipelines its sends with a bounded window and waits
// for acceptance (backpressure). Then the gate opens and every command must
// be processed exactly once. VmRSS (/proc/self/status) is read before, at
// the peak (sampled every few milliseconds), and after; its growth must stay
// under a generous bound, justified next to each bound. Each test runs in a
// process of its own (one ctest test per gtest test), so the numbers are
// this test's. The numbers are printed for docs/reliability.md.
//
// Broker tests read SWITCHBOARD_TEST_NATS_URL / SWITCHBOARD_TEST_AMQP_URL
// (scripts/with-servers.sh) and skip without them unless
// SWITCHBOARD_REQUIRE_SERVERS=1.
#include <malloc.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <fstream>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "switchboard/clock.h"
#include "switchboard/envelope.h"
#include "switchboard/inproc_transport.h"
#include "switchboard/transport.h"
#include "switchboard/v1/config.pb.h"

#ifdef SWITCHBOARD_FLOOD_NATS
#include "nats_test_env.h"
#include "switchboard/nats/nats_transport.h"
#endif
#ifdef SWITCHBOARD_FLOOD_AMQP
#include "amqp_test_env.h"
#include "switchboard/amqp/amqp_transport.h"
#endif

namespace switchboard {
namespace {

using ::testing::HasSubstr;

constexpr size_t kPayloadBytes = 128;
// Deliveries a consumer may hold at once: the prefetch bound under test.
constexpr int kMaxInFlight = 64;

// Resident set size of this process, in KiB (0 when unreadable).
int64_t RssKiB() {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("VmRSS:", 0) != 0) continue;
    int64_t kib = 0;
    std::string digits;
    for (char c : line) {
      if (c >= '0' && c <= '9') digits.push_back(c);
    }
    return absl::SimpleAtoi(digits, &kib) ? kib : 0;
  }
  return 0;
}

// Samples VmRSS every 5 ms on a thread of its own and keeps the maximum.
class RssSampler {
 public:
  RssSampler() : thread_([this] { Run(); }) {}
  ~RssSampler() { Stop(); }
  void Stop() {
    stop_.store(true);
    if (thread_.joinable()) thread_.join();
  }
  int64_t peak_kib() const { return peak_.load(); }

 private:
  void Run() {
    while (!stop_.load()) {
      int64_t now = RssKiB();
      int64_t seen = peak_.load();
      while (now > seen && !peak_.compare_exchange_weak(seen, now)) {
      }
      absl::SleepFor(absl::Milliseconds(5));
    }
  }
  std::atomic<bool> stop_{false};
  std::atomic<int64_t> peak_{0};
  std::thread thread_;
};

// "000123:xxxx..." -> 123; the payload is kPayloadBytes long.
std::string Payload(int index) {
  std::string out = absl::StrCat(index, ":");
  out.insert(0, 8 - std::min<size_t>(8, out.size()), '0');
  out.resize(kPayloadBytes, 'x');
  return out;
}

int IndexOf(const std::string& payload) {
  int index = -1;
  size_t colon = payload.find(':');
  if (colon == std::string::npos || !absl::SimpleAtoi(payload.substr(0, colon), &index)) return -1;
  return index;
}

// The gated consumer. Thread-safe: handlers run on transport threads.
class SlowConsumer {
 public:
  explicit SlowConsumer(int expected)
      : state_(std::make_shared<State>()) {
    state_->seen = std::vector<int>(static_cast<size_t>(expected), 0);
  }

  DeliveryHandler Handler() {
    std::shared_ptr<State> s = state_;
    return [s](std::unique_ptr<Delivery> d) {
      {
        absl::MutexLock lock(&s->mu);
        ++s->held_now;
        s->max_held = std::max(s->max_held, s->held_now);
        if (!s->open) {
          s->parked.push_back(std::move(d));
          return;
        }
      }
      Process(*s, std::move(d));
    };
  }

  // Settles what is parked; everything later is processed on arrival.
  void Open() {
    std::vector<std::unique_ptr<Delivery>> parked;
    {
      absl::MutexLock lock(&state_->mu);
      state_->open = true;
      parked.swap(state_->parked);
    }
    for (auto& d : parked) Process(*state_, std::move(d));
  }

  // Bounded wait until `pred` holds on the state.
  bool WaitFor(const std::function<bool(int held, int processed)>& pred, absl::Duration timeout) {
    std::shared_ptr<State> s = state_;
    absl::MutexLock lock(&s->mu);
    auto ready = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(s->mu) {
      return pred(s->held_now, s->processed);
    };
    return s->mu.AwaitWithTimeout(absl::Condition(&ready), timeout);
  }

  int held_now() { return Get(&State::held_now); }
  int max_held() { return Get(&State::max_held); }
  int processed() { return Get(&State::processed); }
  int bad() { return Get(&State::bad); }
  // Indexes processed other than exactly once (missing or duplicated).
  std::vector<int> NotExactlyOnce() {
    absl::MutexLock lock(&state_->mu);
    std::vector<int> out;
    for (size_t i = 0; i < state_->seen.size(); ++i) {
      if (state_->seen[i] != 1) out.push_back(static_cast<int>(i));
    }
    return out;
  }

 private:
  struct State {
    absl::Mutex mu;
    bool open ABSL_GUARDED_BY(mu) = false;
    int held_now ABSL_GUARDED_BY(mu) = 0;
    int max_held ABSL_GUARDED_BY(mu) = 0;
    int processed ABSL_GUARDED_BY(mu) = 0;
    int bad ABSL_GUARDED_BY(mu) = 0;
    std::vector<int> seen ABSL_GUARDED_BY(mu);
    std::vector<std::unique_ptr<Delivery>> parked ABSL_GUARDED_BY(mu);
  };

  static void Process(State& s, std::unique_ptr<Delivery> d) {
    const int index = IndexOf(d->envelope().data);
    {
      absl::MutexLock lock(&s.mu);
      if (index >= 0 && static_cast<size_t>(index) < s.seen.size()) {
        ++s.seen[static_cast<size_t>(index)];
      } else {
        ++s.bad;
      }
      ++s.processed;
      --s.held_now;
    }
    d->Ack();
  }

  int Get(int State::*field) {
    absl::MutexLock lock(&state_->mu);
    return (*state_).*field;
  }

  std::shared_ptr<State> state_;
};

// Enqueues commands with at most `window` unacknowledged at a time; the
// sending thread waits for room (backpressure), callbacks never block.
class WindowedSender {
 public:
  explicit WindowedSender(int window) : window_(window), s_(std::make_shared<State>()) {}

  // Sends commands [0, n) of `op`; returns the acceptance failures.
  int SendAll(Transport& t, const std::string& op, int n) {
    for (int i = 0; i < n; ++i) {
      {
        absl::MutexLock lock(&s_->mu);
        auto room = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(s_->mu) {
          return s_->outstanding < window_;
        };
        if (!s_->mu.AwaitWithTimeout(absl::Condition(&room), absl::Seconds(30))) break;
        ++s_->outstanding;
      }
      Envelope e;
      e.id = NewMessageId();
      e.source = "//flood";
      e.type = op;
      e.time = absl::Now();
      e.style = Style::kCommand;
      e.data = Payload(i);
      std::shared_ptr<State> s = s_;
      t.Enqueue(std::move(e), [s](absl::Status st) {
        absl::MutexLock lock(&s->mu);
        --s->outstanding;
        ++s->done;
        if (!st.ok()) {
          ++s->failed;
          if (s->first_error.ok()) s->first_error = st;
        }
      });
    }
    absl::MutexLock lock(&s_->mu);
    auto all = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(s_->mu) { return s_->outstanding == 0; };
    s_->mu.AwaitWithTimeout(absl::Condition(&all), absl::Seconds(30));
    return s_->failed + (n - s_->done);
  }

  absl::Status first_error() {
    absl::MutexLock lock(&s_->mu);
    return s_->first_error;
  }

 private:
  struct State {
    absl::Mutex mu;
    int outstanding ABSL_GUARDED_BY(mu) = 0;
    int done ABSL_GUARDED_BY(mu) = 0;
    int failed ABSL_GUARDED_BY(mu) = 0;
    absl::Status first_error ABSL_GUARDED_BY(mu);
  };
  const int window_;
  std::shared_ptr<State> s_;
};

Endpoint CommandEndpoint(const std::string& op) {
  Endpoint ep;
  ep.operation = op;
  ep.group = op;
  ep.max_in_flight = kMaxInFlight;
  return ep;
}

// The whole scenario on one transport; `consumer_transport` may be the
// same as `publisher`.
void RunFlood(const std::string& label, Transport& publisher, Transport& consumer_transport,
              const std::string& op, int n, int window, int held_bound, int64_t growth_bound_kib) {
  // Memory an earlier test in this process freed goes back to the system
  // first (ctest runs each test alone; a direct run of the binary does not).
  malloc_trim(0);
  const int64_t before_kib = RssKiB();
  RssSampler sampler;
  SlowConsumer consumer(n);
  auto sub = consumer_transport.Consume(CommandEndpoint(op), consumer.Handler());
  ASSERT_TRUE(sub.ok()) << sub.status();

  WindowedSender sender(window);
  const absl::Time start = absl::Now();
  const int failed = sender.SendAll(publisher, op, n);
  const absl::Duration publish_time = absl::Now() - start;
  ASSERT_EQ(failed, 0) << sender.first_error();

  // The consumer fills its prefetch and gets nothing more while it holds it.
  EXPECT_TRUE(consumer.WaitFor([&](int held, int) { return held >= held_bound; },
                               absl::Seconds(10)))
      << "held " << consumer.held_now();
  absl::SleepFor(absl::Milliseconds(300));
  const int held_at_peak = consumer.held_now();
  const int64_t blocked_kib = RssKiB();
  EXPECT_EQ(consumer.processed(), 0);

  const absl::Time released = absl::Now();
  consumer.Open();
  const bool all = consumer.WaitFor([&](int, int processed) { return processed >= n; },
                                    absl::Seconds(120));
  const absl::Duration drain_time = absl::Now() - released;
  EXPECT_TRUE(all) << consumer.processed() << " of " << n << " processed";
  // Nothing comes twice (a late redelivery would show up here).
  absl::SleepFor(absl::Milliseconds(300));
  sub->reset();
  const int64_t after_kib = RssKiB();
  sampler.Stop();
  const int64_t peak_kib = std::max(sampler.peak_kib(), blocked_kib);

  EXPECT_LE(consumer.max_held(), held_bound);
  EXPECT_EQ(held_at_peak, held_bound);
  EXPECT_EQ(consumer.processed(), n);
  EXPECT_EQ(consumer.bad(), 0);
  std::vector<int> wrong = consumer.NotExactlyOnce();
  EXPECT_TRUE(wrong.empty()) << wrong.size() << " commands not processed exactly once, first "
                             << (wrong.empty() ? -1 : wrong.front());
  EXPECT_LT(peak_kib - before_kib, growth_bound_kib)
      << "RSS grew from " << before_kib << " KiB to " << peak_kib << " KiB";
  std::printf(
      "flood %s: %d commands of %zu B, window %d, prefetch %d: publish %.2f s (%.0f/s), "
      "drain %.2f s (%.0f/s); held at most %d; RSS before %.1f MiB, peak %.1f MiB "
      "(+%.1f MiB), blocked %.1f MiB, after %.1f MiB\n",
      label.c_str(), n, kPayloadBytes, window, held_bound, absl::ToDoubleSeconds(publish_time),
      n / absl::ToDoubleSeconds(publish_time), absl::ToDoubleSeconds(drain_time),
      n / absl::ToDoubleSeconds(drain_time), consumer.max_held(), before_kib / 1024.0,
      peak_kib / 1024.0, (peak_kib - before_kib) / 1024.0, blocked_kib / 1024.0,
      after_kib / 1024.0);
}

std::unique_ptr<Transport> Inproc(const std::string& bus, uint64_t max_queue_depth) {
  v1::TransportConfig config;
  config.set_type("inproc");
  config.mutable_inproc()->set_bus(bus);
  config.mutable_inproc()->set_max_queue_depth(max_queue_depth);
  TransportEnv env;
  env.clock = &Clock::Real();
  env.source = "//flood";
  auto t = MakeInprocTransport("local", config, env);
  EXPECT_TRUE(t.ok()) << t.status();
  return t.ok() ? *std::move(t) : nullptr;
}

std::string RunId() {
  return absl::StrCat(getpid(), "x", absl::ToUnixMillis(absl::Now()) % 100000000);
}

// inproc is the broker: all 100,000 commands wait in this process's memory
// (an Envelope with its strings is about 0.8 KiB; measured growth about
// 75 MiB), so the bound is the queue itself: 150 MiB for 100,000 x 128 B.
TEST(Flood, InprocHoldsTheQueueAndBoundsTheConsumer) {
  constexpr int kCount = 100'000;
  auto t = Inproc(absl::StrCat("flood-", RunId()), kCount);
  ASSERT_NE(t, nullptr);
  RunFlood("inproc", *t, *t, "flood.v1.Work/Do", kCount, /*window=*/1024, kMaxInFlight,
           150 * 1024);
}

// Backpressure: with max_queue_depth N the publisher gets ResourceExhausted
// naming the setting once N wait, and nothing it was told is accepted is
// lost.
TEST(Flood, InprocFullQueueRefusesThePublisherAndLosesNothingAccepted) {
  constexpr int kDepth = 1000;
  constexpr int kTried = 3000;
  auto t = Inproc(absl::StrCat("flood-bp-", RunId()), kDepth);
  ASSERT_NE(t, nullptr);
  const std::string op = "flood.v1.Work/Backpressure";
  SlowConsumer consumer(kTried);
  auto sub = t->Consume(CommandEndpoint(op), consumer.Handler());
  ASSERT_TRUE(sub.ok()) << sub.status();
  std::vector<int> accepted;
  int refused = 0;
  absl::Status first_refusal;
  for (int i = 0; i < kTried; ++i) {
    Envelope e;
    e.id = NewMessageId();
    e.source = "//flood";
    e.type = op;
    e.time = absl::Now();
    e.style = Style::kCommand;
    e.data = Payload(i);
    absl::Status result = absl::UnknownError("no callback");
    t->Enqueue(std::move(e), [&result](absl::Status s) { result = std::move(s); });  // inline
    if (result.ok()) {
      accepted.push_back(i);
    } else {
      if (refused == 0) first_refusal = result;
      ++refused;
    }
  }
  // The consumer holds its prefetch; the queue holds exactly max_queue_depth.
  EXPECT_EQ(consumer.held_now(), kMaxInFlight);
  EXPECT_EQ(static_cast<int>(accepted.size()), kDepth + kMaxInFlight);
  EXPECT_EQ(accepted.back(), kDepth + kMaxInFlight - 1);  // refused from then on, never before
  EXPECT_EQ(refused, kTried - kDepth - kMaxInFlight);
  EXPECT_EQ(first_refusal.code(), absl::StatusCode::kResourceExhausted) << first_refusal;
  EXPECT_THAT(std::string(first_refusal.message()), HasSubstr("max_queue_depth 1000"));

  consumer.Open();
  ASSERT_TRUE(consumer.WaitFor(
      [&](int, int processed) { return processed >= static_cast<int>(accepted.size()); },
      absl::Seconds(10)));
  std::vector<int> wrong = consumer.NotExactlyOnce();
  // Exactly the accepted ones, each once; the refused ones never.
  ASSERT_EQ(wrong.size(), static_cast<size_t>(refused));
  EXPECT_EQ(wrong.front(), kDepth + kMaxInFlight);
  const int processed = consumer.processed();
  EXPECT_EQ(processed, static_cast<int>(accepted.size()));
  // Drained: the publisher is accepted again.
  absl::Status again = absl::UnknownError("no callback");
  Envelope e;
  e.id = NewMessageId();
  e.source = "//flood";
  e.type = op;
  e.time = absl::Now();
  e.style = Style::kCommand;
  e.data = Payload(0);
  t->Enqueue(std::move(e), [&again](absl::Status s) { again = std::move(s); });
  EXPECT_TRUE(again.ok()) << again;
  std::printf("inproc backpressure: depth %d, prefetch %d: %zu accepted, %d refused "
              "(ResourceExhausted), %d processed exactly once\n",
              kDepth, kMaxInFlight, accepted.size(), refused, processed);
}

#ifdef SWITCHBOARD_FLOOD_NATS
// JetStream keeps the stream in nats-server (another process); this process
// holds at most the publisher's window of unacknowledged publishes and the
// consumer's max_in_flight deliveries. Measured growth: about 15 MiB; 64 MiB
// is generous and still far below what keeping 100,000 messages would cost.
TEST(Flood, NatsJetStreamBoundsPrefetchAndMemory) {
  SB_REQUIRE_NATS();
  constexpr int kCount = 100'000;
  const std::string prefix = absl::StrCat("sbflood.", nats::testing::UniqueId());
  v1::TransportConfig config = nats::testing::TestConfig(/*jetstream=*/true, prefix);
  // Longer than the whole test: a held delivery is never redelivered.
  config.mutable_nats()->mutable_ack_wait()->set_seconds(300);
  config.mutable_nats()->set_fetch_batch(32);
  TransportEnv env;
  env.clock = &Clock::Real();
  env.source = "//flood";
  auto pub = nats::MakeNatsTransport("bus", config, env);
  ASSERT_TRUE(pub.ok()) << pub.status();
  auto sub = nats::MakeNatsTransport("bus", config, env);
  ASSERT_TRUE(sub.ok()) << sub.status();
  RunFlood("nats-jetstream", **pub, **sub, absl::StrCat("flood.v1.Work/Do_", nats::testing::UniqueId()),
           kCount, /*window=*/2048, kMaxInFlight, 64 * 1024);
}
#endif

#ifdef SWITCHBOARD_FLOOD_AMQP
// RabbitMQ keeps the queue; this process holds the publisher's window and
// the consumer's link credit (max_in_flight). 64 MiB as for NATS (measured:
// about 12 MiB). RabbitMQ 3.10 takes durable commands at about 8,000 per
// second on one link here, so this is the slowest flood (20-40 s).
TEST(Flood, AmqpBoundsCreditAndMemory) {
  SB_REQUIRE_AMQP();
  constexpr int kCount = 100'000;
  const std::string prefix = absl::StrCat("sbflood.", amqp::testing::UniqueId(), ".");
  TransportEnv env;
  env.clock = &Clock::Real();
  env.source = "//flood";
  auto pub = amqp::testing::NewTestTransport(prefix, env);
  ASSERT_TRUE(pub.ok()) << pub.status();
  auto sub = amqp::testing::NewTestTransport(prefix, env);
  ASSERT_TRUE(sub.ok()) << sub.status();
  RunFlood("amqp", **pub, **sub, "flood.v1.Work/Do", kCount, /*window=*/1024, kMaxInFlight,
           64 * 1024);
}
#endif

}  // namespace
}  // namespace switchboard
