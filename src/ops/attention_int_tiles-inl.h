// Integer products for a decode query over 2- and 4-bit page tiles on x86 targets that do not
// run the VNNI kernel (AVX2; AVX3 without VNNI; AVX3_DL shapes the VNNI kernel does not take).
// Included by attention_tiles-inl.h inside those targets' namespaces (no include guard on
// purpose); TileDots / TileSums over a QuantTile call these for 2- and 4-bit codes, and so does
// FoldIntStep (attention_page_tiles-inl.h) over steps of 4 tiles.
//
// vpmaddubsw multiplies 32 unsigned bytes (the codes of one bit plane) with 32 signed bytes (4
// int8 query elements or V weights, broadcast to every 32-bit lane) and adds adjacent products
// into 16-bit lanes: two instructions (with the 16-bit add) per 32 code pairs, where the fp32
// kernel converted every code to a float and spent an FMA per code and head (~3x the
// arithmetic; the fp32 tile was bound by it: docs/benchmarks.md). The page layout
// (ops/kv_page.h) is the VNNI kernel's, so a 32-bit lane holds 4 products of one token (K) or
// one dim (V), summed in 16-bit lanes over as many quads of products as cannot overflow
// (IntSegmentQuads), then widened (vpmaddwd with ones) and scaled in fp32.
//
// Roundings, the same two as the VNNI kernel's (attention_vnni-inl.h), bounded in
// tests/unit/attention_test.cc:
//  * K: the query is int8 per group (PreparedQuery qi, qd): |qr - qd qi| <= qd / 2 per element;
//  * V: the weights w_t = p_t vs_t of one step (FoldIntStep: up to 64 tokens of a page, as in the
//    VNNI kernel) or tile (FoldQuantTile) and group are int8 against their largest
//    (ws = max / 127): |w - ws wq| <= ws / 2 per token.
// 8-bit codes stay on the fp32 path: a pair of products can reach 2 * 255 * 127 > 32767, and
// vpmaddubsw saturates.
//
// Where the CPU has vpdpbusd for 256-bit vectors (backend/simd_targets.h vpdpbusd_enabled: AVX-VNNI
// on the AVX2 target, AVX512-VNNI on the AVX3 ones) each vpmaddubsw + 16-bit add is one vpdpbusd
// into 32-bit lanes (kDp): the same exact integer sums (no lane overflows either way), half the
// instructions per product quad and no segments to widen.

// Whether a QuantTile of `bits` goes through the integer kernels below.
HWY_INLINE bool IntTileBits(int bits) { return bits == 2 || bits == 4; }

// Quads of products (one vpmaddubsw each) a 16-bit lane can sum without overflow: a lane is at
// most 2 (2^b - 1) 128 (|q| <= 127, one more for margin): 3840 for 4-bit codes (8 quads), 768
// for 2-bit ones (42 quads). A tile's V sums add 4 quads.
template <int kBits>
constexpr int IntSegmentQuads() {
  return 32767 / (2 * ((1 << kBits) - 1) * 128);
}

// Plane j of the codes in raw (bits [j b, (j + 1) b) of every byte, moved to the bottom): a 16-bit
// shift, whose bits from the neighbouring byte the mask clears.
template <int kBits>
HWY_INLINE __m256i IntCodePlane(__m256i raw, int j) {
  const __m256i mask = _mm256_set1_epi8(static_cast<char>((1 << kBits) - 1));
  return _mm256_and_si256(j == 0 ? raw : _mm256_srli_epi16(raw, j * kBits), mask);
}

#include "ops/vpdpbusd256-inl.h"

// acc + the products of the unsigned codes and the signed bytes s8, four per 32-bit lane: with
// kDp one vpdpbusd adding them to 32-bit lanes (ops/vpdpbusd256-inl.h); without, vpmaddubsw's
// pair sums added to 16-bit lanes (IntSegmentQuads of them at most).
template <bool kDp>
HWY_INLINE __m256i IntMulAdd(__m256i acc, __m256i codes, __m256i s8) {
  if constexpr (kDp) {
    return Vpdpbusd256(acc, codes, s8);
  } else {
    return _mm256_add_epi16(acc, _mm256_maddubs_epi16(codes, s8));
  }
}

