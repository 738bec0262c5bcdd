#include "switchboard/internal/envelope_pool.h"

#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "switchboard/testing/envelope_testing.h"

namespace switchboard::internal {
namespace {

// Every field of `env` at its default (the comparison names each one that
// is not).
void ExpectDefault(const Envelope& env) { EXPECT_TRUE(testing::EnvelopesEqual(env, Envelope{})); }

// An envelope with every field away from its default.
Envelope Full() {
  Envelope env;
  env.id = "0190a8f4-2b1c-7d3e-8f40-123456789abc";
  env.source = "//orders/eu-west-1/instance-0042";
  env.spec_version = "1.1";
  env.type = "orders.v1.Orders/PlaceOrder";
  env.time = absl::FromUnixSeconds(1'700'000'000);
  env.data_content_type = "application/json; charset=utf-8";
  env.subject = "order-7";
  env.traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
  env.tracestate = "vendor=opaque-value-of-some-length";
  env.idempotency_key = "client-chosen-idempotency-key-0001";
  env.deadline = absl::FromUnixSeconds(1'700'000'005);
  env.correlation_id = "0190a8f4-2b1c-7d3e-8f40-cba987654321";
  env.reply_to = "replies.node-a.inbox-with-a-long-name";
  env.attempt = 3;
  env.style = Style::kCommand;
  env.status = absl::UnavailableError("the broker went away in the middle");
  env.extensions["partitionkey"] = "customer-1234";
  env.data = std::string(1000, 'x');
  return env;
}

void Drain() {
  while (SpareEnvelopes() > 0) (void)NewEnvelope();
}

TEST(EnvelopePoolTest, NewEnvelopeIsDefaultWithoutSpares) {
  Drain();
  ExpectDefault(NewEnvelope());
}

TEST(EnvelopePoolTest, RecycledEnvelopeComesBackClearedWithItsBuffers) {
  Drain();
  Envelope full = Full();
  const char* data_buffer = full.data.data();
  const size_t type_capacity = full.type.capacity();
  RecycleEnvelope(std::move(full));
  ASSERT_EQ(SpareEnvelopes(), 1u);

  Envelope env = NewEnvelope();
  EXPECT_EQ(SpareEnvelopes(), 0u);
  ExpectDefault(env);
  // The buffers came along: filling them again allocates nothing.
  EXPECT_EQ(env.data.data(), data_buffer);
  EXPECT_GE(env.data.capacity(), 1000u);
  EXPECT_EQ(env.type.capacity(), type_capacity);
}

TEST(EnvelopePoolTest, ClearKeepingBuffersResetsEveryField) {
  Envelope env = Full();
  ClearKeepingBuffers(&env);
  ExpectDefault(env);
}

TEST(EnvelopePoolTest, KeepsAtMostMaxSpares) {
  Drain();
  for (size_t i = 0; i < kMaxSpares + 5; ++i) RecycleEnvelope(Full());
  EXPECT_EQ(SpareEnvelopes(), kMaxSpares);
  Drain();
}

TEST(EnvelopePoolTest, LargePayloadBuffersAreNotKept) {
  Drain();
  Envelope big = Full();
  big.data.assign(kMaxSpareDataBytes + 1, 'y');
  RecycleEnvelope(std::move(big));
  EXPECT_EQ(SpareEnvelopes(), 0u);
  Envelope small = Full();
  small.data.assign(kMaxSpareDataBytes / 2, 'y');
  small.data.shrink_to_fit();
  RecycleEnvelope(std::move(small));
  EXPECT_EQ(SpareEnvelopes(), 1u);
  Drain();
}

TEST(EnvelopePoolTest, AssignNewMessageIdReusesTheBuffer) {
  std::string id(64, 'z');
  const char* buffer = id.data();
  AssignNewMessageId(&id);
  ASSERT_EQ(id.size(), 36u);
  EXPECT_EQ(id.data(), buffer);
  EXPECT_EQ(id[8], '-');
  EXPECT_EQ(id[13], '-');
  EXPECT_EQ(id[14], '7');  // version 7
  EXPECT_EQ(id[18], '-');
  EXPECT_EQ(id[23], '-');
  std::string other;
  AssignNewMessageId(&other);
  EXPECT_NE(id, other);
}

// Threads taking and returning envelopes at once (built on one thread and
// dropped on another is the common case): every envelope taken is default,
// whatever the thread that filled it last.
TEST(EnvelopePoolTest, ThreadsShareTheSparesSafely) {
  Drain();
  std::atomic<int> dirty{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&dirty, t] {
      for (int i = 0; i < 5000; ++i) {
        Envelope env = NewEnvelope();
        if (!env.id.empty() || !env.data.empty() || env.attempt != 1 ||
            !env.extensions.empty() || !env.status.ok()) {
          dirty.fetch_add(1);
        }
        env.id = "thread-" + std::to_string(t) + "-call-" + std::to_string(i) + "-padding";
        env.data.assign(100 + i % 50, 'd');
        env.attempt = 2;
        env.extensions["k"] = "v";
        env.status = absl::InternalError("x");
        RecycleEnvelope(std::move(env));
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(dirty.load(), 0);
  EXPECT_LE(SpareEnvelopes(), kMaxSpares);
  Drain();
}

}  // namespace
}  // namespace switchboard::internal
