#pragma once
// Fixed-seed random inputs shared by the unit tests.
#include <cstdint>
#include <random>
#include <vector>

namespace kvbits::testing {

// n floats uniform in [lo, hi) from std::mt19937(seed).
inline std::vector<float> random_vector(size_t n, uint32_t seed, float lo, float hi) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> u(lo, hi);
  std::vector<float> v(n);
  for (auto& x : v) x = u(rng);
  return v;
}

}  // namespace kvbits::testing
