#include "batch_reaper.h"

#include <thread>
#include <vector>

#include "gtest/gtest.h"

namespace switchboard::nats {
namespace {

struct Obj {
  size_t bytes = 0;
  int destroyed = 0;
};

void Destroy(Obj* o) { ++o->destroyed; }
size_t Size(Obj* o) { return o->bytes; }

using Reaper = BatchReaper<Obj>;

int DestroyedCount(const std::vector<Obj>& objs) {
  int n = 0;
  for (const Obj& o : objs) n += o.destroyed;
  return n;
}

TEST(BatchReaperTest, WithoutAHolderAnObjectIsDestroyedAtOnce) {
  Reaper reaper(&Destroy, &Size);
  Obj o;
  reaper.Retire(&o);
  EXPECT_EQ(o.destroyed, 1);
  EXPECT_EQ(reaper.waiting(), 0u);
}

TEST(BatchReaperTest, AFullBatchIsDestroyedTogether) {
  Reaper reaper(&Destroy, &Size);
  Reaper::Hold hold(reaper);
  std::vector<Obj> objs(Reaper::kBatch);
  for (size_t i = 0; i + 1 < objs.size(); ++i) reaper.Retire(&objs[i]);
  EXPECT_EQ(DestroyedCount(objs), 0);
  EXPECT_EQ(reaper.waiting(), Reaper::kBatch - 1);
  reaper.Retire(&objs.back());
  EXPECT_EQ(reaper.waiting(), 0u);
  for (const Obj& o : objs) EXPECT_EQ(o.destroyed, 1);
}

TEST(BatchReaperTest, LargeObjectsAreNotHeldBeyondTheByteBound) {
  Reaper reaper(&Destroy, &Size);
  Reaper::Hold hold(reaper);
  Obj small{.bytes = 100};
  Obj big{.bytes = Reaper::kBatchBytes};
  reaper.Retire(&small);
  EXPECT_EQ(small.destroyed, 0);
  reaper.Retire(&big);
  EXPECT_EQ(small.destroyed, 1);
  EXPECT_EQ(big.destroyed, 1);
  EXPECT_EQ(reaper.waiting(), 0u);
}

TEST(BatchReaperTest, TheLastHolderToCloseHandsOverTheRest) {
  Reaper reaper(&Destroy, &Size);
  Obj a, b;
  {
    Reaper::Hold first(reaper);
    {
      Reaper::Hold second(reaper);
      reaper.Retire(&a);
    }
    EXPECT_EQ(a.destroyed, 0) << "another holder is still open";
    reaper.Retire(&b);
  }
  EXPECT_EQ(a.destroyed, 1);
  EXPECT_EQ(b.destroyed, 1);
  Obj late;
  reaper.Retire(&late);
  EXPECT_EQ(late.destroyed, 1);
  reaper.Retire(nullptr);  // ignored
}

TEST(BatchReaperTest, ConcurrentRetiresDestroyEachObjectExactlyOnce) {
  constexpr int kThreads = 4;
  constexpr int kPerThread = 1000;
  Reaper reaper(&Destroy, &Size);
  std::vector<Obj> objs(kThreads * kPerThread);
  {
    Reaper::Hold hold(reaper);
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t) {
      threads.emplace_back([&, t] {
        for (int i = 0; i < kPerThread; ++i) reaper.Retire(&objs[t * kPerThread + i]);
      });
    }
    for (auto& th : threads) th.join();
  }
  for (const Obj& o : objs) ASSERT_EQ(o.destroyed, 1);
}

}  // namespace
}  // namespace switchboard::nats
