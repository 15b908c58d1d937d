// The per-target kernels of attention over the mixed-precision KV cache (ops/attention_detail.h),
// compiled per Highway target; the driver that splits the work and merges it is ops/attention.cc.
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
#define HWY_TARGET_INCLUDE "ops/attention_kernels.cc"
#include "hwy/foreach_target.h"  // IWYU pragma: keep
#include "hwy/highway.h"
#include "hwy/contrib/math/math-inl.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <type_traits>
#include <utility>

#include "backend/simd_targets.h"
#include "ops/attention_detail.h"
#include "ops/kv_codec.h"
#include "util/half.h"

#if HWY_ARCH_X86
#include <immintrin.h>  // the VNNI kernel and the integer tiles (attention_int_tiles-inl.h)
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
// both within ~1e-7 of 2^x; its fixed shapes with 2- and 4-bit V rows use Exp2PsCoarse, 7.5e-5,
// unmasked in full steps; tests/unit/attention_exp2_test.cc checks all four). x = n + r,
// n = round(x), |r| <= 1/2; 2^r = 1 + r P(r) with Cephes' exp2f polynomial (relative error ~2e-7,
// like std::exp2); 2^n built in the exponent bits. x < -126 (-inf of masked lanes included) and NaN give exactly 0.
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

// The merge of one (query, head)'s parts (attention_detail::merge_head): part c's weight w_c =
// 2^(m_c - m) with m their largest m; o = (sum_c w_c acc_c + H sum_c w_c acc_rot_c) / sum_c w_c
// l_c, H applied only when some acc_rot holds anything (NaN counts). hd: a multiple of the lanes;
// rot: hd floats of scratch. One call per head: it was a dispatched call per part and scalar loops
// around them (3.5 us of a 55 us decode call at depth 8192, docs/benchmarks.md session 44).
attention_detail::MergeResult MergeHead(const attention_detail::MergeParts& parts, int hd, float* o, float* rot) {
  const hn::ScalableTag<float> df;
  const int N = static_cast<int>(hn::Lanes(df));
  float m = -INFINITY;
  for (int64_t c = 0; c < parts.count; ++c) m = std::max(m, parts.first[c * parts.stride + parts.m_at]);
  const auto zero = hn::Zero(df);
  for (int d = 0; d < hd; d += N) {
    hn::StoreU(zero, df, o + d);
    hn::StoreU(zero, df, rot + d);
  }
  attention_detail::MergeResult r{m, 0.0f, 0.0f};
  bool any_rot = false;
  for (int64_t c = 0; c < parts.count; ++c) {
    const float* st = parts.first + c * parts.stride;
    const float cm = st[parts.m_at];
    if (cm == -INFINITY) continue;  // a part that saw no key
    const float w = std::exp2(cm - m);
    // Products rounded before they are added, as the driver's scalar loop did (built without FMA
    // there; here GCC would fuse them): the same sums to the last bit. volatile keeps them apart.
    const volatile float wl = w * st[parts.l_at];
    r.l += wl;
    if (parts.l2_at >= 0) {
      const volatile float wl2 = w * w * st[parts.l2_at];
      r.l2 += wl2;
    }
    const float* acc = st + parts.acc_at;
    const float* acc_rot = st + parts.acc_rot_at;
    const auto vw = hn::Set(df, w);
    for (int d = 0; d < hd; d += N) {
      const auto v = hn::LoadU(df, acc_rot + d);
      hn::StoreU(hn::MulAdd(vw, hn::LoadU(df, acc + d), hn::LoadU(df, o + d)), df, o + d);
      hn::StoreU(hn::MulAdd(vw, v, hn::LoadU(df, rot + d)), df, rot + d);
      any_rot |= !hn::AllTrue(df, hn::Eq(v, zero));
    }
  }
  if (any_rot) hadamard(rot, hd);  // H = H^-1 (ops/kv_codec.h)
  const auto inv = hn::Set(df, r.l > 0.0f ? 1.0f / r.l : 0.0f);
  for (int d = 0; d < hd; d += N) {
    auto v = hn::LoadU(df, o + d);
    if (any_rot) v = hn::Add(v, hn::LoadU(df, rot + d));
    hn::StoreU(hn::Mul(v, inv), df, o + d);
  }
  return r;
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

// The softmax's 2^x forms on x[0, n), n a multiple of 16, for their tests against std::exp2:
// 0 Exp2 (every path but the VNNI kernel's), 1 Exp2Ps, 2 Exp2PsCoarse and 3 Exp2PsCoarseFull (the
// VNNI kernel's, on AVX3_DL only). Returns false where the form is not compiled for this target.
bool SoftmaxExp2(int form, const float* x, size_t n, float* out) {
  if (form == 0) {
    const hn::ScalableTag<float> df;
    const size_t lanes = hn::Lanes(df);
    for (size_t i = 0; i + lanes <= n; i += lanes) hn::StoreU(Exp2(df, hn::LoadU(df, x + i)), df, out + i);
    return n % lanes == 0;
  }
#if HWY_TARGET == HWY_AVX3_DL
  if (form >= 1 && form <= 3) {
    for (size_t i = 0; i + 16 <= n; i += 16) {
      const __m512 v = _mm512_loadu_ps(x + i);
      _mm512_storeu_ps(out + i, form == 1 ? Exp2Ps(v) : form == 2 ? Exp2PsCoarse(v) : Exp2PsCoarseFull(v));
    }
    return n % 16 == 0;
  }
#endif
  (void)x, (void)n, (void)out;
  return false;
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
HWY_EXPORT(MergeHead);
HWY_EXPORT(FinishPages);
HWY_EXPORT(SoftmaxExp2);
HWY_EXPORT(Lanes);
HWY_EXPORT(AttentionTargetName);

namespace attention_detail {

int kernel_lanes() { return HWY_DYNAMIC_DISPATCH(Lanes)(); }

bool softmax_exp2(int form, const float* x, size_t n, float* out) {
  return HWY_DYNAMIC_DISPATCH(SoftmaxExp2)(form, x, n, out);
}

void attend_window(const PreparedQuery& q, int g, int hd, const uint16_t* k, const uint16_t* v, int64_t j0,
                   int64_t j1, float* buf, const SoftmaxState& st) {
  HWY_DYNAMIC_DISPATCH(AttendWindow)(q, g, hd, k, v, j0, j1, buf, st);
}

void convert_window_tile(const uint16_t* k, const uint16_t* v, int hd, int nt, float* tile) {
  HWY_DYNAMIC_DISPATCH(ConvertWindowTile)(k, v, hd, nt, tile);
}

void attend_window_tiles(const PreparedQuery& q, int g, int hd, const float* tiles, int64_t j0, int64_t j1,
                         const SoftmaxState& st) {
  HWY_DYNAMIC_DISPATCH(AttendWindowTiles)(q, g, hd, tiles, j0, j1, st);
}

void attend_page(const PreparedQuery (*qs)[kAttentionQueryBlock], const SoftmaxState (*states)[kAttentionQueryBlock],
                 int heads, int nq, int g, int hd, int group, const KvPageRef& page, int kvh0, bool rotated_v,
                 PrefetchSpan next, float* buf) {
  HWY_DYNAMIC_DISPATCH(AttendPage)(qs, states, heads, nq, g, hd, group, page, kvh0, rotated_v, next, buf);
}

void finish_pages(const SoftmaxState& st, int g, int hd, bool rotated_v) {
  HWY_DYNAMIC_DISPATCH(FinishPages)(st, g, hd, rotated_v);
}

MergeResult merge_head(const MergeParts& parts, int hd, float* out, float* rot) {
  return HWY_DYNAMIC_DISPATCH(MergeHead)(parts, hd, out, rot);
}

}  // namespace attention_detail

const char* attention_target_name() { return HWY_DYNAMIC_DISPATCH(AttentionTargetName)(); }

}  // namespace kvbits
#endif
