#include "cli/eval_workers.h"

#include <algorithm>
#include <chrono>
#include <string>

#include "eval/progress.h"
#include "util/error.h"

namespace kvbits::cli {

int default_jobs(int threads) { return std::max(1, threads); }

EvalWorkers make_eval_workers(const LlamaModel& model, const SessionOptions& base, const KvFlags& kv, int threads,
                              int jobs, bool kl) {
  if (jobs < 1) throw Error("--jobs must be >= 1");
  EvalWorkers out;
  for (int w = 0; w < jobs; ++w) {
    SessionOptions so = base;
    so.threads = std::max(1, threads / jobs + (w < threads % jobs ? 1 : 0));
    if (w > 0) apply_kv_flags(kv, so);
    out.sessions.push_back(std::make_unique<Session>(model, so));
    Session* session = out.sessions.back().get();
    Session* reference = nullptr;
    if (kl) {
      SessionOptions ro = so;
      ro.policy = nullptr;  // FP16 cache
      ro.kv.budget_bytes = 0;
      out.sessions.push_back(std::make_unique<Session>(model, ro));
      reference = out.sessions.back().get();
    }
    out.workers.push_back({session, reference});
  }
  return out;
}

void run_task_with_progress(std::span<const eval::RunnerWorker> workers, const Tokenizer& tokenizer,
                            const eval::TaskData& data, const eval::RunnerOptions& options, eval::RunResult& r) {
  const std::string label = r.task + " [" + r.policy.name + "]";
  eval::Progress progress(label, 0);
  std::string last_metric;
  int64_t last_done = 0;
  const auto t0 = std::chrono::steady_clock::now();
  eval::run_task(workers, tokenizer, data, options, r, [&](int64_t done, int64_t total, const std::string& metric) {
    if (done == 1) progress = eval::Progress(label, total);
    progress.update(done, metric);
    last_metric = metric;
    last_done = done;
  });
  progress.finish(last_done, last_metric);
  r.wall_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace kvbits::cli
