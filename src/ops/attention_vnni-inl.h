// AVX-512 VNNI attention over one KV page, included by ops/attention_kernels.cc inside the AVX3_DL
// target namespace (per-target code; no include guard on purpose): the steps of a page's tiles
// (scores, softmax, V sums) and their helpers; the per-page drivers that run them and the dispatch
// on the page's shape are in attention_vnni_page-inl.h.
//
// The page layout (ops/kv_page.h) puts 16 tokens in the 16 lanes of a vector:
//  * K scores: one vpdpbusd multiplies a 64-byte chunk of codes (4 dims of 16 tokens per 32-bit
//    lane) with 4 broadcast int8 query bytes, so 16 tokens' partial dot products build up in
//    lanes with no horizontal sums. score = sum over groups of
//      ks * qd * idot + km * qsum
//    (k ~ ks c + km; the rotated query qr ~ qd qi, qsum = sum of qr over the group).
//  * V sums: weights w_t = p_t vs_t of a step (up to 4 tiles of one page, kVnniStepTiles) are
//    rounded to int8 against the step's largest weight; one vpdpbusd adds 4 tokens' w c to 16
//    dims; sum_t p_t vm_t is added per group.
//  * fp16 K rows are transposed ([dim][16 tokens]): one vcvtph2ps gives a dim of 16 tokens.
// Error of the integer steps, bounded in tests/unit/attention_test.cc: |qr - qd qi| <= qd / 2 per
// element, |w - ws wq| <= ws / 2 per token and group (ws = step max / 127). With fp32 activations
// (KvLayerView::exact_8bit: PreparedQuery qi2 set) 8-bit rows add a second int8 product with the
// residuals (qi2, wq2), so there both are 254 times smaller.
//
// Everything else (window rows, other targets) uses the portable path in attention_kernels.cc.

// The loops over the g heads of a group are unrolled so that the per-head accumulators live in
// registers: at -O2 GCC keeps them in a stack array and every vpdpbusd becomes a load, the
// instruction and a store (a store-forwarding chain that made the kernel ~2x slower).
#ifndef KVBITS_UNROLL_HEADS
#define KVBITS_UNROLL_HEADS _Pragma("GCC unroll 16")
#endif

// acc + (sum of the 4 u8 x s8 products of each 32-bit lane), with the 4 signed bytes at s8
// broadcast to every lane (vpdpbusd with an embedded {1to16} broadcast). Inline assembly because
// Highway 1.0.3's AVX3_DL target does not enable "avx512vnni" for the intrinsic; zmm operands
// are always EVEX-encoded.
HWY_INLINE __m512i DpbusdBroadcast(__m512i acc, __m512i u8, const int8_t* s8) {
  asm("vpdpbusd %2%{1to16%}, %1, %0" : "+v"(acc) : "v"(u8), "m"(*reinterpret_cast<const int32_t*>(s8)));
  return acc;
}

// 16 consecutive scales or minimums of a page as fp32: fp16 (8-bit rows) or E5M2 bytes, which
// are the high bytes of fp16 values (2/4-bit rows; ops/kv_codec.h).
HWY_INLINE __m512 LoadMeta(const uint8_t* base, int at, int size) {
  if (size == 1) {
    // Byte i to the high byte of 16-bit lane i: the 16 bytes in both 128-bit halves (a load),
    // then one vpshufb (index -1 writes 0) instead of a zero extension and a shift.
    const __m256i both = _mm256_broadcastsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(base + at)));
    const __m256i to_high = _mm256_setr_epi8(-1, 0, -1, 1, -1, 2, -1, 3, -1, 4, -1, 5, -1, 6, -1, 7,  //
                                             -1, 8, -1, 9, -1, 10, -1, 11, -1, 12, -1, 13, -1, 14, -1, 15);
    return _mm512_cvtph_ps(_mm256_shuffle_epi8(both, to_high));
  }
  return _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(base + 2 * at)));
}

