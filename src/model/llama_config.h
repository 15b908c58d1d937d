#pragma once
// Hyper-parameters of a Llama-family model, read entirely from GGUF metadata.
#include <cstdint>
#include <string>

namespace kvbits {

class GgufFile;

struct LlamaConfig {
  std::string architecture;   // "llama"
  std::string name;           // general.name, for display
  int n_layers = 0;           // llama.block_count
  int d_model = 0;            // llama.embedding_length
  int d_ff = 0;               // llama.feed_forward_length
  int n_heads = 0;            // llama.attention.head_count
  int n_kv_heads = 0;         // llama.attention.head_count_kv (defaults to n_heads)
  int head_dim = 0;           // d_model / n_heads
  int rope_dim = 0;           // llama.rope.dimension_count (defaults to head_dim)
  float rope_theta = 10000.0f;  // llama.rope.freq_base
  float rms_eps = 1e-5f;      // llama.attention.layer_norm_rms_epsilon
  int vocab_size = 0;         // rows of token_embd.weight
  int context_length = 0;     // llama.context_length: the longest context the model supports

  int kv_dim() const { return n_kv_heads * head_dim; }
};

// Reads and validates the config. Throws Error naming the file and key on missing or
// inconsistent values (e.g. heads not dividing d_model, unsupported rope scaling).
LlamaConfig read_llama_config(const GgufFile& file);

}  // namespace kvbits
