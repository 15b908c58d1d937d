// fp32 tile kernels of attention, included by ops/attention_kernels.cc inside each Highway
// target's namespace (no include guard on purpose: one copy per target).
//
// A tile is kKvTile rows in fp32:
//   Kt [hd][kKvTile]: K transposed, so one vector of scores is hd products with a broadcast query
//                     element and no horizontal sums;
//   V  [kKvTile][hd]: V rows.
// FoldFloatTile runs one query's online softmax over such a tile. Two producers:
//  * the window (the FP16 rows not yet committed to pages: a prefill chunk's own rows, side by
//    side continuations): the driver converts its rows once per attention() call
//    (ConvertWindowTile) and every query of the call reads them (AttendWindowTiles). Before, every
//    query converted the rows it attends again and scored each row with a dot product ending in a
//    horizontal sum: ~15 % of a 512-token prefill (perf, 2026-12-05).
//  * pages on targets without the VNNI kernel (AVX2, AVX3, NEON, ...): for a block of prefill
//    queries each page tile is decoded to fp32 once with vector code extraction (DecodePageTile);
//    a decode query reads the codes in place (QuantTile, below), FP16 tiles are read as they are
//    (the page side of both: attention_page_tiles-inl.h).
//    Before, rows were decoded one element at a time (kv_page_read_row): 14.7 us per 16-token int4
//    tile on AVX2; 0.55 us decoded to fp32, 0.33 us in place (docs/benchmarks.md, 2026-12-05).
// Rows past a tile's valid range are masked (and zero where a tile is only partly filled).

// Rows [0, nt) of one tile, k and v: [nt, hd] fp16 bits (the tile's first row first), to `tile`.
void ConvertWindowTile(const uint16_t* k, const uint16_t* v, int hd, int nt, float* tile) {
  const hn::ScalableTag<float> df;
  const hn::Rebind<hwy::float16_t, decltype(df)> dh;
  const int N = static_cast<int>(hn::Lanes(df));  // hd is a multiple of N (checked by attention())
  float* kt = tile;
  float* vf = tile + kKvTile * hd;
  HWY_ALIGN float lanes[HWY_MAX_BYTES / sizeof(float)];
  const auto* kh = reinterpret_cast<const hwy::float16_t*>(k);
  const auto* vh = reinterpret_cast<const hwy::float16_t*>(v);
  for (int j = 0; j < kKvTile; ++j) {
    if (j < nt) {
      for (int d = 0; d < hd; d += N) {
        hn::Store(hn::PromoteTo(df, hn::LoadU(dh, kh + j * hd + d)), df, lanes);
        for (int i = 0; i < N; ++i) kt[(d + i) * kKvTile + j] = lanes[i];
        hn::StoreU(hn::PromoteTo(df, hn::LoadU(dh, vh + j * hd + d)), df, vf + j * hd + d);
      }
    } else {
      for (int d = 0; d < hd; ++d) kt[d * kKvTile + j] = 0.0f;
      std::fill(vf + j * hd, vf + (j + 1) * hd, 0.0f);
    }
  }
}

// Lanes [u, u + N) of a tile that lie in [lo, hi) (tile-relative rows).
template <class D>
HWY_INLINE hn::Mask<D> WindowLanes(D d, int u, int lo, int hi) {
  const auto below_hi = hn::FirstN(d, static_cast<size_t>(std::max(hi - u, 0)));
  const auto below_lo = hn::FirstN(d, static_cast<size_t>(std::max(lo - u, 0)));
  return hn::AndNot(below_lo, below_hi);
}

// N floats from fp32 or fp16 storage (FP16 pages are folded straight from their bytes).
template <class D>
HWY_INLINE hn::Vec<D> LoadF32(D d, const float* p) {
  return hn::LoadU(d, p);
}
template <class D>
HWY_INLINE hn::Vec<D> LoadF32(D d, const hwy::float16_t* p) {
  return hn::PromoteTo(d, hn::LoadU(hn::Rebind<hwy::float16_t, D>(), p));
}

