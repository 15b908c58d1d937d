// Attention over the mixed-precision KV cache (ops/attention.h), compiled per Highway target.
//
// Work split: a task is (query, KV head, range of pages) or (query, KV head, window rows). Each
// task runs an online softmax for the g query heads of its group and leaves a partial state
// (running max m, sum l, weighted V sums) that the driver merges. Weighted V sums are kept twice:
// `acc` for rows in the model's basis (fp16 pages, window) and `acc_rot` for quantized rows stored
// Hadamard-rotated; the merge adds H acc_rot (H = H^-1) before normalising.
//
// Scores are kept in base-2 units: the query is scaled by log2(e) / sqrt(hd), so p = 2^(s - m)
// equals exp(natural score - natural max) and the kernels' exp is a plain exp2 (no product by
// log2 e per score); m, and every exponential of a difference of m's, is in the same units.
//
// Per target: the window rows are read by AttendWindow (decode: fp16 rows in place) or
// AttendWindowTiles (several queries: rows converted once per call, attention_tiles-inl.h);
// AttendPage reads a task's heads of a page through the VNNI path (AVX3_DL: AVX-512 VNNI;
// attention_vnni-inl.h) or the portable one (AttendPageHead; attention_tiles-inl.h,
// attention_page_tiles-inl.h, attention_int_tiles-inl.h).
#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "ops/attention.cc"
#include "hwy/foreach_target.h"  // IWYU pragma: keep
#include "hwy/highway.h"
#include "hwy/contrib/math/math-inl.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <type_traits>
#include <utility>

#include "backend/simd_targets.h"
#include "ops/query_int8.h"
#include "ops/attention.h"
#include "ops/kv_codec.h"
#include "util/half.h"

#if HWY_ARCH_X86
#include <immintrin.h>  // the VNNI kernel and the integer tiles (attention_int_tiles-inl.h)
#endif

#ifndef KVBITS_ATTENTION_SHARED
#define KVBITS_ATTENTION_SHARED
namespace kvbits::attention_detail {

// Most scale/minimum groups per row the fp32 tile decoder holds (attention_tiles-inl.h); rows with
// more (head_dim / group > 16) go to attention_ref.
inline constexpr int kMaxTileGroups = 16;

// Floats of one fp32 tile of kKvTile rows (attention_tiles-inl.h): K transposed, then V.
inline size_t tile_floats(int hd) { return 2 * static_cast<size_t>(kKvTile) * static_cast<size_t>(hd); }

// Scale of q . k that gives scores in base-2 units (top of this file): log2(e) / sqrt(hd).
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

}  // namespace kvbits::attention_detail
#endif

