// Round trips of the scalar reference block quantizers (ops/quant_blocks.h) and of the fp16 /
// bf16 conversions (util/half.h) they store their scales with.
//
// Per-element error bounds follow from each format (u = 2^-24 is the fp32 unit roundoff; "dh" is
// the block scale after its fp16 round trip, "d" the fp32 scale the quantizer computed):
//   Q8_0  x ~ dh*q, d = amax/127, q = round(x/d):         |x - dh*q| <= d/2 + 127*|dh - d|
//   Q4_0  x ~ dh*(q-8), d = max/-8 (max: signed value of largest magnitude), q = floor(x/d + 8.5)
//         clamped to [0,15]. x/d lies in [-8, 8]; above 7.5 the clamp to 15 costs up to one full
//         step, so |x - deq| <= |d|/2 (x/d <= 7.5) or |d| (x/d > 7.5), plus 8*|dh - d|.
//   Q4_1  x ~ dh*q + mh, d = (hi-lo)/15, m = lo:          |x - deq| <= d/2 + 15*|dh - d| + |mh - lo|
// plus the fp32 rounding of the quantizer's own arithmetic (x*id with id = 1/d rounded, and the
// +0.5 / +8.5 offsets): a few u of |x/d| <= 15 steps, i.e. a few u of amax. We allow 8u*amax for
// Q8_0/Q4_0 and 16u*amax for Q4_1 (its (x - lo) may reach 2*amax), roughly twice the count.
// Dequantization itself is exact for Q8_0/Q4_0 (11-bit scale times <= 8-bit integer) and rounds
// once (u*|deq|) for Q4_1's "+ m", which the slack above also covers.
#include <gtest/gtest.h>

#include "test_random.h"

#include <algorithm>
#include <bit>
#include <cfloat>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <random>
#include <vector>

#include "io/tensor_type.h"
#include "ops/quant_blocks.h"
#include "util/half.h"

