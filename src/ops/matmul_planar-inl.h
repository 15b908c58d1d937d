// Planar-row int8 kernels of ops/matmul.cc (x86 targets), included by it inside each Highway
// target's namespace, after the file-layout kernels and helpers it uses (no include guard on
// purpose: one copy per target). Split from matmul.cc to keep one kernel family per file.
// ---- Planar rows (MatrixView::planar; layout: PlanarGeometry in ops/quant_blocks.h) ----
//
// One 32-bit lane per block: a chunk of 16 blocks is 8 steps of "4 bytes x 4 bytes" dot products
// (vpdpbusd) into 16 int32 lanes, so each lane ends up with its block's whole integer dot product,
// and the fp32 work is one convert, one scale product and one or two FMAs per chunk of 16 blocks.
// Per output (row r, token t) the arithmetic is fixed, whatever the tile sizes, token count or
// thread split:
//   acc[16] = 0; for each chunk c: acc = fma(float(idot_c), d_w * d_a, acc) (+ Q4_1: acc =
//   fma(m_w, d_a * isum_a, acc)); a narrow tail chunk (8 lanes) computes its own acc8 that way
//   and is added to acc's lanes 0..7; y = pairwise tree over the 16 lanes: (i, i+8), (i, i+4),
//   (i, i+2), (i, i+1).
// so decode, prefill and chunked prefill give bit-identical results.
#if KVBITS_X86_INT8
// The tile loops below must be unrolled for their arrays to live in registers (-O2 does not).
#define KVBITS_UNROLL _Pragma("GCC unroll 16")
enum class PKind { kQ4_0, kQ4_1, kQ8_0 };

#if HWY_TARGET == HWY_AVX3_DL
// vpdpbusd in inline asm: the intrinsics need the "avx512vnni" target, which Highway 1.0.3 does
// not enable for AVX3_DL (it enables "avxvnni", whose 256-bit intrinsic is the VEX form: see
// dot_u8_i8). The zmm form exists only as EVEX; the ymm form is written with {evex} explicitly.
inline __m512i dpbusd512(__m512i acc, __m512i u, const void* s) {
  // The activation vector in a register ("v"): a tile's rows share one load of it.
  const __m512i sv = _mm512_load_si512(s);
  asm("vpdpbusd %2, %1, %0" : "+v"(acc) : "v"(u), "v"(sv));
  return acc;
}
inline __m256i dpbusd256(__m256i acc, __m256i u, const void* s) {
  asm("%{evex%} vpdpbusd %2, %1, %0" : "+v"(acc) : "v"(u), "m"(*static_cast<const __m256i*>(s)));
  return acc;
}

