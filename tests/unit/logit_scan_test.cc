// The SIMD scans of ops/logit_scan.h against their scalar references: every length 0-200 and
// 49152 (the SmolLM2 vocabulary) at offsets 0-3 from an aligned base, random values with planted
// ties, NaNs, infinities and signed zeros, on every SIMD target compiled in. Exact comparison:
// the results are indices, counts and values copied or compared, never computed.
#include "ops/logit_scan.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <vector>

#include "hwy/targets.h"
#include "test_random.h"

namespace kvbits {
namespace {

constexpr float kInf = std::numeric_limits<float>::infinity();
constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();

// Runs check() once per compiled SIMD target this CPU supports (the dispatcher would pick only
// the best one).
template <class Check>
void on_every_target(const Check& check) {
  struct Reset {
    ~Reset() { hwy::SetSupportedTargetsForTest(0); }
  } reset;
  for (int64_t target : hwy::SupportedAndGeneratedTargets()) {
    SCOPED_TRACE(hwy::TargetName(target));
    hwy::SetSupportedTargetsForTest(target);
    check();
  }
}

std::vector<int64_t> lengths() {
  std::vector<int64_t> n;
  for (int64_t i = 0; i <= 200; ++i) n.push_back(i);
  n.push_back(49152);
  return n;
}

TEST(MaxIndex, MatchesReferenceOnRandomRows) {
  on_every_target([] {
    uint32_t seed = 1;
    for (int64_t n : lengths()) {
      for (int offset = 0; offset < 4; ++offset) {
        std::vector<float> buf = testing::random_vector(static_cast<size_t>(n + offset), seed++, -20.0f, 20.0f);
        std::span<const float> x(buf.data() + offset, static_cast<size_t>(n));
        ASSERT_EQ(max_index(x), max_index_ref(x)) << "n " << n << " offset " << offset;
        if (n > 0) {
          ASSERT_GE(max_index(x), 0);
        }
      }
    }
  });
}

TEST(MaxIndex, TiesNaNsInfinitiesAndZeros) {
  on_every_target([] {
    std::mt19937 rng(7);
    // Small value sets make ties common; NaN must be skipped wherever it lies.
    const std::vector<std::vector<float>> alphabets = {
        {1.0f, 2.0f, 2.0f, kNaN},
        {kNaN, -kInf, -1.0f},
        {-0.0f, 0.0f, kNaN, -5.0f},
        {kInf, 3.0f, kNaN, kInf},
        {-kInf, kNaN},
        {kNaN},
        {0.0f, -0.0f},
        {1e38f, -1e38f, 1e-45f},
    };
    for (const auto& alphabet : alphabets) {
      std::uniform_int_distribution<size_t> pick(0, alphabet.size() - 1);
      for (int64_t n : lengths()) {
        for (int offset = 0; offset < 4; ++offset) {
          std::vector<float> buf(static_cast<size_t>(n + offset));
          for (float& v : buf) v = alphabet[pick(rng)];
          std::span<const float> x(buf.data() + offset, static_cast<size_t>(n));
          ASSERT_EQ(max_index(x), max_index_ref(x)) << "n " << n << " offset " << offset;
        }
      }
    }
  });
}

TEST(MaxIndex, EdgeCases) {
  on_every_target([] {
    EXPECT_EQ(max_index({}), -1);
    const std::vector<float> all_nan(100, kNaN);
    EXPECT_EQ(max_index(all_nan), -1);
    std::vector<float> one_valid(100, kNaN);
    one_valid[77] = -kInf;
    EXPECT_EQ(max_index(one_valid), 77);
    std::vector<float> last(49152, 0.0f);
    last.back() = 1.0f;
    EXPECT_EQ(max_index(last), 49151);
    std::vector<float> ties(1000, 3.0f);
    EXPECT_EQ(max_index(ties), 0);
    // NaNs in the last vectors of the row, after the maximum (x86's max returns its second
    // operand when either is NaN, so an unmasked running maximum would end as NaN).
    for (int64_t n : {64, 65, 128, 200}) {
      std::vector<float> tail_nan(static_cast<size_t>(n), 1.0f);
      tail_nan[5] = 2.0f;
      for (int64_t i = n / 2; i < n; ++i) tail_nan[static_cast<size_t>(i)] = kNaN;
      EXPECT_EQ(max_index(tail_nan), 5) << "n " << n;
    }
    // The reference itself on a hand-checked row.
    const std::vector<float> row = {kNaN, -1.0f, 4.0f, kNaN, 4.0f, 2.0f};
    EXPECT_EQ(max_index_ref(row), 2);
    EXPECT_EQ(max_index(row), 2);
  });
}

// The three scans behind the sampler, against their references on every target: rows with NaN,
// +-inf and ties, thresholds at, between and beyond the values.
TEST(LogitScan, ClearNanMaxCountAndIndicesMatchReference) {
  on_every_target([] {
    std::mt19937 rng(11);
    std::uniform_int_distribution<int> kind(0, 9);
    std::uniform_real_distribution<float> u(-10.0f, 10.0f);
    for (int64_t n : lengths()) {
      for (int offset = 0; offset < 4; ++offset) {
        std::vector<float> buf(static_cast<size_t>(n + offset));
        for (float& v : buf) {
          const int k = kind(rng);
          v = k == 0 ? kNaN : k == 1 ? -kInf : k == 2 ? kInf : k == 3 ? 2.5f : u(rng);
        }
        std::vector<float> a(buf.begin() + offset, buf.end()), b = a;
        const float ma = clear_nan_max(std::span<float>(buf.data() + offset, static_cast<size_t>(n)));
        const float mb = clear_nan_max_ref(b);
        ASSERT_EQ(ma, mb) << "n " << n;
        for (int64_t i = 0; i < n; ++i) {
          const float got = buf[static_cast<size_t>(offset + i)];
          ASSERT_FALSE(std::isnan(got));
          ASSERT_EQ(got, b[static_cast<size_t>(i)]) << "n " << n << " i " << i;
        }
        std::span<const float> x(buf.data() + offset, static_cast<size_t>(n));
        for (float t : {-kInf, std::numeric_limits<float>::lowest(), -3.0f, 0.0f, 2.5f, 9.99f, kInf}) {
          ASSERT_EQ(count_at_least(x, t), count_at_least_ref(x, t)) << "n " << n << " t " << t;
          std::vector<int32_t> got, want;
          indices_at_least(x, t, got);
          indices_at_least_ref(x, t, want);
          ASSERT_EQ(got, want) << "n " << n << " t " << t;
        }
      }
    }
  });
  EXPECT_EQ(clear_nan_max(std::span<float>()), -kInf);
  std::vector<float> nans(40, kNaN);
  EXPECT_EQ(count_at_least(nans, -kInf), 0);  // NaN is never >= anything
  EXPECT_EQ(clear_nan_max(nans), -kInf);
  EXPECT_EQ(count_at_least(nans, -kInf), 40);  // now -inf
}

}  // namespace
}  // namespace kvbits
