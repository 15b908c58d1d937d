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
// every step down in size has measured slower: tasks of 512 and 1,024 tokens against 2,048
// (sessions 32 and 45), then two tasks a thread of ~2,048 against one (session 47, the two in one
// process, pass by pass): 3 % slower for 30 layers of 8,192 int2 tokens on 2 threads, 9 % for
// one 245,760-token cache (docs/benchmarks.md). The lanes' stealing is left with the window task
// alone, so when the host slows one vCPU down the other thread can no longer take pages off it;
// in those measurements, beside a busy process too, that cost less than the smaller tasks did.
//
// Appends the tasks' page ranges to `parts` as pairs (p0, p1), in page order, covering every
// page: n = threads tasks, page p in task min(n - 1, floor((tokens before p + half of p's own) *
// n / total)), so that every cut is within half a page of its place and every task within a page
// of total / n tokens (with fewer pages than threads, some task numbers get no page; a run of
// empty pages alone may form a task; trailing empty pages join the last). Nothing when the pages
// hold no tokens. threads >= 1.
void split_decode_pages(std::span<const KvPageRef> pages, int threads, std::vector<int64_t>& parts);

}  // namespace kvbits
