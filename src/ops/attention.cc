// Attention over the mixed-precision KV cache (ops/attention.h): the driver. It prepares the
// queries, splits the work into tasks across the thread pool and merges the tasks' partial
// states; the per-target kernels it runs are in ops/attention_kernels.cc (ops/attention_detail.h).
//
// Work split: a task is (query, KV head, range of pages) or (query, KV head, window rows). Each
// task runs an online softmax for the g query heads of its group and leaves a partial state
// (running max m, sum l, weighted V sums) that the driver merges in task order, so the result does
// not depend on which thread ran which task. Decode splits the pages into one range per thread
// (ops/decode_split.h) and deals the tasks in lanes (backend/chunk_lanes.h), so that each thread
// walks its own stretch of the layer's pages and the window task goes to the thread free first;
// prefill runs through the pool's shared counter. Weighted V sums are kept twice: `acc` for rows
// in the model's basis (fp16 pages, window) and `acc_rot` for quantized rows stored
// Hadamard-rotated; the merge adds H acc_rot (H = H^-1) before normalising. Scores, m and every
// exponential of a difference of m's are in base-2 units (ops/attention_kernels.cc).
#include "ops/attention.h"

#include <algorithm>
#include <cmath>
#include <utility>
#include <vector>

#include "backend/chunk_lanes.h"
#include "backend/fp_env.h"
#include "backend/simd_targets.h"
#include "ops/attention_detail.h"
#include "ops/decode_split.h"
#include "ops/kv_codec.h"
#include "ops/query_int8.h"
#include "util/half.h"