// 16 lanes in one zmm.
struct V16 {
  using I = __m512i;
  using F = __m512;
  static constexpr bool kQ8Biased = true;  // Q8_0 codes used as stored (q + 128), init -128 isum
  static I zero() { return _mm512_setzero_si512(); }
  static I load_init(const int32_t* p) { return _mm512_load_si512(p); }
  template <bool kMasked>
  static I load_codes(const uint8_t* p, int valid) {
    if constexpr (kMasked) return _mm512_maskz_loadu_epi32(static_cast<__mmask16>((1u << valid) - 1), p);
    else return _mm512_loadu_si512(p);
  }
  static I lo_nibbles(I v) { return _mm512_and_si512(v, _mm512_set1_epi8(0x0f)); }
  // One vgf2p8affineqb (GFNI: a per-byte bit matrix moving bits 4..7 to 0..3, zeroing 4..7)
  // instead of a 16-bit shift and an and: Q4_1 matvec 5-6 % faster from L2 (docs/benchmarks.md).
  // AVX3_DL is used only where GFNI exists (backend/simd_targets.h).
  static I hi_nibbles(I v) {
    I out;
    asm("vgf2p8affineqb $0, %2, %1, %0" : "=v"(out) : "v"(v), "v"(_mm512_set1_epi64(0x1020408000000000LL)));
    return out;
  }
  // The same with a shift and an and, for tiles of several tokens (prefill): there the code
  // bytes feed 2 T vpdpbusd each and the kernel is bound by the two pipes that run them, which
  // vgf2p8affineqb also needs on Zen 4 (a shift and an and go to the others; ops/attention_vnni-inl.h
  // CodePlane). Q4_1 prefill matmuls 2-5 % faster in cache (2026-12-04).
  static I hi_nibbles_alu(I v) { return _mm512_and_si512(_mm512_srli_epi16(v, 4), _mm512_set1_epi8(0x0f)); }
  static I dp_q4(I acc, I u, const int8_t* s) { return dpbusd512(acc, u, s); }
  static I dp_q8(I acc, I u, const int8_t* s) { return dpbusd512(acc, u, s); }
  template <bool kMasked>
  static F load_scales(const uint16_t* p, int valid) {
    if constexpr (kMasked) return _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(static_cast<__mmask16>((1u << valid) - 1), p));
    else return _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
  }
  static F zero_f() { return _mm512_setzero_ps(); }
  static F load_f(const float* p) { return _mm512_load_ps(p); }
  static F cvt(I v) { return _mm512_cvtepi32_ps(v); }
  static F mul(F a, F b) { return _mm512_mul_ps(a, b); }
  static F fma(F a, F b, F c) { return _mm512_fmadd_ps(a, b, c); }
  static F add_low8(F a, __m256 b) { return _mm512_add_ps(a, _mm512_zextps256_ps512(b)); }
};
#else
// 16 lanes as two ymm (AVX2; AVX3 without VNNI uses this too).
struct V16 {
  struct I {
    __m256i a, b;
  };
  struct F {
    __m256 a, b;
  };
  static constexpr bool kQ8Biased = false;  // Q8_0: signed dot via vpsignb, no bias correction
  static I zero() { return {_mm256_setzero_si256(), _mm256_setzero_si256()}; }
  static I load_init(const int32_t* p) {
    return {_mm256_load_si256(reinterpret_cast<const __m256i*>(p)), _mm256_load_si256(reinterpret_cast<const __m256i*>(p + 8))};
  }
  template <bool kMasked>
  static I load_codes(const uint8_t* p, int valid) {
    if constexpr (kMasked) {
      const __m256i idx = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
      const __m256i ma = _mm256_cmpgt_epi32(_mm256_set1_epi32(valid), idx);
      const __m256i mb = _mm256_cmpgt_epi32(_mm256_set1_epi32(valid - 8), idx);
      return {_mm256_maskload_epi32(reinterpret_cast<const int*>(p), ma),
              _mm256_maskload_epi32(reinterpret_cast<const int*>(p + 32), mb)};
    } else {
      return {_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)), _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + 32))};
    }
  }
  static I lo_nibbles(I v) {
    const __m256i m = _mm256_set1_epi8(0x0f);
    return {_mm256_and_si256(v.a, m), _mm256_and_si256(v.b, m)};
  }
  static I hi_nibbles(I v) {
    const __m256i m = _mm256_set1_epi8(0x0f);
    return {_mm256_and_si256(_mm256_srli_epi16(v.a, 4), m), _mm256_and_si256(_mm256_srli_epi16(v.b, 4), m)};
  }
  static I hi_nibbles_alu(I v) { return hi_nibbles(v); }
  static __m256i dp1(__m256i acc, __m256i u, const int8_t* s) {
    const __m256i sv = _mm256_load_si256(reinterpret_cast<const __m256i*>(s));
    return _mm256_add_epi32(acc, _mm256_madd_epi16(_mm256_maddubs_epi16(u, sv), _mm256_set1_epi16(1)));
  }
  static __m256i dp1_q8(__m256i acc, __m256i biased, const int8_t* s) {
    const __m256i w = _mm256_xor_si256(biased, _mm256_set1_epi8(static_cast<char>(0x80)));
    const __m256i sv = _mm256_load_si256(reinterpret_cast<const __m256i*>(s));
    // |w| <= 128 and |a| <= 127: pair sums <= 2 * 128 * 127 fit int16 (no vpmaddubsw saturation).
    return _mm256_add_epi32(acc, _mm256_madd_epi16(_mm256_maddubs_epi16(_mm256_sign_epi8(w, w), _mm256_sign_epi8(sv, w)),
                                                   _mm256_set1_epi16(1)));
  }
  static I dp_q4(I acc, I u, const int8_t* s) { return {dp1(acc.a, u.a, s), dp1(acc.b, u.b, s + 32)}; }
  static I dp_q8(I acc, I u, const int8_t* s) { return {dp1_q8(acc.a, u.a, s), dp1_q8(acc.b, u.b, s + 32)}; }
  template <bool kMasked>
  static F load_scales(const uint16_t* p, int valid) {
    alignas(32) uint16_t tmp[16] = {};
    const uint16_t* src = p;
    if constexpr (kMasked) {
      std::memcpy(tmp, p, static_cast<size_t>(valid) * 2);
      src = tmp;
    }
    const __m256i h = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(src));
    return {_mm256_cvtph_ps(_mm256_castsi256_si128(h)), _mm256_cvtph_ps(_mm256_extracti128_si256(h, 1))};
  }
  static F zero_f() { return {_mm256_setzero_ps(), _mm256_setzero_ps()}; }
  static F load_f(const float* p) { return {_mm256_load_ps(p), _mm256_load_ps(p + 8)}; }
  static F cvt(I v) { return {_mm256_cvtepi32_ps(v.a), _mm256_cvtepi32_ps(v.b)}; }
  static F mul(F x, F y) { return {_mm256_mul_ps(x.a, y.a), _mm256_mul_ps(x.b, y.b)}; }
  static F fma(F x, F y, F z) { return {_mm256_fmadd_ps(x.a, y.a, z.a), _mm256_fmadd_ps(x.b, y.b, z.b)}; }
  static F add_low8(F x, __m256 lo) { return {_mm256_add_ps(x.a, lo), _mm256_add_ps(x.b, _mm256_setzero_ps())}; }
};

