// SIMD kernels of ops/matmul.h, compiled once per Highway target and dispatched at run time.
//
// Quantized weights: on x86 targets the integer dot products use AVX2 byte multiplies
// (vpmaddubsw + vpmaddwd, unsigned 4-bit weights x signed 8-bit activations; the 16-bit pair sums
// are at most 2*15*127 or 2*128*127 in magnitude, so they never saturate) or, where AVX-512 VNNI is
// available, vpdpbusd. Two kernel families: planar rows (the layout the model repacks Q4_0, Q4_1
// and Q8_0 into at load: one block per 32-bit lane, 16 blocks per 512-bit vector, see "Planar
// rows" below) and file-layout rows (one block at a time, for matrices that are not repacked).
// Other targets use the portable integer loop below, which the compiler vectorizes. Float weights
// use Highway's portable ops on every target.
#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "ops/matmul.cc"
#include "hwy/foreach_target.h"  // IWYU pragma: keep
#include "hwy/highway.h"

#include <algorithm>
#include <cstring>
#include <limits>
#include <vector>

#include "io/tensor_type.h"
#include "backend/simd_targets.h"
#include "ops/matmul.h"
#include "ops/quant_blocks.h"
#include "util/error.h"
#include "util/half.h"

#undef KVBITS_X86_INT8  // this file is compiled once per target
#if HWY_TARGET == HWY_AVX2 || HWY_TARGET == HWY_AVX3 || HWY_TARGET == HWY_AVX3_DL
#include <immintrin.h>
#define KVBITS_X86_INT8 1
#else
#define KVBITS_X86_INT8 0
#endif

