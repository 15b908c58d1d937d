#pragma once
// Item-parallel evaluation sessions, shared by `eval` and `sweep`.
#include <memory>
#include <span>
#include <vector>

#include "cli/common.h"
#include "eval/runner.h"

namespace kvbits::cli {

// Default worker count: one session per thread. On this project's 2-core machine two 1-thread
// sessions scored HellaSwag ~1.3x faster than one 2-thread session (the matmuls of an item's short
// chunks scale poorly across threads; docs/benchmarks.md, "Item-parallel evaluation").
int default_jobs(int threads);

struct EvalWorkers {
  std::vector<std::unique_ptr<Session>> sessions;  // owns every worker's session(s)
  std::vector<eval::RunnerWorker> workers;         // points into `sessions`
};

// `jobs` workers sharing `threads` threads (each gets threads / jobs, the first threads % jobs one
// more, at least 1). Worker 0 uses base.policy; every other worker gets a policy instance of its
// own parsed from `kv` (a policy's running state, e.g. the learned budget surplus, is per worker).
// kl: each worker also gets an FP16-cache reference session. Throws Error like Session's
// constructor.
EvalWorkers make_eval_workers(const LlamaModel& model, const SessionOptions& base, const KvFlags& kv, int threads,
                              int jobs, bool kl);

// Runs one task on `workers` into `r` with a progress line on stderr labelled
// "TASK [POLICY]" (r.task, r.policy.name), and records r.wall_seconds. Throws like eval::run_task.
void run_task_with_progress(std::span<const eval::RunnerWorker> workers, const Tokenizer& tokenizer,
                            const eval::TaskData& data, const eval::RunnerOptions& options, eval::RunResult& r);

}  // namespace kvbits::cli