// V16 with vpdpbusd for the products where the CPU has it (backend/simd_targets.h
// vpdpbusd_enabled; PlanarMatmulRange; ops/vpdpbusd256-inl.h, included by matmul.cc). One
// instruction for vpmaddubsw + vpmaddwd + vpaddd, the same exact int32 sums.
struct V16Dp : V16 {
  static __m256i dp1(__m256i acc, __m256i u, const int8_t* s) {
    return Vpdpbusd256(acc, u, _mm256_load_si256(reinterpret_cast<const __m256i*>(s)));
  }
  static __m256i dp1_q8(__m256i acc, __m256i biased, const int8_t* s) {
    const __m256i w = _mm256_xor_si256(biased, _mm256_set1_epi8(static_cast<char>(0x80)));
    const __m256i sv = _mm256_load_si256(reinterpret_cast<const __m256i*>(s));
    return Vpdpbusd256(acc, _mm256_sign_epi8(w, w), _mm256_sign_epi8(sv, w));  // |w| <= 128 as u8
  }
  static I dp_q4(I acc, I u, const int8_t* s) { return {dp1(acc.a, u.a, s), dp1(acc.b, u.b, s + 32)}; }
  static I dp_q8(I acc, I u, const int8_t* s) { return {dp1_q8(acc.a, u.a, s), dp1_q8(acc.b, u.b, s + 32)}; }
};
#endif

