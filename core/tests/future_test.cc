#include "switchboard/future.h"

#include <thread>

#include "gtest/gtest.h"

namespace switchboard {
namespace {

TEST(FutureTest, ThenRunsWhenSet) {
  auto [p, f] = MakePromise<int>();
  int got = 0;
  std::move(f).Then([&](absl::StatusOr<int> v) { got = *v; });
  EXPECT_EQ(got, 0);
  p.Set(7);
  EXPECT_EQ(got, 7);
}

TEST(FutureTest, ThenRunsInlineWhenReady) {
  auto f = Future<int>::Ready(absl::NotFoundError("x"));
  absl::StatusCode code = absl::StatusCode::kOk;
  std::move(f).Then([&](absl::StatusOr<int> v) { code = v.status().code(); });
  EXPECT_EQ(code, absl::StatusCode::kNotFound);
}

TEST(FutureTest, DroppedPromiseCancels) {
  Future<int> f;
  {
    Promise<int> p;
    f = p.GetFuture();
  }
  EXPECT_EQ(std::move(f).Get().status().code(), absl::StatusCode::kCancelled);
}

TEST(FutureTest, GetBlocksUntilOtherThreadSets) {
  auto [p, f] = MakePromise<std::string>();
  std::thread t([p = std::move(p)]() mutable { p.Set(std::string("hi")); });
  EXPECT_EQ(*std::move(f).Get(), "hi");
  t.join();
}

TEST(FutureTest, GetForTimesOut) {
  auto [p, f] = MakePromise<int>();
  EXPECT_EQ(std::move(f).GetFor(absl::Milliseconds(1)).status().code(),
            absl::StatusCode::kDeadlineExceeded);
}

// Get watches for the result briefly before it sleeps: a result set during
// the watch, or after it, arrives either way.
TEST(FutureTest, GetReceivesResultsSetWhileWatchingOrAsleep) {
  for (int i = 0; i < 2000; ++i) {
    auto [p, f] = MakePromise<int>();
    std::thread t([p = std::move(p), i]() mutable {
      if (i % 2 == 0) std::this_thread::yield();
      p.Set(i);
    });
    absl::StatusOr<int> got = std::move(f).GetFor(absl::Seconds(30));
    t.join();
    ASSERT_TRUE(got.ok()) << got.status();
    ASSERT_EQ(*got, i);
  }
}

// The watch never outlasts the caller's own limit.
TEST(FutureTest, GetForShorterThanTheWatchTimesOut) {
  auto [p, f] = MakePromise<int>();
  EXPECT_EQ(std::move(f).GetFor(absl::Microseconds(1)).status().code(),
            absl::StatusCode::kDeadlineExceeded);
  auto [p2, f2] = MakePromise<int>();
  EXPECT_EQ(std::move(f2).GetFor(absl::ZeroDuration()).status().code(),
            absl::StatusCode::kDeadlineExceeded);
}

TEST(FutureTest, FirstResultWins) {
  auto [p, f] = MakePromise<int>();
  p.Set(1);
  p.Set(2);
  EXPECT_EQ(*std::move(f).Get(), 1);
}

}  // namespace
}  // namespace switchboard