// A quantized K or V tile of a page: its codes (ops/kv_page.h layout) and each group's scale and
// minimum per token as fp32, [groups][kKvTile], zero for the rows past `nt` (a page's unused
// slots hold no metadata; zero keeps them out of every sum). qsum (K only, set by the caller):
// the query's sum over each group, [g][groups], which multiplies the minimums.
// qi, qd (K only, optional): the query as int8 per group, [g][hd] and [g][groups], for the integer
// kernels of x86 targets (attention_int_tiles-inl.h); nullptr: fp32 products. stride: floats
// between the groups' rows of s and m (kKvTile, or a step's tokens: FoldIntStep).
struct QuantTile {
  const uint8_t* codes = nullptr;
  const float* s = nullptr;
  const float* m = nullptr;
  const float* qsum = nullptr;
  const int8_t* qi = nullptr;
  const float* qd = nullptr;
  int bits = 0, group = 0, groups = 0;
  int stride = kKvTile;
};

#ifndef KVBITS_UNROLL_TILE
#define KVBITS_UNROLL_TILE _Pragma("GCC unroll 16")
#endif
#ifndef KVBITS_ALWAYS_INLINE
#define KVBITS_ALWAYS_INLINE __attribute__((always_inline))
#endif

// Calls f(i) for i in [begin, end): unrolled when kUnroll (whose callers' bounds are then
// compile-time constants: the fixed shapes of the integer decode steps, FoldIntStep), a plain
// loop otherwise. GCC at -O2 does not unroll such loops by itself once their bodies are a few
// dozen instructions.
template <bool kUnroll, class F>
HWY_INLINE void ForRange(int begin, int end, F&& f) {
  if constexpr (kUnroll) {
    KVBITS_UNROLL_TILE
    for (int i = begin; i < end; ++i) f(i);
  } else {
    for (int i = begin; i < end; ++i) f(i);
  }
}

#if !HWY_HAVE_SCALABLE
// Vector registers of the target (AVX2: 16, AVX-512: 32): the head-interleaved kernels below size
// their accumulator sets to fit.
inline constexpr int kTileRegisters = HWY_MAX_BYTES >= 64 ? 32 : 16;

// x86 targets without the VNNI kernel: integer products for 2- and 4-bit tiles.
#undef KVBITS_INT_TILES
#if HWY_ARCH_X86 && HWY_TARGET <= HWY_AVX2
#define KVBITS_INT_TILES 1
#include "ops/attention_int_tiles-inl.h"
#else
#define KVBITS_INT_TILES 0
#endif

// Raw scores q . k of G heads over one tile, p [G][kKvTile], the heads interleaved: each K vector
// is loaded once for the G heads. One head at a time loaded it G times and broadcast a query
// element for every product, two loads per FMA, which bounded the AVX2 tile (perf, 2026-12-05).
// C sets of accumulators over alternate dims when the registers allow (an FMA's latency is four
// cycles, two issue per cycle).
template <int G, class TK>
HWY_INLINE void TileDots(const float* qk, int hd, const TK* kt, float* p) {
  const hn::ScalableTag<float> df;
  using V = hn::Vec<decltype(df)>;
  constexpr int N = static_cast<int>(hn::MaxLanes(df));
  static_assert(kKvTile % N == 0, "a tile is whole vectors");
  constexpr int U = kKvTile / N;
  constexpr int C = 4 * G * U + U + 1 <= kTileRegisters ? 4 : 2 * G * U + U + 1 <= kTileRegisters ? 2 : 1;
  V acc[C][G][U];
  KVBITS_UNROLL_TILE
  for (int c = 0; c < C; ++c) {
    KVBITS_UNROLL_TILE
    for (int h = 0; h < G; ++h) {
      KVBITS_UNROLL_TILE
      for (int u = 0; u < U; ++u) acc[c][h][u] = hn::Zero(df);
    }
  }
  for (int d = 0; d < hd; d += C) {  // hd is a multiple of 16
    KVBITS_UNROLL_TILE
    for (int c = 0; c < C; ++c) {
      V k[U];
      KVBITS_UNROLL_TILE
      for (int u = 0; u < U; ++u) k[u] = LoadF32(df, kt + (d + c) * kKvTile + u * N);
      KVBITS_UNROLL_TILE
      for (int h = 0; h < G; ++h) {
        const V qv = hn::Set(df, qk[h * hd + d + c]);
        KVBITS_UNROLL_TILE
        for (int u = 0; u < U; ++u) acc[c][h][u] = hn::MulAdd(qv, k[u], acc[c][h][u]);
      }
    }
  }
  KVBITS_UNROLL_TILE
  for (int h = 0; h < G; ++h) {
    KVBITS_UNROLL_TILE
    for (int u = 0; u < U; ++u) {
      V sum = acc[0][h][u];
      KVBITS_UNROLL_TILE
      for (int c = 1; c < C; ++c) sum = hn::Add(sum, acc[c][h][u]);
      hn::Store(sum, df, p + h * kKvTile + u * N);
    }
  }
}