// The narrow tail chunk: 8 lanes in one ymm.
struct V8 {
  using I = __m256i;
  using F = __m256;
  static I zero() { return _mm256_setzero_si256(); }
  static I load_init(const int32_t* p) { return _mm256_load_si256(reinterpret_cast<const __m256i*>(p)); }
  static I load_codes(const uint8_t* p, int valid) {
#if HWY_TARGET == HWY_AVX3_DL
    return _mm256_maskz_loadu_epi32(static_cast<__mmask8>((1u << valid) - 1), p);
#else
    const __m256i mask = _mm256_cmpgt_epi32(_mm256_set1_epi32(valid), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
    return _mm256_maskload_epi32(reinterpret_cast<const int*>(p), mask);
#endif
  }
  static I lo_nibbles(I v) { return _mm256_and_si256(v, _mm256_set1_epi8(0x0f)); }
  static I hi_nibbles(I v) { return _mm256_and_si256(_mm256_srli_epi16(v, 4), _mm256_set1_epi8(0x0f)); }
  static I hi_nibbles_alu(I v) { return hi_nibbles(v); }
  // B: the 16-lane struct of the same kernel (V16, or V16Dp on AVX2 / AVX3), whose products
  // these are.
#if HWY_TARGET == HWY_AVX3_DL
  template <class B>
  static I dp_q4(I acc, I u, const int8_t* s) {
    return dpbusd256(acc, u, s);
  }
  template <class B>
  static I dp_q8(I acc, I u, const int8_t* s) {
    return dpbusd256(acc, u, s);
  }
#else
  template <class B>
  static I dp_q4(I acc, I u, const int8_t* s) {
    return B::dp1(acc, u, s);
  }
  template <class B>
  static I dp_q8(I acc, I u, const int8_t* s) {
    return B::dp1_q8(acc, u, s);
  }
#endif
  // fp16 scales of `blocks` blocks, each repeated over its `parts` lanes (idx: lane -> block).
  static F load_scales(const uint16_t* p, int blocks, __m256i idx) {
#if HWY_TARGET == HWY_AVX3_DL
    const __m128i h = _mm_maskz_loadu_epi16(static_cast<__mmask8>((1u << blocks) - 1), p);
#else
    alignas(16) uint16_t tmp[8] = {};
    std::memcpy(tmp, p, static_cast<size_t>(blocks) * 2);
    const __m128i h = _mm_load_si128(reinterpret_cast<const __m128i*>(tmp));
#endif
    return _mm256_permutevar8x32_ps(_mm256_cvtph_ps(h), idx);
  }
  static F load_f(const float* p) { return _mm256_load_ps(p); }
  static F cvt(I v) { return _mm256_cvtepi32_ps(v); }
  static F mul(F a, F b) { return _mm256_mul_ps(a, b); }
  static F fma(F a, F b, F c) { return _mm256_fmadd_ps(a, b, c); }
};

// Pointers of one row tile (R rows) and one token tile (T tokens) for the chunk loop.
template <int R, int T>
struct PlanarTile {
  const uint8_t* codes[R];   // row's codes
  const uint16_t* d16[R];    // row's fp16 scales
  const uint16_t* m16[R];    // row's fp16 minimums (Q4_1)
  const QuantizedRowView* a;  // [T] the token tile's activations, built once per tile of tokens
};

template <class B, PKind K, int R, int T, bool kMasked>
HWY_INLINE void PlanarChunk16(const PlanarTile<R, T>& p, int64_t c, int valid, typename B::F (&acc)[R][T]) {
  using I = typename B::I;
  using F = typename B::F;
  constexpr bool q8 = K == PKind::kQ8_0;
  const int64_t code_off = (q8 ? 512 : 256) * c;
  const int stride = kMasked ? 4 * valid : 64;
  I idot[R][T];
  KVBITS_UNROLL
  for (int t = 0; t < T; ++t) {
    const int32_t* init = K == PKind::kQ4_0 ? p.a[t].lane_neg8 : p.a[t].lane_neg128;
    KVBITS_UNROLL
    for (int r = 0; r < R; ++r) {
      if constexpr (K == PKind::kQ4_1 || (q8 && !B::kQ8Biased)) idot[r][t] = B::zero();
      else idot[r][t] = B::load_init(init + 16 * c);
    }
  }
  if constexpr (q8) {
    KVBITS_UNROLL
    for (int k = 0; k < 8; ++k) {
      I wv[R];
      KVBITS_UNROLL
      for (int r = 0; r < R; ++r) wv[r] = B::template load_codes<kMasked>(p.codes[r] + code_off + stride * k, valid);
      KVBITS_UNROLL
      for (int t = 0; t < T; ++t) {
        const int8_t* s = p.a[t].qt + 512 * c + 64 * k;
        KVBITS_UNROLL
        for (int r = 0; r < R; ++r) idot[r][t] = B::dp_q8(idot[r][t], wv[r], s);
      }
    }
  } else {
    KVBITS_UNROLL
    for (int i = 0; i < 4; ++i) {
      I lo[R], hi[R];
      KVBITS_UNROLL
      for (int r = 0; r < R; ++r) {
        const I v = B::template load_codes<kMasked>(p.codes[r] + code_off + stride * i, valid);
        lo[r] = B::lo_nibbles(v);
        if constexpr (T > 1) hi[r] = B::hi_nibbles_alu(v);
        else hi[r] = B::hi_nibbles(v);
      }
      KVBITS_UNROLL
      for (int t = 0; t < T; ++t) {
        const int8_t* s = p.a[t].qt + 512 * c + 64 * i;
        KVBITS_UNROLL
        for (int r = 0; r < R; ++r) idot[r][t] = B::dp_q4(B::dp_q4(idot[r][t], lo[r], s), hi[r], s + 256);
      }
    }
  }
  KVBITS_UNROLL
  for (int r = 0; r < R; ++r) {
    const F dw = B::template load_scales<kMasked>(p.d16[r] + 16 * c, valid);
    F mw;
    if constexpr (K == PKind::kQ4_1) mw = B::template load_scales<kMasked>(p.m16[r] + 16 * c, valid);
    KVBITS_UNROLL
    for (int t = 0; t < T; ++t) {
      acc[r][t] = B::fma(B::cvt(idot[r][t]), B::mul(dw, B::load_f(p.a[t].lane_d + 16 * c)), acc[r][t]);
      if constexpr (K == PKind::kQ4_1) acc[r][t] = B::fma(mw, B::load_f(p.a[t].lane_ds + 16 * c), acc[r][t]);
    }
  }
}

template <class B, PKind K, int R, int T>
HWY_INLINE void PlanarChunk8(const PlanarTile<R, T>& p, const PlanarChunk& k, __m256 (&acc8)[R][T]) {
  using I = V8::I;
  using F = V8::F;
  constexpr bool q8 = K == PKind::kQ8_0;
  const int64_t c = k.chunk_index;
  const int64_t code_off = (q8 ? 512 : 256) * c;
  const int valid = k.valid_lanes, stride = 4 * valid, steps = k.steps;
  I idot[R][T];
  KVBITS_UNROLL
  for (int t = 0; t < T; ++t) {
    const int32_t* init = K == PKind::kQ4_0 ? p.a[t].lane_neg8 : p.a[t].lane_neg128;
    KVBITS_UNROLL
    for (int r = 0; r < R; ++r) {
      if constexpr (K == PKind::kQ4_1 || (q8 && !V16::kQ8Biased)) idot[r][t] = V8::zero();
      else idot[r][t] = V8::load_init(init + 16 * c);
    }
  }
  if constexpr (q8) {
    for (int s = 0; s < steps; ++s) {
      I wv[R];
      KVBITS_UNROLL
      for (int r = 0; r < R; ++r) wv[r] = V8::load_codes(p.codes[r] + code_off + stride * s, valid);
      KVBITS_UNROLL
      for (int t = 0; t < T; ++t) {
        KVBITS_UNROLL
        for (int r = 0; r < R; ++r) idot[r][t] = V8::dp_q8<B>(idot[r][t], wv[r], p.a[t].qt + 512 * c + 32 * s);
      }
    }
  } else {
    const int half = steps / 2;
    for (int i = 0; i < half; ++i) {
      I lo[R], hi[R];
      KVBITS_UNROLL
      for (int r = 0; r < R; ++r) {
        const I v = V8::load_codes(p.codes[r] + code_off + stride * i, valid);
        lo[r] = V8::lo_nibbles(v);
        hi[r] = V8::hi_nibbles(v);
      }
      KVBITS_UNROLL
      for (int t = 0; t < T; ++t) {
        const int8_t* s = p.a[t].qt + 512 * c;
        KVBITS_UNROLL
        for (int r = 0; r < R; ++r) idot[r][t] = V8::dp_q4<B>(V8::dp_q4<B>(idot[r][t], lo[r], s + 32 * i), hi[r], s + 32 * (i + half));
      }
    }
  }
  // Lane l belongs to block l / parts.
  const int shift = k.parts == 1 ? 0 : (k.parts == 2 ? 1 : 2);
  const __m256i idx = _mm256_srli_epi32(_mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7), shift);
  KVBITS_UNROLL
  for (int r = 0; r < R; ++r) {
    const F dw = V8::load_scales(p.d16[r] + 16 * c, k.blocks, idx);
    F mw;
    if constexpr (K == PKind::kQ4_1) mw = V8::load_scales(p.m16[r] + 16 * c, k.blocks, idx);
    KVBITS_UNROLL
    for (int t = 0; t < T; ++t) {
      acc8[r][t] = V8::mul(V8::cvt(idot[r][t]), V8::mul(dw, V8::load_f(p.a[t].lane_d + 16 * c)));
      if constexpr (K == PKind::kQ4_1) acc8[r][t] = V8::fma(mw, V8::load_f(p.a[t].lane_ds + 16 * c), acc8[r][t]);
    }
  }
}

