// Google Benchmark: greedy decoding's argmax over one row of SmolLM2's 49152 logits, the scalar
// reference loop against the Highway kernel (ops/logit_scan.h), and std::max_element, which
// `kvbits bench` and eval's decode timing called before; and one draw of the sampler
// (engine/sampler.h), greedy and with run's defaults.
//
//   ./build/bench/kvbits_kernel_bench --benchmark_filter='MaxIndex|Sampler' --benchmark_repetitions=3
#include <benchmark/benchmark.h>

#include <algorithm>
#include <vector>

#include "engine/sampler.h"
#include "logits_row.h"
#include "ops/logit_scan.h"

namespace kvbits {
namespace {

enum class Kind { kSimd, kRef, kStd };

template <Kind kKind>
void BM_MaxIndex(benchmark::State& state) {
  const std::vector<float> x = bench::logits_row(3.0f);
  for (auto _ : state) {
    int64_t i;
    if constexpr (kKind == Kind::kSimd) i = max_index(x);
    else if constexpr (kKind == Kind::kRef) i = max_index_ref(x);
    else i = std::max_element(x.begin(), x.end()) - x.begin();
    benchmark::DoNotOptimize(i);
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) * static_cast<int64_t>(x.size() * sizeof(float)));
}
BENCHMARK(BM_MaxIndex<Kind::kSimd>)->Name("BM_MaxIndex");
BENCHMARK(BM_MaxIndex<Kind::kRef>)->Name("BM_MaxIndexRef");
BENCHMARK(BM_MaxIndex<Kind::kStd>)->Name("BM_MaxIndexStdMaxElement");

// One draw of `run`'s default sampler (temperature 0.8, top-k 40, top-p 0.95, min-p 0.05) and of
// the greedy one (temperature 0), over a fresh copy of the row each time (sample() edits it).
void BM_SamplerSample(benchmark::State& state) {
  const std::vector<float> x = bench::logits_row(3.0f);
  SamplerOptions o;
  o.temperature = static_cast<float>(state.range(0)) / 10.0f;
  Sampler sampler(o);
  std::vector<float> row(x.size());
  for (auto _ : state) {
    std::copy(x.begin(), x.end(), row.begin());
    benchmark::DoNotOptimize(sampler.sample(row));
  }
}
BENCHMARK(BM_SamplerSample)->ArgName("temperature_x10")->Arg(0)->Arg(8);

}  // namespace
}  // namespace kvbits
