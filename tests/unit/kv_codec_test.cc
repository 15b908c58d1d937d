// KV row codecs (ops/kv_codec.h) and the page layout (ops/kv_page.h).
//
// Quantization error bound: a group is coded against a range [m, m + L s] (L = 2^bits - 1,
// m and s in the row's metadata format: fp16 at 8 bits, E5M2 at 2 and 4): at 8 bits the full
// [min, max]; at 2 and 4 bits the clipped range with the
// smallest squared error (clip ratios 1 .. 0.5 about the centre, ratio 1 being min/max). Every
// value decodes to s c + m with c = clamp(round((x - m) / s)): inside the range the error is at
// most s/2 (plus fp32 rounding of the fma, 2^-20 |x|), outside it is the distance to the range.
// At 8 bits the range covers [min, max] up to fp16 rounding of m (2^-11 |min|) and of the step
// (L 2^-11 s at the top). The tests check exactly these, element by element, and that clipping
// never does worse in total squared error than the plain min/max code.
#include <gtest/gtest.h>

#include <bit>

#include <algorithm>
#include <cmath>
#include <limits>
#include <random>
#include <vector>

#include "hwy/targets.h"
#include "ops/kv_codec.h"
#include "ops/kv_group_codes.h"
#include "ops/kv_page.h"
#include "test_random.h"
#include "util/error.h"
#include "util/half.h"

