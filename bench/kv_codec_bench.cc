// Google Benchmark: the KV store's row quantizer (ops/kv_codec.h) on one SmolLM2 K row (head_dim
// 64, one group of 64; 2 bits: six clip trials, plain and centred forms), the scalar reference
// group loop against the SIMD one the store runs (ops/kv_group_codes.h). A decode step stores 90
// K and 90 V rows (30 layers x 3 KV heads); a prefill of n tokens 180 n.
//
// BM_Hadamard: the rotation those rows (and the queries and outputs of attention) go through.
//
//   ./build/bench/kvbits_kernel_bench --benchmark_filter='KvQuantize|Hadamard'
#include <benchmark/benchmark.h>

#include <random>
#include <vector>

#include "ops/kv_codec.h"

namespace kvbits {
namespace {

constexpr int kHeadDim = 64, kGroup = 64;

struct KeyInputs {
  std::vector<float> row, mean;
};

KeyInputs key_inputs() {
  KeyInputs in{std::vector<float>(kHeadDim), std::vector<float>(kHeadDim)};
  std::mt19937 rng(11);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  for (int i = 0; i < kHeadDim; ++i) {
    in.mean[i] = 2.0f * nd(rng);
    in.row[i] = in.mean[i] + nd(rng) * (i % 16 == 0 ? 8.0f : 1.0f);  // outlier channels
  }
  return in;
}

template <bool kRef>
void BM_KvQuantizeKeyRow(benchmark::State& state) {
  const int bits = static_cast<int>(state.range(0));
  const KeyInputs in = key_inputs();
  std::vector<float> x(kHeadDim);
  uint8_t codes[kHeadDim];
  uint16_t scale[1], minimum[1];
  for (auto _ : state) {
    x = in.row;  // clobbered: the coded form is built in place
    const bool centred = kRef ? kv_quantize_key_ref(x.data(), in.mean.data(), nullptr, kHeadDim, bits, kGroup, true,
                                                    codes, scale, minimum)
                              : kv_quantize_key(x.data(), in.mean.data(), nullptr, kHeadDim, bits, kGroup, true, codes,
                                                scale, minimum);
    benchmark::DoNotOptimize(centred);
    benchmark::DoNotOptimize(codes);
  }
}
BENCHMARK(BM_KvQuantizeKeyRow<true>)->Name("BM_KvQuantizeKeyRowRef")->Arg(2)->Arg(4)->Arg(8);
BENCHMARK(BM_KvQuantizeKeyRow<false>)->Name("BM_KvQuantizeKeyRow")->Arg(2)->Arg(4)->Arg(8);

// The Walsh-Hadamard transform of one row of n floats (ops/hadamard.cc against the scalar
// butterflies): every quantized K and V row the store writes, every query over rotated K rows and
// every attention output over rotated V rows takes one (n = head_dim: 64 for SmolLM2).
template <bool kRef>
void BM_Hadamard(benchmark::State& state) {
  const int n = static_cast<int>(state.range(0));
  std::vector<float> x(static_cast<size_t>(n));
  std::mt19937 rng(12);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  for (float& v : x) v = nd(rng);
  for (auto _ : state) {
    if (kRef) hadamard_ref(x.data(), n);
    else hadamard(x.data(), n);  // H H = I: the values stay bounded over the iterations
    benchmark::DoNotOptimize(x.data());
  }
}
BENCHMARK(BM_Hadamard<true>)->Name("BM_HadamardRef")->Arg(64)->Arg(128);
BENCHMARK(BM_Hadamard<false>)->Name("BM_Hadamard")->Arg(16)->Arg(64)->Arg(128);

}  // namespace
}  // namespace kvbits