// acc[r][t] for R rows x T tokens over the whole row (all chunks). Inlined into the row loop: as
// a separate (noinline) function its results went back through memory and the loop waited at
// every return for the tile's whole dependency chain (perf: 38 % of a 576-column matvec's samples
// in the row loop, most on the instructions right after the call). Inline, the next tile's loads
// and products overlap the last one's epilogue: Q4_1 matvec in cache 11-15 % faster, Q8_0 4-23 %,
// 64-token matmuls 1-10 % (kvbits_kernel_bench, 2026-12-05), same results bit for bit.
template <class B, PKind K, int R, int T>
HWY_INLINE void PlanarTileDot(const PlanarTile<R, T>& p, const PlanarGeometry& g, typename B::F (&acc)[R][T]) {
  KVBITS_UNROLL
  for (int r = 0; r < R; ++r) {
    KVBITS_UNROLL
    for (int t = 0; t < T; ++t) acc[r][t] = B::zero_f();
  }
  for (int64_t c = 0; c < g.n_full; ++c) PlanarChunk16<B, K, R, T, false>(p, c, 16, acc);
  if (g.wide_tail()) PlanarChunk16<B, K, R, T, true>(p, g.n_full, g.tail, acc);
  if (g.narrow_tail()) {
    __m256 acc8[R][T];
    PlanarChunk8<B, K, R, T>(p, g.chunk(g.n_full), acc8);
    KVBITS_UNROLL
    for (int r = 0; r < R; ++r) {
      KVBITS_UNROLL
      for (int t = 0; t < T; ++t) acc[r][t] = B::add_low8(acc[r][t], acc8[r][t]);
    }
  }
}

