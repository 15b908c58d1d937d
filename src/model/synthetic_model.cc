#include "model/synthetic_model.h"

#include <cstring>
#include <random>
#include <span>
#include <string>
#include <vector>

#include "io/gguf.h"
#include "ops/quant_blocks.h"
#include "util/error.h"
#include "util/half.h"

namespace kvbits {
namespace {

constexpr float kInitStd = 0.02f;  // std of the normal init of every matrix
constexpr float kRmsEps = 1e-5f;

// The SmolLM2-Instruct ChatML template, as in the real GGUF.
constexpr std::string_view kChatTemplate =
    "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}"
    "{{ '<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging "
    "Face<|im_end|>\n' }}{% endif %}{{'<|im_start|>' + message['role'] + '\n' + "
    "message['content'] + '<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}"
    "{{ '<|im_start|>assistant\n' }}{% endif %}";

bool is_weight_type(uint32_t t) {
  switch (static_cast<TensorType>(t)) {
    case TensorType::F32:
    case TensorType::F16:
    case TensorType::BF16:
    case TensorType::Q8_0:
    case TensorType::Q4_0:
    case TensorType::Q4_1: return true;
    default: return false;
  }
}

// llama.cpp's general.file_type ("mostly <type>") for a weight type.
uint32_t llama_file_type(uint32_t t) {
  switch (static_cast<TensorType>(t)) {
    case TensorType::F32: return 0;
    case TensorType::F16: return 1;
    case TensorType::Q4_0: return 2;
    case TensorType::Q4_1: return 3;
    case TensorType::Q8_0: return 7;
    case TensorType::BF16: return 32;
    default: return 0;
  }
}

// Encodes one row of n floats (n a multiple of 32 for block types) as `type` into `out`
// (exactly the row's byte size).
void encode_row(uint32_t type, const float* x, int64_t n, std::span<uint8_t> out) {
  switch (static_cast<TensorType>(type)) {
    case TensorType::F32: std::memcpy(out.data(), x, n * sizeof(float)); return;
    case TensorType::F16:
    case TensorType::BF16: {
      const bool f16 = static_cast<TensorType>(type) == TensorType::F16;
      for (int64_t i = 0; i < n; ++i) {
        const uint16_t h = f16 ? fp32_to_fp16(x[i]) : fp32_to_bf16(x[i]);
        std::memcpy(out.data() + 2 * i, &h, 2);
      }
      return;
    }
    default: break;
  }
  // Block types: quantize into properly typed blocks, then copy (`out` has no block alignment).
  const int64_t nb = n / kBlockElems;
  switch (static_cast<TensorType>(type)) {
    case TensorType::Q8_0: {
      std::vector<BlockQ8_0> b(nb);
      quantize_row_q8_0_ref(x, b.data(), n);
      std::memcpy(out.data(), b.data(), nb * sizeof(BlockQ8_0));
      return;
    }
    case TensorType::Q4_0: {
      std::vector<BlockQ4_0> b(nb);
      quantize_row_q4_0_ref(x, b.data(), n);
      std::memcpy(out.data(), b.data(), nb * sizeof(BlockQ4_0));
      return;
    }
    case TensorType::Q4_1: {
      std::vector<BlockQ4_1> b(nb);
      quantize_row_q4_1_ref(x, b.data(), n);
      std::memcpy(out.data(), b.data(), nb * sizeof(BlockQ4_1));
      return;
    }
    default: throw Error("synthetic model: cannot encode type " + tensor_type_name(type));
  }
}

// Adds a [ne0, ne1] matrix of normal(0, kInitStd) weights, generated row by row when written.
// Each tensor has its own RNG stream derived from (seed, index).
void add_random_matrix(GgufWriter& w, const std::string& name, uint32_t type, uint64_t ne0,
                       uint64_t ne1, uint64_t seed, uint64_t index) {
  const auto info = *tensor_type_info(type);
  const uint64_t row_bytes = ne0 / info.block_elems * info.block_bytes;
  const uint64_t stream_seed = seed ^ (0x9e3779b97f4a7c15ULL * (index + 1));
  w.add_tensor(name, type, {ne0, ne1}, [=](std::span<uint8_t> out) {
    std::mt19937_64 rng(stream_seed);
    std::normal_distribution<float> normal(0.0f, kInitStd);
    std::vector<float> row(ne0);  // one row of float weights at a time
    for (uint64_t r = 0; r < ne1; ++r) {
      for (float& x : row) x = normal(rng);
      encode_row(type, row.data(), static_cast<int64_t>(ne0),
                 out.subspan(r * row_bytes, row_bytes));
    }
  });
}

void add_ones(GgufWriter& w, const std::string& name, uint64_t n) {
  const std::vector<float> ones(n, 1.0f);
  w.add_tensor(
      name, static_cast<uint32_t>(TensorType::F32), {n},
      std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(ones.data()), n * sizeof(float)));
}

// GPT-2's bytes_to_unicode: printable Latin-1 bytes map to themselves, the other 68 bytes to
// U+0100.. in byte order. Returns the UTF-8 text of the token for each byte.
std::vector<std::string> gpt2_byte_tokens() {
  std::vector<uint32_t> cp(256, 0);
  uint32_t next = 256;
  for (uint32_t b = 0; b < 256; ++b) {
    const bool printable = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174);
    cp[b] = printable ? b : next++;
  }
  std::vector<std::string> out(256);
  for (uint32_t b = 0; b < 256; ++b) {
    const uint32_t c = cp[b];  // < 0x800: one or two UTF-8 bytes
    if (c < 0x80) {
      out[b] = std::string(1, static_cast<char>(c));
    } else {
      out[b] = {static_cast<char>(0xc0 | (c >> 6)), static_cast<char>(0x80 | (c & 0x3f))};
    }
  }
  return out;
}