// IntMulAdd's lanes as 8 int32 (kDp: already; otherwise adjacent 16-bit lanes added by vpmaddwd).
template <bool kDp>
HWY_INLINE __m256i IntWiden(__m256i acc) {
  if constexpr (kDp) return acc;
  return _mm256_madd_epi16(acc, _mm256_set1_epi16(1));
}

// Product quads a lane of IntMulAdd<kDp> may sum between two IntWiden. 32-bit lanes: 2^16 quads
// of at most 4 * 15 * 128 stay below 2^31, where a group of 256 4-bit dims has 64 and a step's V
// sums 16; so one segment per group or step.
template <bool kDp, int kBits>
constexpr int IntLaneQuads() {
  return kDp ? 1 << 16 : IntSegmentQuads<kBits>();
}

// Halves of a tile (8 tokens of K or 8 dims of V each) per pass over its codes, one accumulator per
// half and head. With vpdpbusd both: each broadcast query or weight quad then serves two products,
// and the halves are the two independent chains per head that the instruction's latency (~5
// cycles) needs (one chain per head: int2 tile median 268 against 241 ns, session 36); 2 G
// accumulators + 2 code vectors + 2 planes + the broadcast + the mask, 12 of 16 registers with G
// = 3. Without it one (vpaddw's latency is 1): vpmaddubsw's product needs a register more, and
// with both halves GCC spilled the accumulators (~110 stack moves per fixed-shape int2 tile,
// session 37).
template <bool kDp>
constexpr int IntHalvesPerPass() {
  return kDp ? 2 : 1;
}

// The head dim and group size the integer kernels work with: their run-time arguments (kHd =
// kGroup = 0), or fixed at compile time (SmolLM2's default shape, 64 and 64: FoldIntStep), when
// every loop over chunks, blocks and groups is unrolled (ForRange) and every offset is a
// constant. As loops with run-time bounds they were ~45 % of the AVX2 decode step's instructions:
// loop control and addresses, ~880 scalar instructions per int2 tile against ~1070 vector ones
// (session 37, scripts/gdb_count_instructions.py).
template <int kHd, int kGroup>
struct IntShape {
  static constexpr bool kFixed = kHd > 0 && kGroup > 0;
  static constexpr int hd(int run_time) { return kHd > 0 ? kHd : run_time; }
  static constexpr int group(int run_time) { return kGroup > 0 ? kGroup : run_time; }
  static constexpr int groups(int run_time) { return kFixed ? kHd / kGroup : run_time; }
};

// 4 signed bytes at p broadcast to every 32-bit lane.
HWY_INLINE __m256i IntBroadcast4(const int8_t* p) {
  int32_t x;
  std::memcpy(&x, p, sizeof(x));
  return _mm256_set1_epi32(x);
}