// 2^x of 16 floats, for the softmax (x = s - max <= 0; scores are in base-2 units, log2 e being
// folded into the query scale: attention.cc). x = n/16 + r with n = round(16 x) (ties to even) and
// |r| <= 1/32, exact; 2^x = 2^floor(n/16) * 2^(j/16) * 2^r with j = n mod 16: 2^(j/16) from a
// 16-entry table (vpermps), 2^r = 1 + r (c1 + r (c2 + r c3)) (Taylor, relative error < 1e-8 on
// |r| <= 1/32), 2^floor(n/16) added to the exponent bits. Maximum relative error ~1.2e-7 over
// [-125, 0] (the table's fp32 rounding; Cephes' degree-6 exp2f with vscalefps before: ~7e-8).
// x < -125 (-inf of padding lanes included) and NaN give exactly 0 (results below 2^-125 of the
// max would be subnormal, and the exponent add needs a normal result).
// Why the table: on Zen 4 vpdpbusd, vfmadd and vmulps share one zmm issue slot per cycle
// (bench/pipe_probe_bench.cc), and in an int2 tile (g = 3) they are most of its work. The degree-6
// polynomial took 6 of those slots per vector (its vscalefps runs elsewhere, one per 2 cycles);
// this form takes 4, the rest going to the other pipes (vpermps, adds, the shift), so ~6 fewer
// per int2 tile out of ~160. Micro-benchmark, beside 4 vpdpbusd per exp: ~2.7 ns per vector
// against ~3.2.
HWY_INLINE __m512 Exp2Ps(__m512 x) {
  const __m512 table = _mm512_setr_ps(1.0f, 1.04427378f, 1.09050773f, 1.13878863f, 1.18920712f, 1.24185781f,
                                      1.29683955f, 1.35425555f, 1.41421356f, 1.47682615f, 1.54221083f, 1.61049033f,
                                      1.68179283f, 1.75625216f, 1.83400809f, 1.91520656f);
  const __mmask16 in_range = _mm512_cmp_ps_mask(x, _mm512_set1_ps(-125.0f), _CMP_GE_OQ);
  // t = x + 1.5 * 2^19 holds x rounded to 1/16 (the ulp there); its bits are bits(shifter) + n,
  // whose low 4 bits (j) vpermps reads as the index.
  const __m512 shifter = _mm512_set1_ps(786432.0f);
  const __m512 t = _mm512_add_ps(x, shifter);
  const __m512 r = _mm512_sub_ps(x, _mm512_sub_ps(t, shifter));
  const __m512i ti = _mm512_castps_si512(t);
  const __m512 f = _mm512_permutexvar_ps(ti, table);
  __m512 p = _mm512_fmadd_ps(_mm512_set1_ps(5.55041087e-2f), r, _mm512_set1_ps(2.40226507e-1f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(6.93147181e-1f));
  const __m512 y = _mm512_fmadd_ps(f, _mm512_mul_ps(r, p), f);  // 2^(j/16 + r), in [0.97, 1.96]
  // (bits(t) with j cleared) << 19 = floor(n/16) << 23 mod 2^32 (bits(shifter) << 19 overflows
  // away entirely): the exponent of 2^floor(n/16), >= -125, added to y's.
  const __m512i e = _mm512_slli_epi32(_mm512_andnot_si512(_mm512_set1_epi32(15), ti), 19);
  return _mm512_castsi512_ps(_mm512_maskz_add_epi32(in_range, _mm512_castps_si512(y), e));
}

// A coarser 2^x for the steps whose weights are then rounded to int8 (V rows of 2 and 4 bits,
// KernelShape::kCoarseExp): x = n + r, n = floor(x), 0 <= r < 1 (vreduceps: x - floor(x) in one
// instruction, exact); 2^r by a degree-3 polynomial with the least maximum relative error on
// [0, 1] (7.48e-5, from 2^r itself, so 2^x keeps it at every n: the Remez fit on [-1/2, 1/2] of
// sessions 43-45 moved to [0, 1], q(r) = sqrt(2) p(r - 1/2)); 2^n by vscalefps, which takes
// floor(x) itself. The weights' int8 rounding that follows (AccumulateStepQuant) errs by up to
// 1/254 of the step's largest weight, ~50x more; the softmax denominator sums the same values, so
// they stay normalised.
// 6 vector uops (cmp, vreduceps, 3 FMAs, vscalefps) against Exp2Ps' 12 and the round-to-nearest
// form's 8 before session 46 (vrndscaleps is 2 uops on the Emerald Rapids host, vreduceps 1:
// bench/pipe_probe_bench.cc's BM_PipeMix12): 24 fewer uops per 64-token int2 page and KV head
// (g = 3) of ~1,050; the kernel benchmark 2.2-2.3 % faster in cache (session 46).
// x < -125 (-inf of padding lanes included) and NaN give exactly 0, as Exp2Ps (masked away; an
// unmasked vscalefps with a subnormal result took ~200 cycles, a microcode assist).
// kMasked = false: Exp2PsCoarseFull below.
template <bool kMasked = true>
HWY_INLINE __m512 Exp2PsCoarse(__m512 x) {
  const __m512 r = _mm512_reduce_ps(x, _MM_FROUND_TO_NEG_INF | _MM_FROUND_NO_EXC);
  __m512 p = _mm512_fmadd_ps(_mm512_set1_ps(7.80245215e-2f), r, _mm512_set1_ps(2.26067156e-1f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(6.95833504e-1f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(9.99925196e-1f));
  if constexpr (!kMasked) return _mm512_scalef_ps(p, x);
  const __mmask16 in_range = _mm512_cmp_ps_mask(x, _mm512_set1_ps(-125.0f), _CMP_GE_OQ);
  return _mm512_maskz_scalef_ps(in_range, p, x);
}

// Exp2PsCoarse without the range mask, for the full steps of the fixed-shape kernels
// (KernelShape::kStepTiles > 0), whose lanes are all tokens: no -inf padding there. 5 uops
// instead of 6 (12 fewer per 64-token int2 page and KV head). Below x = -126 the result is
// subnormal: vscalefps then took a ~165-cycle microcode assist per instruction on the Emerald
// Rapids host (session 49, a /tmp probe), unless MXCSR's flush-to-zero is set, as the attention
// driver does around its tasks (backend/fp_env.h): then those lanes are 0 at full speed, as with
// the mask. NaN scores (a NaN or infinite query) give NaN weights here, where the mask gave 0;
// the output is garbage either way, and NaN now reaches the logits, where it is caught
// (engine/sampler.h).
HWY_INLINE __m512 Exp2PsCoarseFull(__m512 x) { return Exp2PsCoarse<false>(x); }

// Bits [j * kBits, (j + 1) * kBits) of every byte of raw, moved to the bottom of the byte: plane
// j of a chunk of codes. Plane 0 is one vpandd; the others of 4-bit codes a 16-bit shift and an
// and, those of 2-bit codes one vgf2p8affineqb (GFNI: a per-byte bit matrix). On Zen 4
// vgf2p8affineqb issues to the two pipes that also run vpdpbusd and the FMAs: next to a stream
// of vpdpbusd it cost a full cycle in a micro-benchmark, a shift and an and ~0.05. With shifts
// the int4 kernel got ~3 % faster, the int2 one (three shifted planes per chunk) ~8 % slower
// (in cache, 1 thread, 2026-12-04), so each width keeps the faster form.
template <int kBits>
HWY_INLINE __m512i CodePlane(__m512i raw, int j, __m512i mask) {
  if (kBits == 8 || j == 0) return _mm512_and_si512(raw, mask);
  if (kBits == 4) return _mm512_and_si512(_mm512_srli_epi16(raw, 4), mask);
  // Row i of the matrix (byte 7 - i of the qword) selects the input bit that becomes bit i.
  uint64_t m = 0;
  for (int i = 0; i < kBits; ++i) m |= uint64_t{1} << (j * kBits + i) << (8 * (7 - i));
  __m512i out;
  const __m512i mat = _mm512_set1_epi64(static_cast<long long>(m));
  // "vm": the matrix may stay in memory (GCC had reloaded it into a register before each use).
  asm("vgf2p8affineqb $0, %2, %1, %0" : "=v"(out) : "v"(raw), "vm"(mat));
  return out;
}

// Spreads the prefetches of the next block over a page's tiles, a few lines before each tile
// (scores) and each tile or 16-dim block (V sums). The same prefetches issued in one burst before
// the page (70-260 lines) left the kernel ~2x slower out of cache (attention_detail.h); our reading
// is that the burst fills the core's miss buffers and the current tile's loads queue behind it. The
// lines go to L2 (T1): with T0 the FP16 cache at depth 8192 read 15-18 GB/s on Zen 4 against a
// 31-35 GB/s probe, with T1 26-32 GB/s (BM_AttentionDecode, 2 threads: 10.5-11.9 ms -> 5.9-7.2 ms
// for 245760 tokens, alternated, 2026-12-04); the quantized pages, which are bound by the kernels'
// arithmetic, stayed within the host's noise. On the Emerald Rapids host (session 46) the int2
// page kernel (AttendHeadsPipelined) gained from T0, its next page (~6.9 KB, three KV heads) then
// waiting in L1: 30 layers out of cache, 1 thread, 1.6-3 % faster (pass-by-pass A/B, medians); T1
// in the same one-line loop was 0.6 % slower than the four-line one, so the gain is the hint's.
struct PrefetchCursor {
  const char* at = nullptr;
  const char* end = nullptr;
  size_t chunk = 0;     // bytes per issue()
  bool to_l1 = false;   // T0 instead of T1: the int2 page kernel only (above)
  HWY_INLINE void issue() {
    const char* p = at;
    const char* stop = std::min(end, p + chunk);
    if (to_l1) {
      for (; p < stop; p += 64) _mm_prefetch(p, _MM_HINT_T0);
      at = p;
      return;
    }
    // Four lines per iteration while they fit (~9 lines per int2 tile and head at the default
    // page shape), on a local copy of the position; with one cursor for all queries of a block
    // (AttendHeadVnni) an int2 tile took 471 instructions against 488 (session 35).
    for (; p + 192 < stop; p += 256) {
      _mm_prefetch(p, _MM_HINT_T1);
      _mm_prefetch(p + 64, _MM_HINT_T1);
      _mm_prefetch(p + 128, _MM_HINT_T1);
      _mm_prefetch(p + 192, _MM_HINT_T1);
    }
    for (; p < stop; p += 64) _mm_prefetch(p, _MM_HINT_T1);
    at = p;
  }
};

// One head's K and V blocks of a page, resolved once per page (PageBlock, attention_page_tiles-inl.h):
// the tile kernels computed these offsets from the layout at every tile, two integer divisions
// and a dozen multiplies each time (~10 % of the int2 kernel's samples, perf 2026-12-04).
struct HeadBlocks {
  const uint8_t* k;   // K codes of tile 0
  const uint8_t* ks;  // K scales [groups][page_tokens] (sign bit: centring flag)
  const uint8_t* km;  // K minimums, same shape
  const uint8_t* v;   // V codes of tile 0
  const uint8_t* vs;  // V scales
  const uint8_t* vm;  // V minimums
  size_t k_tile = 0, v_tile = 0;  // bytes per 16-token tile
  int k_bits = 16, v_bits = 16;
  int page_tokens = 0;  // stride of the metadata rows
};

HWY_INLINE HeadBlocks ResolveHead(const KvPageLayout& layout, const uint8_t* page, int kvh) {
  const PageBlock k = ResolveBlock(layout, page, kvh, false), v = ResolveBlock(layout, page, kvh, true);
  return {k.codes, k.scales, k.minimums, v.codes, v.scales, v.minimums, k.tile_bytes, v.tile_bytes,
          k.bits, v.bits, k.page_tokens};
}

// Independent accumulator chains per head in the dot-product loops. vpdpbusd and vfmadd have a
// latency of 4-5 cycles and a throughput of one zmm per cycle (Zen 4), so with g = 3 heads one
// chain per head left the units idle most of the time; two chains per head (with the widths as
// template parameters) took an in-cache int2 tile from 164 to 135 ns
// (docs/benchmarks.md).
constexpr int kChains = 2;
static_assert(kChains == 2, "the kernels below add the chains as acc[0] + acc[1]");

// Tiles per softmax step: the scores of up to 64 tokens (4 tiles of one page) go through one
// max, one sum and one set of int8 V weights per head, so the horizontal reductions are paid once
// per 64 tokens instead of once per tile.
constexpr int kVnniStepTiles = kAttentionStepTokens / kKvTile;

// Calls f(i) for the tiles i < tiles of a step: unrolled when their number is fixed at compile
// time (kTiles > 0: the full steps of the fixed-shape kernels, KernelShape::FullStep), a loop
// otherwise. GCC does not unroll those loops by itself (their bodies exceed its complete-peeling
// limit), and as loops they kept the scores and their pointers on the stack.
template <int kTiles, class F>
HWY_INLINE void ForTiles(int tiles, F&& f) {
  if constexpr (kTiles > 0) {
    [&]<int... I>(std::integer_sequence<int, I...>) KVBITS_ALWAYS_INLINE { (f(I), ...); }
    (std::make_integer_sequence<int, kTiles>{});
  } else {
    for (int i = 0; i < tiles; ++i) f(i);
  }
}

// The shape every kernel below works with: g query heads per KV head (a template argument > 0
// fixes it at compile time, so that the per-head accumulators stay in registers; the kernels are
// instantiated for the common query-head counts: AttendPageVnni), the head dim and the group size
// of K and V rows (run time, or fixed by kHd and kGroup for SmolLM2's default shape), and for
// full steps of a fixed shape the tiles per step (kTiles, ForTiles). Everything below is inlined
// into one page kernel per g, so code that a shape never runs still shapes GCC's register
// allocation: a variant with extra paths for a compile-time shape (head dim 64, groups of 32) and
// for chains over pairs of groups made the default shape (groups of 64, where neither path runs)
// 10-45 % slower in cache (2026-12-04).
// A head dim and group fixed at compile time (kHd, kGroup > 0) are a separate instantiation
// instead: no run-time alternative is left in it.
template <int kG, int kKBits = 0, int kVBits = 0, int kHd = 0, int kGroup = 0, int kTiles = 0>
struct KernelShape {
  static constexpr bool kFixed = kG > 0 && kKBits > 0 && kVBits > 0 && kHd > 0 && kGroup > 0;
  static constexpr int kStepTiles = kTiles;  // tiles per step when fixed (ForTiles), else 0
  static constexpr bool kInt2 = kKBits == 2 && kVBits == 2;  // K and V widths fixed at 2 bits
  // V widths of 2 and 4 bits fixed: the softmax may use Exp2PsCoarse, its weights being rounded
  // to int8 anyway (AccumulateStepQuant).
  static constexpr bool kCoarseExp = kVBits == 2 || kVBits == 4;
  // The same shape for a full step (kVnniStepTiles tiles), AttendHeadVnni.
  using FullStep = KernelShape<kG, kKBits, kVBits, kHd, kGroup, kVnniStepTiles>;
  int g_rt, hd_rt, group_rt;
  int groups_rt;  // hd / group, divided once per page rather than in every tile
  HWY_INLINE FullStep full_step() const { return {g_rt, hd_rt, group_rt, groups_rt}; }
  HWY_INLINE int g() const { return kG > 0 ? kG : g_rt; }
  HWY_INLINE int hd() const { return kHd > 0 ? kHd : hd_rt; }
  HWY_INLINE int group() const { return kGroup > 0 ? kGroup : group_rt; }
  HWY_INLINE int groups() const { return kHd > 0 && kGroup > 0 ? kHd / kGroup : groups_rt; }
  // The page's K and V widths when fixed at compile time (0: read from the page per tile / step;
  // AttendPageVnni).
  HWY_INLINE int k_bits(const HeadBlocks& b) const { return kKBits > 0 ? kKBits : b.k_bits; }
  HWY_INLINE int v_bits(const HeadBlocks& b) const { return kVBits > 0 ? kVBits : b.v_bits; }
  // Code bytes per 16-token tile: constants for the fixed shapes, so that a full step's tile
  // addresses are offsets from one register rather than ~30 pointers spilled to the stack.
  HWY_INLINE size_t k_tile(const HeadBlocks& b) const { return kFixed ? size_t{kHd} * kKBits * 2 : b.k_tile; }
  HWY_INLINE size_t v_tile(const HeadBlocks& b) const { return kFixed ? size_t{kHd} * kVBits * 2 : b.v_tile; }
};

// Scores of one 16-token tile of fp16 K rows (transposed, [hd][16]) for the g heads of one query.
template <class Shape>
HWY_INLINE void ScoreTileFp16(const PreparedQuery& q, Shape sh, const HeadBlocks& b, int t0, __m512* s) {
  const int g = sh.g(), hd = sh.hd();
  const uint16_t* k = reinterpret_cast<const uint16_t*>(b.k + (t0 / kKvTile) * sh.k_tile(b));
  __m512 acc[kChains][16] = {};
  for (int e = 0; e < hd; e += kChains) {  // hd is a multiple of 16
#pragma GCC unroll 2
    for (int c = 0; c < kChains; ++c) {
      const __m512 kv = _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(k + (e + c) * kKvTile)));
      KVBITS_UNROLL_HEADS
      for (int h = 0; h < g; ++h) acc[c][h] = _mm512_fmadd_ps(kv, _mm512_set1_ps(q.qf[h * hd + e + c]), acc[c][h]);
    }
  }
  KVBITS_UNROLL_HEADS
  for (int h = 0; h < g; ++h) s[h] = _mm512_add_ps(acc[0][h], acc[1][h]);
}

// Adds group gr's share of the scores of one tile of kBits-wide K codes to s[h], given the
// group's dot products dot[h] of codes and int8 query (fp32; exact integers at 2 and 4 bits):
// ks * qd * dot + km * qsum (and, before group 0, q . key_mean on centred rows).
template <class Shape, int kBits>
HWY_INLINE void FinishScoreGroup(const PreparedQuery& q, Shape sh, const HeadBlocks& b, int t0, int gr,
                                 const __m512* dot, __m512* s) {
  constexpr int kMeta = kBits <= 4 ? 1 : 2;
  const int g = sh.g(), groups = sh.groups();
  __m512 scale = LoadMeta(b.ks, gr * b.page_tokens + t0, kMeta);
  const __m512 minimum = LoadMeta(b.km, gr * b.page_tokens + t0, kMeta);
  if (gr == 0) {
    // The scales' sign bits are the rows' centring flags (ops/kv_codec.h kKvCentredFlag): those
    // rows hold k - key_mean, so their scores get + q . key_mean.
    const __mmask16 centred = _mm512_movepi32_mask(_mm512_castps_si512(scale));
    KVBITS_UNROLL_HEADS
    for (int h = 0; h < g; ++h) s[h] = _mm512_maskz_mov_ps(centred, _mm512_set1_ps(q.qmu[h]));
  }
  scale = _mm512_abs_ps(scale);
  KVBITS_UNROLL_HEADS
  for (int h = 0; h < g; ++h) {
    s[h] = _mm512_fmadd_ps(_mm512_mul_ps(dot[h], _mm512_set1_ps(q.qd[h * groups + gr])), scale, s[h]);
    s[h] = _mm512_fmadd_ps(minimum, _mm512_set1_ps(q.qsum[h * groups + gr]), s[h]);
  }
}

// The same for K codes of kBits (2, 4, 8) bits, read in place with vpdpbusd. With kResidual,
// 8-bit rows also multiply the query's residual qi2 (PreparedQuery), so their scores see the query
// to ~1/254 of an int8 step: the query's int8 rounding was most of an int8 cache's KL against FP16
// with fp32 activations (docs/kv_quality.md); the second product costs 20-30 % per 8-bit tile
// (docs/benchmarks.md), so it runs only when asked for (KvLayerView::exact_8bit).
template <class Shape, int kBits, bool kResidual = false>
HWY_INLINE void ScoreTileQuant(const PreparedQuery& q, Shape sh, const HeadBlocks& b, int t0, __m512* s) {
  const int g = sh.g(), hd = sh.hd(), groups = sh.groups();
  constexpr int kPlanes = 8 / kBits, kPerChunk = 32 / kBits;
  const uint8_t* k = b.k + (t0 / kKvTile) * sh.k_tile(b);
  const __m512i mask = _mm512_set1_epi8(static_cast<char>((1 << kBits) - 1));
  // A chunk's dims lie in one group (group is a multiple of 16 >= kPerChunk).
  const int chunks_per_group = sh.group() / kPerChunk;
  // The scores build up in registers and are stored once: updated in s (memory) after each
  // group, they formed a store-to-load chain between the groups.
  __m512 sum[16] = {};  // set by group 0
  for (int gr = 0; gr < groups; ++gr) {
    // The chains alternate within a group: over planes, or over chunk pairs for 8-bit codes, which
    // have one plane per chunk (a group of 8-bit codes has a multiple of 4 chunks, so pairs never
    // straddle groups); with the residual, qi in chain 0 and qi2 in chain 1.
    constexpr int kChunkStep = kPlanes == 1 && !kResidual ? kChains : 1;
    __m512i acc[kChains][16] = {};
    // Fully unrolled when the shape is fixed (KernelShape kGroup: 4 chunks per group of 64 at 2
    // bits, 8 at 4 bits); int4 tiles took 614 instructions against 747 unrolled by 4 only.
#pragma GCC unroll 8
    for (int c = gr * chunks_per_group; c < (gr + 1) * chunks_per_group; c += kChunkStep) {
#pragma GCC unroll 2
      for (int u = 0; u < kChunkStep; ++u) {
        const __m512i raw = _mm512_loadu_si512(k + (c + u) * 64);
#pragma GCC unroll 4
        for (int j = 0; j < kPlanes; ++j) {
          const __m512i codes = CodePlane<kBits>(raw, j, mask);
          const int dim = (c + u) * kPerChunk + 4 * j;
          if constexpr (kResidual) {
            KVBITS_UNROLL_HEADS
            for (int h = 0; h < g; ++h) {
              acc[0][h] = DpbusdBroadcast(acc[0][h], codes, q.qi + h * hd + dim);
              acc[1][h] = DpbusdBroadcast(acc[1][h], codes, q.qi2 + h * hd + dim);
            }
          } else {
            const int chain = (u + j) % kChains;
            KVBITS_UNROLL_HEADS
            for (int h = 0; h < g; ++h) acc[chain][h] = DpbusdBroadcast(acc[chain][h], codes, q.qi + h * hd + dim);
          }
        }
      }
    }
    __m512 dot[16];
    KVBITS_UNROLL_HEADS
    for (int h = 0; h < g; ++h) {
      if constexpr (kResidual) {  // qi . c + (qi2 . c) / 254; each int32 sum exact in fp32 (< 2^24)
        dot[h] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(acc[1][h]), _mm512_set1_ps(1.0f / 254.0f),
                                 _mm512_cvtepi32_ps(acc[0][h]));
      } else {
        dot[h] = _mm512_cvtepi32_ps(_mm512_add_epi32(acc[0][h], acc[1][h]));
      }
    }
    FinishScoreGroup<Shape, kBits>(q, sh, b, t0, gr, dot, sum);
  }
  KVBITS_UNROLL_HEADS
  for (int h = 0; h < g; ++h) s[h] = sum[h];
}