// W vectors of dims from d of target [G, hd] += sum_{j in [lo, hi)} p[h][j] v_j.
template <int G, int W, class TV>
HWY_INLINE void TileSumsBlock(const float* p, int hd, const TV* vf, int lo, int hi, float* target, int d) {
  const hn::ScalableTag<float> df;
  using V = hn::Vec<decltype(df)>;
  constexpr int N = static_cast<int>(hn::MaxLanes(df));
  V c[G][W];
  KVBITS_UNROLL_TILE
  for (int h = 0; h < G; ++h) {
    KVBITS_UNROLL_TILE
    for (int b = 0; b < W; ++b) c[h][b] = hn::LoadU(df, target + h * hd + d + b * N);
  }
  for (int j = lo; j < hi; ++j) {
    V v[W];
    KVBITS_UNROLL_TILE
    for (int b = 0; b < W; ++b) v[b] = LoadF32(df, vf + j * hd + d + b * N);
    KVBITS_UNROLL_TILE
    for (int h = 0; h < G; ++h) {
      const V pj = hn::Set(df, p[h * kKvTile + j]);
      KVBITS_UNROLL_TILE
      for (int b = 0; b < W; ++b) c[h][b] = hn::MulAdd(pj, v[b], c[h][b]);
    }
  }
  KVBITS_UNROLL_TILE
  for (int h = 0; h < G; ++h) {
    KVBITS_UNROLL_TILE
    for (int b = 0; b < W; ++b) hn::StoreU(c[h][b], df, target + h * hd + d + b * N);
  }
}

// target [G, hd] += sum_{j in [lo, hi)} p[h][j] v_j for G heads, each V vector loaded once for
// the G heads; B vectors of dims per block, as many as the registers hold.
template <int G, class TV>
HWY_INLINE void TileSums(const float* p, int hd, const TV* vf, int lo, int hi, float* target) {
  const hn::ScalableTag<float> df;
  constexpr int N = static_cast<int>(hn::MaxLanes(df));
  constexpr int B = G * 4 + 4 + 1 <= kTileRegisters ? 4 : G * 2 + 2 + 1 <= kTileRegisters ? 2 : 1;
  int d = 0;
  for (; d + B * N <= hd; d += B * N) TileSumsBlock<G, B>(p, hd, vf, lo, hi, target, d);
  for (; d < hd; d += N) TileSumsBlock<G, 1>(p, hd, vf, lo, hi, target, d);
}

// The same two kernels reading a quantized tile in place (decode: one query per tile, so the
// codes are expanded in registers instead of into an fp32 tile that is stored and loaded again).
// Element e of a row is s * c + m (s, m of its group and token), so
//   q . k = sum_groups (s * sum_e q_e c_e + m * qsum),   sum_j p_j v_j = sum_j (p_j s_j) c_j + sum_j p_j m_j.
// Code positions: ops/kv_page.h, as DecodePageTile reads them.
// acc[h][u] += w[h * stride] * codes, the codes (bit field at `shift` of each 32-bit lane of
// raw[u], `mask` wide) expanded to floats once for the G heads.
template <int G, int U, class VU, class V>
HWY_INLINE void FmaCodes(const VU (&raw)[U], int shift, VU mask, const float* w, int stride, V (&acc)[G][U]) {
  const hn::ScalableTag<float> df;
  const hn::RebindToSigned<decltype(df)> di;
  V code[U];
  KVBITS_UNROLL_TILE
  for (int u = 0; u < U; ++u) code[u] = hn::ConvertTo(df, hn::BitCast(di, hn::And(hn::ShiftRightSame(raw[u], shift), mask)));
  KVBITS_UNROLL_TILE
  for (int h = 0; h < G; ++h) {
    const V wh = hn::Set(df, w[h * stride]);
    KVBITS_UNROLL_TILE
    for (int u = 0; u < U; ++u) acc[h][u] = hn::MulAdd(wh, code[u], acc[h][u]);
  }
}