namespace kvbits {
namespace {

constexpr double kU = 0x1p-24;  // fp32 unit roundoff

float fp16_round(float x) { return fp16_to_fp32(fp32_to_fp16(x)); }

// --- block geometry --------------------------------------------------------------------------

TEST(QuantBlocks, StructSizesMatchGgml) {
  EXPECT_EQ(sizeof(BlockQ4_0), 18u);
  EXPECT_EQ(sizeof(BlockQ4_1), 20u);
  EXPECT_EQ(sizeof(BlockQ8_0), 34u);
  EXPECT_EQ(sizeof(BlockQ8_1), 36u);
  EXPECT_EQ(offsetof(BlockQ4_0, qs), 2u);
  EXPECT_EQ(offsetof(BlockQ4_1, m), 2u);
  EXPECT_EQ(offsetof(BlockQ4_1, qs), 4u);
  EXPECT_EQ(offsetof(BlockQ8_0, qs), 2u);
  EXPECT_EQ(offsetof(BlockQ8_1, s), 2u);
  EXPECT_EQ(offsetof(BlockQ8_1, qs), 4u);
  // The io layer's geometry table must agree with the structs the kernels read.
  const struct { TensorType t; size_t bytes; } rows[] = {
      {TensorType::Q4_0, sizeof(BlockQ4_0)}, {TensorType::Q4_1, sizeof(BlockQ4_1)},
      {TensorType::Q8_0, sizeof(BlockQ8_0)}, {TensorType::Q8_1, sizeof(BlockQ8_1)}};
  for (const auto& r : rows) {
    const auto info = tensor_type_info(static_cast<uint32_t>(r.t));
    ASSERT_TRUE(info.has_value());
    EXPECT_EQ(info->block_bytes, r.bytes) << info->name;
    EXPECT_EQ(info->block_elems, static_cast<uint32_t>(kBlockElems)) << info->name;
  }
}

TEST(QuantBlocks, NibbleOrderIsLowHalfThenHighHalf) {
  // Q4_1 with lo = 0, hi = 15 gives d = 1, m = 0 and q = x exactly.
  float x[kBlockElems];
  for (int j = 0; j < 16; ++j) {
    x[j] = static_cast<float>(j);
    x[j + 16] = static_cast<float>(15 - j);
  }
  BlockQ4_1 b;
  quantize_row_q4_1_ref(x, &b, kBlockElems);
  EXPECT_EQ(fp16_to_fp32(b.d), 1.0f);
  EXPECT_EQ(fp16_to_fp32(b.m), 0.0f);
  for (int j = 0; j < 16; ++j) EXPECT_EQ(b.qs[j], j | ((15 - j) << 4)) << j;
  float y[kBlockElems];
  dequantize_row_q4_1_ref(&b, y, kBlockElems);
  for (int j = 0; j < kBlockElems; ++j) EXPECT_EQ(y[j], x[j]) << j;
}

// --- per-format bounds -----------------------------------------------------------------------

float block_amax(const float* x) {
  float a = 0.0f;
  for (int j = 0; j < kBlockElems; ++j) a = std::max(a, std::fabs(x[j]));
  return a;
}

// Checks quantize + dequantize of n elements (whole blocks) against the bounds in the header.
void check_q8_0(const std::vector<float>& x, const char* what) {
  const int64_t n = static_cast<int64_t>(x.size());
  std::vector<BlockQ8_0> blocks(static_cast<size_t>(n / kBlockElems));
  std::vector<float> y(x.size());
  quantize_row_q8_0_ref(x.data(), blocks.data(), n);
  dequantize_row_q8_0_ref(blocks.data(), y.data(), n);
  for (int64_t b = 0; b < n / kBlockElems; ++b) {
    const float* xb = x.data() + b * kBlockElems;
    const double amax = block_amax(xb);
    const float d = static_cast<float>(amax) / 127.0f;
    const double dh = fp16_to_fp32(blocks[b].d);
    ASSERT_EQ(blocks[b].d, fp32_to_fp16(d)) << what << " block " << b;
    const double bound = d / 2.0 + 127.0 * std::fabs(dh - d) + 8.0 * kU * amax;
    for (int j = 0; j < kBlockElems; ++j) {
      const int q = blocks[b].qs[j];
      ASSERT_GE(q, -127) << what;
      ASSERT_LE(q, 127) << what;
      ASSERT_EQ(y[b * kBlockElems + j], static_cast<float>(dh * q)) << what;  // exact dequant
      ASSERT_LE(std::fabs(static_cast<double>(xb[j]) - y[b * kBlockElems + j]), bound)
          << what << " block " << b << " elem " << j << " x=" << xb[j] << " d=" << d;
    }
  }
}

void check_q4_0(const std::vector<float>& x, const char* what) {
  const int64_t n = static_cast<int64_t>(x.size());
  std::vector<BlockQ4_0> blocks(static_cast<size_t>(n / kBlockElems));
  std::vector<float> y(x.size());
  quantize_row_q4_0_ref(x.data(), blocks.data(), n);
  dequantize_row_q4_0_ref(blocks.data(), y.data(), n);
  for (int64_t b = 0; b < n / kBlockElems; ++b) {
    const float* xb = x.data() + b * kBlockElems;
    float amax = 0.0f, max = 0.0f;
    for (int j = 0; j < kBlockElems; ++j) {
      if (std::fabs(xb[j]) > amax) amax = std::fabs(xb[j]), max = xb[j];
    }
    const float d = max / -8.0f;
    const double dh = fp16_to_fp32(blocks[b].d);
    for (int j = 0; j < kBlockElems; ++j) {
      const int q = j < 16 ? (blocks[b].qs[j] & 0x0f) : (blocks[b].qs[j - 16] >> 4);
      ASSERT_EQ(y[b * kBlockElems + j], static_cast<float>(dh * (q - 8))) << what;
      // The element nearest the clamp (x/d just above 7.5) may land on either side of it after
      // rounding, so the full-step bound applies from slightly below 7.5.
      const double r = d != 0.0f ? static_cast<double>(xb[j]) / d : 0.0;
      const double step = r > 7.5 - 1e-4 ? std::fabs(d) : std::fabs(d) / 2.0;
      const double bound = step + 8.0 * std::fabs(dh - d) + 8.0 * kU * amax;
      ASSERT_LE(std::fabs(static_cast<double>(xb[j]) - y[b * kBlockElems + j]), bound)
          << what << " block " << b << " elem " << j << " x=" << xb[j] << " d=" << d;
    }
  }
}

void check_q4_1(const std::vector<float>& x, const char* what) {
  const int64_t n = static_cast<int64_t>(x.size());
  std::vector<BlockQ4_1> blocks(static_cast<size_t>(n / kBlockElems));
  std::vector<float> y(x.size());
  quantize_row_q4_1_ref(x.data(), blocks.data(), n);
  dequantize_row_q4_1_ref(blocks.data(), y.data(), n);
  for (int64_t b = 0; b < n / kBlockElems; ++b) {
    const float* xb = x.data() + b * kBlockElems;
    const float lo = *std::min_element(xb, xb + kBlockElems);
    const float hi = *std::max_element(xb, xb + kBlockElems);
    const double amax = std::max(std::fabs(lo), std::fabs(hi));
    const float d = (hi - lo) / 15.0f;
    const double dh = fp16_to_fp32(blocks[b].d), mh = fp16_to_fp32(blocks[b].m);
    ASSERT_EQ(blocks[b].m, fp32_to_fp16(lo)) << what;
    const double bound = d / 2.0 + 15.0 * std::fabs(dh - d) + std::fabs(mh - lo) + 16.0 * kU * amax;
    for (int j = 0; j < kBlockElems; ++j) {
      ASSERT_LE(std::fabs(static_cast<double>(xb[j]) - y[b * kBlockElems + j]), bound)
          << what << " block " << b << " elem " << j << " x=" << xb[j] << " d=" << d << " m=" << lo;
    }
  }
}

void check_q8_1(const std::vector<float>& x, const char* what) {
  // Q8_1 quantizes exactly like Q8_0 and adds s = fp16(d * sum(q)) with the unrounded d.
  const int64_t n = static_cast<int64_t>(x.size());
  std::vector<BlockQ8_1> b1(static_cast<size_t>(n / kBlockElems));
  std::vector<BlockQ8_0> b0(b1.size());
  std::vector<float> y(x.size());
  quantize_row_q8_1_ref(x.data(), b1.data(), n);
  quantize_row_q8_0_ref(x.data(), b0.data(), n);
  dequantize_row_q8_1_ref(b1.data(), y.data(), n);
  for (size_t b = 0; b < b1.size(); ++b) {
    ASSERT_EQ(b1[b].d, b0[b].d) << what;
    ASSERT_EQ(std::memcmp(b1[b].qs, b0[b].qs, sizeof(b0[b].qs)), 0) << what;
    int sum = 0;
    for (int j = 0; j < kBlockElems; ++j) sum += b1[b].qs[j];
    const float d = block_amax(x.data() + b * kBlockElems) / 127.0f;
    ASSERT_EQ(b1[b].s, fp32_to_fp16(d * static_cast<float>(sum))) << what;
  }
  check_q8_0(x, what);  // same elementwise bound (qs and d are identical)
  std::vector<float> y0(x.size());
  dequantize_row_q8_0_ref(b0.data(), y0.data(), n);
  for (size_t i = 0; i < y.size(); ++i) ASSERT_EQ(y[i], y0[i]) << what;
}

void check_all(const std::vector<float>& x, const char* what) {
  SCOPED_TRACE(what);
  check_q8_0(x, what);
  check_q4_0(x, what);
  check_q4_1(x, what);
  check_q8_1(x, what);
}

using testing::random_vector;

TEST(QuantBlocks, RandomRoundTripsWithinFormatBounds) {
  for (uint32_t seed = 1; seed <= 20; ++seed) {
    auto x = random_vector(64 * kBlockElems, seed, -3.0f, 3.0f);
    // Vary the block scale over many magnitudes (and add the odd outlier) so scales cover
    // fp16 normals of very different exponents.
    std::mt19937 rng(seed + 1000);
    std::uniform_int_distribution<int> e(-12, 12), pick(0, kBlockElems - 1);
    for (size_t b = 0; b < x.size() / kBlockElems; ++b) {
      const float s = std::ldexp(1.0f, e(rng));
      for (int j = 0; j < kBlockElems; ++j) x[b * kBlockElems + j] *= s;
      if (b % 3 == 0) x[b * kBlockElems + pick(rng)] *= 20.0f;
    }
    check_all(x, "random");
  }
}

TEST(QuantBlocks, ConstantBlocks) {
  for (float c : {1.0f, -1.0f, 0.3f, -7.25f, 1e-3f, 1234.5f, -0.1f}) {
    std::vector<float> x(kBlockElems, c);
    check_all(x, "constant");
    // Q4_1: d = 0, so every element decodes to the fp16-rounded minimum, exactly.
    BlockQ4_1 b1;
    quantize_row_q4_1_ref(x.data(), &b1, kBlockElems);
    float y[kBlockElems];
    dequantize_row_q4_1_ref(&b1, y, kBlockElems);
    EXPECT_EQ(fp16_to_fp32(b1.d), 0.0f);
    for (float v : y) EXPECT_EQ(v, fp16_round(c)) << c;
    // Q8_0: every q is +-127; Q4_0: every q is 0 (x = max = -8 d).
    BlockQ8_0 b8;
    quantize_row_q8_0_ref(x.data(), &b8, kBlockElems);
    for (int8_t q : b8.qs) EXPECT_EQ(q, c > 0 ? 127 : -127) << c;
    BlockQ4_0 b4;
    quantize_row_q4_0_ref(x.data(), &b4, kBlockElems);
    for (uint8_t q : b4.qs) EXPECT_EQ(q, 0) << c;
  }
}

TEST(QuantBlocks, AllZeroBlocksDecodeToZero) {
  std::vector<float> x(3 * kBlockElems, 0.0f);
  check_all(x, "zero");
  float y[3 * kBlockElems];
  BlockQ8_0 b8[3];
  quantize_row_q8_0_ref(x.data(), b8, 3 * kBlockElems);
  dequantize_row_q8_0_ref(b8, y, 3 * kBlockElems);
  for (float v : y) EXPECT_EQ(v, 0.0f);
  BlockQ4_0 b40[3];
  quantize_row_q4_0_ref(x.data(), b40, 3 * kBlockElems);
  dequantize_row_q4_0_ref(b40, y, 3 * kBlockElems);
  for (float v : y) EXPECT_EQ(v, 0.0f);  // -0.0 (d = 0 / -8) compares equal, as in ggml
  BlockQ4_1 b41[3];
  quantize_row_q4_1_ref(x.data(), b41, 3 * kBlockElems);
  dequantize_row_q4_1_ref(b41, y, 3 * kBlockElems);
  for (float v : y) EXPECT_EQ(v, 0.0f);
}

TEST(QuantBlocks, NegativeOnlyAndPositiveOnlyBlocks) {
  check_all(random_vector(16 * kBlockElems, 7, -5.0f, -1.0f), "negative");
  check_all(random_vector(16 * kBlockElems, 8, 1.0f, 5.0f), "positive");
  check_all(random_vector(16 * kBlockElems, 9, -1e-3f, -1e-4f), "small negative");
}

TEST(QuantBlocks, HugeValuesUpToTheFp16ScaleLimit) {
  // The scales are fp16 (max 65504), which caps the representable block range: amax <= 127*65504
  // for Q8_0, amax <= 8*65504 for Q4_0, hi - lo <= 15*65504 and |lo| <= 65504 for Q4_1. Beyond
  // that the scale rounds to inf, exactly as in ggml. Test each format close to its own limit,
  // where one fp16 step of the scale is 32.
  auto x = random_vector(8 * kBlockElems, 11, -1.0f, 1.0f);
  auto scaled = [&](float s) {
    std::vector<float> v(x);
    for (auto& e : v) e *= s;
    v[5] = s;  // pin amax
    return v;
  };
  check_q8_0(scaled(8.0e6f), "huge q8_0");
  check_q8_1(scaled(8.0e6f), "huge q8_1");
  check_q4_0(scaled(5.0e5f), "huge q4_0");
  std::vector<float> v = random_vector(8 * kBlockElems, 12, -6.0e4f, 9.0e5f);
  for (size_t b = 0; b < v.size() / kBlockElems; ++b) v[b * kBlockElems] = -6.0e4f;
  check_q4_1(v, "huge q4_1");
}

TEST(QuantBlocks, TinyValuesWithSubnormalScales) {
  // amax ~ 1e-6 gives d ~ 8e-9, below the smallest fp16 subnormal (6e-8): the scale flushes to
  // 0 or a subnormal and the bounds above (which use the actual dh) still hold.
  for (float s : {1e-4f, 1e-6f, 1e-9f}) {
    auto x = random_vector(8 * kBlockElems, 13, -s, s);
    check_all(x, "tiny");
  }
}

// --- fp16 ------------------------------------------------------------------------------------

// Independent reference for fp32 -> fp16 (round to nearest, ties to even), in double arithmetic.
uint16_t fp16_reference(float f) {
  const uint16_t sign = std::signbit(f) ? 0x8000 : 0;
  const double a = std::fabs(static_cast<double>(f));
  if (std::isnan(f)) return sign | 0x7e00;
  if (a >= 65520.0) return sign | 0x7c00;  // halfway to 2^16 and above round to inf
  if (a < 0x1p-14) {
    // Subnormal grid 2^-24 (a * 2^24 is exact in double); 1024 is the smallest normal, whose
    // encoding 0x0400 is the same integer.
    return sign | static_cast<uint16_t>(std::nearbyint(a * 0x1p24));
  }
  int e;
  std::frexp(a, &e);                             // a = f * 2^e, f in [0.5, 1)
  double q = std::nearbyint(std::ldexp(a, 11 - e));  // 11 significant bits: [1024, 2048]
  if (q == 2048.0) q = 1024.0, ++e;
  const int biased = e - 1 + 15;
  if (biased >= 31) return sign | 0x7c00;
  return sign | static_cast<uint16_t>((biased << 10) | (static_cast<int>(q) - 1024));
}

double fp16_value(uint16_t h) {  // independent decoder
  const int e = (h >> 10) & 0x1f, m = h & 0x3ff;
  const double s = (h & 0x8000) ? -1.0 : 1.0;
  if (e == 0) return s * std::ldexp(m, -24);
  if (e == 31) return m == 0 ? s * INFINITY : NAN;
  return s * std::ldexp(1024 + m, e - 25);
}

bool fp16_is_nan(uint16_t h) { return (h & 0x7c00) == 0x7c00 && (h & 0x3ff) != 0; }

TEST(Fp16, ExhaustiveRoundTripOfEveryHalf) {
  for (uint32_t i = 0; i < 65536; ++i) {
    const uint16_t h = static_cast<uint16_t>(i);
    const float f = fp16_to_fp32(h);
    if (fp16_is_nan(h)) {
      ASSERT_TRUE(std::isnan(f)) << std::hex << i;
      ASSERT_TRUE(fp16_is_nan(fp32_to_fp16(f))) << std::hex << i;
      continue;
    }
    ASSERT_EQ(static_cast<double>(f), fp16_value(h)) << std::hex << i;
    ASSERT_EQ(std::signbit(f), (h & 0x8000) != 0) << std::hex << i;  // -0 stays -0
    ASSERT_EQ(fp32_to_fp16(f), h) << std::hex << i;                    // bit-exact round trip
    ASSERT_EQ(static_cast<float>(std::bit_cast<_Float16>(h)), f) << std::hex << i;
  }
}

TEST(Fp16, MatchesIndependentRoundingOnRandomFloats) {
  // Random bit patterns, half of them with exponents near the fp16 range (normals, subnormals,
  // the overflow edge), compared with a double-precision reference and with the compiler's
  // _Float16 conversion (libgcc / F16C, IEEE round to nearest even).
  std::mt19937 rng(1234);
  for (int i = 0; i < 1 << 21; ++i) {
    uint32_t bits = rng();
    if (i & 1) bits = (bits & 0x807fffffu) | ((95u + rng() % 50u) << 23);  // 2^-32 .. 2^17
    const float f = std::bit_cast<float>(bits);
    if (std::isnan(f)) continue;
    const uint16_t h = fp32_to_fp16(f);
    ASSERT_EQ(h, fp16_reference(f)) << std::hexfloat << f;
    ASSERT_EQ(h, std::bit_cast<uint16_t>(static_cast<_Float16>(f))) << std::hexfloat << f;
  }
}

TEST(Fp16, RoundsToNearestEven) {
  // 1 + 2^-11 is halfway between 1 and 1 + 2^-10: the even neighbour is 1.
  EXPECT_EQ(fp32_to_fp16(1.0f + 0x1p-11f), 0x3c00);
  // 1 + 3*2^-11 is halfway between 1 + 2^-10 (odd) and 1 + 2^-9 (even).
  EXPECT_EQ(fp32_to_fp16(1.0f + 3 * 0x1p-11f), 0x3c02);
  // Just above / below the halfway point go to the nearest.
  EXPECT_EQ(fp32_to_fp16(1.0f + 0x1p-11f + 0x1p-23f), 0x3c01);
  EXPECT_EQ(fp32_to_fp16(1.0f + 3 * 0x1p-11f - 0x1p-23f), 0x3c01);
  // A tie whose rounding carries into the exponent: 2 - 2^-11 -> 2.
  EXPECT_EQ(fp32_to_fp16(2.0f - 0x1p-11f), 0x4000);
  EXPECT_EQ(fp32_to_fp16(-1.0f - 0x1p-11f), 0xbc00);
}

TEST(Fp16, OverflowGoesToInfinity) {
  EXPECT_EQ(fp32_to_fp16(65504.0f), 0x7bff);             // max half
  EXPECT_EQ(fp32_to_fp16(65519.996f), 0x7bff);           // below the halfway point
  EXPECT_EQ(fp32_to_fp16(65520.0f), 0x7c00);             // tie: even neighbour is 2^16 = inf
  EXPECT_EQ(fp32_to_fp16(1e6f), 0x7c00);
  EXPECT_EQ(fp32_to_fp16(-1e30f), 0xfc00);
  EXPECT_EQ(fp32_to_fp16(INFINITY), 0x7c00);
  EXPECT_EQ(fp32_to_fp16(-INFINITY), 0xfc00);
  EXPECT_EQ(fp16_to_fp32(0x7c00), INFINITY);
  EXPECT_EQ(fp16_to_fp32(0xfc00), -INFINITY);
}

TEST(Fp16, Subnormals) {
  EXPECT_EQ(fp32_to_fp16(0x1p-24f), 0x0001);                 // smallest subnormal
  EXPECT_EQ(fp32_to_fp16(0x1p-25f), 0x0000);                 // tie with 0: even is 0
  EXPECT_EQ(fp32_to_fp16(0x1p-25f + 0x1p-40f), 0x0001);      // above the tie
  EXPECT_EQ(fp32_to_fp16(1.5f * 0x1p-24f), 0x0002);          // tie 1|2 -> 2
  EXPECT_EQ(fp32_to_fp16(2.5f * 0x1p-24f), 0x0002);          // tie 2|3 -> 2
  EXPECT_EQ(fp32_to_fp16(0x1p-14f - 0x1p-25f), 0x0400);      // tie 1023|1024 -> smallest normal
  EXPECT_EQ(fp32_to_fp16(0x1p-14f - 0x1p-24f), 0x03ff);      // largest subnormal
  EXPECT_EQ(fp32_to_fp16(-0x1p-24f), 0x8001);
  EXPECT_EQ(fp32_to_fp16(-0x1p-30f), 0x8000);                // underflow keeps the sign
  EXPECT_EQ(fp32_to_fp16(1e-45f), 0x0000);                   // fp32 subnormal
  EXPECT_EQ(fp16_to_fp32(0x0001), 0x1p-24f);
  EXPECT_EQ(fp16_to_fp32(0x83ff), -1023 * 0x1p-24f);
}

TEST(Fp16, NanStaysNan) {
  for (uint32_t bits : {0x7fc00000u, 0xffc00000u, 0x7f800001u, 0x7fbfffffu, 0xff800001u, 0x7fffffffu}) {
    const uint16_t h = fp32_to_fp16(std::bit_cast<float>(bits));
    EXPECT_TRUE(fp16_is_nan(h)) << std::hex << bits << " -> " << h;  // never turns into inf
    EXPECT_TRUE(std::isnan(fp16_to_fp32(h)));
  }
  EXPECT_TRUE(std::isnan(fp16_to_fp32(0x7c01)));
  EXPECT_TRUE(std::isnan(fp16_to_fp32(0xfe00)));
}

// --- bf16 ------------------------------------------------------------------------------------

uint16_t bf16_reference(float f) {
  if (std::isnan(f)) return 0x7fc0;
  if (std::isinf(f)) return static_cast<uint16_t>(std::bit_cast<uint32_t>(f) >> 16);
  const uint32_t bits = std::bit_cast<uint32_t>(f);
  const uint32_t lo = bits & 0xffff0000u;                // truncated toward zero
  const float down = std::bit_cast<float>(lo);
  const float up = std::bit_cast<float>(lo + 0x10000u);  // next bf16 away from zero (may be inf)
  const double dd = std::fabs(static_cast<double>(f) - down);
  // Distance to `up` computed from the grid step, so that up = inf still compares correctly.
  const double step = std::isinf(up) ? std::ldexp(1.0, 128) - std::fabs(static_cast<double>(down))
                                     : std::fabs(static_cast<double>(up) - down);
  const double du = step - dd;
  if (dd < du || (dd == du && ((lo >> 16) & 1u) == 0)) return static_cast<uint16_t>(lo >> 16);
  return static_cast<uint16_t>((lo + 0x10000u) >> 16);
}

TEST(Bf16, ExhaustiveRoundTripOfEveryBf16) {
  for (uint32_t i = 0; i < 65536; ++i) {
    const uint16_t b = static_cast<uint16_t>(i);
    const float f = bf16_to_fp32(b);
    if (std::isnan(f)) {
      ASSERT_TRUE(std::isnan(bf16_to_fp32(fp32_to_bf16(f)))) << std::hex << i;
      continue;
    }
    ASSERT_EQ(fp32_to_bf16(f), b) << std::hex << i;
  }
}

TEST(Bf16, MatchesIndependentRoundingOnRandomFloats) {
  std::mt19937 rng(4321);
  for (int i = 0; i < 1 << 20; ++i) {
    uint32_t bits = rng();
    if (i % 4 == 0) bits |= 0x7f000000u;  // near the overflow edge
    if (i % 4 == 1) bits = (bits & 0xffff0000u) | (0x7ff0u + rng() % 32u);  // near ties
    if (i % 4 == 2) bits = (bits & 0xffff0000u) | 0x8000u;               // exact ties
    const float f = std::bit_cast<float>(bits);
    if (std::isnan(f)) continue;
    ASSERT_EQ(fp32_to_bf16(f), bf16_reference(f)) << std::hex << bits;
  }
}

TEST(Bf16, SpecialCases) {
  EXPECT_EQ(fp32_to_bf16(1.0f), 0x3f80);
  EXPECT_EQ(fp32_to_bf16(std::bit_cast<float>(0x3f808000u)), 0x3f80);  // tie -> even
  EXPECT_EQ(fp32_to_bf16(std::bit_cast<float>(0x3f818000u)), 0x3f82);  // tie -> even (up)
  EXPECT_EQ(fp32_to_bf16(FLT_MAX), 0x7f80);                            // rounds up to inf
  EXPECT_EQ(fp32_to_bf16(-FLT_MAX), 0xff80);
  EXPECT_EQ(fp32_to_bf16(INFINITY), 0x7f80);
  EXPECT_EQ(fp32_to_bf16(std::bit_cast<float>(0x00008000u)), 0x0000);  // subnormal tie -> 0
  EXPECT_EQ(fp32_to_bf16(std::bit_cast<float>(0x00018000u)), 0x0002);
  // NaN stays NaN, including signalling NaNs whose payload sits in the truncated bits.
  for (uint32_t bits : {0x7fc00000u, 0x7f800001u, 0xff800001u, 0x7fffffffu}) {
    EXPECT_TRUE(std::isnan(bf16_to_fp32(fp32_to_bf16(std::bit_cast<float>(bits))))) << std::hex << bits;
  }
}

}  // namespace
}  // namespace kvbits
