// SIMD attention over the FP16 cache against the scalar double-precision reference, over many
// cache lengths (including chunk and tile boundaries), GQA group sizes and query counts.
//
// Tolerance: both read the same fp16 K/V; the kernel accumulates in fp32 with an online softmax.
// With |q|,|k|,|v| <= 1 and head_dim 64, scores are bounded by 8 and fp32 relative error of sums
// of a few thousand terms stays below ~1e-5; outputs are convex combinations of V rows (|v| <= 1),
// so 1e-4 absolute is a safe, still-sharp bound (a wrong weight or a dropped key shifts outputs by
// ~1/n_keys >= 1e-4 for the lengths tested, and by far more for short caches).
#include <gtest/gtest.h>

#include <random>

#include "ops/attention.h"
#include "util/half.h"

namespace kvbits {
namespace {

struct Case {
  int n_heads, n_kv_heads, head_dim;
};

void run_case(const Case& c, int64_t n_keys_max, int64_t n_queries, ThreadPool& pool, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  const int64_t ctx = n_keys_max + 3;  // stride larger than the keys used
  std::vector<uint16_t> k(static_cast<size_t>(c.n_kv_heads * ctx * c.head_dim));
  std::vector<uint16_t> v(k.size());
  for (auto& x : k) x = fp32_to_fp16(u(rng));
  for (auto& x : v) x = fp32_to_fp16(u(rng));
  const int64_t qdim = static_cast<int64_t>(c.n_heads) * c.head_dim;
  std::vector<float> q(static_cast<size_t>(n_queries * qdim));
  for (auto& x : q) x = 4.0f * u(rng);  // sharper softmax than uniform
  std::vector<int64_t> n_keys(static_cast<size_t>(n_queries));
  for (int64_t i = 0; i < n_queries; ++i) n_keys[i] = n_keys_max - (n_queries - 1 - i);  // causal chunk
  Fp16CacheLayerView view{k.data(), v.data(), ctx};
  AttentionShape shape{c.n_heads, c.n_kv_heads, c.head_dim};
  std::vector<float> out(q.size(), -7.0f), ref(q.size(), -9.0f);
  AttentionScratch scratch;
  attention_fp16(shape, q.data(), n_queries, n_keys.data(), view, out.data(), pool, scratch);
  attention_fp16_ref(shape, q.data(), n_queries, n_keys.data(), view, ref.data());
  for (size_t i = 0; i < out.size(); ++i) {
    ASSERT_NEAR(out[i], ref[i], 1e-4) << "heads " << c.n_heads << "/" << c.n_kv_heads << " dim " << c.head_dim
                                      << " keys " << n_keys_max << " queries " << n_queries << " at " << i;
  }
}

TEST(Attention, MatchesReferenceAcrossLengthsAndGroups) {
  ThreadPool pool(2);
  const Case cases[] = {{9, 3, 64}, {4, 4, 64}, {8, 2, 32}, {15, 5, 64}, {2, 1, 128}};
  uint32_t seed = 1;
  for (const Case& c : cases) {
    for (int64_t n : {1, 2, 7, 31, 32, 33, 63, 64, 65, 200, 511, 512, 513, 1025, 2100}) {
      run_case(c, n, 1, pool, seed++);
      if (n >= 5) run_case(c, n, 5, pool, seed++);
    }
  }
}

TEST(Attention, SingleThreadEqualsMultiThread) {
  ThreadPool one(1), two(2);
  // Same inputs, different pools: results must agree exactly for a fixed chunking.
  run_case({9, 3, 64}, 1500, 1, one, 77);
  run_case({9, 3, 64}, 1500, 1, two, 77);
}

}  // namespace
}  // namespace kvbits
