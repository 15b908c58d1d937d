#pragma once
// The Llama forward pass: RMSNorm -> Q/K/V -> RoPE -> grouped-query attention over the KV cache
// -> output projection -> residual; RMSNorm -> SwiGLU MLP -> residual; final norm -> logits.
//
// One call processes a chunk of consecutive tokens (prefill: many, decode: one) with
// matrix-matrix kernels, appends their K/V to the cache, and returns logits for the rows asked.
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "backend/thread_pool.h"
#include "io/gguf.h"
#include "io/mapped_file.h"
#include "kv/kv_store.h"
#include "model/llama_config.h"
#include "model/llama_weights.h"
#include "ops/attention.h"
#include "ops/matmul.h"

namespace kvbits {

enum class LogitsFor { kNone, kLast, kAll };

struct ForwardOptions {
  ActivationMode activations = ActivationMode::kInt8;  // see ops/matmul.h
  AttentionTap* final_layer_tap = nullptr;  // statistics of the last layer's attention rows
  // If set: per layer and query channel, += q^2 (after RoPE, before the 1/sqrt(head_dim) score
  // scale) summed over the call's tokens at positions >= 1; resized to [n_layers, n_heads *
  // head_dim] if smaller. For the key channel weights (engine/key_means.h).
  std::vector<double>* query_power = nullptr;
};

// The tokens of one forward call. By default token i sits at position store.size() + i and
// attends the committed cache plus the window up to itself (causal). Continuations scored side by
// side give each token its own position and window rows (see WindowRange in ops/attention.h;
// window row 0 is the first uncommitted position, and the chunk's rows are appended in order).
struct ForwardInput {
  std::span<const int32_t> tokens;
  std::span<const int64_t> positions;     // empty: causal default
  std::span<const WindowRange> windows;   // empty: causal default
};

// Scratch buffers of one forward pass, sized for the largest chunk; reused across calls.
struct ForwardScratch {
  int64_t capacity = 0;                       // tokens
  std::vector<float> x, xn, q, k, v, attn, proj, gate, up;  // [capacity, dim of each]
  MatmulScratch matmul;
  AttentionScratch attention;
  std::vector<WindowRange> windows;
  std::vector<float> rope;  // [capacity, rope_dim]: cos/sin of each token's RoPE angles (rope_angles)
  // Wall seconds spent inside attention() (all layers), accumulated over every forward call that
  // used this scratch: the attention cost in situ, between the weight matmuls that evict the KV
  // pages from cache (two clock reads per layer).
  double attention_seconds = 0.0;
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
  // Share of the repacked matrices' bytes on transparent huge pages now (io/mapped_file.h
  // huge_page_bytes), in [0, 1]; nullopt when nothing was repacked or smaps cannot be read.
  std::optional<double> huge_page_share() const;

  // Runs the tokens, appending their K/V to the store's window (the engine commits them later),
  // and returns logits: [n_out, vocab] with n_out = 0, 1 or n per `which`. Throws Error if the
  // store has no room or a token id is out of range.
  void forward(const ForwardInput& input, KvStore& store, LogitsFor which, std::vector<float>& logits,
               ThreadPool& pool, ForwardScratch& scratch, const ForwardOptions& options = {}) const;

 private:
  LlamaModel(GgufFile file, LlamaConfig config, LlamaWeights weights);
  void repack_weights();
  GgufFile file_;
  LlamaConfig config_;
  LlamaWeights weights_;
  HugePageBuffer repacked_;  // planar copies of the Q4_1/Q8_0 matrices (ops/matmul.h), on huge pages
};

}  // namespace kvbits
