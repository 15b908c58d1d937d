#pragma once
// The Llama forward pass: RMSNorm -> Q/K/V -> RoPE -> grouped-query attention over the KV cache
// -> output projection -> residual; RMSNorm -> SwiGLU MLP -> residual; final norm -> logits.
//
// One call processes a chunk of consecutive tokens (prefill: many, decode: one) with
// matrix-matrix kernels, appends their K/V to the cache, and returns logits for the rows asked.
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "backend/thread_pool.h"
#include "io/gguf.h"
#include "kv/fp16_kv_cache.h"
#include "model/llama_config.h"
#include "model/llama_weights.h"
#include "ops/attention.h"
#include "ops/matmul.h"

namespace kvbits {

enum class LogitsFor { kNone, kLast, kAll };

struct ForwardOptions {
  ActivationMode activations = ActivationMode::kInt8;  // see ops/matmul.h
};

// Scratch buffers of one forward pass, sized for the largest chunk; reused across calls.
struct ForwardScratch {
  int64_t capacity = 0;                       // tokens
  std::vector<float> x, xn, q, k, v, attn, proj, gate, up;  // [capacity, dim of each]
  MatmulScratch matmul;
  AttentionScratch attention;
  std::vector<int64_t> n_keys;
  void reserve(const LlamaConfig& c, int64_t n_tokens);
};

class LlamaModel {
 public:
  // Opens the GGUF at `path`, reads the config and binds all weights. Q4_1 and Q8_0 matrices are
  // repacked once into planar rows (same size; the file's pages are then released), the rest is
  // used in place from the mapping.
  static std::unique_ptr<LlamaModel> load(const std::string& path);

  const LlamaConfig& config() const { return config_; }
  const LlamaWeights& weights() const { return weights_; }
  const GgufFile& file() const { return file_; }

  // Runs `tokens` at positions cache.size() .. cache.size()+n-1 and appends their K/V to the
  // cache. logits: [n_out, vocab] with n_out = 0, 1 or n per `which`. Throws Error if the cache
  // has no room or a token id is out of range.
  void forward(std::span<const int32_t> tokens, Fp16KvCache& cache, LogitsFor which,
               std::vector<float>& logits, ThreadPool& pool, ForwardScratch& scratch,
               const ForwardOptions& options = {}) const;

 private:
  LlamaModel(GgufFile file, LlamaConfig config, LlamaWeights weights);
  void repack_weights();
  GgufFile file_;
  LlamaConfig config_;
  LlamaWeights weights_;
  std::unique_ptr<uint8_t[]> repacked_;  // planar copies of the Q4_1/Q8_0 matrices (ops/matmul.h)
};

}  // namespace kvbits
