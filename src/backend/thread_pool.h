#pragma once
// A fixed-size thread pool for data-parallel loops inside one forward pass.
//
// The calling thread takes part in every loop, so ThreadPool(n) starts n-1 workers. A loop hands
// out task indices [0, n_tasks) through an atomic counter; workers spin briefly on a generation
// counter before sleeping on a condition variable, because decode issues hundreds of short loops
// per token and waking a sleeping thread costs more than the work of one loop. (std::atomic::wait
// was tried first and lost wake-ups with GCC 12's libstdc++.)
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace kvbits {

class ThreadPool {
 public:
  // fn(task_index, thread_index): thread_index in [0, size()) identifies per-thread scratch.
  using TaskFn = std::function<void(int64_t task, int thread)>;

  explicit ThreadPool(int n_threads);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int size() const { return n_threads_; }

  // Runs fn for every task in [0, n_tasks) and returns when all are done. Not re-entrant:
  // fn must not call parallel_for on the same pool.
  void parallel_for(int64_t n_tasks, const TaskFn& fn);

 private:
  void worker_loop(int thread_index);
  void wake_sleepers();
  void run_tasks(int thread_index);

  int n_threads_;
  std::vector<std::thread> workers_;
  const TaskFn* fn_ = nullptr;
  int64_t n_tasks_ = 0;
  std::atomic<int64_t> next_task_{0};
  std::atomic<int> busy_workers_{0};
  std::atomic<uint64_t> generation_{0};
  std::atomic<bool> stop_{false};
  std::atomic<int> sleepers_{0};  // workers blocked on wake_
  std::mutex mutex_;
  std::condition_variable wake_;
};

}  // namespace kvbits
