// softmax_stats (SIMD, float exp and per-lane float sums) against softmax_stats_ref (double),
// and the reference against closed forms.
//
// Tolerance: the SIMD sum z = sum exp(x - max) adds ~n / 16 positive float terms per lane, each
// with a ~1-ulp exp: relative error <= (n / 16 + 2) 2^-24 in the worst case, ~3k * 6e-8 ~ 2e-4 at
// a 49152-token vocabulary; lse = max + log z then moves by the same amount in nats, entropy
// (log z - zx / z) by about twice that relative to (1 + its size), confidence 1 / z by the
// relative error of z. We allow 4 (n / 16 + 2) 2^-24 (+1e-7): the worst case with room for
// the zx term, still ~100x below what a wrong max, a dropped tail or a lane bug would give.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

#include "ops/softmax_stats.h"

namespace kvbits {
namespace {

void expect_close(const std::vector<float>& buf, size_t offset, size_t n, const char* what) {
  const std::span<const float> row(buf.data() + offset, n);
  const SoftmaxStats ref = softmax_stats_ref(row);
  const SoftmaxStats got = softmax_stats(row);
  const double rel = 4.0 * (static_cast<double>(n) / 16.0 + 2.0) * 0x1p-24 + 1e-7;
  EXPECT_NEAR(got.lse, ref.lse, rel * (1.0 + std::fabs(ref.lse))) << what << " n " << n << " offset " << offset;
  EXPECT_NEAR(got.entropy, ref.entropy, rel * (1.0 + ref.entropy)) << what << " n " << n << " offset " << offset;
  EXPECT_NEAR(got.confidence, ref.confidence, rel * ref.confidence) << what << " n " << n << " offset " << offset;
  EXPECT_EQ(log_sum_exp(row), got.lse) << what << " n " << n << " offset " << offset;  // the same kernel
}

TEST(SoftmaxStats, SimdMatchesDoubleReference) {
  std::mt19937 rng(11);
  for (const size_t n : {1, 2, 3, 15, 16, 17, 31, 32, 33, 63, 100, 1000, 4097, 49152}) {
    for (size_t offset = 0; offset < 4; ++offset) {
      std::vector<float> buf(n + offset);
      // Logits like a language model's (scale ~3-10), flat ones, and one dominant token.
      for (const float scale : {0.1f, 3.0f, 10.0f}) {
        std::normal_distribution<float> nd(0.0f, scale);
        for (float& x : buf) x = nd(rng);
        expect_close(buf, offset, n, "normal");
      }
      for (float& x : buf) x = 0.5f;
      expect_close(buf, offset, n, "constant");
      buf[offset + (n - 1) / 2] = 60.0f;  // p ~ 1, the others underflow to ~e^-60
      expect_close(buf, offset, n, "peaked");
    }
  }
}

TEST(SoftmaxStats, ReferenceMatchesClosedForms) {
  // n equal logits c: p = 1/n, lse = c + log n, entropy = log n, confidence = 1/n.
  for (const size_t n : {1, 7, 49152}) {
    const std::vector<float> row(n, -3.25f);
    const SoftmaxStats s = softmax_stats_ref(row);
    EXPECT_NEAR(s.lse, -3.25 + std::log(static_cast<double>(n)), 1e-12);
    EXPECT_NEAR(s.entropy, std::log(static_cast<double>(n)), 1e-12);
    EXPECT_NEAR(s.confidence, 1.0 / static_cast<double>(n), 1e-15);
  }
  // Two logits a, b: p = sigmoid(a - b).
  const std::vector<float> two{2.0f, -1.0f};
  const double p = 1.0 / (1.0 + std::exp(-3.0));
  const SoftmaxStats s = softmax_stats_ref(two);
  EXPECT_NEAR(s.confidence, p, 1e-12);
  EXPECT_NEAR(s.entropy, -(p * std::log(p) + (1 - p) * std::log(1 - p)), 1e-12);
  EXPECT_NEAR(s.lse, 2.0 + std::log(1.0 + std::exp(-3.0)), 1e-12);
}

}  // namespace
}  // namespace kvbits