namespace kvbits {
namespace {

// Squared error of the plain min/max code (the clip ratio 1 candidate), computed independently.
double minmax_sq_error(const float* x, int group, int bits) {
  float lo = INFINITY, hi = -INFINITY;
  for (int i = 0; i < group; ++i) {
    lo = std::min(lo, x[i]);
    hi = std::max(hi, x[i]);
  }
  const int L = (1 << bits) - 1;
  const float m = fp16_to_fp32(kv_meta_round(lo, bits));
  const float s = fp16_to_fp32(kv_meta_round((hi - m) / L, bits));
  double e = 0;
  for (int i = 0; i < group; ++i) {
    const float c = std::clamp(std::nearbyint(s > 0 ? (x[i] - m) / s : 0.0f), 0.0f, static_cast<float>(L));
    const double d = std::fma(s, c, m) - x[i];
    e += d * d;
  }
  return e;
}

TEST(KvCodec, RoundTripWithinDerivedBound) {
  for (int bits : {2, 4, 8}) {
    for (int group : {16, 32, 64}) {
      for (uint32_t seed = 1; seed <= 20; ++seed) {
        const float spread = std::ldexp(1.0f, static_cast<int>(seed % 9) - 4);  // 1/16 .. 16
        std::vector<float> x = testing::random_vector(128, seed * 7 + bits, -spread, spread * 0.5f);
        if (seed % 3 == 0) x[seed % 128] *= 8.0f;  // an outlier: clipping territory
        std::vector<uint8_t> codes(128);
        std::vector<uint16_t> scale(128 / group), minimum(128 / group);
        kv_quantize_ref(x.data(), 128, bits, group, codes.data(), scale.data(), minimum.data());
        std::vector<float> y(128);
        kv_dequantize_ref(codes.data(), 128, group, scale.data(), minimum.data(), y.data());
        for (int g = 0; g < 128 / group; ++g) {
          const double s = fp16_to_fp32(scale[g]), m = fp16_to_fp32(minimum[g]);
          const double top = m + ((1 << bits) - 1) * s;
          double sq = 0;
          for (int i = 0; i < group; ++i) {
            const int e = g * group + i;
            ASSERT_LT(codes[e], 1 << bits);
            const double outside = std::max({0.0, m - x[e], x[e] - top});
            const double bound = std::max(s / 2 * (1 + 0x1p-10), outside) + 0x1p-20 * std::fabs(x[e]) + 1e-30;
            ASSERT_LE(std::fabs(x[e] - y[e]), bound) << "bits " << bits << " group " << group << " seed " << seed << " element " << e;
            sq += (x[e] - y[e]) * (static_cast<double>(x[e]) - y[e]);
            if (bits == 8) {  // no clipping: the range covers every value up to fp16 rounding
              float lo = INFINITY, hi = -INFINITY;
              for (int j = 0; j < group; ++j) {
                lo = std::min(lo, x[g * group + j]);
                hi = std::max(hi, x[g * group + j]);
              }
              ASSERT_LE(outside, 0x1p-11 * std::fabs(lo) + 255 * 0x1p-11 * s + 1e-30);
            }
          }
          ASSERT_LE(sq, minmax_sq_error(x.data() + g * group, group, bits) * (1 + 1e-6) + 1e-30);
        }
      }
    }
  }
}

TEST(KvCodec, MetadataRoundingIsE5m2At2And4Bits) {
  EXPECT_EQ(kv_meta_round(1.0f, 8), fp32_to_fp16(1.0f));
  EXPECT_EQ(kv_meta_round(1.1f, 8), fp32_to_fp16(1.1f));
  for (int bits : {2, 4}) {
    EXPECT_EQ(kv_meta_round(1.0f, bits), 0x3c00);   // exactly representable
    EXPECT_EQ(kv_meta_round(1.1f, bits), 0x3c00);   // 1.1 -> 1.0 (steps of 0.25 in [1, 2))
    EXPECT_EQ(kv_meta_round(1.2f, bits), 0x3d00);   // -> 1.25
    EXPECT_EQ(kv_meta_round(-1.2f, bits), 0xbd00);
    EXPECT_EQ(kv_meta_round(1.125f, bits), 0x3c00);  // tie -> even mantissa (1.0)
    EXPECT_EQ(kv_meta_round(1.375f, bits), 0x3e00);  // tie -> even mantissa (1.5)
    EXPECT_EQ(kv_meta_round(1e9f, bits), 0x7b00);    // saturates at 57344, never infinity
    EXPECT_EQ(kv_meta_round(0.0f, bits), 0x0000);
    for (float x = -100.0f; x < 100.0f; x += 0.37f) {
      const uint16_t h = kv_meta_round(x, bits);
      EXPECT_EQ(h & 0xff, 0);
      EXPECT_LE(std::fabs(fp16_to_fp32(h) - x), 0.125 * std::fabs(x) + 1e-7);  // 2 mantissa bits
    }
  }
}

TEST(KvCodec, ConstantGroupDecodesExactly) {
  std::vector<float> x(64, 0.375f);
  std::vector<uint8_t> codes(64);
  uint16_t s, m;
  for (int bits : {2, 4, 8}) {
    kv_quantize_ref(x.data(), 64, bits, 64, codes.data(), &s, &m);
    EXPECT_EQ(fp16_to_fp32(s), 0.0f);
    std::vector<float> y(64);
    kv_dequantize_ref(codes.data(), 64, 64, &s, &m, y.data());
    for (float v : y) EXPECT_EQ(v, 0.375f);
  }
}

// A narrow range far from zero (and a constant row whose value is not representable) can have its
// minimum rounded above the range's top; the scale must still be >= 0 with a clear sign bit (the
// sign bit flags centred K rows), and every value must decode within one metadata step of itself.
TEST(KvCodec, ScaleIsNeverNegative) {
  std::mt19937 rng(5);
  std::uniform_real_distribution<float> base(-3000.0f, 3000.0f), frac(0.0f, 1.0f);
  int stepped = 0;
  for (int trial = 0; trial < 4000; ++trial) {
    const float b = trial % 3 == 0 ? base(rng) : base(rng) * 1e-3f;
    const float width = std::fabs(b) * (trial % 2 ? 1e-3f : 0.0f);  // narrow, or a constant row
    std::vector<float> x(32);
    for (float& v : x) v = b + width * frac(rng);
    for (int bits : {2, 4, 8}) {
      std::vector<uint8_t> codes(32);
      uint16_t s[2], m[2];
      kv_quantize_ref(x.data(), 32, bits, 16, codes.data(), s, m);
      std::vector<float> y(32);
      kv_dequantize_ref(codes.data(), 32, 16, s, m, y.data());
      for (int g = 0; g < 2; ++g) {
        ASSERT_EQ(s[g] & kKvCentredFlag, 0) << bits << " bits, row around " << b;
        if (fp16_to_fp32(m[g]) < *std::min_element(x.begin() + 16 * g, x.begin() + 16 * (g + 1)) - 0.07f * std::fabs(b)) {
          ++stepped;  // the minimum was stepped below a rounding that overshot the range
        }
      }
      // E5M2 steps are 25 % of the value at most; fp16 steps 2^-10.
      const float tol = (bits > 4 ? 2e-3f : 0.26f) * std::fabs(b) + width + 1e-6f;
      for (int i = 0; i < 32; ++i) ASSERT_NEAR(y[i], x[i], tol) << bits << " bits";
    }
  }
  EXPECT_GT(stepped, 0);  // the case occurs in this sample
}

TEST(KvCodec, NanInfAndHugeValuesGiveFiniteMetadata) {
  const float nan = std::numeric_limits<float>::quiet_NaN(), inf = std::numeric_limits<float>::infinity();
  const std::vector<std::vector<float>> cases = {
      {nan, 1.0f, -2.0f, 3.0f}, {inf, -inf, 0.5f, 0.25f}, {1e30f, -1e30f, 7.0f, 0.0f}, {nan, nan, nan, nan},
      {1e-30f, 2e-30f, 0.0f, 1e-40f}};
  for (const auto& c : cases) {
    std::vector<float> x;
    for (int r = 0; r < 4; ++r) x.insert(x.end(), c.begin(), c.end());  // 16 elements
    for (int bits : {2, 4, 8}) {
      std::vector<uint8_t> codes(16);
      uint16_t s, m;
      kv_quantize_ref(x.data(), 16, bits, 16, codes.data(), &s, &m);
      EXPECT_TRUE(std::isfinite(fp16_to_fp32(s)));
      EXPECT_TRUE(std::isfinite(fp16_to_fp32(m)));
      std::vector<float> y(16);
      kv_dequantize_ref(codes.data(), 16, 16, &s, &m, y.data());
      for (int i = 0; i < 16; ++i) {
        EXPECT_TRUE(std::isfinite(y[i]));
        EXPECT_LT(codes[i], 1 << bits);
        if (std::isfinite(x[i]) && std::fabs(x[i]) < 1000.0f && std::fabs(c[1]) < 1000.0f && std::fabs(c[0]) < 1000.0f) {
          EXPECT_NEAR(y[i], x[i], 1e-3f);  // small finite groups keep their values
        }
      }
    }
  }
}

// Key centering per row: kv_quantize_key_ref stores H (x - mean) only where that has the smaller
// squared error than H x, flags it in every scale, and kv_roundtrip then adds the mean back. The
// errors are compared in the model's basis (the Hadamard transform is orthonormal).
TEST(KvCodec, KeyCentringIsChosenPerRowByError) {
  std::mt19937 rng(11);
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  const int n = 64;
  std::vector<float> mean(n);
  for (float& m : mean) m = 6.0f * u(rng);
  int centred_rows = 0, plain_rows = 0;
  for (int bits : {2, 4, 8}) {
    for (int group : {32, 64}) {
      for (const bool rotate : {false, true}) {
        for (int row = 0; row < 40; ++row) {
          // Half the rows lie near the mean (centring wins), half near zero (centring loses).
          const bool near_mean = row % 2 == 0;
          std::vector<float> x(n);
          for (int i = 0; i < n; ++i) x[i] = (near_mean ? mean[i] : 0.0f) + 0.5f * u(rng);
          // Both candidates through the plain codec, errors in the model's basis.
          auto error_of = [&](const float* m) {
            std::vector<float> z(n);
            for (int i = 0; i < n; ++i) z[i] = x[i] - (m ? m[i] : 0.0f);
            std::vector<float> w(z);
            kv_roundtrip(w.data(), n, bits, group, rotate, nullptr);
            double e = 0.0;
            for (int i = 0; i < n; ++i) e += (static_cast<double>(w[i]) - z[i]) * (static_cast<double>(w[i]) - z[i]);
            return e;
          };
          const double e_plain = error_of(nullptr), e_centred = error_of(mean.data());
          std::vector<float> scratch(x);
          std::vector<uint8_t> codes(n);
          std::vector<uint16_t> sc(n / group), mn(n / group);
          const bool centred = kv_quantize_key_ref(scratch.data(), mean.data(), nullptr, n, bits, group, rotate, codes.data(),
                                                   sc.data(), mn.data());
          ASSERT_EQ(centred, e_centred < e_plain) << bits << " bits, row " << row;
          ASSERT_EQ(kv_row_centred(sc.data()), centred);
          for (uint16_t s : sc) ASSERT_EQ((s & kKvCentredFlag) != 0, centred);  // every group carries it
          (centred ? centred_rows : plain_rows)++;
          // The round trip decodes to the chosen form plus the mean where centred.
          std::vector<float> y(x);
          kv_roundtrip(y.data(), n, bits, group, rotate, mean.data());
          double e = 0.0;
          for (int i = 0; i < n; ++i) e += (static_cast<double>(y[i]) - x[i]) * (static_cast<double>(y[i]) - x[i]);
          ASSERT_NEAR(e, std::min(e_plain, e_centred), 1e-3 * std::min(e_plain, e_centred) + 1e-9);
          // Without a mean nothing is flagged.
          std::vector<float> plain(x);
          ASSERT_FALSE(kv_quantize_key_ref(plain.data(), nullptr, nullptr, n, bits, group, rotate, codes.data(), sc.data(), mn.data()));
          ASSERT_FALSE(kv_row_centred(sc.data()));
        }
      }
    }
  }
  EXPECT_GT(centred_rows, 0);
  EXPECT_GT(plain_rows, 0);
}

// Key channel weights: a weighted round trip is the plain round trip of w * x divided by w, the
// centred/plain choice is made on the weighted error, and with queries that weigh a few channels
// (Q_j large where the keys vary little) the weights of engine/key_means.h, (Q_j / K_j)^(1/4),
// lower the mean squared score error q . (k - k^) against no weights.
TEST(KvCodec, KeyWeightsRoundTripAndLowerTheScoreError) {
  std::mt19937 rng(12);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  const int n = 64;
  std::vector<float> kstd(n), qstd(n), w(n), mean(n);
  for (int j = 0; j < n; ++j) {
    kstd[j] = j % 4 == 0 ? 3.0f : 0.5f;   // keys vary most in every 4th channel...
    qstd[j] = j % 4 == 1 ? 3.0f : 0.3f;   // ...queries weigh others
    w[j] = std::pow(qstd[j] * qstd[j] / (kstd[j] * kstd[j]), 0.25f);
    mean[j] = 2.0f * nd(rng);
  }
  for (int bits : {2, 4, 8}) {
    for (const bool rotate : {false, true}) {
      double err_plain = 0.0, err_weighted = 0.0;
      for (int row = 0; row < 400; ++row) {
        std::vector<float> x(n), q(n);
        for (int j = 0; j < n; ++j) {
          x[j] = mean[j] + kstd[j] * nd(rng);
          q[j] = qstd[j] * nd(rng);
        }
        // Round trip with weights == plain round trip of w * (x - mean) (or w * x), / w, + mean.
        std::vector<float> y(x), scratch(x);
        std::vector<uint8_t> codes(n);
        std::vector<uint16_t> sc(1), mn(1);
        const bool centred =
            kv_quantize_key_ref(scratch.data(), mean.data(), w.data(), n, bits, 64, rotate, codes.data(), sc.data(), mn.data());
        kv_roundtrip(y.data(), n, bits, 64, rotate, mean.data(), w.data());
        auto weighted_error = [&](bool centre) {
          std::vector<float> z(n), zq;
          for (int j = 0; j < n; ++j) z[j] = w[j] * (x[j] - (centre ? mean[j] : 0.0f));
          zq = z;
          kv_roundtrip(zq.data(), n, bits, 64, rotate, nullptr, nullptr);
          double e = 0.0;
          for (int j = 0; j < n; ++j) e += (static_cast<double>(zq[j]) - z[j]) * (static_cast<double>(zq[j]) - z[j]);
          return std::pair{e, zq};
        };
        const auto [e_c, z_c] = weighted_error(true);
        const auto [e_p, z_p] = weighted_error(false);
        ASSERT_EQ(centred, e_c < e_p) << bits << " bits row " << row;
        const std::vector<float>& z = centred ? z_c : z_p;
        for (int j = 0; j < n; ++j) {
          const float expect = z[j] / w[j] + (centred ? mean[j] : 0.0f);
          ASSERT_NEAR(y[j], expect, 1e-5f * (1.0f + std::fabs(expect))) << bits << " bits row " << row << " ch " << j;
        }
        // Score errors with and without weights (both centred per row by their own choice).
        std::vector<float> u(x);
        kv_roundtrip(u.data(), n, bits, 64, rotate, mean.data(), nullptr);
        double sw = 0.0, su = 0.0;
        for (int j = 0; j < n; ++j) {
          sw += static_cast<double>(q[j]) * (y[j] - x[j]);
          su += static_cast<double>(q[j]) * (u[j] - x[j]);
        }
        err_weighted += sw * sw;
        err_plain += su * su;
      }
      // Theory for this case ((sum w^2 K)(sum Q / w^2) over (sum K)(sum Q)): 0.08; allow sampling
      // noise and the clip search.
      EXPECT_LT(err_weighted, 0.6 * err_plain) << bits << " bits rotate " << rotate;
    }
  }
}

// Sink-like rows: with a large mean, rows near it are not sink-like (centring shrinks their range),
// rows near zero or opposite to it are; with and without weights and rotation.
TEST(KvCodec, SinkLikeRowsLieFarFromTheMean) {
  std::mt19937 rng(13);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  const int n = 64;
  std::vector<float> mean(n), w(n);
  for (int j = 0; j < n; ++j) {
    mean[j] = 4.0f * nd(rng);
    w[j] = std::exp(0.5f * nd(rng));
  }
  for (const bool rotate : {false, true}) {
    for (const bool weighted : {false, true}) {
      for (int group : {32, 64}) {
        for (int row = 0; row < 30; ++row) {
          std::vector<float> near(n), zero(n), opposite(n);
          for (int j = 0; j < n; ++j) {
            near[j] = mean[j] + 0.5f * nd(rng);
            zero[j] = 0.5f * nd(rng);
            opposite[j] = -mean[j] + 0.5f * nd(rng);
          }
          const float* wp = weighted ? w.data() : nullptr;
          EXPECT_FALSE(kv_key_row_sink_like(near.data(), mean.data(), wp, n, group, rotate));
          EXPECT_TRUE(kv_key_row_sink_like(zero.data(), mean.data(), wp, n, group, rotate));
          EXPECT_TRUE(kv_key_row_sink_like(opposite.data(), mean.data(), wp, n, group, rotate));
        }
      }
    }
  }
}

// The flag bit is not part of the scale: kv_dequantize_ref decodes flagged and unflagged scales
// alike.
TEST(KvCodec, DequantizeIgnoresTheCentringFlag) {
  const uint8_t codes[16] = {0, 1, 2, 3, 0, 1, 2, 3, 0, 1, 2, 3, 0, 1, 2, 3};
  const uint16_t s = fp32_to_fp16(0.5f), m = fp32_to_fp16(-1.0f);
  const uint16_t flagged = static_cast<uint16_t>(s | kKvCentredFlag);
  float a[16], b[16];
  kv_dequantize_ref(codes, 16, 16, &s, &m, a);
  kv_dequantize_ref(codes, 16, 16, &flagged, &m, b);
  for (int i = 0; i < 16; ++i) {
    EXPECT_EQ(a[i], b[i]);
    EXPECT_EQ(a[i], -1.0f + 0.5f * codes[i]);
  }
}

// The SIMD group loop against its scalar reference. Codes must be equal byte for byte. The
// errors are sums of the same n double terms (each decoded value is an fp32 fma in both: a true
// FMA on the x86 targets these tests run on) in different orders; a sum of n >= 0 terms in double
// is within (n - 1) 2^-53 of the exact sum relative to it, so the two are within 2 n 2^-53.
TEST(KvGroupCodes, SimdEqualsReference) {
  std::mt19937 rng(4242);
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  const float specials[] = {NAN, INFINITY, -INFINITY, 1e30f, -1e30f, 65504.0f, -65504.0f, 0.0f, -0.0f, 7e4f};
  int cases = 0;
  for (const int levels : {3, 15, 255}) {
    for (int n = 1; n <= 131; n += (n < 20 ? 1 : 7)) {
      for (int offset = 0; offset < 4; ++offset) {
        for (const float spread : {1e-3f, 1.0f, 3e4f}) {
          std::vector<float> x(static_cast<size_t>(n + offset));
          for (auto& v : x) v = spread * u(rng);
          if (cases % 3 == 0) {
            for (int k = 0; k < 1 + n / 16; ++k) x[offset + rng() % n] = specials[rng() % std::size(specials)];
          }
          // m and s from the data's range (the codec's plain code), sometimes s = 0 (inv = 0).
          const float m = fp16_to_fp32(fp32_to_fp16(-spread));
          const float s = cases % 11 == 0 ? 0.0f : fp16_to_fp32(fp32_to_fp16(2.0f * spread / static_cast<float>(levels)));
          const float inv = s > 0.0f ? 1.0f / s : 0.0f;
          std::vector<uint8_t> a(static_cast<size_t>(n + offset), 0xAB), b = a;
          const double ea = kv_group_codes(x.data() + offset, n, levels, m, s, inv, a.data() + offset);
          const double eb = kv_group_codes_ref(x.data() + offset, n, levels, m, s, inv, b.data() + offset);
          ASSERT_EQ(a, b) << "levels " << levels << " n " << n << " offset " << offset << " spread " << spread;
          ASSERT_TRUE(std::isfinite(ea));
          ASSERT_LE(std::fabs(ea - eb), 2.0 * n * 0x1p-53 * eb) << "levels " << levels << " n " << n;
          ++cases;
        }
      }
    }
  }
  EXPECT_GT(cases, 700);
}

// The store's row quantizers (SIMD group loop) against the references: the same codes, scales,
// minimums and centring choices for random rows with outlier channels, NaN and Inf.
TEST(KvCodec, StoreQuantizerEqualsReference) {
  std::mt19937 rng(77);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  int centred = 0;
  for (const int bits : {2, 4, 8}) {
    for (const int group : {16, 32, 64}) {
      for (int trial = 0; trial < 40; ++trial) {
        const int n = 64;
        std::vector<float> x(n), mean(n), weight(n);
        for (int i = 0; i < n; ++i) {
          x[i] = nd(rng) * (i % 13 == 0 ? 20.0f : 1.0f) + 3.0f;
          mean[i] = 3.0f + 0.3f * nd(rng);
          weight[i] = 0.5f + std::fabs(nd(rng));
        }
        if (trial % 7 == 0) x[rng() % n] = NAN;
        if (trial % 9 == 0) x[rng() % n] = -INFINITY;
        uint8_t ca[64], cb[64];
        uint16_t sa[4], sb[4], ma[4], mb[4];
        const double ea = kv_quantize(x.data(), n, bits, group, ca, sa, ma);
        const double eb = kv_quantize_ref(x.data(), n, bits, group, cb, sb, mb);
        ASSERT_TRUE(std::equal(ca, ca + n, cb)) << "bits " << bits << " group " << group << " trial " << trial;
        ASSERT_TRUE(std::equal(sa, sa + n / group, sb));
        ASSERT_TRUE(std::equal(ma, ma + n / group, mb));
        ASSERT_LE(std::fabs(ea - eb), 2.0 * n * 0x1p-53 * eb);
        std::vector<float> ka = x, kb = x;
        const bool rotate = trial % 2 == 0;
        const float* w = trial % 3 == 0 ? weight.data() : nullptr;
        const bool ra = kv_quantize_key(ka.data(), mean.data(), w, n, bits, group, rotate, ca, sa, ma);
        const bool rb = kv_quantize_key_ref(kb.data(), mean.data(), w, n, bits, group, rotate, cb, sb, mb);
        ASSERT_EQ(ra, rb);
        centred += ra;
        ASSERT_TRUE(std::equal(ca, ca + n, cb));
        ASSERT_TRUE(std::equal(sa, sa + n / group, sb));
        ASSERT_TRUE(std::equal(ma, ma + n / group, mb));
      }
    }
  }
  EXPECT_GT(centred, 50);  // both branches of the centring choice were exercised
}

// The SIMD transform against the scalar butterflies: bit-identical (same additions in the same
// order; ops/hadamard.cc), on every compiled target (16-, 8- and 4-lane vectors, and rows shorter
// than a vector), for every supported size, random rows at several scales and rows with zeros,
// signed zeros, huge values and infinities.
TEST(Hadamard, SimdEqualsReferenceBitForBit) {
  struct Reset {
    ~Reset() { hwy::SetSupportedTargetsForTest(0); }
  } reset;
  for (int64_t target : hwy::SupportedAndGeneratedTargets()) {
    hwy::SetSupportedTargetsForTest(target);
    uint32_t seed = 900;
    for (int n = 1; n <= 1024; n *= 2) {
      for (const float scale : {1e-3f, 1.0f, 1e4f}) {
        std::vector<float> x = testing::random_vector(static_cast<size_t>(n), seed++, -scale, scale);
        if (n >= 8) {
          x[1] = 0.0f;
          x[2] = -0.0f;
          x[3] = 3e38f;
          x[5] = -3e38f;
          if (scale > 1.0f) x[7] = INFINITY;
        }
        std::vector<float> a = x, b = x;
        hadamard(a.data(), n);
        hadamard_ref(b.data(), n);
        for (int i = 0; i < n; ++i) {
          ASSERT_EQ(std::bit_cast<uint32_t>(a[i]), std::bit_cast<uint32_t>(b[i]))
              << hwy::TargetName(target) << " n " << n << " i " << i;
        }
      }
    }
  }
}

TEST(Hadamard, OrthonormalAndSelfInverse) {
  for (int n : {1, 2, 4, 16, 64, 128, 256}) {
    ASSERT_TRUE(hadamard_supported(n));
    std::vector<float> x = testing::random_vector(static_cast<size_t>(n), 100 + n, -1.0f, 1.0f);
    std::vector<float> y = x;
    hadamard(y.data(), n);
    double nx = 0, ny = 0;
    for (int i = 0; i < n; ++i) {
      nx += x[i] * x[i];
      ny += y[i] * y[i];
    }
    EXPECT_NEAR(nx, ny, 1e-5 * nx);  // norm preserved
    hadamard(y.data(), n);
    for (int i = 0; i < n; ++i) EXPECT_NEAR(y[i], x[i], 1e-6);  // H H = I
  }
  // First row of Sylvester H is all ones: element 0 is the scaled sum.
  std::vector<float> ones(64, 1.0f);
  hadamard(ones.data(), 64);
  EXPECT_NEAR(ones[0], 8.0f, 1e-6);
  for (int i = 1; i < 64; ++i) EXPECT_NEAR(ones[i], 0.0f, 1e-6);
  EXPECT_FALSE(hadamard_supported(96));
  EXPECT_FALSE(hadamard_supported(0));
}

// Every slot of every class reads back what was written, and writing a slot leaves all other
// bytes of the page untouched (the page is filled with random bytes first: a stray write or a
// wrong mask would change them).
TEST(KvPage, WriteReadRoundTripAndSlotIsolation) {
  std::mt19937 rng(5);
  for (int kb : {2, 4, 8, 16}) {
    for (int vb : {2, 4, 8, 16}) {
      for (int hd : {16, 64, 128}) {
        const int group = hd == 16 ? 16 : 32;
        const KvPageLayout layout({kb, hd, group}, {vb, hd, group}, 32, 2);
        // metadata per group: scale + minimum, 1 byte each at 2/4 bits, 2 at 8 bits, none at 16
        const auto meta = [&](int b) { return b == 16 ? 0 : (b <= 4 ? 2 : 4) * hd / group; };
        ASSERT_EQ(layout.token_bytes(), static_cast<size_t>(2 * (hd * kb / 8 + meta(kb) + hd * vb / 8 + meta(vb))));
        ASSERT_EQ(layout.page_bytes(), layout.token_bytes() * 32);
        std::vector<uint8_t> page(layout.page_bytes());
        for (auto& b : page) b = static_cast<uint8_t>(rng());
        for (const bool is_v : {false, true}) {
          const int bits = is_v ? vb : kb;
          for (int h = 0; h < 2; ++h) {
            for (int slot : {0, 5, 15, 16, 31}) {
              std::vector<uint8_t> before = page;
              std::vector<float> want(static_cast<size_t>(hd)), got(static_cast<size_t>(hd));
              if (bits == 16) {
                std::vector<uint16_t> row(static_cast<size_t>(hd));
                for (int e = 0; e < hd; ++e) {
                  row[e] = fp32_to_fp16(std::uniform_real_distribution<float>(-4, 4)(rng));
                  want[e] = fp16_to_fp32(row[e]);
                }
                kv_page_write_fp16(layout, page.data(), is_v, h, slot, row.data());
              } else {
                std::vector<uint8_t> codes(static_cast<size_t>(hd));
                std::vector<uint16_t> s(static_cast<size_t>(hd / group)), m(s.size());
                for (auto& c : codes) c = static_cast<uint8_t>(rng() % (1u << bits));
                for (size_t g = 0; g < s.size(); ++g) {
                  s[g] = kv_meta_round(0.1f * (g + 1), bits);
                  m[g] = kv_meta_round(-0.5f * g, bits);
                }
                kv_page_write_codes(layout, page.data(), is_v, h, slot, codes.data(), s.data(), m.data());
                kv_dequantize_ref(codes.data(), hd, group, s.data(), m.data(), want.data());
              }
              kv_page_read_row(layout, page.data(), is_v, h, slot, got.data());
              for (int e = 0; e < hd; ++e) ASSERT_EQ(got[e], want[e]) << kb << "/" << vb << " hd " << hd << " e " << e;
              // Only bytes of this (is_v, h, slot) may change: re-reading other slots is unchanged.
              for (int other : {0, 1, 14, 17, 30}) {
                if (other == slot) continue;
                std::vector<float> a(static_cast<size_t>(hd)), b(static_cast<size_t>(hd));
                kv_page_read_row(layout, before.data(), is_v, h, other, a.data());
                kv_page_read_row(layout, page.data(), is_v, h, other, b.data());
                for (int e = 0; e < hd; ++e) {
                  ASSERT_TRUE((std::isnan(a[e]) && std::isnan(b[e])) || a[e] == b[e]) << "slot " << slot << " disturbed " << other;
                }
              }
              size_t changed_outside = 0;
              for (size_t i = 0; i < page.size(); ++i) {
                const bool in_block = i >= layout.codes(is_v, h) &&
                                      i < layout.codes(is_v, h) + layout.format(is_v).row_bytes() * 32;
                if (!in_block && page[i] != before[i]) ++changed_outside;
              }
              ASSERT_EQ(changed_outside, 0u);
            }
          }
        }
      }
    }
  }
}

TEST(KvPage, RejectsBadGeometry) {
  EXPECT_THROW(KvPageLayout({3, 64, 32}, {4, 64, 32}, 64, 3), Error);
  EXPECT_THROW(KvPageLayout({4, 72, 24}, {4, 72, 24}, 64, 3), Error);  // head_dim not a multiple of 16
  EXPECT_THROW(KvPageLayout({4, 64, 24}, {4, 64, 24}, 64, 3), Error);  // group not a multiple of 16
  EXPECT_THROW(KvPageLayout({4, 64, 48}, {4, 64, 48}, 64, 3), Error);  // group does not divide 64
  EXPECT_THROW(KvPageLayout({4, 64, 32}, {4, 64, 32}, 40, 3), Error);  // page not a multiple of 16
  EXPECT_NO_THROW(KvPageLayout({16, 64, 0}, {16, 64, 0}, 64, 3));
}

}  // namespace
}  // namespace kvbits