HWY_BEFORE_NAMESPACE();
namespace kvbits {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

// Tokens per tile: a weight block is unpacked once and multiplied with this many tokens.
constexpr int kTokenTile = 4;

#if KVBITS_X86_INT8
// Decode streams weights from DRAM once; prefetching this far ahead (across row ends: rows are
// contiguous) covers the memory latency at ~20 GB/s per core.
constexpr int kPrefetchBytes = 1024;

#include "ops/vpdpbusd256-inl.h"

inline __m256i unpack_nibbles(const uint8_t* qs) {
  // 16 bytes -> 32 unsigned values in element order: low nibbles are elements 0..15.
  const __m128i raw = _mm_loadu_si128(reinterpret_cast<const __m128i*>(qs));
  const __m256i both = _mm256_set_m128i(_mm_srli_epi16(raw, 4), raw);
  return _mm256_and_si256(both, _mm256_set1_epi8(0x0f));
}

// Sum of u8 x i8 products in 8 int32 lanes: vpdpbusd on AVX3_DL (always) and, with kDp, on the
// AVX2 and AVX3 targets where the CPU has it (backend/simd_targets.h vpdpbusd_enabled; MatmulRange
// picks the instantiation once per call); Vpdpbusd256 writes the EVEX form on every AVX-512 target
// (tests/cli/no_vex_vnni.sh guards the binary). Otherwise vpmaddubsw + vpmaddwd, the same exact
// sums (vpmaddubsw cannot saturate here: nibbles or |int8| <= 127 times int8, two per 16-bit lane).
template <bool kDp = false>
inline __m256i dot_u8_i8(__m256i u, __m256i s) {
  if constexpr (kDp || HWY_TARGET == HWY_AVX3_DL) return Vpdpbusd256(_mm256_setzero_si256(), u, s);
  return _mm256_madd_epi16(_mm256_maddubs_epi16(u, s), _mm256_set1_epi16(1));
}

// Signed i8 x i8: make the left operand unsigned via its absolute value, move its sign to the right.
inline __m256i dot_i8_i8(__m256i a, __m256i b) {
  return dot_u8_i8(_mm256_sign_epi8(a, a), _mm256_sign_epi8(b, a));
}

// fp16 scale -> fp32 with the F16C instruction (every AVX2 machine has it); the software
// conversion in util/half.h costs ~10 instructions per block in these loops.
inline float half_to_float(uint16_t h) { return _cvtsh_ss(h); }

inline float hsum(__m256 v) {
  const __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  const __m128 s2 = _mm_add_ps(s, _mm_movehl_ps(s, s));
  return _mm_cvtss_f32(_mm_add_ss(s2, _mm_movehdup_ps(s2)));
}
#endif

// out[t] = row . a[t] for NT tokens. w: one row of nb blocks. Even and odd blocks go to two
// accumulator chains (hiding the FMA latency when NT is small), for every NT alike so that the
// result does not depend on the token tile.
template <int NT, bool kDp = false>
void dot_q4_1(const BlockQ4_1* w, int64_t nb, const QuantizedRowView* a, float* out) {
#if KVBITS_X86_INT8
  __m256 acc[2][NT];
  float summ[2][NT];
  for (int t = 0; t < NT; ++t) {
    acc[0][t] = acc[1][t] = _mm256_setzero_ps();
    summ[0][t] = summ[1][t] = 0.0f;
  }
  auto block = [&](int64_t b, __m256* acc_p, float* summ_p) {
    const __m256i qw = unpack_nibbles(w[b].qs);
    const float dw = half_to_float(w[b].d), mw = half_to_float(w[b].m);
    for (int t = 0; t < NT; ++t) {
      const __m256i qa = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(a[t].qs + b * 32));
      acc_p[t] = _mm256_fmadd_ps(_mm256_set1_ps(dw * a[t].d[b]), _mm256_cvtepi32_ps(dot_u8_i8<kDp>(qw, qa)), acc_p[t]);
      summ_p[t] += mw * a[t].d[b] * static_cast<float>(a[t].isum[b]);
    }
  };
  int64_t b = 0;
  for (; b + 2 <= nb; b += 2) {
    if constexpr (NT == 1) _mm_prefetch(reinterpret_cast<const char*>(w + b) + kPrefetchBytes, _MM_HINT_T0);
    block(b, acc[0], summ[0]);
    block(b + 1, acc[1], summ[1]);
  }
  if (b < nb) block(b, acc[0], summ[0]);
  for (int t = 0; t < NT; ++t) out[t] = hsum(_mm256_add_ps(acc[0][t], acc[1][t])) + (summ[0][t] + summ[1][t]);
#else
  for (int t = 0; t < NT; ++t) {
    float sum = 0.0f;
    for (int64_t b = 0; b < nb; ++b) {
      int32_t isum = 0;
      for (int j = 0; j < 16; ++j) {
        isum += (w[b].qs[j] & 0x0f) * a[t].qs[b * 32 + j] + (w[b].qs[j] >> 4) * a[t].qs[b * 32 + j + 16];
      }
      sum += fp16_to_fp32(w[b].d) * a[t].d[b] * static_cast<float>(isum) + fp16_to_fp32(w[b].m) * a[t].d[b] * static_cast<float>(a[t].isum[b]);
    }
    out[t] = sum;
  }
#endif
}

template <int NT, bool kDp = false>
void dot_q4_0(const BlockQ4_0* w, int64_t nb, const QuantizedRowView* a, float* out) {
  // x = d * (q - 8): sum (q - 8) * qa = sum q * qa - 8 * sum qa.
#if KVBITS_X86_INT8
  __m256 acc[NT];
  for (int t = 0; t < NT; ++t) acc[t] = _mm256_setzero_ps();
  for (int64_t b = 0; b < nb; ++b) {
    const __m256i qw = unpack_nibbles(w[b].qs);
    const float dw = half_to_float(w[b].d);
    for (int t = 0; t < NT; ++t) {
      const __m256i qa = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(a[t].qs + b * 32));
      __m256i p = dot_u8_i8<kDp>(qw, qa);
      p = _mm256_sub_epi32(p, _mm256_set_epi32(0, 0, 0, 0, 0, 0, 0, 8 * a[t].isum[b]));
      acc[t] = _mm256_fmadd_ps(_mm256_set1_ps(dw * a[t].d[b]), _mm256_cvtepi32_ps(p), acc[t]);
    }
  }
  for (int t = 0; t < NT; ++t) out[t] = hsum(acc[t]);