void add_default_tokenizer(GgufWriter& w, uint32_t vocab) {
  std::vector<std::string> tokens = {"<|endoftext|>", "<|im_start|>", "<|im_end|>"};
  std::vector<int32_t> types = {3, 3, 3};  // 3 = control
  for (std::string& t : gpt2_byte_tokens()) {
    tokens.push_back(std::move(t));
    types.push_back(1);  // 1 = normal
  }
  if (tokens.size() > vocab) throw Error("synthetic model: vocabulary too small for byte tokens");
  for (uint32_t i = 0; tokens.size() < vocab; ++i) {
    tokens.push_back("<extra_" + std::to_string(i) + ">");
    types.push_back(1);
  }
  w.set_bool("tokenizer.ggml.add_space_prefix", false);
  w.set_bool("tokenizer.ggml.add_bos_token", false);
  w.set_string("tokenizer.ggml.model", "gpt2");
  w.set_string("tokenizer.ggml.pre", "smollm");
  w.set_string_array("tokenizer.ggml.tokens", tokens);
  w.set_array<int32_t>("tokenizer.ggml.token_type", types);
  w.set_string_array("tokenizer.ggml.merges", std::span<const std::string>());
  w.set_u32("tokenizer.ggml.bos_token_id", 1);
  w.set_u32("tokenizer.ggml.eos_token_id", 2);
  w.set_u32("tokenizer.ggml.unknown_token_id", 0);
  w.set_u32("tokenizer.ggml.padding_token_id", 2);
  w.set_string("tokenizer.chat_template", kChatTemplate);
}

void copy_tokenizer(GgufWriter& w, const std::string& path, const SyntheticShape& shape) {
  const GgufFile src = GgufFile::open(path);
  const GgufValue* tokens = src.find("tokenizer.ggml.tokens");
  if (tokens == nullptr || !tokens->is_array()) {
    throw Error(path + ": no tokenizer.ggml.tokens array to copy");
  }
  if (tokens->array_size() != shape.vocab) {
    throw Error(path + ": vocabulary has " + std::to_string(tokens->array_size()) +
                " tokens, shape '" + std::string(shape.name) + "' needs " +
                std::to_string(shape.vocab));
  }
  for (size_t i = 0; i < src.metadata_count(); ++i) {
    const std::string_view key = src.metadata_key(i);
    if (key.starts_with("tokenizer.")) w.copy_value(key, src.metadata_value(i));
  }
}

}  // namespace