HWY_BEFORE_NAMESPACE();
namespace kvbits {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;
using attention_detail::PreparedQuery;
using attention_detail::PrefetchSpan;
using attention_detail::SoftmaxState;
using attention_detail::kMaxTileGroups;
using attention_detail::tile_floats;

// 2^x for the softmax (x = s - max <= 0; scores are in base-2 units, top of this file), for every
// path but the VNNI kernel's (Exp2Ps, attention_vnni-inl.h: a table form, for Zen 4's FMA slot;
// both within ~1e-7 of 2^x). x = n + r, n = round(x), |r| <= 1/2;
// 2^r = 1 + r P(r) with Cephes' exp2f polynomial (relative error ~2e-7, like std::exp2); 2^n
// built in the exponent bits. x < -126 (-inf of masked lanes included) and NaN give exactly 0.
// ~13 instructions against ~25 for hn::Exp and the ln 2 product (perf: the softmax was a third
// of the AVX2 decode tile, 2026-12-05).
// n by the shifter 1.5 * 2^23: t = x + 1.5 * 2^23 rounds x to the nearest integer, ties to even
// (as hn::Round; |x| < 2^22), and holds n in its low mantissa bits, so bits(t) << 23 is n << 23
// (the rest shifts out) and 2^n's fp32 pattern that plus 127 << 23. No float-to-int conversion,
// whose overflow fix-up in Highway cost 4 more instructions per vector on x86 (session 37); the
// same n, r and result bits as with hn::Round and ConvertTo.
template <class D>
HWY_INLINE hn::Vec<D> Exp2(D d, hn::Vec<D> x) {
  const hn::RebindToSigned<D> di;
  const auto shifter = hn::Set(d, 12582912.0f);
  const auto t = hn::Add(x, shifter);
  const auto n = hn::Sub(t, shifter);
  const auto r = hn::Sub(x, n);
  auto p = hn::Set(d, 1.535336188319500e-4f);
  p = hn::MulAdd(p, r, hn::Set(d, 1.339887440266574e-3f));
  p = hn::MulAdd(p, r, hn::Set(d, 9.618437357674640e-3f));
  p = hn::MulAdd(p, r, hn::Set(d, 5.550332471162809e-2f));
  p = hn::MulAdd(p, r, hn::Set(d, 2.402264791363012e-1f));
  p = hn::MulAdd(p, r, hn::Set(d, 6.931472028550421e-1f));
  p = hn::MulAdd(p, r, hn::Set(d, 1.0f));
  // 2^n for n in [-126, 0]: (n + 127) << 23 is its fp32 bit pattern; other lanes are masked.
  const auto in_range = hn::Ge(x, hn::Set(d, -126.0f));
  const auto scale = hn::BitCast(d, hn::Add(hn::ShiftLeft<23>(hn::BitCast(di, t)), hn::Set(di, 127 << 23)));
  return hn::IfThenElseZero(in_range, hn::Mul(p, scale));
}

// Folds one tile of scores s[h * kKvTile + j] (j < nt) into the state: rescales the sums when the
// max grows, turns scores into weights p = 2^(s - m) in place, and adds sum_j p_j v_j (v: [nt, hd]
// floats) to `target` (acc or acc_rot of head h at target + h * hd).
void FoldTile(int g, int hd, float* s, int nt, const float* v, float* target, const SoftmaxState& st) {
  const hn::ScalableTag<float> df;
  const int N = static_cast<int>(hn::Lanes(df));
  for (int h = 0; h < g; ++h) {
    float* sh = s + h * kKvTile;
    float tile_max = -INFINITY;
    for (int j = 0; j < nt; ++j) tile_max = std::max(tile_max, sh[j]);
    const float new_max = std::max(st.m[h], tile_max);
    if (new_max == -INFINITY) continue;  // nothing finite yet
    // 2^-inf = 0 on the first tile; exactly 1 (no call) while the max holds
    const float correction = new_max == st.m[h] ? 1.0f : std::exp2(st.m[h] - new_max);
    if (correction != 1.0f) {
      const auto vc = hn::Set(df, correction);
      for (float* a : {st.acc + h * hd, st.acc_rot + h * hd}) {
        for (int d = 0; d < hd; d += N) hn::StoreU(hn::Mul(hn::LoadU(df, a + d), vc), df, a + d);
      }
    }
    // p = 2^(s - m) (Exp2 above; expf here and in SwiGLU was 2.5 % of an evaluation's time),
    // lanes past nt neither read nor written.
    auto vsum = hn::Zero(df), vsum2 = hn::Zero(df);
    const auto vmax = hn::Set(df, new_max);
    for (int j = 0; j < nt; j += N) {
      const auto valid = hn::FirstN(df, static_cast<size_t>(nt - j));
      const auto p = hn::IfThenElseZero(valid, Exp2(df, hn::Sub(hn::MaskedLoad(valid, df, sh + j), vmax)));
      hn::BlendedStore(p, valid, df, sh + j);
      vsum = hn::Add(vsum, p);
      vsum2 = hn::MulAdd(p, p, vsum2);
    }
    const float sum = hn::GetLane(hn::SumOfLanes(df, vsum)), sum2 = hn::GetLane(hn::SumOfLanes(df, vsum2));
    st.l[h] = st.l[h] * correction + sum;
    if (st.l2) st.l2[h] = st.l2[h] * correction * correction + sum2;
    st.m[h] = new_max;
    float* a = target + h * hd;
    for (int d = 0; d < hd; d += N) {
      auto acc = hn::LoadU(df, a + d);
      for (int j = 0; j < nt; ++j) acc = hn::MulAdd(hn::Set(df, sh[j]), hn::LoadU(df, v + j * hd + d), acc);
      hn::StoreU(acc, df, a + d);
    }
  }
}

float Dot(const float* a, const float* b, int n) {
  const hn::ScalableTag<float> df;
  const int N = static_cast<int>(hn::Lanes(df));
  auto acc = hn::Zero(df);
  for (int d = 0; d < n; d += N) acc = hn::MulAdd(hn::LoadU(df, a + d), hn::LoadU(df, b + d), acc);
  return hn::GetLane(hn::SumOfLanes(df, acc));
}

// Window rows [j0, j1) of one KV head for a single query (decode): k, v: [rows, hd] fp16, model
// basis. Each row is converted where it is read, which for one query is as often as converting
// the window to tiles first (AttendWindowTiles, for blocks of queries) and needs no extra phase:
// the tiles' conversion in front of a decode step's attention made kivi:2 decode at depth 2048
// (128 FP16 rows in the window) 10-20 % slower.
void AttendWindow(const PreparedQuery& q, int g, int hd, const uint16_t* k, const uint16_t* v, int64_t j0,
                  int64_t j1, float* buf, const SoftmaxState& st) {
  float s[16 * kKvTile];
  float* vf = buf;        // [kKvTile, hd]
  float* kf = buf + kKvTile * hd;
  // fp16 -> fp32 with vector conversions (F16C on x86; exact, like fp16_to_fp32): the scalar
  // conversion made this kernel 36 % of a 512-token prefill; with it prefill went from 347-405 to
  // 548-627 tok/s (docs/benchmarks.md).
  const hn::ScalableTag<float> df;
  const hn::Rebind<hwy::float16_t, decltype(df)> dh;
  const int N = static_cast<int>(hn::Lanes(df));  // hd is a multiple of N (checked by attention())
  const auto* kh = reinterpret_cast<const hwy::float16_t*>(k);
  const auto* vh = reinterpret_cast<const hwy::float16_t*>(v);
  for (int64_t t0 = j0; t0 < j1; t0 += kKvTile) {
    const int nt = static_cast<int>(std::min<int64_t>(kKvTile, j1 - t0));
    for (int j = 0; j < nt; ++j) {
      for (int d = 0; d < hd; d += N) {
        hn::StoreU(hn::PromoteTo(df, hn::LoadU(dh, kh + (t0 + j) * hd + d)), df, kf + j * hd + d);
        hn::StoreU(hn::PromoteTo(df, hn::LoadU(dh, vh + (t0 + j) * hd + d)), df, vf + j * hd + d);
      }
    }
    for (int h = 0; h < g; ++h) {
      for (int j = 0; j < nt; ++j) s[h * kKvTile + j] = Dot(q.qf + h * hd, kf + j * hd, hd);
    }
    FoldTile(g, hd, s, nt, vf, st.acc, st);
  }
}

#include "ops/attention_tiles-inl.h"
#include "ops/attention_page_tiles-inl.h"

#if HWY_TARGET == HWY_AVX3_DL
#include "ops/attention_vnni-inl.h"
#include "ops/attention_vnni_page-inl.h"
#endif

// One head of a page for a block of nq queries, on the portable path: a single (decode) query
// reads quantized tiles in place (FoldQuantTile; on x86 targets pages whose K and V are both 2-
// or 4-bit in integer steps of 4 tiles, FoldIntStep); several queries share each tile, decoded
// to fp32 once (DecodePageTile) and folded for each. FP16 tiles are folded from the page's bytes.
void AttendPageHead(const PreparedQuery* qs, const SoftmaxState* states, int nq, int g, int hd, const KvPageRef& page,
                    int kvh, bool rotated_v, PrefetchSpan next, float* buf) {
  const KvPageLayout& layout = *page.layout;
  // The next block's lines, a share before each tile (a burst before the page queues the current
  // tile's loads behind it: attention_vnni-inl.h PrefetchCursor).
  const int tiles = std::max(1, (page.n_tokens + kKvTile - 1) / kKvTile);
  const size_t per_tile = (next.lines + static_cast<size_t>(tiles) - 1) / static_cast<size_t>(tiles);
  size_t prefetched = 0;
  auto prefetch_share = [&](int tiles_ahead) {  // the share of `tiles_ahead` tiles
    const size_t stop = std::min(next.lines, prefetched + static_cast<size_t>(tiles_ahead) * per_tile);
    for (; prefetched < stop; ++prefetched) __builtin_prefetch(next.begin + 64 * prefetched, 0, 2);
  };
  const PageBlock kb = ResolveBlock(layout, page.data, kvh, false), vb = ResolveBlock(layout, page.data, kvh, true);
  const bool k_quant = kb.bits < 16, v_quant = vb.bits < 16;
#if KVBITS_INT_TILES
  if (nq == 1 && IntSteps(kb, vb, g)) {  // decode over 2- and 4-bit rows: integer steps of 4 tiles
    return FoldIntPage(qs[0], states[0], g, hd, page.n_tokens, kb, vb, rotated_v, prefetch_share);
  }
#endif
  // Each tile decoded to fp32 once (attention_page_tiles-inl.h), then folded for each of the nq queries.
  float* kt = buf;
  float* vf = buf + kKvTile * hd;
  HWY_ALIGN float add[kKvTile];
  for (int t0 = 0; t0 < page.n_tokens; t0 += kKvTile) {
    const int nt = std::min(kKvTile, page.n_tokens - t0);
    prefetch_share(1);
#if !HWY_HAVE_SCALABLE
    if (nq == 1 && (k_quant || v_quant)) {  // decode: quantized rows read in place
      FoldQuantTile(qs[0], states[0], g, hd, kb, vb, t0, nt, rotated_v);
      continue;
    }
#endif
    // FP16 K or V tiles are folded from the page's bytes (same layouts, promoted in registers).
    const hwy::float16_t* k16 = kb.fp16_tile(t0);
    const hwy::float16_t* v16 = vb.fp16_tile(t0);
    if (k_quant || v_quant) DecodePageTile(kb, vb, hd, t0, kt, vf, add);
    for (int qi = 0; qi < nq; ++qi) {
      const SoftmaxState& st = states[qi];
      float* target = v_quant && rotated_v ? st.acc_rot : st.acc;
      if (k_quant && v_quant) {
        FoldFloatTile(qs[qi].qr, qs[qi].qmu, add, g, hd, kt, vf, 0, nt, target, st);
      } else if (k_quant) {
        FoldFloatTile(qs[qi].qr, qs[qi].qmu, add, g, hd, kt, v16, 0, nt, target, st);
      } else if (v_quant) {
        FoldFloatTile(qs[qi].qf, qs[qi].qmu, nullptr, g, hd, k16, vf, 0, nt, target, st);
      } else {
        FoldFloatTile(qs[qi].qf, qs[qi].qmu, nullptr, g, hd, k16, v16, 0, nt, target, st);
      }
    }
  }
}

// Heads [kvh0, kvh0 + heads) of a page for nq queries (qs[h], states[h]: head kvh0 + h); next:
// the block after the last head's. One call per page, not per head: ~100 instructions per head.
void AttendPage(const PreparedQuery (*qs)[kAttentionQueryBlock], const SoftmaxState (*states)[kAttentionQueryBlock],
                int heads, int nq, int g, int hd, int group, const KvPageRef& page, int kvh0, bool rotated_v,
                PrefetchSpan next, float* buf) {
#if HWY_TARGET == HWY_AVX3_DL
  if (g <= 16 && hd % 16 == 0 && hd <= 4 * group) {  // GFNI: backend/simd_targets.h; hd / group <= 4
    return AttendPageVnni(qs, states, heads, nq, g, hd, group, page, kvh0, rotated_v, next);
  }
#endif
  (void)group;
  for (int h = 0; h < heads; ++h) {
    const PrefetchSpan after = h + 1 < heads ? attention_detail::head_block_span(page, kvh0 + h + 1) : next;
    AttendPageHead(qs[h], states[h], nq, g, hd, page, kvh0 + h, rotated_v, after, buf);
  }
}

// One part's share in the merge of a (query, head): o += w acc, rot += w acc_rot (hd floats each,
// hd a multiple of the lanes); returns whether acc_rot holds anything (NaN counts).
bool MergePart(float w, const float* acc, const float* acc_rot, int hd, float* o, float* rot) {
  const hn::ScalableTag<float> df;
  const int N = static_cast<int>(hn::Lanes(df));
  const auto vw = hn::Set(df, w), zero = hn::Zero(df);
  bool any_rot = false;
  for (int d = 0; d < hd; d += N) {
    const auto r = hn::LoadU(df, acc_rot + d);
    hn::StoreU(hn::MulAdd(vw, hn::LoadU(df, acc + d), hn::LoadU(df, o + d)), df, o + d);
    hn::StoreU(hn::MulAdd(vw, r, hn::LoadU(df, rot + d)), df, rot + d);
    any_rot |= !hn::AllTrue(df, hn::Eq(r, zero));  // NaN compares unequal: counts
  }
  return any_rot;
}

// Folds the VNNI kernel's lane-wise sums into l and acc (V in the model basis) or acc_rot
// (rotated_v), at the end of a task; nothing to do on targets without that kernel.
void FinishPages(const SoftmaxState& st, int g, int hd, bool rotated_v) {
#if HWY_TARGET == HWY_AVX3_DL
  const int group = hd / st.groups;
  float* target = rotated_v ? st.acc_rot : st.acc;
  for (int h = 0; h < g; ++h) {
    st.l[h] += _mm512_reduce_add_ps(_mm512_loadu_ps(st.lane_l + 16 * h));
    for (int gr = 0; gr < st.groups; ++gr) {
      const __m512 add = _mm512_set1_ps(_mm512_reduce_add_ps(_mm512_loadu_ps(st.lane_vmin + 16 * (h * st.groups + gr))));
      for (int d = gr * group; d < (gr + 1) * group; d += 16) {
        _mm512_storeu_ps(target + h * hd + d, _mm512_add_ps(_mm512_loadu_ps(target + h * hd + d), add));
      }
    }
  }
#else
  (void)st, (void)g, (void)hd, (void)rotated_v;
#endif
}

int Lanes() { return static_cast<int>(hn::Lanes(hn::ScalableTag<float>())); }
const char* AttentionTargetName() { return hwy::TargetName(HWY_TARGET); }

}  // namespace HWY_NAMESPACE
}  // namespace kvbits
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace kvbits {

HWY_EXPORT(AttendWindow);
HWY_EXPORT(ConvertWindowTile);
HWY_EXPORT(AttendWindowTiles);
HWY_EXPORT(AttendPage);
HWY_EXPORT(MergePart);
HWY_EXPORT(FinishPages);
HWY_EXPORT(Lanes);
HWY_EXPORT(AttentionTargetName);

using attention_detail::PreparedQuery;
using attention_detail::PrefetchSpan;
using attention_detail::SoftmaxState;

namespace {

// Page tokens per decode task: <= kDecodeTaskTokens, about kDecodeTasksPerThread tasks per thread,
// >= kDecodeMinTaskTokens. A task's first block is read cold (it prefetches only its own next
// block): 4 tasks of <= 512 tokens per thread were 10-15 % slower on quantized pages at depth
// 8192 (docs/benchmarks.md, session 32); a task's merge state is ~2 KB per head.
constexpr int64_t kDecodeTaskTokens = 2048;
constexpr int64_t kDecodeMinTaskTokens = 128;
constexpr int64_t kDecodeTasksPerThread = 2;
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
      for (int d = 0; d < hd; ++d) qf[h * hd + d] = src[d] * scale;
      std::copy(qf + h * hd, qf + (h + 1) * hd, qr + h * hd);
      // The rotated and int8 forms serve quantized K pages only: the window and fp16 pages (an
      // fp16 cache; short contexts) need just qf.
      if (!quantized_k) continue;
      qmu[h] = 0.0f;
      if (cache.key_mean) {
        for (int d = 0; d < hd; ++d) qmu[h] += qf[h * hd + d] * cache.key_mean[kvh * hd + d];
      }
      if (cache.key_weight) {
        for (int d = 0; d < hd; ++d) qr[h * hd + d] /= cache.key_weight[kvh * hd + d];
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
  const int lanes = HWY_DYNAMIC_DISPATCH(Lanes)();
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
    int64_t total = 0;
    for (const KvPageRef& page : cache.pages) total += page.n_tokens;
    const int64_t per_task = std::clamp<int64_t>(total / (kDecodeTasksPerThread * pool.size()), kDecodeMinTaskTokens,
                                                 kDecodeTaskTokens);
    int64_t p0 = 0, tokens = 0;
    for (int64_t p = 0; p < n_pages; ++p) {
      tokens += cache.pages[p].n_tokens;
      if (tokens >= per_task || p + 1 == n_pages) {
        if (tokens > 0) parts.insert(parts.end(), {p0, p + 1});
        p0 = p + 1;
        tokens = 0;
      }
    }
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
  // A short decode cache (fewer page parts than threads: up to a few hundred tokens) takes one
  // head per task too, so that the threads share its few tasks instead of one thread doing all
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
    HWY_DYNAMIC_DISPATCH(ConvertWindowTile)(cache.window_k + at, cache.window_v + at, hd,
                                            static_cast<int>(std::min<int64_t>(kKvTile, window_rows - r0)),
                                            window_f32 + static_cast<size_t>(task) * tile_size);
  };
  const int64_t convert_tasks = shape.n_kv_heads * window_tiles;
  if (convert_tasks <= pool.size()) {  // a few rows: not worth a hand-off
    for (int64_t task = 0; task < convert_tasks; ++task) convert_tile(task);
  } else {
    pool.parallel_for(convert_tasks, [&](int64_t task, int) { convert_tile(task); });
  }

  pool.parallel_for(n_blocks * head_tasks * n_parts, [&](int64_t task, int thread) {
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
              HWY_DYNAMIC_DISPATCH(AttendWindow)(pqs[hh][k], g, hd, cache.window_k + off, cache.window_v + off, j0,
                                                 j1, buf, sss[hh][k]);
            } else {
              HWY_DYNAMIC_DISPATCH(AttendWindowTiles)(pqs[hh][k], g, hd, tiles, j0, j1, sss[hh][k]);
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
      HWY_DYNAMIC_DISPATCH(AttendPage)(pqs, sss, heads_per_task, nq, g, hd, qb.hd / qb.groups, cache.pages[p], kvh0,
                                       cache.rotated_v, next, buf);
    }
    for (int hh = 0; hh < heads_per_task; ++hh) {
      for (int k = 0; k < nq; ++k) HWY_DYNAMIC_DISPATCH(FinishPages)(sss[hh][k], g, hd, cache.rotated_v);
    }
  });

  // Merge the parts of each (query, kv head) and normalise.
  if (tap) tap->concentration.assign(static_cast<size_t>(n_queries * shape.n_heads), 0.0f);
  std::vector<float> rot(static_cast<size_t>(hd));
  std::vector<float> final_m(tap ? static_cast<size_t>(n_queries * shape.n_heads) : 0);
  std::vector<float> final_l(final_m.size());
  for (int64_t idx = 0; idx < n_queries * shape.n_kv_heads; ++idx) {
    const int64_t i = idx / shape.n_kv_heads;
    const int kvh = static_cast<int>(idx % shape.n_kv_heads);
    for (int h = 0; h < g; ++h) {
      float m = -INFINITY;
      for (int64_t c = 0; c < n_parts; ++c) m = std::max(m, partial[(idx * n_parts + c) * state + h]);
      float* o = out + i * shape.n_heads * hd + (kvh * g + h) * hd;
      std::fill(o, o + hd, 0.0f);
      std::fill(rot.begin(), rot.end(), 0.0f);
      float total = 0.0f, total2 = 0.0f;
      bool any_rot = false;
      for (int64_t c = 0; c < n_parts; ++c) {
        const float* st = partial + (idx * n_parts + c) * state;
        const float cm = st[h];
        if (cm == -INFINITY) continue;
        const float w = std::exp2(cm - m);
        total += w * st[g + h];
        if (tap) total2 += w * w * st[2 * g + 2 * g * hd + h];
        const float* acc = st + 2 * g + h * hd;
        const float* acc_rot = st + 2 * g + g * hd + h * hd;
        any_rot |= HWY_DYNAMIC_DISPATCH(MergePart)(w, acc, acc_rot, hd, o, rot.data());
      }
      if (any_rot) {
        hadamard(rot.data(), hd);
        for (int d = 0; d < hd; ++d) o[d] += rot[d];
      }
      const float inv = total > 0.0f ? 1.0f / total : 0.0f;
      for (int d = 0; d < hd; ++d) o[d] *= inv;
      if (tap) {
        const size_t qh = static_cast<size_t>(i * shape.n_heads + kvh * g + h);
        tap->concentration[qh] = total2 * inv * inv;
        final_m[qh] = m;
        final_l[qh] = total;
      }
    }
  }
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

const char* attention_target_name() { return HWY_DYNAMIC_DISPATCH(AttentionTargetName)(); }

}  // namespace kvbits
#endif
