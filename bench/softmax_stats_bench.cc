// Google Benchmark: softmax statistics of one SmolLM2 logits row (49152 entries), the controller
// features' per-token cost (ops/softmax_stats.h): the double reference against the SIMD kernel.
//
//   ./build/bench/kvbits_kernel_bench --benchmark_filter=SoftmaxStats
#include <benchmark/benchmark.h>

#include <vector>

#include "logits_row.h"
#include "ops/softmax_stats.h"

namespace kvbits {
namespace {

void BM_SoftmaxStatsRef(benchmark::State& state) {
  const std::vector<float> row = bench::logits_row(4.0f);
  for (auto _ : state) benchmark::DoNotOptimize(softmax_stats_ref(row));
}
BENCHMARK(BM_SoftmaxStatsRef)->Unit(benchmark::kMicrosecond);

void BM_SoftmaxStats(benchmark::State& state) {
  const std::vector<float> row = bench::logits_row(4.0f);
  for (auto _ : state) benchmark::DoNotOptimize(softmax_stats(row));
}
BENCHMARK(BM_SoftmaxStats)->Unit(benchmark::kMicrosecond);

}  // namespace
}  // namespace kvbits