#else
  for (int t = 0; t < NT; ++t) {
    float sum = 0.0f;
    for (int64_t b = 0; b < nb; ++b) {
      int32_t isum = 0;
      for (int j = 0; j < 16; ++j) {
        isum += ((w[b].qs[j] & 0x0f) - 8) * a[t].qs[b * 32 + j] +
                ((w[b].qs[j] >> 4) - 8) * a[t].qs[b * 32 + j + 16];
      }
      sum += fp16_to_fp32(w[b].d) * a[t].d[b] * static_cast<float>(isum);
    }
    out[t] = sum;
  }
#endif
}

template <int NT, bool kDp = false>
void dot_q8_0(const BlockQ8_0* w, int64_t nb, const QuantizedRowView* a, float* out) {
#if KVBITS_X86_INT8
  __m256 acc[2][NT];  // even / odd blocks (see dot_q4_1)
  for (int t = 0; t < NT; ++t) acc[0][t] = acc[1][t] = _mm256_setzero_ps();
  auto block = [&](int64_t b, __m256* acc_p) {
    const __m256i qw = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w[b].qs));
    const __m256i aw = _mm256_sign_epi8(qw, qw);
    const float dw = half_to_float(w[b].d);
    for (int t = 0; t < NT; ++t) {
      const __m256i qa = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(a[t].qs + b * 32));
      const __m256 p = _mm256_cvtepi32_ps(dot_u8_i8<kDp>(aw, _mm256_sign_epi8(qa, qw)));
      acc_p[t] = _mm256_fmadd_ps(_mm256_set1_ps(dw * a[t].d[b]), p, acc_p[t]);
    }
  };
  int64_t b = 0;
  for (; b + 2 <= nb; b += 2) {
    if constexpr (NT == 1) _mm_prefetch(reinterpret_cast<const char*>(w + b) + kPrefetchBytes, _MM_HINT_T0);
    block(b, acc[0]);
    block(b + 1, acc[1]);
  }
  if (b < nb) block(b, acc[0]);
  for (int t = 0; t < NT; ++t) out[t] = hsum(_mm256_add_ps(acc[0][t], acc[1][t]));
#else
  for (int t = 0; t < NT; ++t) {
    float sum = 0.0f;
    for (int64_t b = 0; b < nb; ++b) {
      int32_t isum = 0;
      for (int j = 0; j < 32; ++j) isum += w[b].qs[j] * a[t].qs[b * 32 + j];
      sum += fp16_to_fp32(w[b].d) * a[t].d[b] * static_cast<float>(isum);
    }
    out[t] = sum;
  }
#endif
}

// Planar rows: ops/matmul_planar-inl.h (per target, like this file).
#include "ops/matmul_planar-inl.h"

// Float weights: fp32 activations, portable Highway code on every target.
template <typename WT>
HWY_INLINE hn::Vec<hn::ScalableTag<float>> load_as_f32(hn::ScalableTag<float> df, const WT* p) {
  if constexpr (std::is_same_v<WT, float>) {
    return hn::LoadU(df, p);
  } else {
    const hn::Rebind<WT, decltype(df)> dh;
    return hn::PromoteTo(df, hn::LoadU(dh, p));
  }
}

template <typename WT, typename Raw>
float dot_float_row(const Raw* w_raw, const float* x, int64_t n) {
  const hn::ScalableTag<float> df;
  const WT* w = reinterpret_cast<const WT*>(w_raw);
  const int64_t N = static_cast<int64_t>(hn::Lanes(df));
  auto acc0 = hn::Zero(df), acc1 = hn::Zero(df);
  int64_t i = 0;
  for (; i + 2 * N <= n; i += 2 * N) {
    acc0 = hn::MulAdd(load_as_f32(df, w + i), hn::LoadU(df, x + i), acc0);
    acc1 = hn::MulAdd(load_as_f32(df, w + i + N), hn::LoadU(df, x + i + N), acc1);
  }
  for (; i + N <= n; i += N) acc0 = hn::MulAdd(load_as_f32(df, w + i), hn::LoadU(df, x + i), acc0);
  float sum = hn::GetLane(hn::SumOfLanes(df, hn::Add(acc0, acc1)));
  for (; i < n; ++i) {
    // memcpy: a row may start at any byte (the SIMD loads above are unaligned too).
    float wv;
    if constexpr (std::is_same_v<WT, float>) {
      std::memcpy(&wv, w + i, sizeof(float));
    } else {
      uint16_t bits;
      std::memcpy(&bits, w + i, sizeof(bits));
      wv = std::is_same_v<WT, hwy::float16_t> ? fp16_to_fp32(bits) : bf16_to_fp32(bits);
    }
    sum += wv * x[i];
  }
  return sum;
}