// Scores of `tiles` tiles of a step (tokens [t0, t0 + n)): s[i][h], lanes past the page's used
// tokens = -inf. The K width is dispatched per tile (the same branch for a whole page).
// kTileLoop: the tiles in a loop even when their number is fixed (AttendHeadsPipelined), for code
// size: the int2 page kernel's score tiles were 12 unrolled copies (4 tiles x 3 heads), ~5 KB of
// its ~22 (session 46). Its scores then go through the stack to the softmax; in the pass-by-pass
// A/B of session 49 that was 0-2 % faster when the host ran at its usual speed and 4-5 % in a
// slow spell (docs/benchmarks.md).
template <class Shape, bool kTileLoop = false>
HWY_INLINE void ScoreStepVnni(const PreparedQuery& q, Shape sh, const HeadBlocks& b, int t0, int n, int tiles,
                              __m512 (*s)[16], PrefetchCursor& pf) {
  const int g = sh.g();
  const auto tile = [&](int i) KVBITS_ALWAYS_INLINE {
    pf.issue();
    const int t = t0 + i * kKvTile;
    switch (sh.k_bits(b)) {
      case 16: ScoreTileFp16(q, sh, b, t, s[i]); break;
      case 8:
        if (q.qi2 != nullptr) {
          ScoreTileQuant<Shape, 8, true>(q, sh, b, t, s[i]);
        } else {
          ScoreTileQuant<Shape, 8>(q, sh, b, t, s[i]);
        }
        break;
      case 4: ScoreTileQuant<Shape, 4>(q, sh, b, t, s[i]); break;
      default: ScoreTileQuant<Shape, 2>(q, sh, b, t, s[i]); break;
    }
    const int nt = std::min(kKvTile, n - i * kKvTile);
    if (nt < kKvTile) {
      const __mmask16 valid = static_cast<__mmask16>((1u << nt) - 1u);
      const __m512 neg_inf = _mm512_set1_ps(-INFINITY);
      KVBITS_UNROLL_HEADS
      for (int h = 0; h < g; ++h) s[i][h] = _mm512_mask_blend_ps(valid, neg_inf, s[i][h]);
    }
  };
  if constexpr (kTileLoop) {
#pragma GCC unroll 1
    for (int i = 0; i < tiles; ++i) tile(i);
  } else {
    ForTiles<Shape::kStepTiles>(tiles, tile);
  }
}