template <int G>
HWY_INLINE void TileDots(const float* qk, int hd, const QuantTile& k, float* p) {
#if KVBITS_INT_TILES
  if (k.qi != nullptr && k.bits == 2) return TileDotsInt<G, 2>(IntDpEnabled(), hd, k, p, kKvTile);
  if (k.qi != nullptr && k.bits == 4) return TileDotsInt<G, 4>(IntDpEnabled(), hd, k, p, kKvTile);
#endif
  const hn::ScalableTag<float> df;
  const hn::RebindToUnsigned<decltype(df)> du;
  using V = hn::Vec<decltype(df)>;
  using VU = hn::Vec<decltype(du)>;
  constexpr int N = static_cast<int>(hn::MaxLanes(df));
  constexpr int U = kKvTile / N;
  const int b = k.bits, dims_per_chunk = 32 / b, chunks_per_group = k.group / dims_per_chunk;
  const auto mask = hn::Set(du, (1u << b) - 1u);
  for (int gr = 0; gr < k.groups; ++gr) {
    V acc[G][U];
    KVBITS_UNROLL_TILE
    for (int h = 0; h < G; ++h) {
      KVBITS_UNROLL_TILE
      for (int u = 0; u < U; ++u) acc[h][u] = hn::Zero(df);
    }
    for (int c = gr * chunks_per_group; c < (gr + 1) * chunks_per_group; ++c) {
      const uint32_t* chunk = reinterpret_cast<const uint32_t*>(k.codes + 64 * c);
      VU raw[U];
      KVBITS_UNROLL_TILE
      for (int u = 0; u < U; ++u) raw[u] = hn::LoadU(du, chunk + u * N);
      const float* qc = qk + c * dims_per_chunk;
      for (int j = 0; j < dims_per_chunk; ++j) {
        FmaCodes<G, U>(raw, 8 * (j % 4) + (j / 4) * b, mask, qc + j, hd, acc);
      }
    }
    KVBITS_UNROLL_TILE
    for (int h = 0; h < G; ++h) {
      const V qs = hn::Set(df, k.qsum[h * k.groups + gr]);
      KVBITS_UNROLL_TILE
      for (int u = 0; u < U; ++u) {
        float* out = p + h * kKvTile + u * N;
        const V base = gr == 0 ? hn::Zero(df) : hn::Load(df, out);
        const V with_min = hn::MulAdd(hn::LoadU(df, k.m + gr * kKvTile + u * N), qs, base);
        hn::Store(hn::MulAdd(hn::LoadU(df, k.s + gr * kKvTile + u * N), acc[h][u], with_min), df, out);
      }
    }
  }
}

