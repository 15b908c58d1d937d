// ThreadPool: every task runs exactly once on a valid thread index, loops of any size complete,
// and the start-up / shut-down races stay fixed. (Speed is measured by benchmarks, not here.)
#include "backend/thread_pool.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <thread>
#include <vector>

#include "util/error.h"

namespace kvbits {
namespace {

TEST(ThreadPool, EveryTaskRunsExactlyOnceOnAValidThread) {
  for (int n_threads = 1; n_threads <= 4; ++n_threads) {
    ThreadPool pool(n_threads);
    EXPECT_EQ(pool.size(), n_threads);
    for (int64_t n_tasks : {0, 1, 2, 3, 100, 10000}) {
      // Plain (non-atomic) slots written by whichever thread ran the task: reading them after
      // parallel_for returns also checks that the pool publishes the workers' writes.
      std::vector<int> runs(static_cast<size_t>(n_tasks), 0);
      std::vector<int> thread_of(static_cast<size_t>(n_tasks), -1);
      std::atomic<int> bad_thread{0};
      pool.parallel_for(n_tasks, [&](int64_t task, int thread) {
        ++runs[static_cast<size_t>(task)];
        thread_of[static_cast<size_t>(task)] = thread;
        if (thread < 0 || thread >= n_threads) bad_thread.fetch_add(1);
      });
      EXPECT_EQ(bad_thread.load(), 0);
      for (int64_t t = 0; t < n_tasks; ++t) {
        ASSERT_EQ(runs[t], 1) << "threads=" << n_threads << " n_tasks=" << n_tasks << " task=" << t;
        ASSERT_GE(thread_of[t], 0);
        ASSERT_LT(thread_of[t], n_threads);
      }
    }
  }
}

TEST(ThreadPool, NegativeTaskCountRunsNothing) {
  ThreadPool pool(2);
  int calls = 0;
  pool.parallel_for(-5, [&](int64_t, int) { ++calls; });
  EXPECT_EQ(calls, 0);
}

TEST(ThreadPool, ManyConsecutiveTinyLoops) {
  // Decode issues hundreds of short loops per token; none may be lost. The caller waits until
  // every worker has checked in to every loop, so on a busy 2-core machine one loop can cost a
  // scheduler time slice (measured 20 us .. 1.5 ms per loop): loop counts are chosen to keep the
  // test within a few seconds even then (a few hundred ms when the machine is idle).
  const struct { int threads, loops; } configs[] = {{1, 20000}, {2, 5000}, {3, 100}, {4, 100}};
  for (const auto& cfg : configs) {
    ThreadPool pool(cfg.threads);
    int64_t total = 0;
    std::vector<int64_t> slots(3, 0);
    for (int i = 0; i < cfg.loops; ++i) {
      const int64_t n = 1 + i % 3;  // 1..3 tasks: single-task loops take the inline path too
      pool.parallel_for(n, [&](int64_t task, int) { slots[static_cast<size_t>(task)] += 1; });
      total += n;
    }
    EXPECT_EQ(slots[0] + slots[1] + slots[2], total) << "threads=" << cfg.threads;
  }
}

TEST(ThreadPool, LoopImmediatelyAfterConstruction) {
  // Regression: a worker that was scheduled after the first parallel_for had bumped the
  // generation used to take that generation as "already seen", skip the loop and leave the
  // caller waiting for it forever.
  for (int i = 0; i < 200; ++i) {
    const int n_threads = 2 + i % 3;
    ThreadPool pool(n_threads);
    std::atomic<int> count{0};
    pool.parallel_for(16, [&](int64_t, int) { count.fetch_add(1); });
    ASSERT_EQ(count.load(), 16) << "iteration " << i;
  }
}

TEST(ThreadPool, DestructionRightAfterConstruction) {
  for (int i = 0; i < 200; ++i) {
    auto pool = std::make_unique<ThreadPool>(1 + i % 4);
    pool.reset();  // must join workers that may not have started running yet
  }
  SUCCEED();
}

TEST(ThreadPool, ReusableAfterWorkersFellAsleep) {
  // Workers spin briefly, then sleep on a condition variable; a loop issued after a pause must
  // wake them (and a lost wake-up would hang here).
  ThreadPool pool(2);
  for (int round = 0; round < 3; ++round) {
    std::atomic<int> count{0};
    pool.parallel_for(50, [&](int64_t, int) { count.fetch_add(1); });
    EXPECT_EQ(count.load(), 50);
    std::this_thread::sleep_for(std::chrono::milliseconds(20));  // longer than the spin phase
  }
}

TEST(ThreadPool, InvalidThreadCountsThrow) {
  EXPECT_THROW(ThreadPool(0), Error);
  EXPECT_THROW(ThreadPool(-1), Error);
  EXPECT_THROW(ThreadPool(1025), Error);
  EXPECT_NO_THROW(ThreadPool(1));
}

}  // namespace
}  // namespace kvbits
