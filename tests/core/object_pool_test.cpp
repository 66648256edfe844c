// ObjectPool: reuse within a thread, the bucket bound, the reset hook, statistics, bad input, and 8 threads
// renting at once without an object ever being handed out twice.

#include "unimem/core/object_pool.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <cstdint>
#include <string>
#include <thread>
#include <vector>

#include "unimem/core/error.hpp"

namespace unimem {
namespace {

struct Request {
  std::uint64_t id = 0;
  std::vector<int> payload;
};

TEST(ObjectPool, ReturnedObjectIsReusedByTheSameThread) {
  ObjectPool<Request> pool;
  Request* first = nullptr;
  {
    ObjectPool<Request>::Lease lease = pool.rent();
    first = lease.get();
    lease->id = 7;
    EXPECT_EQ((*lease).id, 7U);
  }
  EXPECT_EQ(pool.idle_in_this_thread(), 1U);
  const ObjectPool<Request>::Lease again = pool.rent();
  EXPECT_EQ(again.get(), first);
  const ObjectPoolStats stats = pool.stats();
  EXPECT_EQ(stats.misses, 1U);
  EXPECT_EQ(stats.hits, 1U);
  EXPECT_EQ(stats.returns, 1U);
}

TEST(ObjectPool, ResetHookRunsOnReturn) {
  ObjectPool<Request> pool({}, [](Request& r) {
    r.id = 0;
    r.payload.clear();
  });
  {
    auto lease = pool.rent();
    lease->id = 42;
    lease->payload.assign(100, 1);
  }
  const auto lease = pool.rent();
  EXPECT_EQ(lease->id, 0U);
  EXPECT_TRUE(lease->payload.empty());
}

TEST(ObjectPool, BucketHoldsAtMostItsBound) {
  ObjectPool<Request> pool({.max_per_bucket = 2});
  {
    std::vector<ObjectPool<Request>::Lease> leases;
    for (int i = 0; i < 5; ++i) leases.push_back(pool.rent());
  }
  EXPECT_EQ(pool.idle_in_this_thread(), 2U);
  const ObjectPoolStats stats = pool.stats();
  EXPECT_EQ(stats.misses, 5U);
  EXPECT_EQ(stats.returns, 5U);
  EXPECT_EQ(stats.discards, 3U);
}

TEST(ObjectPool, MovedLeaseGivesBackOnce) {
  ObjectPool<Request> pool;
  auto a = pool.rent();
  ObjectPool<Request>::Lease b = std::move(a);
  EXPECT_FALSE(a);  // NOLINT(bugprone-use-after-move): the moved-from state is what is tested
  EXPECT_TRUE(b);
  b = ObjectPool<Request>::Lease{};
  EXPECT_EQ(pool.stats().returns, 1U);
  EXPECT_EQ(pool.idle_in_this_thread(), 1U);
}

TEST(ObjectPool, BadInputIsATypedErrorNamingTheValue) {
  try {
    const ObjectPool<Request> pool({.max_per_bucket = 0});
    FAIL() << "a zero bucket size was accepted";
  } catch (const InvalidArgument& e) {
    EXPECT_NE(std::string(e.what()).find("max_per_bucket = 0"), std::string::npos) << e.what();
  }
  const ObjectPool<Request>::Lease empty;
  EXPECT_THROW((void)empty->id, InvalidArgument);
}

TEST(ObjectPool, PoolDestroyedBeforeAThreadThatUsedItExits) {
  auto pool = std::make_unique<ObjectPool<Request>>();
  std::atomic<bool> used{false};
  std::atomic<bool> destroyed{false};
  std::thread worker([&] {
    { auto lease = pool->rent(); }
    used = true;
    while (!destroyed) std::this_thread::yield();
    // A new pool on this thread must not find the dead one's bucket.
    ObjectPool<Request> other;
    { auto lease = other.rent(); }
    EXPECT_EQ(other.stats().misses, 1U);
  });
  while (!used) std::this_thread::yield();
  pool.reset();
  destroyed = true;
  worker.join();
}

// Every lease marks its object held; a second holder at once would see the mark.
struct Held {
  std::atomic<int> holders{0};
};

TEST(ObjectPoolConcurrency, EightThreadsNeverShareAnObject) {
  constexpr int kThreads = 8;
  constexpr int kRounds = 20000;
  ObjectPool<Held> pool({.max_per_bucket = 4});
  std::atomic<int> shared{0};
  const auto take = [&](ObjectPool<Held>::Lease& lease) {
    if (lease->holders.fetch_add(1) != 0) ++shared;
  };
  const auto drop = [](ObjectPool<Held>::Lease& lease) { lease->holders.fetch_sub(1); };
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&] {
      for (int round = 0; round < kRounds; ++round) {
        auto a = pool.rent();
        auto b = pool.rent();
        take(a);
        take(b);
        drop(a);
        if (round % 1000 == 0) {
          // A lease handed to another thread returns the object to that thread's bucket.
          std::thread([&drop, moved = std::move(b)]() mutable { drop(moved); }).join();
        } else {
          drop(b);
        }
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  EXPECT_EQ(shared.load(), 0);
  const ObjectPoolStats stats = pool.stats();
  EXPECT_EQ(stats.hits + stats.misses, std::uint64_t{2} * kThreads * kRounds);
  EXPECT_EQ(stats.returns, stats.hits + stats.misses);
  EXPECT_GT(stats.hits, stats.misses);
}

}  // namespace
}  // namespace unimem
