#pragma once
// A row of logits shaped like SmolLM2's (49152 entries, normal with the given spread), fixed seed:
// the input of the benchmarks that scan a logits row.
#include <random>
#include <vector>

namespace kvbits::bench {

inline std::vector<float> logits_row(float sigma) {
  std::vector<float> row(49152);
  std::mt19937 rng(5);
  std::normal_distribution<float> nd(0.0f, sigma);
  for (float& x : row) x = nd(rng);
  return row;
}

}  // namespace kvbits::bench