template <int G>
HWY_INLINE void TileSums(const float* p, int hd, const QuantTile& v, int lo, int hi, float* target) {
  (void)lo;
  (void)hi;  // p is 0 outside [lo, hi) (FoldFloatTile) and so are s and m past the page's rows
#if KVBITS_INT_TILES
  if (v.bits == 2) return TileSumsInt<G, 2>(IntDpEnabled(), p, kKvTile, kKvTile, hd, v, target);
  if (v.bits == 4) return TileSumsInt<G, 4>(IntDpEnabled(), p, kKvTile, kKvTile, hd, v, target);
#endif
  const hn::ScalableTag<float> df;
  const hn::RebindToUnsigned<decltype(df)> du;
  using V = hn::Vec<decltype(df)>;
  using VU = hn::Vec<decltype(du)>;
  constexpr int N = static_cast<int>(hn::MaxLanes(df));
  constexpr int U = 16 / N;  // vectors of a 16-dim block
  const int b = v.bits, planes = 8 / b, chunks = b / 2;
  const auto mask = hn::Set(du, (1u << b) - 1u);
  HWY_ALIGN float ps[G * kKvTile];  // p_j s_j of the current group
  float pm[G] = {};                 // sum_j p_j m_j of the current group
  int current = -1;
  for (int blk = 0; blk < hd / 16; ++blk) {
    const int gr = 16 * blk / v.group;
    if (gr != current) {
      current = gr;
      KVBITS_UNROLL_TILE
      for (int h = 0; h < G; ++h) {
        V msum = hn::Zero(df);
        for (int u = 0; u < kKvTile; u += N) {
          const V ph = hn::Load(df, p + h * kKvTile + u);
          hn::Store(hn::Mul(ph, hn::LoadU(df, v.s + gr * kKvTile + u)), df, ps + h * kKvTile + u);
          msum = hn::MulAdd(ph, hn::LoadU(df, v.m + gr * kKvTile + u), msum);
        }
        pm[h] = hn::GetLane(hn::SumOfLanes(df, msum));
      }
    }
    V c[G][U];
    KVBITS_UNROLL_TILE
    for (int h = 0; h < G; ++h) {
      KVBITS_UNROLL_TILE
      for (int u = 0; u < U; ++u) c[h][u] = hn::Zero(df);
    }
    const uint8_t* block = v.codes + static_cast<size_t>(blk) * 32 * b;
    for (int z = 0; z < chunks; ++z) {
      VU raw[U];
      KVBITS_UNROLL_TILE
      for (int u = 0; u < U; ++u) raw[u] = hn::LoadU(du, reinterpret_cast<const uint32_t*>(block + 64 * z) + u * N);
      for (int j = 0; j < planes; ++j) {
        KVBITS_UNROLL_TILE
        for (int i = 0; i < 4; ++i) {
          FmaCodes<G, U>(raw, 8 * i + j * b, mask, ps + 4 * (z * planes + j) + i, kKvTile, c);
        }
      }
    }
    KVBITS_UNROLL_TILE
    for (int h = 0; h < G; ++h) {
      const V minimum = hn::Set(df, pm[h]);
      KVBITS_UNROLL_TILE
      for (int u = 0; u < U; ++u) {
        float* out = target + h * hd + 16 * blk + u * N;
        hn::StoreU(hn::Add(hn::LoadU(df, out), hn::Add(c[h][u], minimum)), df, out);
      }
    }
  }
}
#else
// Scalable vectors cannot live in arrays: one head and one vector at a time.
template <int G, class TK>
HWY_INLINE void TileDots(const float* qk, int hd, const TK* kt, float* p) {
  const hn::ScalableTag<float> df;
  const int N = static_cast<int>(hn::Lanes(df));
  for (int h = 0; h < G; ++h) {
    for (int u = 0; u < kKvTile; u += N) {
      auto a = hn::Zero(df);
      for (int d = 0; d < hd; ++d) a = hn::MulAdd(hn::Set(df, qk[h * hd + d]), LoadF32(df, kt + d * kKvTile + u), a);
      hn::Store(a, df, p + h * kKvTile + u);
    }
  }
}
template <int G, class TV>
HWY_INLINE void TileSums(const float* p, int hd, const TV* vf, int lo, int hi, float* target) {
  const hn::ScalableTag<float> df;
  const int N = static_cast<int>(hn::Lanes(df));
  for (int h = 0; h < G; ++h) {
    for (int d = 0; d < hd; d += N) {
      auto c = hn::LoadU(df, target + h * hd + d);
      for (int j = lo; j < hi; ++j) c = hn::MulAdd(hn::Set(df, p[h * kKvTile + j]), LoadF32(df, vf + j * hd + d), c);
      hn::StoreU(c, df, target + h * hd + d);
    }
  }
}
#endif

// Whether the heads of a group share each tile load (TileDots<G>, TileSums<G>) or go one at a
// time. fp32/fp16 tiles with 512-bit vectors: one at a time (the prefill window on AVX3_DL,
// BM_AttentionPrefillWindow, 1 thread, medians of 5 in three alternated rounds: interleaved
// 2000-2385 µs against 1866-2339 one at a time, 2026-12-05). With 256-bit vectors (AVX2) and for
// quantized tiles, whose codes are then expanded once for the group, interleaved
// (docs/benchmarks.md).
template <class Source>
constexpr bool InterleaveHeads() {
  return HWY_MAX_BYTES < 64 || !std::is_pointer_v<Source>;
}