template <int NT, bool kDp>
void dot_quantized(uint32_t type_id, const uint8_t* row, int64_t nb, const QuantizedRowView* a,
                   float* out) {
  switch (static_cast<TensorType>(type_id)) {
    case TensorType::Q4_1: dot_q4_1<NT, kDp>(reinterpret_cast<const BlockQ4_1*>(row), nb, a, out); break;
    case TensorType::Q4_0: dot_q4_0<NT, kDp>(reinterpret_cast<const BlockQ4_0*>(row), nb, a, out); break;
    default: dot_q8_0<NT, kDp>(reinterpret_cast<const BlockQ8_0*>(row), nb, a, out); break;
  }
}

// Rows [r0, r1) x tokens [t0, t1) of file-layout blocks (MatmulRange).
template <bool kDp>
void BlockMatmulRange(const MatrixView& w, const QuantizedActivations& act, int64_t r0, int64_t r1, int64_t t0,
                      int64_t t1, float* y) {
  const int64_t nb = w.cols / kBlockElems;
  for (int64_t r = r0; r < r1; ++r) {
    const uint8_t* row = w.data + static_cast<uint64_t>(r) * w.row_bytes;
    int64_t t = t0;
    for (; t + kTokenTile <= t1; t += kTokenTile) {
      QuantizedRowView a[kTokenTile];
      float out[kTokenTile];
      for (int i = 0; i < kTokenTile; ++i) a[i] = act.row(t + i);
      dot_quantized<kTokenTile, kDp>(w.type_id, row, nb, a, out);
      for (int i = 0; i < kTokenTile; ++i) y[(t + i) * w.rows + r] = out[i];
    }
    for (; t < t1; ++t) {
      const QuantizedRowView a = act.row(t);
      float out;
      dot_quantized<1, kDp>(w.type_id, row, nb, &a, &out);
      y[t * w.rows + r] = out;
    }
  }
}

#if !KVBITS_X86_INT8
// Portable targets: each planar row is rebuilt as file-layout blocks and multiplied with the
// block kernels (the same per-output arithmetic for every token count).
void PlanarMatmulRange(const MatrixView& w, const QuantizedActivations& act, int64_t r0, int64_t r1, int64_t t0,
                       int64_t t1, float* y) {
  const int64_t nb = w.cols / kBlockElems;
  std::vector<uint8_t> blocks(static_cast<size_t>(w.row_bytes));
  for (int64_t r = r0; r < r1; ++r) {
    planar_row_to_blocks(w, r, blocks.data());
    int64_t t = t0;
    for (; t + kTokenTile <= t1; t += kTokenTile) {
      QuantizedRowView a[kTokenTile];
      float out[kTokenTile];
      for (int i = 0; i < kTokenTile; ++i) a[i] = act.row(t + i);
      dot_quantized<kTokenTile, false>(w.type_id, blocks.data(), nb, a, out);
      for (int i = 0; i < kTokenTile; ++i) y[(t + i) * w.rows + r] = out[i];
    }
    for (; t < t1; ++t) {
      const QuantizedRowView a = act.row(t);
      dot_quantized<1, false>(w.type_id, blocks.data(), nb, &a, &y[t * w.rows + r]);
    }
  }
}
#endif

