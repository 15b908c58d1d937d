#pragma once
// Internal interface between the attention driver (ops/attention.cc: the work split across
// threads, the queries' preparation, the merge) and its per-target kernels
// (ops/attention_kernels.cc and the -inl.h files it includes): the prepared query, a task's
// online-softmax state, the prefetch span, and the kernels, each dispatched to the best SIMD
// target of the machine. Not for other callers.
#include <cmath>
#include <cstddef>
#include <cstdint>

#include "ops/attention.h"
#include "ops/kv_page.h"

namespace kvbits::attention_detail {

// Most scale/minimum groups per row the fp32 tile decoder holds (attention_tiles-inl.h); rows with
// more (head_dim / group > 16) go to attention_ref.
inline constexpr int kMaxTileGroups = 16;

// Floats of one fp32 tile of kKvTile rows (attention_tiles-inl.h): K transposed, then V.
inline size_t tile_floats(int hd) { return 2 * static_cast<size_t>(kKvTile) * static_cast<size_t>(hd); }

// Scale of q . k that gives scores in base-2 units (ops/attention_kernels.cc, top):
// log2(e) / sqrt(hd).
inline float score_scale(int hd) { return 1.4426950408889634f / std::sqrt(static_cast<float>(hd)); }

// One query's inputs for one KV head group, prepared once by the driver.
struct PreparedQuery {
  const float* qf;    // [g, hd] query * log2(e)/sqrt(hd) (base-2 scores), model basis: fp16 rows
  const float* qr;    // [g, hd] the same, Hadamard-rotated if quantized K rows are (else == qf)
  const int8_t* qi;   // [g, hd] qr quantized to int8 per K group (VNNI path and integer tiles)
  const int8_t* qi2;  // [g, hd] qi's rounding error in 1/254 steps, for 8-bit K rows (VNNI):
                      // qr ~ qd * (qi + qi2 / 254); nullptr unless KvLayerView::exact_8bit
  const float* qd;    // [g, groups] scale of qi: qr ~ qd * qi
  const float* qsum;  // [g, groups] sum of qr over each group (multiplies the K minimums)
  const float* qmu;   // [g] qf . key_mean: added to the scores of quantized (centred) K rows
};

// Online-softmax state of one task: m, l, l2: [g]; acc, acc_rot: [g, hd]. Start: m = -inf, rest
// 0. l = sum of p = 2^(s - m) (base-2 scores, above); l2 = sum of p^2 (only when l2 != nullptr: AttentionTap).
//
// The VNNI page kernel (attention_vnni-inl.h) also keeps lane-wise partial sums, folded into l
// and acc / acc_rot once at the end of a task (FinishPages) instead of with horizontal sums at
// every 64-token step: lane_l [g, 16] (sum of p) and lane_vmin [g, groups, 16] (sum of p times
// the V minimums of each group, which every dim of the group receives). Both start at 0 and are
// rescaled with l and acc when the max grows.
struct SoftmaxState {
  float* m;
  float* l;
  float* acc;
  float* acc_rot;
  float* l2;
  float* lane_l;
  float* lane_vmin;
  int groups;  // of lane_vmin: head_dim / (V group size)
};

// Bytes a page kernel asks the memory system for while it computes (the next block its task
// reads): `lines` 64-byte lines from `begin` (nullptr: none).
struct PrefetchSpan {
  const char* begin = nullptr;
  size_t lines = 0;
};

// The bytes of head kvh's K and V blocks of a page: the next block a task reads, which the page
// kernel asks for while it computes the current one. Pages are separate allocations, and a
// prefill task reads every n_kv_heads-th block; the hardware prefetchers follow neither.
// Measured (BM_AttentionDecode, 1 thread, docs/benchmarks.md): int4 at depth 8192 took 372 ns per
// 16-token tile without prefetching, 162 ns with the next block prefetched in one burst before
// the page, and 80-109 ns (against 184-287 for the burst, same session) with the prefetches
// spread over the page's tiles (PrefetchCursor in attention_vnni-inl.h). Since decode tasks read
// whole pages (all heads) the next block is the next head of the same page.
inline PrefetchSpan head_block_span(const KvPageRef& page, int kvh) {
  if (page.n_tokens == 0) return {};
  return {reinterpret_cast<const char*>(page.data + page.layout->codes(false, kvh)),
          (page.layout->head_bytes() + 63) / 64};
}

// The per-target kernels (ops/attention_kernels.cc), dispatched with HWY_DYNAMIC_DISPATCH.
// Floats per SIMD vector of the dispatched target: head_dim must be a multiple (attention()).
int kernel_lanes();
// Window rows [j0, j1) of one KV head for one query (decode): k, v: [rows, hd] fp16 read in
// place; buf: 2 * kKvTile * hd floats of per-thread scratch.
void attend_window(const PreparedQuery& q, int g, int hd, const uint16_t* k, const uint16_t* v, int64_t j0,
                   int64_t j1, float* buf, const SoftmaxState& st);
// nt <= kKvTile fp16 window rows k, v ([nt, hd]) converted to one fp32 tile (tile_floats(hd)).
void convert_window_tile(const uint16_t* k, const uint16_t* v, int hd, int nt, float* tile);
// Window rows [j0, j1) of one KV head for one query of a block, from the converted tiles.
void attend_window_tiles(const PreparedQuery& q, int g, int hd, const float* tiles, int64_t j0, int64_t j1,
                         const SoftmaxState& st);
// Heads [kvh0, kvh0 + heads) of a page for nq queries (qs[h], states[h]: head kvh0 + h); next:
// the block the task reads after this page, prefetched while computing; buf as for attend_window.
void attend_page(const PreparedQuery (*qs)[kAttentionQueryBlock], const SoftmaxState (*states)[kAttentionQueryBlock],
                 int heads, int nq, int g, int hd, int group, const KvPageRef& page, int kvh0, bool rotated_v,
                 PrefetchSpan next, float* buf);
// The softmax's 2^x forms of the dispatched target on x[0, n) (n a multiple of 16), for tests:
// form 0 the portable one, 1 and 2 the VNNI kernel's accurate and coarse ones, 3 the coarse one
// without its range mask (full steps; AVX3_DL only).
// Returns false where that form is not compiled for the target.
bool softmax_exp2(int form, const float* x, size_t n, float* out);
// Folds a task's lane-wise sums (the VNNI kernel's) into l and acc / acc_rot, at the end of a task.
void finish_pages(const SoftmaxState& st, int g, int hd, bool rotated_v);
// The parts of one (query, head) for the merge: part c's state starts at first + c * stride
// floats; in it m, l (and l2 where l2_at >= 0) at those offsets, acc and acc_rot (hd floats each).
struct MergeParts {
  const float* first;
  int64_t stride, count;
  int64_t m_at, l_at, acc_at, acc_rot_at, l2_at;
};
// The merged softmax's max and sums (base 2, as SoftmaxState's): l = sum_c 2^(m_c - m) l_c,
// l2 likewise with the weights squared (0 without l2_at).
struct MergeResult {
  float m, l, l2;
};
// Merges the parts into out [hd] = (sum_c w_c acc_c + H sum_c w_c acc_rot_c) / l, w_c =
// 2^(m_c - m), H the Hadamard transform (acc_rot holds V rows kept rotated), out = 0 where l = 0;
// rot: hd floats of scratch.
MergeResult merge_head(const MergeParts& parts, int hd, float* out, float* rot);

}  // namespace kvbits::attention_detail