namespace kvbits {

using attention_detail::PreparedQuery;
using attention_detail::PrefetchSpan;
using attention_detail::SoftmaxState;

namespace {

// Prefill queries per task (attention.h): they share each page tile while it is in L1.
constexpr int kQueryBlock = kAttentionQueryBlock;
// Most KV heads a decode task handles at once (its per-head query and state arrays).
constexpr int kMaxKvHeads = 16;

// Per (query, KV head) prepared query buffers, in the scratch vectors.
struct QueryBuffers {
  int g, hd, groups;
  bool exact_8bit;          // qi2 filled and handed out (PreparedQuery)
  std::vector<float>& f;    // per (i, kvh): qf [g*hd], qr [g*hd], qd [g*groups], qsum [g*groups], qmu [g]
  std::vector<int8_t>& qi;  // per (i, kvh): qi [g*hd], qi2 [g*hd]
  size_t f_stride() const { return static_cast<size_t>(g) * (2 * hd + 2 * groups + 1); }
  PreparedQuery get(int64_t index) const {
    const float* base = f.data() + index * f_stride();
    const int8_t* qi_base = qi.data() + index * 2 * g * hd;
    return {base, base + g * hd, qi_base, exact_8bit ? qi_base + g * hd : nullptr, base + 2 * g * hd,
            base + 2 * g * hd + g * groups, base + 2 * g * hd + 2 * g * groups};
  }
};

void prepare_queries(const AttentionShape& shape, const float* q, int64_t n_queries, const KvLayerView& cache,
                     QueryBuffers& qb) {
  const int hd = shape.head_dim, g = shape.n_heads / shape.n_kv_heads;
  const int group = cache.group > 0 ? cache.group : hd;
  qb.g = g;
  qb.hd = hd;
  qb.groups = hd / group;
  qb.exact_8bit = cache.exact_8bit;
  const int64_t n = n_queries * shape.n_kv_heads;
  qb.f.resize(static_cast<size_t>(n) * qb.f_stride());
  qb.qi.resize(static_cast<size_t>(n) * 2 * g * hd);
  const float scale = attention_detail::score_scale(hd);
  const bool quantized_k = std::any_of(cache.pages.begin(), cache.pages.end(), [](const KvPageRef& p) {
    return p.n_tokens > 0 && p.layout->format(false).bits < 16;
  });
  for (int64_t idx = 0; idx < n; ++idx) {
    const int64_t i = idx / shape.n_kv_heads;
    const int kvh = static_cast<int>(idx % shape.n_kv_heads);
    float* qf = qb.f.data() + idx * qb.f_stride();
    float* qr = qf + g * hd;
    float* qd = qr + g * hd;
    float* qsum = qd + g * qb.groups;
    float* qmu = qsum + g * qb.groups;
    int8_t* qi = qb.qi.data() + idx * 2 * g * hd;
    int8_t* qi2 = qi + g * hd;
    for (int h = 0; h < g; ++h) {
      const float* src = q + i * shape.n_heads * hd + (kvh * g + h) * hd;
      // The rotated and int8 forms serve quantized K pages only: the window and fp16 pages (an
      // fp16 cache; short contexts) need just qf (qr = qf).
      const float* weight = quantized_k && cache.key_weight ? cache.key_weight + kvh * hd : nullptr;
      scale_query(src, hd, scale, weight, qf + h * hd, qr + h * hd);
      if (!quantized_k) continue;
      qmu[h] = 0.0f;
      if (cache.key_mean) {
        // Eight partial sums in a fixed order (hd is a multiple of 16). One sequential chain was
        // hd dependent adds, ~3-4 cycles each: ~200-250 cycles per head, ~2,000 per decode call of
        // SmolLM2's 9 heads, while the other threads wait for the queries (session 49).
        const float* a = qf + h * hd;
        const float* b = cache.key_mean + kvh * hd;
        float part[8] = {};
        for (int d = 0; d < hd; d += 8) {
          for (int j = 0; j < 8; ++j) part[j] += a[d + j] * b[d + j];
        }
        qmu[h] = ((part[0] + part[1]) + (part[2] + part[3])) + ((part[4] + part[5]) + (part[6] + part[7]));
      }
      if (cache.rotated_k) hadamard(qr + h * hd, hd);
      for (int gr = 0; gr < qb.groups; ++gr) {
        const int at = h * hd + gr * group;
        float amax = 0.0f;
        quantize_query_group(qr + at, group, qi + at, qb.exact_8bit ? qi2 + at : nullptr, &amax,
                             &qsum[h * qb.groups + gr]);
        const float d_scale = amax / 127.0f;
        qd[h * qb.groups + gr] = d_scale;
      }
    }
  }
}

}  // namespace

void attention(const AttentionShape& shape, const float* q, int64_t n_queries, const WindowRange* window,
               const KvLayerView& cache, float* out, ThreadPool& pool, AttentionScratch& scratch, AttentionTap* tap) {
  const int hd = shape.head_dim;
  const int g = shape.n_heads / shape.n_kv_heads;
  require_gfni_for_avx3_dl();
  const int lanes = attention_detail::kernel_lanes();
  const int groups = cache.group > 0 ? hd / cache.group : 1;
  if (hd % lanes != 0 || hd % 16 != 0 || g > 16 || groups > attention_detail::kMaxTileGroups) {
    attention_ref(shape, q, n_queries, window, cache, out);
    return;
  }
  QueryBuffers qb{0, 0, 0, false, scratch.queries, scratch.queries_i8};
  prepare_queries(shape, q, n_queries, cache, qb);

  // Tasks: (query block, kv head, part). A part is a range of pages [p0, p1) or the window
  // (p0 = -1). Decode (one query) splits the pages into parts across threads; prefill gives each
  // task a block of queries that share every page tile it reads.
  std::vector<int64_t>& parts = scratch.parts;  // pairs (p0, p1)
  parts.clear();
  const int64_t n_pages = static_cast<int64_t>(cache.pages.size());
  if (n_queries == 1) {
    split_decode_pages(cache.pages, pool.size(), parts);
  } else if (n_pages > 0) {
    parts.insert(parts.end(), {0, n_pages});
  }
  parts.insert(parts.end(), {-1, -1});
  const int64_t n_parts = static_cast<int64_t>(parts.size() / 2);
  const int64_t n_blocks = (n_queries + kQueryBlock - 1) / kQueryBlock;
  // m, l, acc, acc_rot, l2, then lane_l and lane_vmin from a 64-byte line, padded to whole lines:
  // tasks on different threads write their states at every step, and a line shared by two of them
  // would bounce between the cores (a precaution: no change was measurable within the host's noise).
  const int64_t lanes_at = (static_cast<int64_t>(g) * (2 * hd + 3) + 15) / 16 * 16;
  const int64_t state = lanes_at + static_cast<int64_t>(g) * 16 * (1 + qb.groups);
  // State of (query i, kv head, part c) at ((i * n_kv_heads + kvh) * n_parts + c) * state.
  // (16 floats of slack to start the states on a 64-byte boundary).
  scratch.partial.resize(static_cast<size_t>(n_queries * shape.n_kv_heads * n_parts * state + 16));
  const int64_t buffer = 2 * kKvTile * hd;
  scratch.buffers.resize(static_cast<size_t>(pool.size() * buffer));
  float* partial = scratch.partial.data();
  partial += (64 - reinterpret_cast<uintptr_t>(partial) % 64) % 64 / sizeof(float);
  auto state_of = [&](int64_t i, int kvh, int64_t c) {
    float* st = partial + ((i * shape.n_kv_heads + kvh) * n_parts + c) * state;
    return SoftmaxState{st,
                        st + g,
                        st + 2 * g,
                        st + 2 * g + g * hd,
                        tap ? st + 2 * g + 2 * g * hd : nullptr,
                        st + lanes_at,
                        st + lanes_at + 16 * g,
                        qb.groups};
  };
  // Decode tasks take every KV head of their page range, so a task streams whole pages (all heads'
  // blocks are contiguous in a page); prefill tasks take one head (more tasks, queries share tiles).
  // A short decode cache (fewer pages than threads, so fewer page parts: ops/decode_split.h) takes
  // one head per task too, so that the threads share its few tasks instead of one thread doing all
  // of attention while the others wait (~9 % of a step at depth 0, perf 2026-12-03).
  int heads_per_task = 1;
  if (n_queries == 1 && n_parts - 1 >= pool.size()) {
    for (int d = std::min(shape.n_kv_heads, kMaxKvHeads); d > 1; --d) {
      if (shape.n_kv_heads % d == 0) {
        heads_per_task = d;  // the largest divisor of n_kv_heads up to kMaxKvHeads
        break;
      }
    }
  }
  const int head_tasks = shape.n_kv_heads / heads_per_task;

  // Prefill (several queries): the window rows any query attends, converted to fp32 tiles once
  // (attention_tiles-inl.h): [n_kv_heads][tiles] tiles of tile_floats(hd) floats, from a
  // 64-byte boundary. Decode reads its window rows in place (AttendWindow).
  int64_t window_rows = 0;
  for (int64_t i = 0; i < n_queries && n_queries > 1; ++i) {
    window_rows = std::max({window_rows, window[i].shared, window[i].end});
  }
  const int64_t window_tiles = (window_rows + kKvTile - 1) / kKvTile;
  const size_t tile_size = attention_detail::tile_floats(hd);
  scratch.window.resize(static_cast<size_t>(shape.n_kv_heads * window_tiles) * tile_size + 16);
  float* window_f32 = scratch.window.data();
  window_f32 += (64 - reinterpret_cast<uintptr_t>(window_f32) % 64) % 64 / sizeof(float);
  auto convert_tile = [&](int64_t task) {
    const int kvh = static_cast<int>(task / window_tiles);
    const int64_t r0 = task % window_tiles * kKvTile;
    const size_t at = static_cast<size_t>((kvh * cache.window_stride + r0) * hd);
    attention_detail::convert_window_tile(cache.window_k + at, cache.window_v + at, hd,
                                          static_cast<int>(std::min<int64_t>(kKvTile, window_rows - r0)),
                                          window_f32 + static_cast<size_t>(task) * tile_size);
  };
  const int64_t convert_tasks = shape.n_kv_heads * window_tiles;
  if (convert_tasks <= pool.size()) {  // a few rows: not worth a hand-off
    for (int64_t task = 0; task < convert_tasks; ++task) convert_tile(task);
  } else {
    pool.parallel_for(convert_tasks, [&](int64_t task, int) { convert_tile(task); });
  }

  // One task: (query block, head task, part).
  auto run_task = [&](int64_t task, int thread) {
    const FlushDenormalsScope flush_denormals;  // backend/fp_env.h: the kernels' unmasked exp2
    const int64_t c = task % n_parts;
    const int kvh0 = static_cast<int>((task / n_parts) % head_tasks) * heads_per_task;
    const int64_t i0 = task / (n_parts * head_tasks) * kQueryBlock;
    const int nq = static_cast<int>(std::min<int64_t>(kQueryBlock, n_queries - i0));
    PreparedQuery pqs[kMaxKvHeads][kQueryBlock];
    SoftmaxState sss[kMaxKvHeads][kQueryBlock];
    for (int hh = 0; hh < heads_per_task; ++hh) {
      for (int k = 0; k < nq; ++k) {
        pqs[hh][k] = qb.get((i0 + k) * shape.n_kv_heads + kvh0 + hh);
        sss[hh][k] = state_of(i0 + k, kvh0 + hh, c);
        std::fill(sss[hh][k].m, sss[hh][k].m + g, -INFINITY);
        std::fill(sss[hh][k].l, sss[hh][k].m + state, 0.0f);  // l, acc, acc_rot, l2, lanes
      }
    }
    float* buf = scratch.buffers.data() + thread * buffer;
    const int64_t p0 = parts[2 * c], p1 = parts[2 * c + 1];
    if (p0 < 0) {
      for (int hh = 0; hh < heads_per_task; ++hh) {
        const int64_t off = static_cast<int64_t>(kvh0 + hh) * cache.window_stride * hd;
        const float* tiles = window_f32 + static_cast<size_t>((kvh0 + hh) * window_tiles) * tile_size;
        for (int k = 0; k < nq; ++k) {
          const WindowRange& w = window[i0 + k];
          for (const auto& [j0, j1] : {std::pair{int64_t{0}, w.shared}, std::pair{w.begin, w.end}}) {
            if (j0 >= j1) continue;
            if (n_queries == 1) {
              attention_detail::attend_window(pqs[hh][k], g, hd, cache.window_k + off, cache.window_v + off, j0,
                                              j1, buf, sss[hh][k]);
            } else {
              attention_detail::attend_window_tiles(pqs[hh][k], g, hd, tiles, j0, j1, sss[hh][k]);
            }
          }
        }
      }
      return;
    }
    for (int64_t p = p0; p < p1; ++p) {
      if (cache.pages[p].n_tokens == 0) continue;
      // After its heads of this page the task reads the first of the next page (AttendPage).
      const PrefetchSpan next =
          p + 1 < p1 ? attention_detail::head_block_span(cache.pages[p + 1], kvh0) : PrefetchSpan{};
      attention_detail::attend_page(pqs, sss, heads_per_task, nq, g, hd, qb.hd / qb.groups, cache.pages[p], kvh0,
                                    cache.rotated_v, next, buf);
    }
    for (int hh = 0; hh < heads_per_task; ++hh) {
      for (int k = 0; k < nq; ++k) attention_detail::finish_pages(sss[hh][k], g, hd, cache.rotated_v);
    }
  };
  const int64_t n_tasks = n_blocks * head_tasks * n_parts;
  if (n_queries == 1) {
    // Decode: one lane per thread, its page range first (ChunkLanes); the window task last.
    ChunkLanes lanes(n_tasks, pool.size());
    pool.parallel_for(pool.size(), [&](int64_t lane, int thread) {
      for (int64_t task; (task = lanes.claim(static_cast<int>(lane))) >= 0;) run_task(task, thread);
    });
  } else {
    pool.parallel_for(n_tasks, run_task);
  }

  // Merge the parts of each (query, kv head) and normalise: head qh = i * n_heads + kvh * g + h
  // of query i. A prefill block's queries are merged across the threads (on the calling thread
  // alone the merge kept the others waiting: a 256-query block over the window got 4-15 % faster,
  // docs/benchmarks.md session 42); a decode step's one query runs on the calling thread.
  if (tap) tap->concentration.assign(static_cast<size_t>(n_queries * shape.n_heads), 0.0f);
  std::vector<float> final_m(tap ? static_cast<size_t>(n_queries * shape.n_heads) : 0);
  std::vector<float> final_l(final_m.size());
  auto merge_head = [&](int64_t qh, float* rot) {  // rot: hd floats of the thread's scratch
    const int64_t idx = qh / g;                     // (query, kv head)
    const int h = static_cast<int>(qh % g);
    const attention_detail::MergeParts parts{partial + idx * n_parts * state, state, n_parts, h, g + h,
                                             2 * g + h * hd, 2 * g + g * hd + h * hd,
                                             tap ? 2 * g + 2 * g * hd + h : -1};
    const attention_detail::MergeResult r = attention_detail::merge_head(parts, hd, out + qh * hd, rot);
    if (tap) {
      const float inv = r.l > 0.0f ? 1.0f / r.l : 0.0f;
      tap->concentration[qh] = r.l2 * inv * inv;
      final_m[qh] = r.m;
      final_l[qh] = r.l;
    }
  };
  pool.parallel_for(n_queries, [&](int64_t i, int thread) {
    float* rot = scratch.buffers.data() + thread * buffer;  // the tasks are done with it
    for (int64_t qh = i * shape.n_heads; qh < (i + 1) * shape.n_heads; ++qh) merge_head(qh, rot);
  });
  if (tap) {
    // Attention each window row received: a second, small pass over the window rows only.
    int64_t rows = 0;
    for (int64_t i = 0; i < n_queries; ++i) rows = std::max({rows, window[i].shared, window[i].end});
    tap->received.assign(static_cast<size_t>(rows), 0.0f);
    const float scale = attention_detail::score_scale(hd);  // base 2, like m
    for (int64_t i = 0; i < n_queries; ++i) {
      for (int h = 0; h < shape.n_heads; ++h) {
        const size_t qh = static_cast<size_t>(i * shape.n_heads + h);
        if (final_l[qh] <= 0.0f) continue;
        const float* qv = q + qh * hd;
        const uint16_t* kb = cache.window_k + static_cast<int64_t>(h / g) * cache.window_stride * hd;
        // The query's own row (the last it attends) is not counted: received means from others.
        const int64_t own = window[i].end > window[i].begin ? window[i].end - 1 : window[i].shared - 1;
        for (const auto& [j0, j1] : {std::pair{int64_t{0}, window[i].shared}, std::pair{window[i].begin, window[i].end}}) {
          for (int64_t j = j0; j < j1; ++j) {
            if (j == own) continue;
            float dot = 0.0f;
            for (int d = 0; d < hd; ++d) dot += qv[d] * fp16_to_fp32(kb[j * hd + d]);
            tap->received[j] += std::exp2(dot * scale - final_m[qh]) / final_l[qh] / static_cast<float>(shape.n_heads);
          }
        }
      }
    }
  }
}

}  // namespace kvbits