// Scores of G heads over one tile of kBits K codes: p [G][p_stride] (the tile's 16 first) = sum
// over groups of s * qd * (qi . c) + m * qsum. Token t of a chunk is its 32-bit lane t: tokens 0-7 in the first
// 32 bytes (u = 0), 8-15 in the second (u = 1). Plane j of chunk c holds dims c D + 4 j + i in
// byte i (D = 32 / kBits dims per chunk; ops/kv_page.h).
// Shape: the head dim and K group of the arguments, or fixed at compile time (kHd, kGroup > 0:
// IntShape, FoldIntStep), when every loop is unrolled and every query offset a constant.
template <int G, int kBits, bool kDp, int kHd = 0, int kGroup = 0>
HWY_NOINLINE void TileDotsIntImpl(int hd_arg, const QuantTile& k, float* p, int p_stride) {
  using Shape = IntShape<kHd, kGroup>;
  constexpr int kPlanes = 8 / kBits, kDims = 32 / kBits;
  constexpr int kSegmentChunks = IntLaneQuads<kDp, kBits>() / kPlanes;
  const int hd = Shape::hd(hd_arg), groups = Shape::groups(k.groups);
  const int chunks_per_group = Shape::group(k.group) / kDims;
  const int segments = (chunks_per_group + kSegmentChunks - 1) / kSegmentChunks;  // per group
  ForRange<Shape::kFixed>(0, groups * segments, [&](int index) KVBITS_ALWAYS_INLINE {
    const int gr = segments == 1 ? index : index / segments, c_end = (gr + 1) * chunks_per_group;
    const int c0 = gr * chunks_per_group + (segments == 1 ? 0 : index % segments) * kSegmentChunks;
    // p += s * qd * dot (+ m * qsum once per group; p starts at group 0's first segment).
    const bool first = gr == 0 && c0 == 0, group_start = c0 == gr * chunks_per_group;
    // kHalves halves of the tile (tokens 0-7: u = 0, 8-15: u = 1) per pass over the chunks, one
    // accumulator per half and head (IntHalvesPerPass).
    constexpr int kH = IntHalvesPerPass<kDp>();
    KVBITS_UNROLL_TILE
    for (int u0 = 0; u0 < 2; u0 += kH) {
      __m256i acc[kH][G];
      KVBITS_UNROLL_TILE
      for (int h = 0; h < G; ++h) {
        for (int x = 0; x < kH; ++x) acc[x][h] = _mm256_setzero_si256();
      }
      // Unrolled with vpdpbusd only: without it GCC hoisted the unrolled chunks' broadcasts and
      // spilled the accumulators (~150 stack moves per fixed-shape int2 tile, session 37).
      ForRange<Shape::kFixed && kDp>(c0, std::min(c0 + kSegmentChunks, c_end), [&](int c) KVBITS_ALWAYS_INLINE {
        __m256i raw[kH];
        for (int x = 0; x < kH; ++x) {
          raw[x] = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(k.codes + 64 * c + 32 * (u0 + x)));
        }
        KVBITS_UNROLL_TILE
        for (int j = 0; j < kPlanes; ++j) {
          __m256i codes[kH];
          for (int x = 0; x < kH; ++x) codes[x] = IntCodePlane<kBits>(raw[x], j);
          KVBITS_UNROLL_TILE
          for (int h = 0; h < G; ++h) {
            const __m256i qv = IntBroadcast4(k.qi + h * hd + c * kDims + 4 * j);
            for (int x = 0; x < kH; ++x) acc[x][h] = IntMulAdd<kDp>(acc[x][h], codes[x], qv);
          }
        }
      });
      KVBITS_UNROLL_TILE
      for (int x = 0; x < kH; ++x) {
        const int u = u0 + x;
        const __m256 s = _mm256_loadu_ps(k.s + gr * k.stride + 8 * u);
        const __m256 m = _mm256_loadu_ps(k.m + gr * k.stride + 8 * u);
        KVBITS_UNROLL_TILE
        for (int h = 0; h < G; ++h) {
          float* out = p + h * p_stride + 8 * u;
          __m256 base = first ? _mm256_setzero_ps() : _mm256_load_ps(out);
          if (group_start) base = _mm256_fmadd_ps(m, _mm256_set1_ps(k.qsum[h * groups + gr]), base);
          const __m256 dot = _mm256_cvtepi32_ps(IntWiden<kDp>(acc[x][h]));
          _mm256_store_ps(out, _mm256_fmadd_ps(_mm256_mul_ps(s, _mm256_set1_ps(k.qd[h * groups + gr])), dot, base));
        }
      }
    }
  });
}

// 16 int32 lanes (a: 0-7, b: 8-15, each in [-128, 127]) to 16 int8 at out, in order.
HWY_INLINE void IntStore16(__m256i a, __m256i b, int8_t* out) {
  // packs works within 128-bit halves: (a0-3, b0-3 | a4-7, b4-7); the permute restores the order.
  const __m256i words = _mm256_permute4x64_epi64(_mm256_packs_epi32(a, b), 0xD8);
  const __m128i bytes = _mm_packs_epi16(_mm256_castsi256_si128(words), _mm256_extracti128_si256(words, 1));
  _mm_storeu_si128(reinterpret_cast<__m128i*>(out), bytes);
}

