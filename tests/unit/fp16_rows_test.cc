// fp32_to_fp16_row (SIMD) against the scalar fp32_to_fp16 (util/half.h): bit-identical for every
// non-NaN input. Inputs: values straddling every rounding boundary of fp16 (each fp16 value and
// the midpoints to its neighbours, +-1 ulp of fp32), subnormals, overflow, infinities, and random
// rows of every length up to 80 at 4 offsets (vector body and scalar tail).
#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <limits>
#include <random>
#include <vector>

#include "ops/fp16_rows.h"
#include "util/half.h"

namespace kvbits {
namespace {

void expect_same(const std::vector<float>& x, size_t offset, size_t n) {
  std::vector<uint16_t> got(n + 1, 0xAAAA);
  fp32_to_fp16_row(x.data() + offset, static_cast<int64_t>(n), got.data());
  for (size_t i = 0; i < n; ++i) {
    const float v = x[offset + i];
    if (std::isnan(v)) {
      EXPECT_TRUE(std::isnan(fp16_to_fp32(got[i]))) << "NaN in, not NaN out at " << i;
    } else {
      ASSERT_EQ(got[i], fp32_to_fp16(v)) << "value " << v << " bits " << std::bit_cast<uint32_t>(v);
    }
  }
  EXPECT_EQ(got[n], 0xAAAA) << "wrote past n = " << n;
}

TEST(Fp16Rows, EveryRoundingBoundary) {
  std::vector<float> x;
  for (uint32_t h = 0; h < 0x7c00u; ++h) {  // every finite non-negative fp16
    const float a = fp16_to_fp32(static_cast<uint16_t>(h));
    const float b = fp16_to_fp32(static_cast<uint16_t>(h + 1));  // 0x7c00 = +inf
    const float mid = std::isinf(b) ? 65520.0f : a + (b - a) / 2;  // 65520 rounds to inf
    for (const float v : {a, mid, std::nextafter(mid, 0.0f), std::nextafter(mid, INFINITY)}) {
      x.push_back(v);
      x.push_back(-v);
    }
  }
  for (const float v : {INFINITY, -INFINITY, 1e10f, -1e10f, std::numeric_limits<float>::denorm_min(),
                        std::numeric_limits<float>::min(), std::numeric_limits<float>::max(),
                        std::numeric_limits<float>::quiet_NaN(), -std::numeric_limits<float>::quiet_NaN()}) {
    x.push_back(v);
  }
  expect_same(x, 0, x.size());
}

TEST(Fp16Rows, RandomRowsAllLengthsAndOffsets) {
  std::mt19937 rng(5);
  std::normal_distribution<float> nd(0.0f, 4.0f);
  for (size_t n = 0; n <= 80; ++n) {
    for (size_t offset = 0; offset < 4; ++offset) {
      std::vector<float> x(n + offset);
      for (float& v : x) v = nd(rng) * std::exp2(static_cast<float>(static_cast<int>(rng() % 40) - 24));
      expect_same(x, offset, n);
    }
  }
}

}  // namespace
}  // namespace kvbits