std::optional<SyntheticShape> synthetic_shape(std::string_view name) {
  //                      name    d     L   H   KV  ff    vocab  ctx   theta
  static constexpr SyntheticShape kShapes[] = {
      {"tiny", 64, 2, 4, 2, 128, 320, 512, 10000.0f},
      {"135m", 576, 30, 9, 3, 1536, 49152, 8192, 100000.0f},
      {"360m", 960, 32, 15, 5, 2560, 49152, 8192, 100000.0f},
      {"1.7b", 2048, 24, 32, 32, 8192, 49152, 8192, 130000.0f},
  };
  for (const SyntheticShape& s : kShapes) {
    if (s.name == name) return s;
  }
  return std::nullopt;
}

GgufWriter make_synthetic_model(const SyntheticModelOptions& o) {
  const auto shape_opt = synthetic_shape(o.shape);
  if (!shape_opt) {
    throw Error("synthetic model: unknown shape '" + o.shape +
                "' (expected tiny, 135m, 360m or 1.7b)");
  }
  const SyntheticShape s = *shape_opt;
  for (uint32_t t : {o.weight_type, o.embedding_type}) {
    if (!is_weight_type(t)) {
      throw Error("synthetic model: unsupported weight type " + tensor_type_name(t) +
                  " (expected F32, F16, BF16, Q8_0, Q4_0 or Q4_1)");
    }
  }

  GgufWriter w;
  w.set_string("general.architecture", "llama");
  w.set_string("general.type", "model");
  w.set_string("general.name", "kvbits synthetic " + o.shape);
  w.set_u64("kvbits.synthetic.seed", o.seed);
  w.set_u32("llama.block_count", s.n_layers);
  w.set_u32("llama.context_length", s.context);
  w.set_u32("llama.embedding_length", s.d_model);
  w.set_u32("llama.feed_forward_length", s.d_ff);
  w.set_u32("llama.attention.head_count", s.n_heads);
  w.set_u32("llama.attention.head_count_kv", s.n_kv_heads);
  w.set_f32("llama.rope.freq_base", s.rope_theta);
  w.set_f32("llama.attention.layer_norm_rms_epsilon", kRmsEps);
  w.set_u32("general.file_type", llama_file_type(o.weight_type));
  w.set_u32("llama.vocab_size", s.vocab);
  w.set_u32("llama.rope.dimension_count", s.head_dim());
  if (o.tokenizer_from.empty()) {
    add_default_tokenizer(w, s.vocab);
  } else {
    copy_tokenizer(w, o.tokenizer_from, s);
  }
  w.set_u32("general.quantization_version", 2);

  // Shapes are ne0-first: ne0 is the input dimension (row length).
  const uint64_t d = s.d_model, ff = s.d_ff, kv = uint64_t{s.n_kv_heads} * s.head_dim();
  uint64_t index = 0;  // RNG stream per matrix
  add_random_matrix(w, "token_embd.weight", o.embedding_type, d, s.vocab, o.seed, index++);
  for (uint32_t l = 0; l < s.n_layers; ++l) {
    const std::string p = "blk." + std::to_string(l) + ".";
    add_ones(w, p + "attn_norm.weight", d);
    add_random_matrix(w, p + "attn_q.weight", o.weight_type, d, d, o.seed, index++);
    add_random_matrix(w, p + "attn_k.weight", o.weight_type, d, kv, o.seed, index++);
    add_random_matrix(w, p + "attn_v.weight", o.weight_type, d, kv, o.seed, index++);
    add_random_matrix(w, p + "attn_output.weight", o.weight_type, d, d, o.seed, index++);
    add_ones(w, p + "ffn_norm.weight", d);
    add_random_matrix(w, p + "ffn_gate.weight", o.weight_type, d, ff, o.seed, index++);
    add_random_matrix(w, p + "ffn_up.weight", o.weight_type, d, ff, o.seed, index++);
    add_random_matrix(w, p + "ffn_down.weight", o.weight_type, ff, d, o.seed, index++);
  }
  add_ones(w, "output_norm.weight", d);
  return w;
}

void write_synthetic_model(const SyntheticModelOptions& options, const std::string& out_path) {
  make_synthetic_model(options).write(out_path);
}

}  // namespace kvbits
