#include "cli/eval_workers.h"

#include <algorithm>

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

}  // namespace kvbits::cli