// Online-softmax update of one head with `tiles` tiles of scores s[i][h]: turns them into
// p = 2^(s - m_new) in place and rescales the head's sums when the max grows.
template <class Shape>
HWY_INLINE void SoftmaxStep(__m512 (*s)[16], int tiles, Shape sh, const SoftmaxState& st) {
  const int g = sh.g(), hd = sh.hd();
  KVBITS_UNROLL_HEADS
  for (int h = 0; h < g; ++h) {
    __m512 vmax = s[0][h];
    ForTiles<Shape::kStepTiles>(tiles, [&](int i) KVBITS_ALWAYS_INLINE {
      if (i > 0) vmax = _mm512_max_ps(vmax, s[i][h]);
    });
    // The horizontal max only when some lane beats the running max: after the first steps the
    // max rarely grows, and a lane compare is far cheaper than the reduction.
    if (_mm512_cmp_ps_mask(vmax, _mm512_set1_ps(st.m[h]), _CMP_GT_OQ) != 0) {
      const float step_max = _mm512_reduce_max_ps(vmax);
      const float correction = std::exp2(st.m[h] - step_max);  // 0 on the first step
      const __m512 vc = _mm512_set1_ps(correction);
      for (float* a : {st.acc + h * hd, st.acc_rot + h * hd}) {
        for (int d = 0; d < hd; d += 16) _mm512_storeu_ps(a + d, _mm512_mul_ps(_mm512_loadu_ps(a + d), vc));
      }
      _mm512_storeu_ps(st.lane_l + 16 * h, _mm512_mul_ps(_mm512_loadu_ps(st.lane_l + 16 * h), vc));
      for (int gr = 0; gr < st.groups; ++gr) {
        float* a = st.lane_vmin + 16 * (h * st.groups + gr);
        _mm512_storeu_ps(a, _mm512_mul_ps(_mm512_loadu_ps(a), vc));
      }
      st.l[h] *= correction;
      if (st.l2) st.l2[h] *= correction * correction;
      st.m[h] = step_max;
    }
    const __m512 m = _mm512_set1_ps(st.m[h]);
    __m512 sum = _mm512_setzero_ps();
    ForTiles<Shape::kStepTiles>(tiles, [&](int i) KVBITS_ALWAYS_INLINE {
      const __m512 x = _mm512_sub_ps(s[i][h], m);
      if constexpr (Shape::kStepTiles > 0) {
        // A full step: every lane a token (Exp2PsCoarseFull), and the sum starts from the first
        // tile rather than from zero.
        s[i][h] = Shape::kCoarseExp ? Exp2PsCoarseFull(x) : Exp2Ps(x);
        sum = i == 0 ? s[i][h] : _mm512_add_ps(sum, s[i][h]);
      } else {
        s[i][h] = Shape::kCoarseExp ? Exp2PsCoarse(x) : Exp2Ps(x);  // 2^-inf = 0 for padding
        sum = _mm512_add_ps(sum, s[i][h]);
      }
    });
    _mm512_storeu_ps(st.lane_l + 16 * h, _mm512_add_ps(_mm512_loadu_ps(st.lane_l + 16 * h), sum));
    if (st.l2) {  // AttentionTap only
      __m512 sum2 = _mm512_setzero_ps();
      for (int i = 0; i < tiles; ++i) sum2 = _mm512_fmadd_ps(s[i][h], s[i][h], sum2);
      st.l2[h] += _mm512_reduce_add_ps(sum2);
    }
  }
}