// Quantized weights x fp32 activations: each block is dequantized to fp32 (the same arithmetic
// as the reference dequantizers) and multiplied with Highway ops, for every token of the tile.
void DotDequantizedRange(const MatrixView& w, const float* x, int64_t r0, int64_t r1, int64_t t0,
                         int64_t t1, float* y) {
  const hn::ScalableTag<float> df;
  const int64_t N = static_cast<int64_t>(hn::Lanes(df));
  const int64_t nb = w.cols / kBlockElems;
  HWY_ALIGN float wbuf[kBlockElems];
  if (w.planar) {  // rare (fp32-activation mode on repacked weights): dequantize whole rows
    std::vector<float> wrow(static_cast<size_t>(w.cols));
    for (int64_t r = r0; r < r1; ++r) {
      dequantize_row(w, r, wrow.data());
      for (int64_t t = t0; t < t1; ++t) y[t * w.rows + r] = dot_float_row<float>(wrow.data(), x + t * w.cols, w.cols);
    }
    return;
  }
  for (int64_t r = r0; r < r1; ++r) {
    const uint8_t* row = w.data + static_cast<uint64_t>(r) * w.row_bytes;
    for (int64_t t = t0; t < t1; ++t) {
      const float* xt = x + t * w.cols;
      auto acc = hn::Zero(df);
      float tail = 0.0f;
      for (int64_t b = 0; b < nb; ++b) {
        switch (static_cast<TensorType>(w.type_id)) {
          case TensorType::Q4_1: dequantize_row_q4_1_ref(reinterpret_cast<const BlockQ4_1*>(row) + b, wbuf, kBlockElems); break;
          case TensorType::Q4_0: dequantize_row_q4_0_ref(reinterpret_cast<const BlockQ4_0*>(row) + b, wbuf, kBlockElems); break;
          default: dequantize_row_q8_0_ref(reinterpret_cast<const BlockQ8_0*>(row) + b, wbuf, kBlockElems); break;
        }
        int64_t i = 0;
        for (; i + N <= kBlockElems; i += N) acc = hn::MulAdd(hn::Load(df, wbuf + i), hn::LoadU(df, xt + b * kBlockElems + i), acc);
        for (; i < kBlockElems; ++i) tail += wbuf[i] * xt[b * kBlockElems + i];
      }
      y[t * w.rows + r] = hn::GetLane(hn::SumOfLanes(df, acc)) + tail;
    }
  }
}

// Computes rows [r0, r1) for tokens [t0, t1) of y (row stride w.rows). act == nullptr with a
// quantized type selects the fp32-activation path.
void MatmulRange(const MatrixView& w, const float* x, const QuantizedActivations* act, int64_t r0,
                 int64_t r1, int64_t t0, int64_t t1, float* y) {
  const auto type = static_cast<TensorType>(w.type_id);
  if (type == TensorType::F32 || type == TensorType::F16 || type == TensorType::BF16) {
    for (int64_t r = r0; r < r1; ++r) {
      const uint8_t* row = w.data + static_cast<uint64_t>(r) * w.row_bytes;
      for (int64_t t = t0; t < t1; ++t) {
        const float* xt = x + t * w.cols;
        float v;
        if (type == TensorType::F32) v = dot_float_row<float>(row, xt, w.cols);
        else if (type == TensorType::F16) v = dot_float_row<hwy::float16_t>(row, xt, w.cols);
        else v = dot_float_row<hwy::bfloat16_t>(row, xt, w.cols);
        y[t * w.rows + r] = v;
      }
    }
    return;
  }
  if (act == nullptr) {
    DotDequantizedRange(w, x, r0, r1, t0, t1, y);
    return;
  }
  if (w.planar) {
    PlanarMatmulRange(w, *act, r0, r1, t0, t1, y);
    return;
  }
#if HWY_TARGET == HWY_AVX2 || HWY_TARGET == HWY_AVX3
  if (vpdpbusd_enabled(HWY_TARGET == HWY_AVX2)) return BlockMatmulRange<true>(w, *act, r0, r1, t0, t1, y);
#endif
  BlockMatmulRange<false>(w, *act, r0, r1, t0, t1, y);
}

