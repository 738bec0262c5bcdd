#include "switchboard/executor.h"

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <future>
#include <mutex>
#include <set>
#include <thread>
#include <vector>

#include "absl/synchronization/notification.h"
#include "gtest/gtest.h"
#include "switchboard/internal/idle_watch.h"

namespace switchboard {
namespace {

// Counts down to zero; Wait gives up after `limit` so that a broken pool
// fails the test instead of hanging it.
class Latch {
 public:
  explicit Latch(int count) : count_(count) {}
  void ArriveAndWait(std::chrono::seconds limit) {
    std::unique_lock<std::mutex> lock(mu_);
    if (--count_ == 0) cv_.notify_all();
    cv_.wait_for(lock, limit, [this] { return count_ <= 0; });
  }
  bool Done() {
    std::lock_guard<std::mutex> lock(mu_);
    return count_ <= 0;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  int count_;
};

class ThreadPoolTest : public testing::TestWithParam<absl::Duration> {};

INSTANTIATE_TEST_SUITE_P(IdleSpin, ThreadPoolTest,
                         testing::Values(absl::ZeroDuration(), ThreadPool::kDefaultIdleSpin,
                                         absl::Milliseconds(20)),
                         [](const testing::TestParamInfo<absl::Duration>& info) {
                           return std::to_string(absl::ToInt64Microseconds(info.param)) + "us";
                         });

TEST_P(ThreadPoolTest, RunsEveryTaskOnItsOwnThreads) {
  constexpr int kPosters = 4;
  constexpr int kPerPoster = 2500;
  std::atomic<int> ran{0};
  std::mutex ids_mu;
  std::set<std::thread::id> ids;
  {
    ThreadPool pool(3, "t-pool", GetParam());
    EXPECT_EQ(pool.thread_count(), 3u);
    std::vector<std::thread> posters;
    for (int p = 0; p < kPosters; ++p) {
      posters.emplace_back([&] {
        for (int i = 0; i < kPerPoster; ++i) {
          pool.Post([&] {
            {
              std::lock_guard<std::mutex> lock(ids_mu);
              ids.insert(std::this_thread::get_id());
            }
            ran.fetch_add(1);
          });
        }
      });
    }
    for (auto& t : posters) t.join();
  }  // the destructor runs what is queued, then joins
  EXPECT_EQ(ran.load(), kPosters * kPerPoster);
  EXPECT_LE(ids.size(), 3u);
  EXPECT_EQ(ids.count(std::this_thread::get_id()), 0u);
}

// Tasks that only finish together need every worker awake: a worker watching
// the queue must not keep the pool from waking the sleeping ones. Repeated so
// the burst meets the workers in every state (running, watching, asleep).
TEST_P(ThreadPoolTest, WakesAWorkerForEachTaskTheAwakeOnesCannotTake) {
  constexpr int kThreads = 4;
  ThreadPool pool(kThreads, "t-pool", GetParam());
  for (int round = 0; round < 50; ++round) {
    SCOPED_TRACE(round);
    auto latch = std::make_shared<Latch>(kThreads);
    std::atomic<int> finished{0};
    for (int i = 0; i < kThreads; ++i) {
      pool.Post([latch, &finished] {
        latch->ArriveAndWait(std::chrono::seconds(10));
        finished.fetch_add(1);
      });
    }
    // Wait for the round through the pool itself: a task posted after the
    // burst runs once a worker is free again.
    absl::Notification drained;
    pool.Post([&] { drained.Notify(); });
    ASSERT_TRUE(drained.WaitForNotificationWithTimeout(absl::Seconds(30)));
    while (finished.load() < kThreads) std::this_thread::yield();
    ASSERT_TRUE(latch->Done()) << "the " << kThreads << " tasks never ran at the same time";
  }
}

TEST_P(ThreadPoolTest, DropsTasksPostedAfterShutdown) {
  ThreadPool pool(2, "t-pool", GetParam());
  pool.Shutdown();
  auto alive = std::make_shared<int>(0);
  std::weak_ptr<int> watch = alive;
  bool ran = false;
  pool.Post([&ran, alive = std::move(alive)] { ran = true; });
  EXPECT_FALSE(ran);
  EXPECT_TRUE(watch.expired());  // destroyed by Post, not kept
  EXPECT_EQ(pool.queued(), 0u);
}

// A worker watching the queue notices Shutdown at once, however long its
// watch: Shutdown does not wait out the watch.
TEST(ThreadPoolShutdownTest, DoesNotWaitOutAWatch) {
  auto pool = std::make_unique<ThreadPool>(2, "t-pool", absl::Seconds(120));
  absl::Notification ran;
  pool->Post([&] { ran.Notify(); });
  ASSERT_TRUE(ran.WaitForNotificationWithTimeout(absl::Seconds(10)));
  auto shutdown = std::async(std::launch::async, [&] { pool->Shutdown(); });
  EXPECT_EQ(shutdown.wait_for(std::chrono::seconds(30)), std::future_status::ready);
}

TEST(IdleWatchTest, ReturnsAsSoonAsReady) {
  int looks = 0;
  int yields = 0;
  EXPECT_TRUE(internal::WatchBeforeSleeping(
      int64_t{60'000'000'000}, [&] { return ++looks == 3; }, [&] { ++yields; }));
  EXPECT_EQ(looks, 3);
  EXPECT_EQ(yields, 2);  // one between each two looks
}

// A result that is already there (a send completed before Get) costs no
// yield, that is, no system call.
TEST(IdleWatchTest, ReadyAtTheFirstLookDoesNotYield) {
  int yields = 0;
  EXPECT_TRUE(internal::WatchBeforeSleeping(
      int64_t{60'000'000'000}, [] { return true; }, [&] { ++yields; }));
  EXPECT_EQ(yields, 0);
}

TEST(IdleWatchTest, GivesUpWhenTheWatchIsOver) {
  int looks = 0;
  EXPECT_FALSE(internal::WatchBeforeSleeping(int64_t{200'000}, [&] {
    ++looks;
    return false;
  }));
  EXPECT_GE(looks, 2);
}

TEST(IdleWatchTest, NoWatchLooksOnce) {
  int looks = 0;
  int yields = 0;
  EXPECT_FALSE(internal::WatchBeforeSleeping(
      0, [&] { ++looks; return false; }, [&] { ++yields; }));
  EXPECT_EQ(looks, 1);
  EXPECT_EQ(yields, 0);
  EXPECT_TRUE(internal::WatchBeforeSleeping(0, [] { return true; }));
}

}  // namespace
}  // namespace switchboard
