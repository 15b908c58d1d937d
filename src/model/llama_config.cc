#include "model/llama_config.h"

#include <string>

#include "io/gguf.h"
#include "util/error.h"

namespace kvbits {

namespace {
int positive_int(const GgufFile& f, const std::string& key, uint64_t max) {
  const uint64_t v = f.get_uint(key);
  if (v == 0 || v > max) {
    throw Error(f.path() + ": metadata '" + key + "' = " + std::to_string(v) + " is out of range [1, " +
                std::to_string(max) + "]");
  }
  return static_cast<int>(v);
}
}  // namespace

LlamaConfig read_llama_config(const GgufFile& f) {
  LlamaConfig c;
  c.architecture = std::string(f.get_string("general.architecture"));
  if (c.architecture != "llama") {
    throw Error(f.path() + ": unsupported architecture '" + c.architecture + "' (kvbits runs 'llama')");
  }
  c.name = std::string(f.get_string_opt("general.name").value_or("unnamed"));
  const std::string a = "llama.";
  c.n_layers = positive_int(f, a + "block_count", 4096);
  c.d_model = positive_int(f, a + "embedding_length", 1 << 16);
  c.d_ff = positive_int(f, a + "feed_forward_length", 1 << 18);
  c.n_heads = positive_int(f, a + "attention.head_count", 1024);
  c.n_kv_heads = f.has(a + "attention.head_count_kv") ? positive_int(f, a + "attention.head_count_kv", 1024)
                                                      : c.n_heads;
  c.context_length = positive_int(f, a + "context_length", 1 << 24);
  if (c.d_model % c.n_heads != 0) {
    throw Error(f.path() + ": embedding_length " + std::to_string(c.d_model) +
                " is not a multiple of head_count " + std::to_string(c.n_heads));
  }
  if (c.n_heads % c.n_kv_heads != 0) {
    throw Error(f.path() + ": head_count " + std::to_string(c.n_heads) +
                " is not a multiple of head_count_kv " + std::to_string(c.n_kv_heads));
  }
  c.head_dim = c.d_model / c.n_heads;
  c.rope_dim = static_cast<int>(f.get_uint_or(a + "rope.dimension_count", c.head_dim));
  if (c.rope_dim <= 0 || c.rope_dim > c.head_dim || c.rope_dim % 2 != 0) {
    throw Error(f.path() + ": rope.dimension_count " + std::to_string(c.rope_dim) + " is invalid for head_dim " +
                std::to_string(c.head_dim));
  }
  c.rope_theta = static_cast<float>(f.get_float_or(a + "rope.freq_base", 10000.0));
  c.rms_eps = static_cast<float>(f.get_float_or(a + "attention.layer_norm_rms_epsilon", 1e-5));
  if (!(c.rope_theta > 0.0f) || !(c.rms_eps > 0.0f)) {
    throw Error(f.path() + ": rope.freq_base and layer_norm_rms_epsilon must be positive");
  }
  if (auto scaling = f.get_string_opt(a + "rope.scaling.type"); scaling && *scaling != "none") {
    throw Error(f.path() + ": rope scaling '" + std::string(*scaling) + "' is not supported");
  }
  const GgufTensor& emb = f.tensor("token_embd.weight");
  if (emb.shape.size() != 2 || emb.shape[0] != static_cast<uint64_t>(c.d_model)) {
    throw Error(f.path() + ": token_embd.weight does not have shape [" + std::to_string(c.d_model) + ", vocab]");
  }
  if (emb.shape[1] == 0 || emb.shape[1] > (1u << 24)) throw Error(f.path() + ": token_embd.weight has an invalid vocab size");
  c.vocab_size = static_cast<int>(emb.shape[1]);
  return c;
}

}  // namespace kvbits
