#include "backend/thread_pool.h"

#include <exception>

#include "util/error.h"

namespace kvbits {

namespace {
// Spin iterations before a worker sleeps. Around 50 µs on current x86 cores: longer than the gap
// between two loops of one decode step, far shorter than the gap between decode steps.
constexpr int kSpinIterations = 20000;
// While spinning, give the core away every kYieldEvery iterations (sched_yield returns at once
// when nothing else is runnable). On an oversubscribed machine — another process using the
// cores — a pure pause loop burnt whole time slices waiting for a thread that was not running,
// and decode took 5-10x longer (eval's decode timing beside another job, docs/benchmarks.md).
constexpr int kYieldEvery = 256;

inline void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#endif
}
}  // namespace

ThreadPool::ThreadPool(int n_threads) : n_threads_(n_threads) {
  if (n_threads < 1 || n_threads > 1024) {
    throw Error("thread count must be in [1, 1024], got " + std::to_string(n_threads));
  }
  workers_.reserve(n_threads - 1);
  for (int i = 1; i < n_threads; ++i) workers_.emplace_back([this, i] { worker_loop(i); });
}

ThreadPool::~ThreadPool() {
  stop_.store(true);
  generation_.fetch_add(1);
  wake_sleepers();
  for (auto& t : workers_) t.join();
}

void ThreadPool::run_tasks(int thread_index) {
  for (;;) {
    const int64_t task = next_task_.fetch_add(1, std::memory_order_relaxed);
    if (task >= n_tasks_) break;
    (*fn_)(task, thread_index);
  }
}

void ThreadPool::parallel_for(int64_t n_tasks, const TaskFn& fn) {
  if (n_tasks <= 0) return;
  if (n_threads_ == 1 || n_tasks == 1) {
    for (int64_t t = 0; t < n_tasks; ++t) fn(t, 0);
    return;
  }
  fn_ = &fn;
  n_tasks_ = n_tasks;
  next_task_.store(0, std::memory_order_relaxed);
  busy_workers_.store(n_threads_ - 1, std::memory_order_relaxed);
  generation_.fetch_add(1);
  wake_sleepers();
  run_tasks(0);
  // Wait for every worker to check in (a late worker must not read this loop's state after we
  // return). Yield after a while: on an oversubscribed machine the worker needs our core.
  for (int spins = 0; busy_workers_.load(std::memory_order_acquire) != 0; ++spins) {
    if (spins < kSpinIterations && spins % kYieldEvery != kYieldEvery - 1) cpu_relax();
    else std::this_thread::yield();
  }
  fn_ = nullptr;
}

// Sequentially consistent order makes this race-free: a worker increments sleepers_ and then
// re-checks generation_ under the mutex; parallel_for increments generation_ and then reads
// sleepers_. Either the worker sees the new generation and does not sleep, or the caller sees the
// sleeper and notifies under the mutex, after the worker has started waiting.
void ThreadPool::wake_sleepers() {
  if (sleepers_.load() > 0) {
    std::lock_guard<std::mutex> lock(mutex_);
    wake_.notify_all();
  }
}

void ThreadPool::worker_loop(int thread_index) {
  // Generation 0 is the state at construction. Reading generation_ here instead would race with a
  // parallel_for issued before this thread got scheduled, and the worker would skip that loop.
  uint64_t seen = 0;
  for (;;) {
    int spins = 0;
    uint64_t now;
    while ((now = generation_.load()) == seen) {
      if (++spins < kSpinIterations) {
        if (spins % kYieldEvery == 0) std::this_thread::yield();
        else cpu_relax();
      } else {
        std::unique_lock<std::mutex> lock(mutex_);
        sleepers_.fetch_add(1);
        wake_.wait(lock, [&] { return generation_.load() != seen; });
        sleepers_.fetch_sub(1);
      }
    }
    seen = now;
    if (stop_.load()) return;
    // Library code must not let an exception escape a thread; kernels do not throw, so this
    // terminates loudly if one ever does rather than deadlocking the caller.
    run_tasks(thread_index);
    busy_workers_.fetch_sub(1, std::memory_order_acq_rel);
  }
}

}  // namespace kvbits