// y[i] = pairwise sum of the 16 lanes of row i's accumulator: (j, j+8), (j, j+4), (j, j+2),
// (j, j+1). The first level is taken per pair of rows right after the tile (Pairs8: two rows'
// 8-lane partials in one RowPair), the rest for 16 rows at once (ReduceRowPairs).
#if HWY_TARGET == HWY_AVX3_DL
using RowPair = __m512;  // [row a: lanes j + j+8][row b: same]
HWY_INLINE RowPair Pairs8(__m512 a, __m512 b) {
  return _mm512_add_ps(_mm512_shuffle_f32x4(a, b, _MM_SHUFFLE(1, 0, 1, 0)), _mm512_shuffle_f32x4(a, b, _MM_SHUFFLE(3, 2, 3, 2)));
}
HWY_INLINE __m512 Pairs4(__m512 a, __m512 b) {  // quarters: a's two rows, then b's, 4 lanes each
  return _mm512_add_ps(_mm512_shuffle_f32x4(a, b, _MM_SHUFFLE(2, 0, 2, 0)), _mm512_shuffle_f32x4(a, b, _MM_SHUFFLE(3, 1, 3, 1)));
}
HWY_INLINE __m512 Pairs2(__m512 a, __m512 b) {  // per quarter: a's row (2 lanes), b's row (2 lanes)
  return _mm512_add_ps(_mm512_shuffle_ps(a, b, _MM_SHUFFLE(1, 0, 1, 0)), _mm512_shuffle_ps(a, b, _MM_SHUFFLE(3, 2, 3, 2)));
}
HWY_INLINE __m512 Pairs1(__m512 a, __m512 b) {
  return _mm512_add_ps(_mm512_shuffle_ps(a, b, _MM_SHUFFLE(2, 0, 2, 0)), _mm512_shuffle_ps(a, b, _MM_SHUFFLE(3, 1, 3, 1)));
}