// target [G, hd] += sum_t p[h][t] v_t over `len` tokens (whole tiles from v.codes; p [G][p_stride];
// p is 0 for rows outside the valid range, and so are s and m past the page's rows). Per group:
// int8 weights wq = round(p s / ws), ws = max(p s) / 127 over the len tokens, and pm = sum_t p m
// (the minimums' share, the same for every dim of the group). Per 16-dim block of each tile:
// plane j of chunk z holds tokens 4 (z P + j) + i in byte i of each dim's 32-bit lane (P = 8 /
// kBits planes; dims 0-7 in the first 32 bytes).
// Shape: as TileDotsIntImpl's; with kLen > 0 (a full step of a fixed shape) len is kLen.
template <int G, int kBits, bool kDp, int kHd = 0, int kGroup = 0, int kLen = 0>
HWY_NOINLINE void TileSumsIntImpl(const float* p, int p_stride, int len_arg, int hd_arg, const QuantTile& v,
                                  float* target) {
  using Shape = IntShape<kHd, kGroup>;
  constexpr int kPlanes = 8 / kBits, kChunks = kBits / 2;  // kChunks * kPlanes = 4 quads of tokens
  constexpr int kSegmentTiles = IntLaneQuads<kDp, kBits>() / 4;  // tiles summed between widenings
  static_assert(kSegmentTiles >= 1, "a tile's V sums fit 16-bit lanes");
  const int hd = Shape::hd(hd_arg), group = Shape::group(v.group), len = kLen > 0 ? kLen : len_arg;
  const size_t tile_bytes = static_cast<size_t>(kKvTile) * hd * kBits / 8;
  const int tiles = len / kKvTile;
  alignas(32) int8_t wq[G][kAttentionStepTokens];
  float ws[G] = {}, pm[G] = {};  // set with the weights at each group's first block
  int current = -1;
  ForRange<Shape::kFixed && kDp>(0, hd / 16, [&](int blk) KVBITS_ALWAYS_INLINE {  // kDp: as in TileDotsIntImpl
    const int gr = 16 * blk / group;
    if (gr != current) {
      current = gr;
      KVBITS_UNROLL_TILE
      for (int h = 0; h < G; ++h) {
        __m256 mx = _mm256_setzero_ps(), sm = _mm256_setzero_ps();  // weights are >= 0
        ForRange<kLen != 0>(0, len / 8, [&](int t8) KVBITS_ALWAYS_INLINE {
          const __m256 pt = _mm256_load_ps(p + h * p_stride + 8 * t8);
          mx = _mm256_max_ps(mx, _mm256_mul_ps(pt, _mm256_loadu_ps(v.s + gr * v.stride + 8 * t8)));
          sm = _mm256_fmadd_ps(pt, _mm256_loadu_ps(v.m + gr * v.stride + 8 * t8), sm);
        });
        // Horizontal max and sum of the 8 lanes.
        __m128 mx4 = _mm_max_ps(_mm256_castps256_ps128(mx), _mm256_extractf128_ps(mx, 1));
        __m128 sm4 = _mm_add_ps(_mm256_castps256_ps128(sm), _mm256_extractf128_ps(sm, 1));
        mx4 = _mm_max_ps(mx4, _mm_movehl_ps(mx4, mx4));
        sm4 = _mm_add_ps(sm4, _mm_movehl_ps(sm4, sm4));
        mx4 = _mm_max_ss(mx4, _mm_shuffle_ps(mx4, mx4, 1));
        sm4 = _mm_add_ss(sm4, _mm_shuffle_ps(sm4, sm4, 1));
        const float wmax = _mm_cvtss_f32(mx4);
        pm[h] = _mm_cvtss_f32(sm4);
        ws[h] = wmax / 127.0f;
        const __m256 inv = _mm256_set1_ps(wmax > 0.0f ? 127.0f / wmax : 0.0f);
        ForRange<kLen / 16 != 0>(0, len / 16, [&](int t16) KVBITS_ALWAYS_INLINE {
          const int t = 16 * t16;
          const __m256 w0 = _mm256_mul_ps(_mm256_load_ps(p + h * p_stride + t), _mm256_loadu_ps(v.s + gr * v.stride + t));
          const __m256 w1 =
              _mm256_mul_ps(_mm256_load_ps(p + h * p_stride + t + 8), _mm256_loadu_ps(v.s + gr * v.stride + t + 8));
          IntStore16(_mm256_cvtps_epi32(_mm256_mul_ps(w0, inv)), _mm256_cvtps_epi32(_mm256_mul_ps(w1, inv)), wq[h] + t);
        });
      }
    }
    // kH halves of the block (dims 0-7: u = 0, 8-15: u = 1) per pass, as in TileDotsIntImpl.
    // sum: the segments' products in fp32.
    constexpr int kH = IntHalvesPerPass<kDp>();
    KVBITS_UNROLL_TILE
    for (int u0 = 0; u0 < 2; u0 += kH) {
      __m256 sum[kH][G];
      KVBITS_UNROLL_TILE
      for (int h = 0; h < G; ++h) {
        for (int x = 0; x < kH; ++x) sum[x][h] = _mm256_setzero_ps();
      }
      ForRange<kLen != 0>(0, (tiles + kSegmentTiles - 1) / kSegmentTiles, [&](int segment) KVBITS_ALWAYS_INLINE {
        const int i0 = segment * kSegmentTiles;
        __m256i acc[kH][G];
        KVBITS_UNROLL_TILE
        for (int h = 0; h < G; ++h) {
          for (int x = 0; x < kH; ++x) acc[x][h] = _mm256_setzero_si256();
        }
        // Not unrolled: unrolled, GCC kept the weights' broadcasts of all the step's tiles (48 with
        // 3 heads) in registers across the blocks and spilled them (~120 stack moves per tile).
        ForRange<false>(i0, std::min(i0 + kSegmentTiles, tiles), [&](int i) KVBITS_ALWAYS_INLINE {
          const uint8_t* block = v.codes + i * tile_bytes + static_cast<size_t>(blk) * 32 * kBits;
          KVBITS_UNROLL_TILE
          for (int z = 0; z < kChunks; ++z) {
            __m256i raw[kH];
            for (int x = 0; x < kH; ++x) {
              raw[x] = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(block + 64 * z + 32 * (u0 + x)));
            }
            KVBITS_UNROLL_TILE
            for (int j = 0; j < kPlanes; ++j) {
              __m256i codes[kH];
              for (int x = 0; x < kH; ++x) codes[x] = IntCodePlane<kBits>(raw[x], j);
              KVBITS_UNROLL_TILE
              for (int h = 0; h < G; ++h) {
                const __m256i wv = IntBroadcast4(wq[h] + kKvTile * i + 4 * (z * kPlanes + j));
                for (int x = 0; x < kH; ++x) acc[x][h] = IntMulAdd<kDp>(acc[x][h], codes[x], wv);
              }
            }
          }
        });
        KVBITS_UNROLL_TILE
        for (int x = 0; x < kH; ++x) {
          KVBITS_UNROLL_TILE
          for (int h = 0; h < G; ++h) sum[x][h] = _mm256_add_ps(sum[x][h], _mm256_cvtepi32_ps(IntWiden<kDp>(acc[x][h])));
        }
      });
      KVBITS_UNROLL_TILE
      for (int x = 0; x < kH; ++x) {
        KVBITS_UNROLL_TILE
        for (int h = 0; h < G; ++h) {
          float* out = target + h * hd + 16 * blk + 8 * (u0 + x);
          _mm256_storeu_ps(out, _mm256_fmadd_ps(sum[x][h], _mm256_set1_ps(ws[h]), _mm256_add_ps(_mm256_loadu_ps(out), _mm256_set1_ps(pm[h]))));
        }
      }
    }
  });
}

// The tiles above with vpdpbusd where the CPU has it for this target (IntMulAdd).
HWY_INLINE bool IntDpEnabled() { return vpdpbusd_enabled(HWY_TARGET == HWY_AVX2); }

// dp: IntDpEnabled(), asked once per step or tile by the caller.
template <int G, int kBits, int kHd = 0, int kGroup = 0>
HWY_INLINE void TileDotsInt(bool dp, int hd, const QuantTile& k, float* p, int p_stride) {
  if (dp) return TileDotsIntImpl<G, kBits, true, kHd, kGroup>(hd, k, p, p_stride);
  TileDotsIntImpl<G, kBits, false, kHd, kGroup>(hd, k, p, p_stride);
}

template <int G, int kBits, int kHd = 0, int kGroup = 0, int kLen = 0>
HWY_INLINE void TileSumsInt(bool dp, const float* p, int p_stride, int len, int hd, const QuantTile& v,
                            float* target) {
  if (dp) return TileSumsIntImpl<G, kBits, true, kHd, kGroup, kLen>(p, p_stride, len, hd, v, target);
  TileSumsIntImpl<G, kBits, false, kHd, kGroup, kLen>(p, p_stride, len, hd, v, target);
}
