// Tests for src/core/memory_budget.{h,cc}: try_acquire, FIFO acquire, peak, and concurrent use.
#include "core/memory_budget.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <random>
#include <thread>
#include <vector>

namespace ferry {
namespace {

TEST(MemoryBudget, StartsEmpty) {
  MemoryBudget b(100);
  EXPECT_EQ(b.limit(), 100u);
  EXPECT_EQ(b.in_use(), 0u);
  EXPECT_EQ(b.peak(), 0u);
}

TEST(MemoryBudget, TryAcquireWithinTheLimitSucceeds) {
  MemoryBudget b(100);
  EXPECT_TRUE(b.try_acquire(60));
  EXPECT_EQ(b.in_use(), 60u);
  EXPECT_TRUE(b.try_acquire(40));  // exactly up to the limit
  EXPECT_EQ(b.in_use(), 100u);
}

TEST(MemoryBudget, TryAcquireOverTheLimitFailsAndTakesNothing) {
  MemoryBudget b(100);
  ASSERT_TRUE(b.try_acquire(60));
  EXPECT_FALSE(b.try_acquire(41));
  EXPECT_EQ(b.in_use(), 60u);
  ASSERT_TRUE(b.try_acquire(40));
  EXPECT_FALSE(b.try_acquire(1));
  EXPECT_EQ(b.in_use(), 100u);
}

TEST(MemoryBudget, TryAcquireLeavesTheRequestedBytesFree) {
  MemoryBudget b(100);
  ASSERT_TRUE(b.try_acquire(40, 30));
  EXPECT_TRUE(b.try_acquire(30, 30));   // 70 used, exactly 30 left free
  EXPECT_FALSE(b.try_acquire(1, 30));   // would leave 29
  EXPECT_EQ(b.in_use(), 70u);
  EXPECT_TRUE(b.try_acquire(30));       // without headroom: up to the limit
  EXPECT_FALSE(b.try_acquire(0, 101));  // more headroom than the limit never fits
}

// The request a full budget's holders wait for (an S3 export's cursor part): taken at once.
TEST(MemoryBudget, AcquireOverLimitTakesBytesBeyondTheLimitAndQueuedWaitersWaitForTheRelease) {
  MemoryBudget b(100);
  ASSERT_TRUE(b.try_acquire(90));
  bool granted = false;
  b.acquire(20, [&] { granted = true; });
  ASSERT_FALSE(granted);
  b.acquire_over_limit(20);
  EXPECT_EQ(b.in_use(), 110u);
  EXPECT_EQ(b.peak(), 110u);
  EXPECT_FALSE(b.try_acquire(1));
  b.release(20);  // 90 used: the waiter's 20 still does not fit
  EXPECT_FALSE(granted);
  b.release(90);
  EXPECT_TRUE(granted);
  EXPECT_EQ(b.in_use(), 20u);
}

TEST(MemoryBudget, OversizeRequestSucceedsWhenNothingIsInUse) {
  MemoryBudget b(100);
  EXPECT_TRUE(b.try_acquire(250));
  EXPECT_EQ(b.in_use(), 250u);
  EXPECT_FALSE(b.try_acquire(1)) << "nothing else may join an oversize buffer";
  b.release(250);
  EXPECT_EQ(b.in_use(), 0u);
  EXPECT_TRUE(b.try_acquire(100));
}

TEST(MemoryBudget, OversizeRequestFailsWhileSomethingIsInUse) {
  MemoryBudget b(100);
  ASSERT_TRUE(b.try_acquire(1));
  EXPECT_FALSE(b.try_acquire(250));
  EXPECT_EQ(b.in_use(), 1u);
}

TEST(MemoryBudget, TryAcquireOfHugeRequestWhileBytesAreInUseIsRefused) {
  // used + n must not wrap around: 10 + (2^64 - 6) == 4 (mod 2^64) "fits" a limit of 100.
  MemoryBudget b(100);
  ASSERT_TRUE(b.try_acquire(10));
  EXPECT_FALSE(b.try_acquire(UINT64_MAX - 5));
  EXPECT_EQ(b.in_use(), 10u);
}

TEST(MemoryBudget, ReleaseReturnsBytes) {
  MemoryBudget b(100);
  ASSERT_TRUE(b.try_acquire(70));
  b.release(30);
  EXPECT_EQ(b.in_use(), 40u);
  EXPECT_TRUE(b.try_acquire(60));
  b.release(100);
  EXPECT_EQ(b.in_use(), 0u);
}

TEST(MemoryBudget, AcquireThatFitsIsGrantedAtOnceOnTheCallingThread) {
  MemoryBudget b(100);
  bool granted = false;
  std::thread::id where;
  b.acquire(80, [&] {
    granted = true;
    where = std::this_thread::get_id();
  });
  EXPECT_TRUE(granted);
  EXPECT_EQ(where, std::this_thread::get_id());
  EXPECT_EQ(b.in_use(), 80u);
}

TEST(MemoryBudget, AcquireThatDoesNotFitWaitsForARelease) {
  MemoryBudget b(100);
  ASSERT_TRUE(b.try_acquire(90));
  bool granted = false;
  b.acquire(20, [&] { granted = true; });
  EXPECT_FALSE(granted);
  EXPECT_EQ(b.in_use(), 90u);
  b.release(5);  // 85 + 20 > 100: still waiting
  EXPECT_FALSE(granted);
  b.release(5);  // 80 + 20 == 100
  EXPECT_TRUE(granted);
  EXPECT_EQ(b.in_use(), 100u);
}

TEST(MemoryBudget, WaitersAreGrantedInFifoOrderOnRelease) {
  MemoryBudget b(100);
  ASSERT_TRUE(b.try_acquire(100));
  std::vector<int> order;
  b.acquire(50, [&] { order.push_back(1); });
  b.acquire(30, [&] { order.push_back(2); });
  b.acquire(20, [&] { order.push_back(3); });
  EXPECT_TRUE(order.empty());
  b.release(100);
  EXPECT_EQ(order, (std::vector<int>{1, 2, 3}));
  EXPECT_EQ(b.in_use(), 100u);
}

TEST(MemoryBudget, ASmallWaiterDoesNotOvertakeALargerOneAheadOfIt) {
  MemoryBudget b(100);
  ASSERT_TRUE(b.try_acquire(100));
  std::vector<int> order;
  b.acquire(60, [&] { order.push_back(1); });
  b.acquire(10, [&] { order.push_back(2); });
  b.release(50);  // 50 free: the 10 would fit, but the 60 is first in line
  EXPECT_TRUE(order.empty());
  EXPECT_EQ(b.in_use(), 50u);
  b.release(50);
  EXPECT_EQ(order, (std::vector<int>{1, 2}));
  EXPECT_EQ(b.in_use(), 70u);
}

TEST(MemoryBudget, TryAcquireDoesNotJumpTheQueue) {
  MemoryBudget b(100);
  ASSERT_TRUE(b.try_acquire(90));
  bool granted = false;
  b.acquire(50, [&] { granted = true; });
  EXPECT_FALSE(b.try_acquire(5)) << "5 bytes fit, but a waiter is ahead";
  b.release(90);
  EXPECT_TRUE(granted);
  EXPECT_EQ(b.in_use(), 50u);
}

TEST(MemoryBudget, LaterAcquireQueuesBehindAWaiterEvenIfItFits) {
  MemoryBudget b(100);
  ASSERT_TRUE(b.try_acquire(90));
  std::vector<int> order;
  b.acquire(50, [&] { order.push_back(1); });
  b.acquire(5, [&] { order.push_back(2); });
  EXPECT_TRUE(order.empty());
  b.release(90);
  EXPECT_EQ(order, (std::vector<int>{1, 2}));
}

TEST(MemoryBudget, OversizeWaiterIsGrantedOnceEverythingIsReleased) {
  MemoryBudget b(100);
  ASSERT_TRUE(b.try_acquire(10));
  bool granted = false;
  b.acquire(500, [&] { granted = true; });
  EXPECT_FALSE(granted);
  b.release(10);
  EXPECT_TRUE(granted);
  EXPECT_EQ(b.in_use(), 500u);
}

TEST(MemoryBudget, GrantCallbackMayReleaseAndAcquireAgain) {
  // Callers post the callback, but a callback that touches the budget must not deadlock.
  MemoryBudget b(100);
  ASSERT_TRUE(b.try_acquire(100));
  int calls = 0;
  b.acquire(40, [&] {
    ++calls;
    b.release(40);
    EXPECT_TRUE(b.try_acquire(10));
  });
  b.release(100);
  EXPECT_EQ(calls, 1);
  EXPECT_EQ(b.in_use(), 10u);
}

TEST(MemoryBudget, PeakTracksTheHighestUse) {
  MemoryBudget b(100);
  ASSERT_TRUE(b.try_acquire(30));
  ASSERT_TRUE(b.try_acquire(50));
  EXPECT_EQ(b.peak(), 80u);
  b.release(50);
  EXPECT_EQ(b.peak(), 80u);
  EXPECT_EQ(b.in_use(), 30u);
  ASSERT_TRUE(b.try_acquire(10));
  EXPECT_EQ(b.peak(), 80u);
  bool granted = false;
  b.acquire(60, [&] { granted = true; });  // 40 + 60 == 100, granted now
  EXPECT_TRUE(granted);
  EXPECT_EQ(b.peak(), 100u);
}

TEST(MemoryBudget, PeakCountsGrantsMadeByRelease) {
  MemoryBudget b(1000);
  ASSERT_TRUE(b.try_acquire(1000));
  b.acquire(400, [] {});
  b.acquire(500, [] {});
  b.release(1000);
  EXPECT_EQ(b.in_use(), 900u);
  EXPECT_EQ(b.peak(), 1000u);
  b.release(900);
  ASSERT_TRUE(b.try_acquire(5000));  // oversize, alone
  EXPECT_EQ(b.peak(), 5000u);
}

// One grant, awaited by the thread that asked for it.
struct Grant {
  std::mutex mu;
  std::condition_variable cv;
  bool done = false;
  void signal() {
    std::lock_guard lock(mu);
    done = true;
    cv.notify_all();
  }
  bool wait(std::chrono::seconds timeout) {
    std::unique_lock lock(mu);
    return cv.wait_for(lock, timeout, [&] { return done; });
  }
};

// 4 threads take and give back buffers with try_acquire and acquire; a sampler watches
// in_use(). `oversize_every` > 0 mixes in requests larger than the limit. Each worker adds
// its bytes to `held` after the grant and removes them before the release, so `held` never
// exceeds what the budget has handed out: a `held` above the bound is a real over-grant.
constexpr int kRounds = 1000;  // per thread

void run_concurrent(uint64_t limit, int oversize_every, uint64_t* max_request_out, uint64_t* max_seen_out) {
  MemoryBudget b(limit);
  std::atomic<bool> stop{false};
  std::atomic<uint64_t> max_seen{0};
  std::atomic<uint64_t> max_request{0};
  std::atomic<uint64_t> held{0};
  std::atomic<int> lost{0};
  std::atomic<int> grants{0};
  auto raise = [](std::atomic<uint64_t>& a, uint64_t v) {
    uint64_t m = a.load();
    while (v > m && !a.compare_exchange_weak(m, v)) {
    }
  };
  std::thread sampler([&] {
    while (!stop) {
      raise(max_seen, b.in_use());
      std::this_thread::yield();
    }
  });
  std::vector<std::thread> workers;
  for (int w = 0; w < 4; ++w) {
    workers.emplace_back([&, w] {
      std::mt19937_64 rng(1234 + w);
      for (int i = 0; i < kRounds; ++i) {
        uint64_t n = 1 + rng() % (limit / 2);
        if (oversize_every > 0 && i % oversize_every == w) n = limit + 1 + rng() % limit;
        raise(max_request, n);
        if (i % 2 == 0) {
          if (!b.try_acquire(n)) continue;
        } else {
          auto g = std::make_shared<Grant>();
          b.acquire(n, [g] { g->signal(); });
          if (!g->wait(std::chrono::seconds(20))) {
            ++lost;  // never granted: a lost wake-up
            return;
          }
        }
        ++grants;
        raise(max_seen, held += n);
        for (uint64_t k = rng() % 4; k > 0; --k) std::this_thread::yield();
        held -= n;
        b.release(n);
      }
    });
  }
  for (auto& t : workers) t.join();
  stop = true;
  sampler.join();
  EXPECT_EQ(lost.load(), 0) << "an acquire() was never granted";
  EXPECT_GT(grants.load(), 4 * kRounds / 2) << "every acquire() and some try_acquire() calls are granted";
  EXPECT_EQ(b.in_use(), 0u);
  *max_request_out = max_request.load();
  *max_seen_out = std::max(max_seen.load(), b.peak());
}

TEST(MemoryBudget, ConcurrentAcquireReleaseNeverExceedsTheLimitAndEndsAtZero) {
  const uint64_t limit = 1000;
  uint64_t max_request = 0, max_seen = 0;
  run_concurrent(limit, 0, &max_request, &max_seen);
  EXPECT_LE(max_request, limit);
  EXPECT_LE(max_seen, limit);
  EXPECT_GT(max_seen, limit / 2) << "the threads never overlapped";
}

TEST(MemoryBudget, ConcurrentUseWithOversizeRequestsExceedsTheLimitOnlyByOneOversizeBuffer) {
  // An oversize buffer is granted only when nothing is in use, and nothing joins it, so use
  // never goes above max(limit, the largest single request).
  const uint64_t limit = 1000;
  uint64_t max_request = 0, max_seen = 0;
  run_concurrent(limit, 50, &max_request, &max_seen);
  EXPECT_GT(max_request, limit);
  EXPECT_LE(max_seen, std::max(limit, max_request));
}

}  // namespace
}  // namespace ferry
