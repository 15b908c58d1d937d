// The per-token ops of ops/elementwise.h against double-precision formulas, with tolerances
// derived from the fp32 operations each op performs (u = 2^-24, the fp32 unit roundoff), plus
// the properties the model relies on (rope preserves norms and is the identity at position 0;
// log-softmax normalises, is shift invariant and maps -inf to -inf).
#include <gtest/gtest.h>

#include "test_random.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <vector>

#include "ops/elementwise.h"

namespace kvbits {
namespace {

constexpr double kU = 0x1p-24;
constexpr float kInf = std::numeric_limits<float>::infinity();

using testing::random_vector;

// --- rms_norm --------------------------------------------------------------------------------

TEST(RmsNorm, MatchesDoubleFormula) {
  // fp32 sum of n squares (positive terms): relative error <= gamma(n) ~ n u; /n, +eps, sqrt
  // (halves it), 1/x, and two products add ~5 u. Relative tolerance (n/2 + 8) u.
  uint32_t seed = 1;
  for (int64_t n : {1, 2, 3, 7, 31, 64, 576, 1000, 1536}) {
    for (float eps : {1e-5f, 1e-6f}) {
      const auto x = random_vector(n, seed++, -3.0f, 3.0f);
      const auto w = random_vector(n, seed++, 0.5f, 2.0f);
      std::vector<float> out(n);
      rms_norm(x.data(), w.data(), n, eps, out.data());
      double ss = 0.0;
      for (float v : x) ss += static_cast<double>(v) * v;
      const double scale = 1.0 / std::sqrt(ss / n + eps);
      const double rel = (n / 2.0 + 8.0) * kU;
      for (int64_t i = 0; i < n; ++i) {
        const double ref = x[i] * scale * w[i];
        EXPECT_NEAR(out[i], ref, rel * std::fabs(ref)) << "n=" << n << " i=" << i;
      }
    }
  }
}

TEST(RmsNorm, ZeroInputAndInPlace) {
  std::vector<float> x(64, 0.0f), w(64, 1.0f), out(64, -1.0f);
  rms_norm(x.data(), w.data(), 64, 1e-5f, out.data());
  for (float v : out) EXPECT_EQ(v, 0.0f);
  // In place (out == x) gives the same result as out of place.
  auto a = random_vector(100, 3, -1.0f, 1.0f);
  const auto wt = random_vector(100, 4, -1.0f, 1.0f);
  std::vector<float> b(100);
  rms_norm(a.data(), wt.data(), 100, 1e-6f, b.data());
  rms_norm(a.data(), wt.data(), 100, 1e-6f, a.data());
  EXPECT_EQ(a, b);
}

// --- rope ------------------------------------------------------------------------------------

// Error bound for pair k of the fp32 rope against exact angles theta_k = pos * base^(-2k/rot_dim).
// The kernel forms theta_k by k fp32 multiplications by ts = powf(base, -2/rot_dim): powf is
// within 1 ulp (2u), the rounded exponent -2/rot_dim adds ln(base) * 2/rot_dim * u, and each
// multiplication u, so |dtheta_k| <= theta_k * k * u * (3 + 2 ln(base)/rot_dim). cosf/sinf are
// within 1 ulp (<= u for values <= 1) and the 2x2 rotation adds 2 roundings of terms bounded by
// the pair norm r: per element |error| <= r * (dtheta_k + 6u). We allow 2x the angle term for
// the first-order approximations (1 + k u ... ~ 1).
double rope_pair_tol(double theta, int k, int rot_dim, float base, double r) {
  const double dtheta = theta * k * kU * (3.0 + 2.0 * std::log(base) / rot_dim);
  return r * (2.0 * dtheta + 6.0 * kU);
}

void rope_reference(std::vector<double>& x, int n_heads, int head_dim, int rot_dim, int64_t pos,
                    double base) {
  for (int h = 0; h < n_heads; ++h) {
    for (int i = 0; i < rot_dim; i += 2) {
      const double theta = static_cast<double>(pos) * std::pow(base, -static_cast<double>(i) / rot_dim);
      double* v = x.data() + h * head_dim + i;
      const double x0 = v[0], x1 = v[1];
      v[0] = x0 * std::cos(theta) - x1 * std::sin(theta);
      v[1] = x0 * std::sin(theta) + x1 * std::cos(theta);
    }
  }
}

TEST(Rope, MatchesDoubleFormulaAndPreservesPairNorms) {
  const struct { int n_heads, head_dim, rot_dim; } shapes[] = {{3, 64, 64}, {2, 64, 32}, {9, 64, 64}, {1, 128, 96}, {4, 8, 8}};
  uint32_t seed = 10;
  for (const auto& s : shapes) {
    for (float base : {10000.0f, 100000.0f}) {
      for (int64_t pos : {int64_t{1}, int64_t{2}, int64_t{7}, int64_t{100}, int64_t{1000}, int64_t{8191}}) {
        const auto x0 = random_vector(static_cast<size_t>(s.n_heads * s.head_dim), seed++, -2.0f, 2.0f);
        std::vector<float> x = x0;
        rope_normal(x.data(), s.n_heads, s.head_dim, s.rot_dim, pos, base);
        std::vector<double> ref(x0.begin(), x0.end());
        rope_reference(ref, s.n_heads, s.head_dim, s.rot_dim, pos, base);
        for (int h = 0; h < s.n_heads; ++h) {
          for (int i = 0; i < s.head_dim; i += 2) {
            const int64_t j = h * s.head_dim + i;
            if (i >= s.rot_dim) {  // partial rotation: the rest of the head is untouched
              EXPECT_EQ(x[j], x0[j]);
              EXPECT_EQ(x[j + 1], x0[j + 1]);
              continue;
            }
            const double r = std::hypot(static_cast<double>(x0[j]), static_cast<double>(x0[j + 1]));
            const double theta = pos * std::pow(static_cast<double>(base), -static_cast<double>(i) / s.rot_dim);
            const double tol = rope_pair_tol(theta, i / 2, s.rot_dim, base, r);
            EXPECT_NEAR(x[j], ref[j], tol) << "pos=" << pos << " h=" << h << " i=" << i << " base=" << base;
            EXPECT_NEAR(x[j + 1], ref[j + 1], tol) << "pos=" << pos << " h=" << h << " i=" << i;
            // |rotated pair| = r: cos^2 + sin^2 = 1 within ~2u, plus the rotation's roundings.
            const double r2 = std::hypot(static_cast<double>(x[j]), static_cast<double>(x[j + 1]));
            EXPECT_NEAR(r2, r, 8.0 * kU * r) << "pos=" << pos << " i=" << i;
          }
        }
      }
    }
  }
}

TEST(Rope, PositionZeroIsIdentity) {
  auto x = random_vector(3 * 64, 5, -4.0f, 4.0f);
  const auto x0 = x;
  rope_normal(x.data(), 3, 64, 64, 0, 10000.0f);
  EXPECT_EQ(x, x0);  // cos 0 = 1 and sin 0 = 0 exactly
}

TEST(Rope, DotProductDependsOnlyOnRelativePosition) {
  // q(m) . k(n) is a function of m - n: the property attention relies on (K is cached rotated).
  const int head_dim = 64;
  const auto q0 = random_vector(head_dim, 6, -1.0f, 1.0f);
  const auto k0 = random_vector(head_dim, 7, -1.0f, 1.0f);
  auto dot_at = [&](int64_t m, int64_t n) {
    auto q = q0, k = k0;
    rope_normal(q.data(), 1, head_dim, head_dim, m, 10000.0f);
    rope_normal(k.data(), 1, head_dim, head_dim, n, 10000.0f);
    double d = 0.0;
    for (int i = 0; i < head_dim; ++i) d += static_cast<double>(q[i]) * k[i];
    return d;
  };
  double mag = 0.0;
  for (int i = 0; i < head_dim; ++i) mag += std::fabs(q0[i]) * std::fabs(k0[i]);
  // Each rotated vector is within ~(dtheta + 6u) relative of exact for angles up to ~60 (pair
  // 0 at m = 60), dtheta = 0 there and tiny for later pairs: 1e-5 * sum|q||k| is ample.
  for (int64_t m : {3, 10, 60}) {
    EXPECT_NEAR(dot_at(m, 0), dot_at(m + 5, 5), 1e-5 * mag);
    EXPECT_NEAR(dot_at(m, 2), dot_at(m + 17, 19), 1e-5 * mag);
  }
}

// --- swiglu ----------------------------------------------------------------------------------

TEST(Swiglu, MatchesDoubleFormula) {
  // g / (1 + expf(-g)) * u: expf within 1 ulp (2u), the sum 1 + e^-g has no cancellation (u),
  // division and product u each: relative error <= 6u; we allow 8u. When e^-g overflows fp32
  // (g < -88.7) the result is -0 instead of ~g e^g, whose magnitude is below 1e-36: absolute
  // slack 1e-36.
  std::vector<float> g = random_vector(1000, 21, -20.0f, 20.0f);
  const std::vector<float> up = random_vector(1000, 22, -3.0f, 3.0f);
  for (float special : {0.0f, -0.0f, 1e-30f, -1e-30f, 88.0f, -88.0f, -89.0f, -100.0f, 100.0f, 1e30f, -1e30f}) {
    g.push_back(special);
  }
  std::vector<float> u2 = up;
  u2.resize(g.size(), 1.5f);
  std::vector<float> out = g;
  swiglu(out.data(), u2.data(), static_cast<int64_t>(g.size()));
  for (size_t i = 0; i < g.size(); ++i) {
    const double gd = g[i];
    const double ref = gd / (1.0 + std::exp(-gd)) * u2[i];
    ASSERT_TRUE(std::isfinite(out[i])) << "g=" << g[i];
    EXPECT_NEAR(out[i], ref, 8.0 * kU * std::fabs(ref) + 1e-36) << "g=" << g[i] << " up=" << u2[i];
  }
}

// --- log_softmax -----------------------------------------------------------------------------

// Absolute error bound of log_softmax's fp32 steps for element i: l_i - max rounds (u |l_i -
// max| <= u R), which moves log(sum) by <= u R; log(sum) -> fp32 (u |L|); max + L (u |lse|);
// l_i - lse (u |out_i|). Factor 2 for the first-order terms.
double log_softmax_tol(double R, double L, double lse, double out) {
  return 2.0 * kU * (R + std::fabs(L) + std::fabs(lse) + std::fabs(out)) + 1e-12;
}

struct LogSoftmaxRef {
  std::vector<double> out;
  double R = 0, L = 0, lse = 0;
};

LogSoftmaxRef log_softmax_reference(const std::vector<float>& x) {
  LogSoftmaxRef r;
  double mx = -INFINITY, mn = INFINITY;
  for (float v : x) {
    mx = std::max(mx, static_cast<double>(v));
    if (std::isfinite(v)) mn = std::min(mn, static_cast<double>(v));
  }
  double sum = 0.0;
  for (float v : x) sum += std::exp(v - mx);
  r.L = std::log(sum);
  r.lse = mx + r.L;
  r.R = mx - mn;
  for (float v : x) r.out.push_back(v - r.lse);
  return r;
}

TEST(LogSoftmax, MatchesDoubleAndNormalises) {
  uint32_t seed = 40;
  for (int64_t n : {1, 2, 3, 10, 1000, 49152}) {
    for (float spread : {1.0f, 10.0f, 30.0f}) {
      const auto x = random_vector(static_cast<size_t>(n), seed++, -spread, spread);
      std::vector<float> out(n);
      log_softmax(x.data(), n, out.data());
      const auto ref = log_softmax_reference(x);
      double psum = 0.0, max_tol = 0.0;
      for (int64_t i = 0; i < n; ++i) {
        const double tol = log_softmax_tol(ref.R, ref.L, ref.lse, ref.out[i]);
        max_tol = std::max(max_tol, tol);
        ASSERT_NEAR(out[i], ref.out[i], tol) << "n=" << n << " i=" << i;
        ASSERT_LE(out[i], 0.0f);
        psum += std::exp(static_cast<double>(out[i]));
      }
      // sum_i p_i e^{delta_i} with |delta_i| <= tol_i and sum p_i = 1.
      EXPECT_NEAR(psum, 1.0, 1.01 * max_tol) << "n=" << n;
    }
  }
}

TEST(LogSoftmax, ShiftInvariant) {
  // Logits on a 2^-6 grid in [-16, 16] and a shift of 1024 keep l + c exact in fp32, so the two
  // runs see identical differences l_i - max; they can differ only by the roundings of lse (at
  // magnitudes |lse| and |lse + c|) and of l_i - lse.
  std::mt19937 rng(50);
  std::uniform_int_distribution<int> q(-1024, 1024);
  std::vector<float> x(5000), xs(5000);
  for (size_t i = 0; i < x.size(); ++i) {
    x[i] = static_cast<float>(q(rng)) / 64.0f;
    xs[i] = x[i] + 1024.0f;
  }
  std::vector<float> a(x.size()), b(x.size());
  log_softmax(x.data(), static_cast<int64_t>(x.size()), a.data());
  log_softmax(xs.data(), static_cast<int64_t>(xs.size()), b.data());
  const auto ref = log_softmax_reference(x);
  for (size_t i = 0; i < x.size(); ++i) {
    const double tol = 4.0 * kU * (1024.0 + std::fabs(ref.lse) + std::fabs(ref.out[i]) + std::fabs(ref.L));
    ASSERT_NEAR(a[i], b[i], tol) << i;
  }
}

TEST(LogSoftmax, NegativeInfinityEntries) {
  std::vector<float> x = random_vector(100, 60, -5.0f, 5.0f);
  for (size_t i = 0; i < x.size(); i += 7) x[i] = -kInf;
  std::vector<float> out(x.size());
  log_softmax(x.data(), static_cast<int64_t>(x.size()), out.data());
  const auto ref = log_softmax_reference(x);
  double psum = 0.0;
  for (size_t i = 0; i < x.size(); ++i) {
    if (i % 7 == 0) {
      EXPECT_EQ(out[i], -kInf) << i;
      continue;
    }
    ASSERT_TRUE(std::isfinite(out[i])) << i;
    EXPECT_NEAR(out[i], ref.out[i], log_softmax_tol(ref.R, ref.L, ref.lse, ref.out[i])) << i;
    psum += std::exp(static_cast<double>(out[i]));
  }
  EXPECT_NEAR(psum, 1.0, 1e-5);
  // A single finite entry among -inf has probability 1.
  std::vector<float> one = {-kInf, 3.5f, -kInf};
  std::vector<float> o(3);
  log_softmax(one.data(), 3, o.data());
  EXPECT_EQ(o[0], -kInf);
  EXPECT_EQ(o[1], 0.0f);
  EXPECT_EQ(o[2], -kInf);
}

// --- add_in_place ----------------------------------------------------------------------------

TEST(AddInPlace, AddsElementwise) {
  auto x = random_vector(77, 70, -1.0f, 1.0f);
  const auto y = random_vector(77, 71, -1.0f, 1.0f);
  const auto x0 = x;
  add_in_place(x.data(), y.data(), 77);
  for (size_t i = 0; i < x.size(); ++i) EXPECT_EQ(x[i], x0[i] + y[i]);
}

// --- SIMD kernels against their scalar references ----------------------------------------------

// Every length up to 100 and the model's widths, at 4 offsets (vector body and scalar tail).
// rms_norm: each side is within (n/2 + 8) u of the exact value (MatchesDoubleFormula), so they
// differ by at most (n + 16) u relatively. swiglu: each within 8 u (+1e-36), so 16 u + 2e-36.
// add_in_place: one fp32 add either way, bit-identical.
TEST(ElementwiseSimd, MatchesScalarReferences) {
  uint32_t seed = 500;
  std::vector<int64_t> lengths;
  for (int64_t n = 1; n <= 100; ++n) lengths.push_back(n);
  for (int64_t n : {576, 1536, 2048}) lengths.push_back(n);
  for (const int64_t n : lengths) {
    for (int64_t off = 0; off < 4; ++off) {
      const auto x = random_vector(n + off, seed++, -4.0f, 4.0f);
      const auto w = random_vector(n + off, seed++, -2.0f, 2.0f);
      std::vector<float> a(n + off, 7.0f), b(n + off, 7.0f);
      rms_norm(x.data() + off, w.data() + off, n, 1e-5f, a.data() + off);
      rms_norm_ref(x.data() + off, w.data() + off, n, 1e-5f, b.data() + off);
      for (int64_t i = 0; i < n + off; ++i) {
        EXPECT_NEAR(a[i], b[i], (n + 16.0) * kU * std::fabs(b[i])) << "rms_norm n=" << n << " off=" << off << " i=" << i;
      }
      std::vector<float> g1 = random_vector(n + off, seed++, -30.0f, 30.0f), g2 = g1;
      swiglu(g1.data() + off, w.data() + off, n);
      swiglu_ref(g2.data() + off, w.data() + off, n);
      for (int64_t i = 0; i < n + off; ++i) {
        EXPECT_NEAR(g1[i], g2[i], 16.0 * kU * std::fabs(g2[i]) + 2e-36) << "swiglu n=" << n << " off=" << off << " i=" << i;
      }
      std::vector<float> y1 = x, y2 = x;
      add_in_place(y1.data() + off, w.data() + off, n);
      for (int64_t i = 0; i < n; ++i) y2[off + i] += w[off + i];
      EXPECT_EQ(y1, y2) << "add_in_place n=" << n << " off=" << off;
    }
  }
}

}  // namespace
}  // namespace kvbits
