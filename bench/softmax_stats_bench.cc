// Google Benchmark: softmax statistics of one SmolLM2 logits row (49152 entries), the controller
// features' per-token cost (ops/softmax_stats.h): the double reference against the SIMD kernel.
//
//   ./build/bench/kvbits_kernel_bench --benchmark_filter=SoftmaxStats
#include <benchmark/benchmark.h>

#include <random>
#include <vector>

#include "ops/softmax_stats.h"

namespace kvbits {
namespace {

std::vector<float> logits_row() {
  std::vector<float> row(49152);
  std::mt19937 rng(5);
  std::normal_distribution<float> nd(0.0f, 4.0f);
  for (float& x : row) x = nd(rng);
  return row;
}

void BM_SoftmaxStatsRef(benchmark::State& state) {
  const std::vector<float> row = logits_row();
  for (auto _ : state) benchmark::DoNotOptimize(softmax_stats_ref(row));
}
BENCHMARK(BM_SoftmaxStatsRef)->Unit(benchmark::kMicrosecond);

void BM_SoftmaxStats(benchmark::State& state) {
  const std::vector<float> row = logits_row();
  for (auto _ : state) benchmark::DoNotOptimize(softmax_stats(row));
}
BENCHMARK(BM_SoftmaxStats)->Unit(benchmark::kMicrosecond);

}  // namespace
}  // namespace kvbits