// pairs[k] holds rows 2k and 2k+1; writes y[0..n).
HWY_INLINE void ReduceRowPairs(const RowPair* pairs, int n, float* y) {
  __m512 e[4];
  for (int i = 0; i < 4; ++i) e[i] = Pairs4(pairs[2 * i], pairs[2 * i + 1]);  // quarters: rows 4i..4i+3
  const __m512 g0 = Pairs2(e[0], e[1]), g1 = Pairs2(e[2], e[3]);  // quarter q: rows q, q+4 / q+8, q+12
  const __m512 h = Pairs1(g0, g1);                                 // lane 4q + j: row q + 4j
  const __m512 out = _mm512_permutexvar_ps(_mm512_setr_epi32(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15), h);
  if (n == 16) _mm512_storeu_ps(y, out);
  else _mm512_mask_storeu_ps(y, static_cast<__mmask16>((1u << n) - 1), out);
}
#else
struct RowPair {
  __m256 a, b;  // rows a, b: lanes j + j+8
};
HWY_INLINE RowPair Pairs8(V16::F a, V16::F b) { return {_mm256_add_ps(a.a, a.b), _mm256_add_ps(b.a, b.b)}; }
HWY_INLINE float Sum8(__m256 v8) {
  const __m128 v4 = _mm_add_ps(_mm256_castps256_ps128(v8), _mm256_extractf128_ps(v8, 1));
  const __m128 v2 = _mm_add_ps(v4, _mm_movehl_ps(v4, v4));
  return _mm_cvtss_f32(_mm_add_ss(v2, _mm_movehdup_ps(v2)));
}
HWY_INLINE void ReduceRowPairs(const RowPair* pairs, int n, float* y) {
  for (int i = 0; i < n; ++i) y[i] = Sum8(i % 2 == 0 ? pairs[i / 2].a : pairs[i / 2].b);
}
#endif

// Tiles: rows x tokens per call of PlanarTileDot. Prefill: 2 x 8 (then 2 x 4 and 2 x 1 for the
// remaining tokens; measured on Zen 4 against 2x4, 4x4, 4x6, 2x6, 4x2, 6x2, 8x2). Decode: 2 x 1,
// with a software prefetch 8 KiB ahead into L2 (4-row tiles, which interleave four streams, and no
// prefetch were slower when streaming the weights from DRAM).
// The prefetch goes to L2 (T1), not L1 (T0): a core has few L1 fill buffers (the loads of the
// tile itself need them too), more L2 miss slots, and the tile's loads then hit L2. Depth-0
// decode, Zen 4, 2 threads, alternated (docs/benchmarks.md, 2026-12-04): T0 at 2 KiB 4.24-4.40
// ms (Q4_1) and 6.28-6.99 ms (Q8_0); T1 at 8 KiB 3.33-3.74 and 4.97-5.07 ms. T0 at 1-8 KiB had
// been no better than at 2 KiB; T1 at 4, 12, 16 and 32 KiB was level with 8 or slower.
constexpr int kPlanarDecodeRows = 2;
constexpr int kPlanarPrefillRows = 2;
constexpr int kPlanarTokens = 8;
constexpr int kPlanarPrefetchBytes = 8192;

// Rows [r, r + R) (slot = r - batch start, even) for tokens [t, t + T) into pairs[token][slot / 2].
// B: V16, or V16Dp (PlanarMatmulRange).
template <class B, PKind K, int R, int T>
void PlanarTileToPairs(const MatrixView& w, const PlanarGeometry& g, const QuantizedRowView* views, int64_t r,
                       RowPair (*pairs)[8], int slot) {
  PlanarTile<R, T> p;
  p.a = views;
  const int64_t code_bytes = (K == PKind::kQ8_0 ? 32 : 16) * g.nb;
  for (int i = 0; i < R; ++i) {
    const uint8_t* row = w.data + static_cast<uint64_t>(r + i) * w.row_bytes;
    p.codes[i] = row;
    p.d16[i] = reinterpret_cast<const uint16_t*>(row + code_bytes);
    p.m16[i] = p.d16[i] + g.nb;
  }
  if constexpr (T == 1 && kPlanarPrefetchBytes > 0) {
    // Decode streams the weights once: fetch the rows kPlanarPrefetchBytes ahead of this tile.
    const char* ahead = reinterpret_cast<const char*>(p.codes[0]) + kPlanarPrefetchBytes;
    for (uint64_t off = 0; off < R * w.row_bytes; off += 64) _mm_prefetch(ahead + off, _MM_HINT_T1);
  }
  typename B::F out[R][T];
  PlanarTileDot<B, K, R, T>(p, g, out);
  for (int j = 0; j < T; ++j) {
    if constexpr (R == 1) {
      pairs[j][slot / 2] = Pairs8(out[0][j], V16::zero_f());
    } else {
      for (int i = 0; i < R; i += 2) pairs[j][(slot + i) / 2] = Pairs8(out[i][j], out[i + 1][j]);
    }
  }
}

