// The attention kernels' 2^x forms (ops/attention_kernels.cc Exp2, attention_vnni-inl.h Exp2Ps and
// Exp2PsCoarse) against std::exp2 in double, on every compiled target. The softmax feeds them
// x = score - max <= 0 in base-2 units; below their cut-offs (-126 for Exp2, -125 for the VNNI
// forms, where 2^x would be subnormal) and for NaN they must give exactly 0, -inf (padding lanes)
// included. The attention tests (attention_test.cc) cannot see errors this small: their tolerance
// allows for the int8 rounding of the V weights, ~1/254 of a step's largest weight.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <limits>
#include <random>
#include <vector>

#include "backend/fp_env.h"
#include "hwy/targets.h"
#include "ops/attention.h"
#include "ops/attention_detail.h"

namespace kvbits {
namespace {

struct Form {
  int id;
  const char* name;
  float cutoff;     // x below it (and NaN) gives 0
  double max_rel;   // bound on |out / 2^x - 1| for x in [cutoff, 0]
};

// Bounds: the polynomial's own relative error plus fp32 rounding of the few operations after it
// (each <= 2^-24 ~ 6e-8 relative, the table's entries included).
// - Exp2: Cephes' exp2f polynomial, ~2e-7 with its rounding (comment at Exp2): 3e-7.
// - Exp2Ps: table entry (<= 6e-8) times a Taylor term (< 1e-8) with ~3 roundings: 2.5e-7.
// - Exp2PsCoarse: the degree-3 fit's 7.48e-5 (Remez, attention_vnni-inl.h) + ~3 roundings: 7.7e-5.
const Form kForms[] = {{0, "Exp2", -126.0f, 3e-7}, {1, "Exp2Ps", -125.0f, 2.5e-7}, {2, "Exp2PsCoarse", -125.0f, 7.7e-5}};

// Exp2PsCoarseFull (form 3): Exp2PsCoarse without its range mask, for full steps, whose lanes are
// never -inf; the driver runs it under FlushDenormalsScope (backend/fp_env.h).
TEST(AttentionExp2, TheUnmaskedCoarseFormMatchesTheMaskedOneAndFlushesBelowTheNormalRange) {
  std::vector<float> x;
  std::mt19937 rng(49);
  std::uniform_real_distribution<float> wide(-200.0f, 0.0f);
  for (int i = 0; i < (1 << 16); ++i) x.push_back(wide(rng));
  for (float v : {0.0f, -0.0f, -125.0f, -125.5f, -126.0f, -126.5f, -127.0f, -149.0f, -150.0f, -1e30f}) x.push_back(v);
  while (x.size() % 16 != 0) x.push_back(-3.0f);
  std::vector<float> masked(x.size()), full(x.size());
  {
    const FlushDenormalsScope flush_denormals;
    if (!attention_detail::softmax_exp2(3, x.data(), x.size(), full.data())) {
      GTEST_SKIP() << "no VNNI kernel on this machine (" << attention_target_name() << ")";
    }
  }
  ASSERT_TRUE(attention_detail::softmax_exp2(2, x.data(), x.size(), masked.data()));
  for (size_t i = 0; i < x.size(); ++i) {
    if (x[i] >= -125.0f) {
      ASSERT_EQ(full[i], masked[i]) << "x = " << x[i];  // the same operations on the same values
    } else if (x[i] < -126.0f) {
      ASSERT_EQ(full[i], 0.0f) << "x = " << x[i];  // subnormal results flushed
    } else if (full[i] != 0.0f) {  // [-126, -125): normal, within the bound
      ASSERT_NEAR(full[i] / std::exp2(static_cast<double>(x[i])), 1.0, 7.7e-5) << "x = " << x[i];
    } else {  // or flushed where the polynomial's < 1 factor took it below 2^-126
      ASSERT_LT(x[i], -125.99f);
    }
  }
}

std::vector<float> inputs() {
  std::vector<float> x;
  std::mt19937 rng(20261207);
  std::uniform_real_distribution<float> wide(-130.0f, 0.0f), near(-2.0f, 0.0f);
  for (int i = 0; i < (1 << 16); ++i) x.push_back(wide(rng));
  for (int i = 0; i < (1 << 16); ++i) x.push_back(near(rng));
  // Rounding boundaries of n (k +- 1/2, k +- 1/32 for the table) and the cut-offs.
  for (int k = 0; k <= 127; ++k) {
    for (float d : {0.0f, 0.5f, -0.5f, 1.0f / 32, -1.0f / 32}) {
      const float v = -static_cast<float>(k) + d;
      x.push_back(v);
      x.push_back(std::nextafter(v, 0.0f));
      x.push_back(std::nextafter(v, -200.0f));
    }
  }
  for (float v : {0.0f, -0.0f, -1e-30f, -1e-7f, -125.0f, -126.0f, -127.0f, -1e30f}) x.push_back(v);
  x.push_back(-std::numeric_limits<float>::infinity());
  x.push_back(std::numeric_limits<float>::quiet_NaN());
  while (x.size() % 16 != 0) x.push_back(-3.0f);
  return x;
}

TEST(AttentionExp2, EveryFormWithinItsBoundOfExp2) {
  const std::vector<float> x = inputs();
  struct Reset {
    ~Reset() { hwy::SetSupportedTargetsForTest(0); }
  } reset;
  int checked = 0;
  for (int64_t target : hwy::SupportedAndGeneratedTargets()) {
    hwy::SetSupportedTargetsForTest(target);
    ASSERT_STREQ(attention_target_name(), hwy::TargetName(target));
    for (const Form& f : kForms) {
      std::vector<float> out(x.size(), -1.0f);
      if (!attention_detail::softmax_exp2(f.id, x.data(), x.size(), out.data())) {
        // Only the VNNI forms may be missing, and only off AVX3_DL.
        EXPECT_TRUE(f.id != 0 && target != HWY_AVX3_DL) << f.name << " on " << hwy::TargetName(target);
        continue;
      }
      ++checked;
      double worst = 0.0;
      float worst_x = 0.0f;
      for (size_t i = 0; i < x.size(); ++i) {
        if (std::isnan(x[i]) || x[i] < f.cutoff) {
          ASSERT_EQ(out[i], 0.0f) << f.name << " on " << hwy::TargetName(target) << " at x = " << x[i];
          continue;
        }
        const double ref = std::exp2(static_cast<double>(x[i]));
        const double rel = std::fabs(out[i] / ref - 1.0);
        if (rel > worst) worst = rel, worst_x = x[i];
      }
      EXPECT_LE(worst, f.max_rel) << f.name << " on " << hwy::TargetName(target) << " at x = " << worst_x;
      std::printf("%-12s %-8s max relative error %.3g at x = %.9g\n", f.name, hwy::TargetName(target), worst,
                  worst_x);
    }
  }
  EXPECT_GT(checked, 0);
}

}  // namespace
}  // namespace kvbits