// Head h's view of a K source (heads one at a time): a quantized tile's qsum moves on.
template <class T>
HWY_INLINE const T* HeadSource(const T* kt, int) {
  return kt;
}
HWY_INLINE QuantTile HeadSource(const QuantTile& k, int h) {
  QuantTile out = k;
  out.qsum = k.qsum + h * k.groups;
  if (k.qi) {
    out.qi = k.qi + h * k.groups * k.group;  // [g][hd]
    out.qd = k.qd + h * k.groups;
  }
  return out;
}

// The softmax passes of one block of scores p [g][stride], rows [0, len) (a multiple of the
// lanes) of which [lo, hi) are valid: adds qadd[h] on the rows whose add[j] is 1 (centred keys:
// q . key_mean; add == nullptr: none), masks the others to -inf, rescales the sums when the max
// grows, turns the scores into p = 2^(s - m) (Exp2, attention_kernels.cc) in place and adds them
// to l.
// live[h]: whether head h has anything finite yet (else its p are not weights). Returns whether
// every head is live. A tile (FoldFloatTile) or a step of tiles (FoldIntStep).
// kG, kLen > 0: g and len fixed at compile time, with every row valid (lo = 0, hi = len: the full
// steps of FoldIntStep's fixed shapes), the loops over a head's rows unrolled.
template <int kG = 0, int kLen = 0>
bool SoftmaxBlock(int g_arg, int hd, float* p, int stride, int len_arg, int lo, int hi, const float* qadd,
                  const float* add, const SoftmaxState& st, bool* live) {
  const hn::ScalableTag<float> df;
  const int N = static_cast<int>(hn::Lanes(df));
  const auto neg_inf = hn::Set(df, -INFINITY);
  const int g = kG > 0 ? kG : g_arg, len = kLen > 0 ? kLen : len_arg;
  const bool full = kLen > 0 || (lo == 0 && hi == len);  // no lane to mask
  float block_max[16];
  // Scores: the centred rows' q . key_mean, masked lanes -inf, the block's max. The horizontal
  // max only when some lane beats the running max (as in the VNNI kernel): after the first tiles
  // the max rarely grows, and a lane compare is far cheaper than the reduction.
  for (int h = 0; h < g; ++h) {
    auto vmax = neg_inf;
    ForRange<kLen != 0>(0, len / N, [&](int un) KVBITS_ALWAYS_INLINE {
      const int u = un * N;
      auto s = hn::Load(df, p + h * stride + u);
      if (add) s = hn::MulAdd(hn::LoadU(df, add + u), hn::Set(df, qadd[h]), s);
      if (!full) s = hn::IfThenElse(WindowLanes(df, u, lo, hi), s, neg_inf);
      if (add || !full) hn::Store(s, df, p + h * stride + u);
      vmax = hn::Max(vmax, s);
    });
    const bool grows = !hn::AllFalse(df, hn::Gt(vmax, hn::Set(df, st.m[h])));
    block_max[h] = grows ? hn::GetLane(hn::MaxOfLanes(df, vmax)) : st.m[h];
  }
  // Softmax: rescale on a new max, weights, sums.
  bool all_live = true;
  for (int h = 0; h < g; ++h) {
    const float new_max = std::max(st.m[h], block_max[h]);
    live[h] = new_max != -INFINITY;  // else nothing finite yet
    all_live &= live[h];
    if (!live[h]) continue;
    // 2^-inf = 0 on the first tile; exactly 1 (no call) while the max holds
    const float correction = new_max == st.m[h] ? 1.0f : std::exp2(st.m[h] - new_max);
    if (correction != 1.0f) {  // vectors: as a scalar loop this was ~18 % of the prefill window's samples
      const auto vc = hn::Set(df, correction);
      for (float* a : {st.acc + h * hd, st.acc_rot + h * hd}) {
        for (int d = 0; d < hd; d += N) hn::StoreU(hn::Mul(hn::LoadU(df, a + d), vc), df, a + d);
      }
    }
    const auto vm = hn::Set(df, new_max);
    auto vsum = hn::Zero(df), vsum2 = hn::Zero(df);
    ForRange<kLen != 0>(0, len / N, [&](int un) KVBITS_ALWAYS_INLINE {  // masked lanes hold -inf: 2^-inf = 0
      float* ph = p + h * stride + un * N;
      const auto pv = Exp2(df, hn::Sub(hn::Load(df, ph), vm));
      hn::Store(pv, df, ph);
      vsum = hn::Add(vsum, pv);
      vsum2 = hn::MulAdd(pv, pv, vsum2);
    });
    st.l[h] = st.l[h] * correction + hn::GetLane(hn::SumOfLanes(df, vsum));
    if (st.l2) st.l2[h] = st.l2[h] * correction * correction + hn::GetLane(hn::SumOfLanes(df, vsum2));
    st.m[h] = new_max;
  }
  return all_live;
}