template <class B, PKind K, int T>
void PlanarRowsToPairs(const MatrixView& w, const PlanarGeometry& g, const QuantizedActivations& act, int64_t r,
                       int nr, int64_t t, RowPair (*pairs)[8]) {
  constexpr int kR = T == 1 ? kPlanarDecodeRows : kPlanarPrefillRows;
  // The token tile's activation views, built once for the batch's row tiles rather than in every
  // 2-row tile call (pointer arithmetic and stores in each tile's setup; the measured gain was
  // within the host's noise, docs/benchmarks.md 2026-12-05).
  QuantizedRowView views[T];
  for (int j = 0; j < T; ++j) views[j] = act.row(t + j);
  int i = 0;
  for (; i + kR <= nr; i += kR) PlanarTileToPairs<B, K, kR, T>(w, g, views, r + i, pairs, i);
  if constexpr (kR > 2) {
    for (; i + 2 <= nr; i += 2) PlanarTileToPairs<B, K, 2, T>(w, g, views, r + i, pairs, i);
  }
  if (i < nr) PlanarTileToPairs<B, K, 1, T>(w, g, views, r + i, pairs, i);
  for (int j = 0; j < T; ++j) {  // pairs past the batch's rows: zero (their outputs are not stored)
    for (int k = (nr + 1) / 2; k < 8; ++k) pairs[j][k] = Pairs8(V16::zero_f(), V16::zero_f());
  }
}

template <class B, PKind K>
void PlanarRange(const MatrixView& w, const QuantizedActivations& act, int64_t r0, int64_t r1, int64_t t0,
                 int64_t t1, float* y) {
  const PlanarGeometry g(w.cols / kBlockElems);
  HWY_ALIGN RowPair pairs[kPlanarTokens][8];
  // Rows in batches of 16 (one reduction network per token), tokens in tiles of kPlanarTokens;
  // within a batch the token tile's activations stay in L1 while the batch's rows stream by.
  for (int64_t rb = r0; rb < r1; rb += 16) {
    const int nr = static_cast<int>(std::min<int64_t>(16, r1 - rb));
    int64_t t = t0;
    for (; t + kPlanarTokens <= t1; t += kPlanarTokens) {
      PlanarRowsToPairs<B, K, kPlanarTokens>(w, g, act, rb, nr, t, pairs);
      for (int j = 0; j < kPlanarTokens; ++j) ReduceRowPairs(pairs[j], nr, y + (t + j) * w.rows + rb);
    }
    if (t + kPlanarTokens / 2 <= t1) {
      PlanarRowsToPairs<B, K, kPlanarTokens / 2>(w, g, act, rb, nr, t, pairs);
      for (int j = 0; j < kPlanarTokens / 2; ++j) ReduceRowPairs(pairs[j], nr, y + (t + j) * w.rows + rb);
      t += kPlanarTokens / 2;
    }
    for (; t < t1; ++t) {
      PlanarRowsToPairs<B, K, 1>(w, g, act, rb, nr, t, pairs);
      ReduceRowPairs(pairs[0], nr, y + t * w.rows + rb);
    }
  }
}

template <class B>
void PlanarTypeRange(const MatrixView& w, const QuantizedActivations& act, int64_t r0, int64_t r1, int64_t t0,
                     int64_t t1, float* y) {
  switch (static_cast<TensorType>(w.type_id)) {
    case TensorType::Q4_0: PlanarRange<B, PKind::kQ4_0>(w, act, r0, r1, t0, t1, y); break;
    case TensorType::Q4_1: PlanarRange<B, PKind::kQ4_1>(w, act, r0, r1, t0, t1, y); break;
    default: PlanarRange<B, PKind::kQ8_0>(w, act, r0, r1, t0, t1, y); break;
  }
}

void PlanarMatmulRange(const MatrixView& w, const QuantizedActivations& act, int64_t r0, int64_t r1, int64_t t0,
                       int64_t t1, float* y) {
#if HWY_TARGET != HWY_AVX3_DL
  if (vpdpbusd_enabled(HWY_TARGET == HWY_AVX2)) return PlanarTypeRange<V16Dp>(w, act, r0, r1, t0, t1, y);
#endif
  PlanarTypeRange<V16>(w, act, r0, r1, t0, t1, y);
}
#endif  // KVBITS_X86_INT8
