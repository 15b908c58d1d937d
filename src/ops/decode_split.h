// How a decode step's attention divides the KV pages of a layer into tasks (ops/attention.cc):
// one task a thread, each an even share of the tokens, so that every lane of
// backend/chunk_lanes.h starts with the same share. Each task keeps its own softmax state, merged
// in task order: the split, not the schedule, decides the result's last bits, and it depends only
// on the pages' token counts and the thread count.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "ops/attention.h"  // KvPageRef

namespace kvbits {

// Why one task a thread: a task has a fixed cost (its states cleared, finished and merged, ~2 KB
// per query head, and its first page read without the prefetch that each page gives the next), and
// since session 32 every step down in size measured slower: tasks of 512 and 1,024 tokens against
// 2,048, then (session 47, in one process, pass by pass) 2,048 (two a thread) against one a
// thread, 3 % slower for 30 layers of 8,192 int2 tokens on 2 threads, 9 % for one 245,760-token
// cache, and also with a busy process beside them (docs/benchmarks.md). The lanes' stealing then
// has only the window task to move; a vCPU the host slows down cannot be helped by it, which the
// same measurements found cheaper than the smaller tasks that would let it.
// Appends the tasks' page ranges to `parts` as pairs (p0, p1), in page order, covering every
// page: n = threads tasks, page p in task floor((tokens before p + half of p's own) * n / total),
// so that every cut is within half a page of its place and every task within a page of total / n
// tokens (with fewer pages than threads, some task numbers get no page; a run of empty pages
// alone may form a task). Nothing when the pages hold no tokens. threads >= 1.
void split_decode_pages(std::span<const KvPageRef> pages, int threads, std::vector<int64_t>& parts);

}  // namespace kvbits
