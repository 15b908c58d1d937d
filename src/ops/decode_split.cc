#include "ops/decode_split.h"

namespace kvbits {

// (Until session 45 a task was cut at every 2,048 tokens: at depth 8192 + 32 that left a last task
// of one page, and with lanes one thread a third of the work until it stole. Until session 47 a
// thread had two tasks of about 2,048 tokens or more: decode_split.h.)
void split_decode_pages(std::span<const KvPageRef> pages, int threads, std::vector<int64_t>& parts) {
  int64_t total = 0;
  for (const KvPageRef& page : pages) total += page.n_tokens;
  if (total == 0) return;
  const int64_t n = threads;
  // task = min(n - 1, floor(x / (2 total))) with x = (2 before + own) n, which never decreases
  // from one page to the next: kept by comparing x with the next task's threshold instead of
  // dividing per page (that took ~0.4 us of a decode call at depth 8192, 129 pages; now ~0.2).
  int64_t before = 0, run_task = -1, run_start = 0, task = 0, threshold = 2 * total;
  for (int64_t p = 0; p < static_cast<int64_t>(pages.size()); ++p) {
    const int64_t x = (2 * before + pages[p].n_tokens) * n;
    while (task < n - 1 && x >= threshold) {
      ++task;
      threshold += 2 * total;
    }
    if (task != run_task) {
      if (run_task >= 0) parts.insert(parts.end(), {run_start, p});
      run_task = task;
      run_start = p;
    }
    before += pages[p].n_tokens;
  }
  parts.insert(parts.end(), {run_start, static_cast<int64_t>(pages.size())});
}

}  // namespace kvbits