// QuantizedActivations::quantize: n_blocks consecutive blocks of 32, with exactly the operations
// of quantize_activation_blocks_ref (ops/quant_blocks.cc), vectorized within each block.
void QuantizeBlocks(const float* x, int64_t n_blocks, int8_t* qs, float* d, int32_t* isum, float* ds) {
#if KVBITS_X86_INT8
  const __m256 abs_mask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
  const __m256i order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
  const __m256 inf = _mm256_set1_ps(std::numeric_limits<float>::infinity());
  for (int64_t b = 0; b < n_blocks; ++b) {
    const float* xb = x + b * kBlockElems;
    __m256 v[4];
    __m256 am = _mm256_setzero_ps();
    for (int j = 0; j < 4; ++j) {
      v[j] = _mm256_loadu_ps(xb + 8 * j);
      // fmax(amax, |x|) ignores NaN: drop NaN lanes (unordered with themselves) before the max.
      const __m256 a = _mm256_and_ps(_mm256_and_ps(v[j], abs_mask), _mm256_cmp_ps(v[j], v[j], _CMP_ORD_Q));
      am = _mm256_max_ps(am, a);
    }
    __m128 m4 = _mm_max_ps(_mm256_castps256_ps128(am), _mm256_extractf128_ps(am, 1));
    m4 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
    const float amax = _mm_cvtss_f32(_mm_max_ss(m4, _mm_movehdup_ps(m4)));
    const float db = amax / 127.0f;
    const float id = amax != 0.0f ? 127.0f / amax : 0.0f;
    const __m256 idv = _mm256_set1_ps(id);
    __m256i q[4];
    __m256i sum = _mm256_setzero_si256();
    for (int j = 0; j < 4; ++j) {
      const __m256 p = _mm256_mul_ps(v[j], idv);
      // vcvtps2dq rounds to nearest even (MXCSR default), like nearbyint; NaN and +-Inf (x Inf, or
      // 127 / amax overflowing for a subnormal amax) -> 0 as in the reference; |p| <= 127 otherwise.
      const __m256 finite = _mm256_cmp_ps(_mm256_and_ps(p, abs_mask), inf, _CMP_LT_OQ);
      q[j] = _mm256_and_si256(_mm256_cvtps_epi32(p), _mm256_castps_si256(finite));
      sum = _mm256_add_epi32(sum, q[j]);
    }
    const __m256i q16 = _mm256_packs_epi32(q[0], q[1]), q16b = _mm256_packs_epi32(q[2], q[3]);
    const __m256i q8 = _mm256_permutevar8x32_epi32(_mm256_packs_epi16(q16, q16b), order);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(qs + b * kBlockElems), q8);
    __m128i s4 = _mm_add_epi32(_mm256_castsi256_si128(sum), _mm256_extracti128_si256(sum, 1));
    s4 = _mm_add_epi32(s4, _mm_shuffle_epi32(s4, _MM_SHUFFLE(1, 0, 3, 2)));
    s4 = _mm_add_epi32(s4, _mm_shuffle_epi32(s4, _MM_SHUFFLE(2, 3, 0, 1)));
    const int32_t isb = _mm_cvtsi128_si32(s4);
    const float dh = _cvtsh_ss(_cvtss_sh(db, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
    d[b] = dh;
    isum[b] = isb;
    ds[b] = dh * static_cast<float>(isb);
  }
#else
  quantize_activation_blocks_ref(x, n_blocks, qs, d, isum, ds);
#endif
}

const char* TargetName() { return hwy::TargetName(HWY_TARGET); }

}  // namespace HWY_NAMESPACE
}  // namespace kvbits
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace kvbits {

HWY_EXPORT(MatmulRange);
HWY_EXPORT(QuantizeBlocks);
HWY_EXPORT(TargetName);

void QuantizedActivations::quantize(const float* x, int64_t n_tokens, int64_t cols) {
  cols_ = cols;
  const int64_t nb = cols / kBlockElems;
  qs_.resize(static_cast<size_t>(n_tokens * cols));
  d_.resize(static_cast<size_t>(n_tokens * nb));
  isum_.resize(d_.size());
  ds_.resize(d_.size());
  HWY_DYNAMIC_DISPATCH(QuantizeBlocks)(x, n_tokens * nb, qs_.data(), d_.data(), isum_.data(), ds_.data());
  arrange(n_tokens);
}

const char* matmul_target_name() { return HWY_DYNAMIC_DISPATCH(TargetName)(); }

void matmul_group(std::span<const MatmulJob> jobs, const float* x, int64_t n_tokens, ThreadPool& pool,
                  MatmulScratch& scratch, ActivationMode mode) {
  if (jobs.empty() || n_tokens <= 0) return;
  require_gfni_for_avx3_dl();
  const int64_t cols = jobs[0].w->cols;
  bool any_quantized = false;
  for (const MatmulJob& j : jobs) {
    if (j.w->cols != cols) throw Error("matmul_group: matrices must share their input size");
    const auto type = static_cast<TensorType>(j.w->type_id);
    any_quantized |= type == TensorType::Q4_0 || type == TensorType::Q4_1 || type == TensorType::Q8_0;
  }
  const bool int8 = mode == ActivationMode::kInt8 && any_quantized;
  if (int8) scratch.act.quantize(x, n_tokens, cols);  // once for every matrix of the group
  const QuantizedActivations* act = int8 ? &scratch.act : nullptr;
  // Tasks: per matrix, row chunks x token chunks, all in one parallel loop (one wake-up and one
  // join for e.g. Q, K and V together). Decode (few tokens) is a stream through the weights: each
  // matrix is cut into 2 contiguous row ranges per thread so the hardware prefetchers stay trained
  // (short interleaved chunks made them restart every 10 KB and halved the achieved bandwidth).
  // Prefill uses ~32-row chunks, which keep a chunk's weights in L1/L2 across a token chunk.
  const int64_t tokens_per_task = 64;
  const auto round_up16 = [](int64_t v) { return std::max<int64_t>(16, (v + 15) / 16 * 16); };
  const int64_t token_tasks = (n_tokens + tokens_per_task - 1) / tokens_per_task;
  struct Split {
    int64_t rows_per_task, row_tasks, first_task;
  };
  std::vector<Split> splits(jobs.size());
  int64_t n_tasks = 0;
  for (size_t i = 0; i < jobs.size(); ++i) {
    const int64_t rows = jobs[i].w->rows;
    // Multiples of 16 rows: the planar kernels reduce 16 rows' lanes together.
    const int64_t rpt = n_tokens <= 4 ? round_up16((rows + 2 * pool.size() - 1) / (2 * pool.size()))
                                      : std::min<int64_t>(32, round_up16(rows / (8 * pool.size()) + 1));
    splits[i] = {rpt, (rows + rpt - 1) / rpt, n_tasks};
    n_tasks += splits[i].row_tasks * token_tasks;
  }
  pool.parallel_for(n_tasks, [&](int64_t task, int) {
    size_t i = 0;
    while (i + 1 < jobs.size() && task >= splits[i + 1].first_task) ++i;
    const Split& sp = splits[i];
    const MatrixView& w = *jobs[i].w;
    const int64_t local = task - sp.first_task;
    const int64_t rt = local % sp.row_tasks, tt = local / sp.row_tasks;
    const int64_t r0 = rt * sp.rows_per_task, r1 = std::min(w.rows, r0 + sp.rows_per_task);
    const int64_t t0 = tt * tokens_per_task, t1 = std::min(n_tokens, t0 + tokens_per_task);
    const auto type = static_cast<TensorType>(w.type_id);
    const bool quantized = type == TensorType::Q4_0 || type == TensorType::Q4_1 || type == TensorType::Q8_0;
    HWY_DYNAMIC_DISPATCH(MatmulRange)(w, x, quantized ? act : nullptr, r0, r1, t0, t1, jobs[i].y);
  });
}

void matmul(const MatrixView& w, const float* x, int64_t n_tokens, float* y, ThreadPool& pool,
            MatmulScratch& scratch, ActivationMode mode) {
  const MatmulJob job{&w, y};
  matmul_group(std::span<const MatmulJob>(&job, 1), x, n_tokens, pool, scratch, mode);
}

}  // namespace kvbits
#endif
