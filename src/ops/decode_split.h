// How a decode step's attention divides the KV pages of a layer into tasks (ops/attention.cc):
// about kDecodeTaskTokens page tokens a task (at least kDecodeMinTaskTokens), at least
// kDecodeTasksPerThread tasks a thread, and a multiple of the thread count, so that every lane of
// backend/chunk_lanes.h starts with the same share of the tokens. Each task keeps its own
// softmax state, merged in task order: the split, not the schedule, decides the result's last
// bits, and it depends only on the pages' token counts and the thread count.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "ops/attention.h"  // KvPageRef

namespace kvbits {

// A task costs its state's set-up and its share of the merge (~2 KB per query head): at depth 8192
// on 2 threads, tasks of 1,024 and 512 tokens were 6-8 % and 17-20 % slower than 2,048
// (docs/benchmarks.md, sessions 32 and 45).
inline constexpr int64_t kDecodeTaskTokens = 2048;
inline constexpr int64_t kDecodeMinTaskTokens = 128;
inline constexpr int64_t kDecodeTasksPerThread = 2;

// Appends the tasks' page ranges to `parts` as pairs (p0, p1), in page order, covering every
// page: n tasks as above, page p in task floor((tokens before p + half of p's own) * n / total),
// so that every cut is within half a page of its place and every task within a page of total / n
// tokens (with fewer pages than n, some task numbers get no page; a run of empty pages alone may
// form a task). Nothing when the pages hold no tokens. threads >= 1.
void split_decode_pages(std::span<const KvPageRef> pages, int threads, std::vector<int64_t>& parts);

}  // namespace kvbits
