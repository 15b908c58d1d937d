#pragma once
// Views of a Llama model's weights inside a mapped GGUF file (non-owning; the GgufFile owns
// the bytes). Shapes are [rows = output dim, cols = input dim]; GGUF stores them ne0-first,
// i.e. [cols, rows].
#include <vector>

#include "model/llama_config.h"
#include "ops/matmul.h"

namespace kvbits {

class GgufFile;

struct LlamaLayerWeights {
  const float* attn_norm = nullptr;  // [d_model]
  MatrixView wq;                     // [n_heads * head_dim, d_model]
  MatrixView wk;                     // [n_kv_heads * head_dim, d_model]
  MatrixView wv;                     // [n_kv_heads * head_dim, d_model]
  MatrixView wo;                     // [d_model, n_heads * head_dim]
  const float* ffn_norm = nullptr;   // [d_model]
  MatrixView w_gate;                 // [d_ff, d_model]
  MatrixView w_up;                   // [d_ff, d_model]
  MatrixView w_down;                 // [d_model, d_ff]
};

struct LlamaWeights {
  MatrixView token_embd;             // [vocab, d_model]
  std::vector<LlamaLayerWeights> layers;
  const float* output_norm = nullptr;  // [d_model]
  MatrixView output;                 // [vocab, d_model]; token_embd when the head is tied
  bool tied_output = false;
  uint64_t bytes_per_token = 0;      // weight bytes one decode step reads (all matrices; 1 embd row)
};

// Binds every tensor the config implies, checking names, shapes and types. Throws Error naming
// the file and tensor on any mismatch or unsupported type.
LlamaWeights bind_llama_weights(const GgufFile& file, const LlamaConfig& config);

}  // namespace kvbits