// One tile for one query: qk [g, hd] (scores in base-2 units) plus qadd[h] on the rows whose
// add[j] is 1 (centred keys: q . key_mean; add == nullptr: none), rows [lo, hi) valid; V sums into
// target [g, hd]. Online softmax (SoftmaxBlock): the sums are rescaled when the max grows,
// p = 2^(s - m), target += sum_j p_j v_j. kt and vf: fp32 or fp16 tiles (pointers) or quantized
// page tiles read in place (QuantTile).
// Three passes over the g heads (scores, softmax, V sums) rather than one head after the other:
// a head's scores -> max -> exp -> V sums is one long dependency chain, and within a pass the
// heads are independent, so the core overlaps them (BM_AttentionPrefillWindow, 1 thread, on a
// busy host: 3.4 -> 2.7 ms). Within the scores and V sums, g <= 4 heads share each tile load
// where InterleaveHeads says so; otherwise (and for g > 4) one head at a time.
template <class KSource, class VSource>
void FoldFloatTile(const float* qk, const float* qadd, const float* add, int g, int hd, const KSource& kt,
                   const VSource& vf, int lo, int hi, float* target, const SoftmaxState& st) {
  HWY_ALIGN float p[16 * kKvTile];  // [g][kKvTile]: scores, then weights (g <= 16: attention())
  bool live[16];
  switch (InterleaveHeads<KSource>() ? g : 0) {
    case 1: TileDots<1>(qk, hd, kt, p); break;
    case 2: TileDots<2>(qk, hd, kt, p); break;
    case 3: TileDots<3>(qk, hd, kt, p); break;
    case 4: TileDots<4>(qk, hd, kt, p); break;
    default:
      for (int h = 0; h < g; ++h) TileDots<1>(qk + h * hd, hd, HeadSource(kt, h), p + h * kKvTile);
  }
  const bool all_live = SoftmaxBlock(g, hd, p, kKvTile, kKvTile, lo, hi, qadd, add, st, live);
  // target += sum_j p_j v_j (a head with nothing finite yet is left alone: its p are not weights).
  if (all_live && g <= 4 && InterleaveHeads<VSource>()) {
    switch (g) {
      case 1: return TileSums<1>(p, hd, vf, lo, hi, target);
      case 2: return TileSums<2>(p, hd, vf, lo, hi, target);
      case 3: return TileSums<3>(p, hd, vf, lo, hi, target);
      default: return TileSums<4>(p, hd, vf, lo, hi, target);
    }
  }
  for (int h = 0; h < g; ++h) {
    if (live[h]) TileSums<1>(p + h * kKvTile, hd, vf, lo, hi, target + h * hd);
  }
}

// Window rows [j0, j1) of one KV head for one query: `tiles` are that head's converted tiles (tile
// t holds rows [16 t, 16 t + 16)).
void AttendWindowTiles(const PreparedQuery& q, int g, int hd, const float* tiles, int64_t j0, int64_t j1,
                       const SoftmaxState& st) {
  for (int64_t t0 = j0 / kKvTile * kKvTile; t0 < j1; t0 += kKvTile) {
    const float* kt = tiles + static_cast<size_t>(t0 / kKvTile) * tile_floats(hd);
    FoldFloatTile(q.qf, nullptr, nullptr, g, hd, kt, kt + kKvTile * hd, static_cast<int>(std::max<int64_t>(j0 - t0, 0)),
                  static_cast<int>(std::min<int64_t>(j1 - t0, kKvTile)), st.acc, st);
  }
}