// Adds sum_t p[i][h][t] v_t of a step's fp16 V rows (row-major [16][hd] per tile; tokens
// [t0, t0 + n)) to target[h * hd ..].
template <class Shape>
HWY_INLINE void AccumulateStepFp16(Shape sh, const HeadBlocks& b, int t0, int n, int tiles, __m512 (*p)[16],
                                   float* target, PrefetchCursor& pf) {
  const int g = sh.g(), hd = sh.hd();
  const uint8_t* v0 = b.v + (t0 / kKvTile) * sh.v_tile(b);
  alignas(64) float pw[16][kKvTile];
  for (int i = 0; i < tiles; ++i) {
    pf.issue();
    const uint16_t* v = reinterpret_cast<const uint16_t*>(v0 + i * sh.v_tile(b));
    const int nt = std::min(kKvTile, n - i * kKvTile);  // weights of unused slots are 0 anyway
    KVBITS_UNROLL_HEADS
    for (int h = 0; h < g; ++h) _mm512_store_ps(pw[h], p[i][h]);
    for (int d = 0; d < hd; d += 16) {
      __m512 a[kChains][16] = {};
      KVBITS_UNROLL_HEADS
      for (int h = 0; h < g; ++h) a[0][h] = _mm512_loadu_ps(target + h * hd + d);
      for (int j = 0; j < nt; j += kChains) {
#pragma GCC unroll 2
        for (int c = 0; c < kChains; ++c) {
          if (j + c >= nt) break;
          const __m512 vv =
              _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(v + (j + c) * hd + d)));
          KVBITS_UNROLL_HEADS
          for (int h = 0; h < g; ++h) a[c][h] = _mm512_fmadd_ps(_mm512_set1_ps(pw[h][j + c]), vv, a[c][h]);
        }
      }
      KVBITS_UNROLL_HEADS
      for (int h = 0; h < g; ++h) _mm512_storeu_ps(target + h * hd + d, _mm512_add_ps(a[0][h], a[1][h]));
    }
  }
}

