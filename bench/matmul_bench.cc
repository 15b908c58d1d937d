// Matmul kernels at the SmolLM2-135M shapes, per weight type, 1 and 2 threads.
//
//   matvec/<type>/<rows>x<cols>/threads:N   one token (decode): bound by reading the weights
//   matmul/<type>/<rows>x<cols>/threads:N   64 tokens (prefill chunk): compute bound
//   ref/<type>/576x576                      scalar matmul_ref on one token, for the SIMD ratio
// Q4_0, Q4_1 and Q8_0 run on planar rows (repack_planar, as the model loads them); <type>.file
// runs the file-layout kernels (used for matrices that are not repacked).
//
// bytes_per_second counts weight bytes read once per call (rows * row_bytes); items_per_second
// counts multiply-accumulates (rows * cols * n_tokens). Real time, because the pool's workers
// are not the benchmark thread. Weights: fixed-seed uniform [-1, 1] floats, quantized with the
// scalar reference quantizers.
#include <benchmark/benchmark.h>

#include <cstdint>
#include <cstring>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <tuple>
#include <vector>

#include "backend/thread_pool.h"
#include "io/tensor_type.h"
#include "ops/matmul.h"
#include "ops/quant_blocks.h"
#include "util/half.h"

namespace kvbits {
namespace {

struct Shape {
  int64_t rows, cols;  // W: [rows, cols]
  const char* what;
};

// SmolLM2-135M: d_model 576, 9 query heads / 3 KV heads of 64, FFN 1536, vocabulary 49152.
constexpr Shape kShapes[] = {
    {576, 576, "attn_q/attn_output"}, {192, 576, "attn_k/attn_v"}, {1536, 576, "ffn_gate/ffn_up"},
    {576, 1536, "ffn_down"},          {49152, 576, "output head"},
};

constexpr TensorType kTypes[] = {TensorType::F32,  TensorType::F16,  TensorType::BF16,
                                 TensorType::Q4_0, TensorType::Q4_1, TensorType::Q8_0};

struct BenchWeights {
  std::vector<uint8_t> bytes;  // [rows, row_bytes]
  MatrixView view;
  std::vector<uint8_t> planar_bytes;  // repack_planar(view) for Q4_0 / Q4_1 / Q8_0
  MatrixView planar;
};

const BenchWeights& weights(TensorType type, int64_t rows, int64_t cols) {
  static std::map<std::tuple<uint32_t, int64_t, int64_t>, std::unique_ptr<BenchWeights>> cache;
  auto& slot = cache[{static_cast<uint32_t>(type), rows, cols}];
  if (slot) return *slot;
  slot = std::make_unique<BenchWeights>();
  const auto info = tensor_type_info(static_cast<uint32_t>(type));
  const uint64_t row_bytes = static_cast<uint64_t>(cols / info->block_elems) * info->block_bytes;
  slot->bytes.resize(rows * row_bytes);
  std::mt19937 rng(static_cast<uint32_t>(rows * 31 + cols));
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  std::vector<float> v(static_cast<size_t>(cols));
  for (int64_t r = 0; r < rows; ++r) {
    for (auto& x : v) x = u(rng);
    uint8_t* dst = slot->bytes.data() + r * row_bytes;
    switch (type) {
      case TensorType::F32: std::memcpy(dst, v.data(), row_bytes); break;
      case TensorType::F16:
        for (int64_t c = 0; c < cols; ++c) {
          const uint16_t h = fp32_to_fp16(v[c]);
          std::memcpy(dst + 2 * c, &h, 2);
        }
        break;
      case TensorType::BF16:
        for (int64_t c = 0; c < cols; ++c) {
          const uint16_t h = fp32_to_bf16(v[c]);
          std::memcpy(dst + 2 * c, &h, 2);
        }
        break;
      case TensorType::Q4_0: quantize_row_q4_0_ref(v.data(), reinterpret_cast<BlockQ4_0*>(dst), cols); break;
      case TensorType::Q4_1: quantize_row_q4_1_ref(v.data(), reinterpret_cast<BlockQ4_1*>(dst), cols); break;
      case TensorType::Q8_0: quantize_row_q8_0_ref(v.data(), reinterpret_cast<BlockQ8_0*>(dst), cols); break;
      default: break;
    }
  }
  slot->view = make_matrix_view(static_cast<uint32_t>(type), slot->bytes.data(), rows, cols);
  slot->planar = slot->view;
  if (can_repack_planar(static_cast<uint32_t>(type))) {
    slot->planar_bytes.resize(slot->bytes.size());
    slot->planar = repack_planar(slot->view, slot->planar_bytes.data());
  }
  return *slot;
}

std::vector<float> activations(int64_t n_tokens, int64_t cols) {  // [n_tokens, cols]
  std::mt19937 rng(7);
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  std::vector<float> x(static_cast<size_t>(n_tokens * cols));
  for (auto& e : x) e = u(rng);
  return x;
}

ThreadPool& pool_of(int n) {
  static ThreadPool one(1), two(2);
  return n == 1 ? one : two;
}

void set_counters(benchmark::State& state, const MatrixView& w, int64_t n_tokens) {
  const int64_t iters = static_cast<int64_t>(state.iterations());
  state.SetBytesProcessed(iters * w.rows * static_cast<int64_t>(w.row_bytes));
  state.SetItemsProcessed(iters * w.rows * w.cols * n_tokens);
}

void BM_Matmul(benchmark::State& state, TensorType type, bool planar, Shape shape, int64_t n_tokens, int threads) {
  const BenchWeights& bw = weights(type, shape.rows, shape.cols);
  const MatrixView& w = planar ? bw.planar : bw.view;
  const std::vector<float> x = activations(n_tokens, shape.cols);
  std::vector<float> y(static_cast<size_t>(n_tokens * shape.rows));
  MatmulScratch scratch;
  ThreadPool& pool = pool_of(threads);
  for (auto _ : state) {
    matmul(w, x.data(), n_tokens, y.data(), pool, scratch);
    benchmark::DoNotOptimize(y.data());
    benchmark::ClobberMemory();
  }
  set_counters(state, w, n_tokens);
  state.SetLabel(std::string(matmul_target_name()) + " " + shape.what + (w.planar ? " (planar)" : ""));
}

void BM_MatmulRef(benchmark::State& state, TensorType type, Shape shape) {
  const BenchWeights& w = weights(type, shape.rows, shape.cols);
  const std::vector<float> x = activations(1, shape.cols);
  std::vector<float> y(static_cast<size_t>(shape.rows));
  for (auto _ : state) {
    matmul_ref(w.view, x.data(), 1, y.data(), /*quantize_activations=*/true);
    benchmark::DoNotOptimize(y.data());
    benchmark::ClobberMemory();
  }
  set_counters(state, w.view, 1);
  state.SetLabel("scalar reference");
}

const bool registered = [] {
  for (const auto& [prefix, n_tokens] : {std::pair{"matvec", int64_t{1}}, std::pair{"matmul", int64_t{64}}}) {
    for (TensorType type : kTypes) {
      const bool repackable = can_repack_planar(static_cast<uint32_t>(type));
      for (bool planar : {true, false}) {
        if (!planar && !repackable) continue;
        for (const Shape& s : kShapes) {
          for (int threads : {1, 2}) {
            const std::string name = std::string(prefix) + "/" + tensor_type_name(static_cast<uint32_t>(type)) +
                                     (repackable && !planar ? ".file" : "") + "/" + std::to_string(s.rows) + "x" +
                                     std::to_string(s.cols) + "/threads:" + std::to_string(threads);
            benchmark::RegisterBenchmark(name.c_str(), BM_Matmul, type, planar && repackable, s, n_tokens, threads)
                ->UseRealTime()
                ->Unit(benchmark::kMicrosecond);
          }
        }
      }
    }
  }
  for (TensorType type : kTypes) {
    const std::string name = "ref/" + tensor_type_name(static_cast<uint32_t>(type)) + "/576x576";
    benchmark::RegisterBenchmark(name.c_str(), BM_MatmulRef, type, kShapes[0])
        ->UseRealTime()
        ->Unit(benchmark::kMicrosecond);
  }
  return true;
}();

}  // namespace
}  // namespace kvbits
