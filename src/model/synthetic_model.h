#pragma once
// Random-weight Llama-architecture GGUF models with the exact tensor names, shapes and metadata
// of the real SmolLM2 files, for tests, benchmarks and fuzz seeds without a model download.
//
// Weights: fixed-seed std::mt19937_64 (one stream per tensor, so tensors are independent of
// each other's size), normal(0, 0.02) for matrices, 1.0 (F32) for RMSNorm weights. The output
// head is tied to token_embd.weight (no output.weight), as in SmolLM2.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "io/gguf_writer.h"
#include "io/tensor_type.h"

namespace kvbits {

struct SyntheticModelOptions {
  std::string shape = "tiny";  // "tiny", "135m", "360m", "1.7b" (see synthetic_shape)
  // Type of the layer matrices: F32, F16, BF16, Q8_0, Q4_0 or Q4_1.
  uint32_t weight_type = static_cast<uint32_t>(TensorType::Q4_1);
  // Type of token_embd.weight (also the tied output head); the real files use Q8_0.
  uint32_t embedding_type = static_cast<uint32_t>(TensorType::Q8_0);
  uint64_t seed = 1;
  // Optional path to a real GGUF whose tokenizer.* metadata is copied (its vocabulary size must
  // equal the shape's). Empty: a minimal byte-level GPT-2 style tokenizer is written.
  std::string tokenizer_from;
};

// Hyperparameters of a named shape.
struct SyntheticShape {
  std::string_view name;
  uint32_t d_model;     // embedding_length
  uint32_t n_layers;    // block_count
  uint32_t n_heads;     // attention.head_count
  uint32_t n_kv_heads;  // attention.head_count_kv
  uint32_t d_ff;        // feed_forward_length
  uint32_t vocab;       // vocab_size
  uint32_t context;     // context_length
  float rope_theta;     // rope.freq_base
  uint32_t head_dim() const { return d_model / n_heads; }
};

// std::nullopt for an unknown name.
std::optional<SyntheticShape> synthetic_shape(std::string_view name);

// Builds a writer holding the model's metadata and streaming tensors (weights are generated
// and quantized one tensor at a time when the writer writes). Throws Error on bad options or an
// unreadable/mismatching tokenizer_from file.
GgufWriter make_synthetic_model(const SyntheticModelOptions& options);

// make_synthetic_model(options).write(out_path).
void write_synthetic_model(const SyntheticModelOptions& options, const std::string& out_path);

}  // namespace kvbits