// The int8 bytes of four tiles' int32 weights a..d (each in [0, 127]), tile after tile: two
// vpackssdw and a vpacksswb leave, in 128-bit lane L, elements 4L..4L+3 of a, b, c and d (one
// dword each); the vpermd puts dword 4L + j at 4j + L: 4 instructions and one store, where a
// vpmovdb and a store per tile took 8 (12 uops: vpmovdb is 2 on Intel cores). Packs saturate
// where vpmovdb truncates: the same bytes for values in [-128, 127] (w >= 0 here; NaN weights,
// from NaN activations, give -128 instead of 0, garbage either way).
HWY_INLINE __m512i PackStepWeights(__m512i a, __m512i b, __m512i c, __m512i d) {
  const __m512i bytes = _mm512_packs_epi16(_mm512_packs_epi32(a, b), _mm512_packs_epi32(c, d));
  const __m512i order = _mm512_setr_epi32(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15);
  return _mm512_permutexvar_epi32(order, bytes);
}

// The same for V codes of kBits (2, 4, 8) bits, read in place with vpdpbusd. With kResidual (8-bit
// rows, KvLayerView::exact_8bit) the weights' int8 rounding error is rounded again (wq2, in 1/254
// steps) and multiplied too, as the query is for 8-bit K rows (ScoreTileQuant).
template <class Shape, int kBits, bool kResidual = false>
HWY_INLINE void AccumulateStepQuant(Shape sh, const HeadBlocks& b, int t0, int tiles, __m512 (*p)[16], float* target,
                                    float* lane_vmin) {
  const int g = sh.g(), hd = sh.hd(), group = sh.group(), groups = sh.groups();
  constexpr int kPlanes = 8 / kBits, kChunks = kBits / 2;  // kChunks * kPlanes = 4 quads of tokens
  constexpr int kMeta = kBits <= 4 ? 1 : 2;
  const uint8_t* v0 = b.v + (t0 / kKvTile) * sh.v_tile(b);
  // Integer weights per (head, group): one byte per token of the step; ws = their scale; for
  // the residual kernel the residuals wq2: w ~ ws (wq + wq2 / 254).
  alignas(64) int8_t wq[16][4][kVnniStepTiles * kKvTile];
  alignas(64) int8_t wq2[kResidual ? 16 : 1][4][kVnniStepTiles * kKvTile];
  float ws[16][4];
  for (int gr = 0; gr < groups; ++gr) {
    __m512 w[kVnniStepTiles][16];
    __m512 wmax[16], pmin[16];
    KVBITS_UNROLL_HEADS
    for (int h = 0; h < g; ++h) {
      wmax[h] = _mm512_setzero_ps();
      pmin[h] = _mm512_loadu_ps(lane_vmin + 16 * (h * groups + gr));
    }
    ForTiles<Shape::kStepTiles>(tiles, [&](int i) KVBITS_ALWAYS_INLINE {
      const __m512 scale = LoadMeta(b.vs, gr * b.page_tokens + t0 + i * kKvTile, kMeta);
      const __m512 minimum = LoadMeta(b.vm, gr * b.page_tokens + t0 + i * kKvTile, kMeta);
      KVBITS_UNROLL_HEADS
      for (int h = 0; h < g; ++h) {
        w[i][h] = _mm512_mul_ps(p[i][h], scale);
        wmax[h] = _mm512_max_ps(wmax[h], w[i][h]);
        pmin[h] = _mm512_fmadd_ps(p[i][h], minimum, pmin[h]);
      }
    });
    KVBITS_UNROLL_HEADS
    for (int h = 0; h < g; ++h) {
      const float mx = _mm512_reduce_max_ps(wmax[h]);
      ws[h][gr] = mx / 127.0f;
      const __m512 inv = _mm512_set1_ps(mx > 0.0f ? 127.0f / mx : 0.0f);
      if constexpr (Shape::kStepTiles == 4 && !kResidual) {
        // A full step's four tiles packed at once (PackStepWeights).
        _mm512_store_si512(wq[h][gr], PackStepWeights(_mm512_cvtps_epi32(_mm512_mul_ps(w[0][h], inv)),
                                                      _mm512_cvtps_epi32(_mm512_mul_ps(w[1][h], inv)),
                                                      _mm512_cvtps_epi32(_mm512_mul_ps(w[2][h], inv)),
                                                      _mm512_cvtps_epi32(_mm512_mul_ps(w[3][h], inv))));
      } else {
        ForTiles<Shape::kStepTiles>(tiles, [&](int i) KVBITS_ALWAYS_INLINE {
          const __m512 scaled = _mm512_mul_ps(w[i][h], inv);
          const __m512i rounded = _mm512_cvtps_epi32(scaled);
          _mm_store_si128(reinterpret_cast<__m128i*>(wq[h][gr] + i * kKvTile), _mm512_cvtepi32_epi8(rounded));
          if constexpr (kResidual) {  // scaled - rounded: exact, within +-1/2
            const __m512 error = _mm512_sub_ps(scaled, _mm512_cvtepi32_ps(rounded));
            _mm_store_si128(reinterpret_cast<__m128i*>(wq2[h][gr] + i * kKvTile),
                            _mm512_cvtepi32_epi8(_mm512_cvtps_epi32(_mm512_mul_ps(error, _mm512_set1_ps(254.0f)))));
          }
        });
      }
      // sum_t p_t vm_t, the minimums' share (the same for every dim of the group), stays in lanes
      // until the end of the task (FinishPages in attention_kernels.cc).
      _mm512_storeu_ps(lane_vmin + 16 * (h * groups + gr), pmin[h]);
    }
  }
  const __m512i mask = _mm512_set1_epi8(static_cast<char>((1 << kBits) - 1));
  // 16-dim blocks kb of each group gr (group is a multiple of 16; an integer division per block
  // showed in the profile, and nested group / block loops measured 2-8 % slower for int2).
  for (int kb = 0, gr = 0, next_group = group / 16; kb < hd / 16; ++kb) {
    if (kb == next_group) {
      ++gr;
      next_group += group / 16;
    }
    __m512i acc[kChains][16] = {};
    // Every quad of every tile, the unused slots of a page's last tile included: their weights
    // are 0 (p = 2^-inf, scale 0), so they add nothing, and a branch per quad cost more than
    // the products.
    // int32 sums of <= 64 tokens x 127 x 255: no overflow
    ForTiles<Shape::kStepTiles>(tiles, [&](int i) KVBITS_ALWAYS_INLINE {
      const uint8_t* block = v0 + i * sh.v_tile(b) + kb * 32 * kBits;
#pragma GCC unroll 4
      for (int z = 0; z < kChunks; ++z) {
        const __m512i raw = _mm512_loadu_si512(block + z * 64);
#pragma GCC unroll 4
        for (int j = 0; j < kPlanes; ++j) {
          const int quad = z * kPlanes + j;
          const __m512i codes = CodePlane<kBits>(raw, j, mask);
          if constexpr (kResidual) {  // chain 0: wq, chain 1: wq2
            KVBITS_UNROLL_HEADS
            for (int h = 0; h < g; ++h) {
              acc[0][h] = DpbusdBroadcast(acc[0][h], codes, wq[h][gr] + i * kKvTile + 4 * quad);
              acc[1][h] = DpbusdBroadcast(acc[1][h], codes, wq2[h][gr] + i * kKvTile + 4 * quad);
            }
          } else {
            KVBITS_UNROLL_HEADS
            for (int h = 0; h < g; ++h) {
              acc[quad % kChains][h] = DpbusdBroadcast(acc[quad % kChains][h], codes, wq[h][gr] + i * kKvTile + 4 * quad);
            }
          }
        }
      }
    });
    KVBITS_UNROLL_HEADS
    for (int h = 0; h < g; ++h) {
      float* t = target + h * hd + kb * 16;
      const __m512 sum = kResidual ? _mm512_fmadd_ps(_mm512_cvtepi32_ps(acc[1][h]), _mm512_set1_ps(1.0f / 254.0f),
                                                     _mm512_cvtepi32_ps(acc[0][h]))
                                   : _mm512_cvtepi32_ps(_mm512_add_epi32(acc[0][h], acc[1][h]));
      _mm512_storeu_ps(t, _mm512_fmadd_ps(sum, _mm512_set1_ps(ws[h][gr]), _mm512_loadu_ps(t)));
    }
  }
}

// Dispatch on the V width, once per step; residual: 8-bit rows with wq2 (AccumulateStepQuant).
template <class Shape>
HWY_INLINE void AccumulateStepVnni(Shape sh, const HeadBlocks& b, int t0, int n, int tiles, __m512 (*p)[16],
                                   float* target, float* lane_vmin, PrefetchCursor& pf, bool residual) {
  switch (sh.v_bits(b)) {
    case 16: return AccumulateStepFp16(sh, b, t0, n, tiles, p, target, pf);
    case 8:
      if (residual) return AccumulateStepQuant<Shape, 8, true>(sh, b, t0, tiles, p, target, lane_vmin);
      return AccumulateStepQuant<Shape, 8>(sh, b, t0, tiles, p, target, lane_vmin);
    case 4: return AccumulateStepQuant<Shape, 4>(sh, b, t0, tiles, p, target, lane_vmin);
    default: return AccumulateStepQuant<Shape, 2>(sh, b, t0, tiles, p, target, lane_vmin);
  }
}
