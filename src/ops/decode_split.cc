#include "ops/decode_split.h"

#include <algorithm>

namespace kvbits {

// (Until session 45 a task was cut at every 2,048 tokens: at depth 8192 + 32 that left a last task
// of one page, and with lanes one thread a third of the work until it stole. Until session 47 a
// thread had two tasks of about 2,048 tokens or more: decode_split.h.)
void split_decode_pages(std::span<const KvPageRef> pages, int threads, std::vector<int64_t>& parts) {
  int64_t total = 0;
  for (const KvPageRef& page : pages) total += page.n_tokens;
  if (total == 0) return;
  const int64_t n = threads;
  int64_t before = 0, run_task = -1, run_start = 0;
  for (int64_t p = 0; p < static_cast<int64_t>(pages.size()); ++p) {
    const int64_t task = std::min(n - 1, (2 * before + pages[p].n_tokens) * n / (2 * total));
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
