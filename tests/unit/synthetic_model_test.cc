// The synthetic model writer: metadata, tensor names/shapes/types, tokenizer, determinism.
#include "model/synthetic_model.h"

#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "gguf_test_util.h"
#include "io/gguf.h"
#include "ops/quant_blocks.h"
#include "util/error.h"

namespace kvbits {
namespace {

using kvbits::testing::TempDir;

std::vector<uint8_t> read_all(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

TEST(GgufSynthetic, TinyModelMetadataAndShapes) {
  TempDir dir;
  const std::string path = dir.file("tiny.gguf");
  write_synthetic_model(SyntheticModelOptions{}, path);
  const GgufFile f = GgufFile::open(path);

  EXPECT_EQ(f.get_string("general.architecture"), "llama");
  EXPECT_EQ(f.get_uint("llama.embedding_length"), 64u);
  EXPECT_EQ(f.get_uint("llama.block_count"), 2u);
  EXPECT_EQ(f.get_uint("llama.attention.head_count"), 4u);
  EXPECT_EQ(f.get_uint("llama.attention.head_count_kv"), 2u);
  EXPECT_EQ(f.get_uint("llama.feed_forward_length"), 128u);
  EXPECT_EQ(f.get_uint("llama.context_length"), 512u);
  EXPECT_EQ(f.get_uint("llama.vocab_size"), 320u);
  EXPECT_EQ(f.get_uint("llama.rope.dimension_count"), 16u);
  EXPECT_EQ(f.get_float("llama.rope.freq_base"), 10000.0);
  EXPECT_FLOAT_EQ(f.get_float("llama.attention.layer_norm_rms_epsilon"), 1e-5f);
  EXPECT_TRUE(f.has("general.name"));

  // Tokenizer: 3 control tokens, 256 byte tokens in GPT-2's byte-to-unicode form, fillers.
  EXPECT_EQ(f.get_string("tokenizer.ggml.model"), "gpt2");
  EXPECT_EQ(f.get_string("tokenizer.ggml.pre"), "smollm");
  const auto tokens = f.get_string_array("tokenizer.ggml.tokens");
  ASSERT_EQ(tokens.size(), 320u);
  EXPECT_EQ(tokens[0], "<|endoftext|>");
  EXPECT_EQ(tokens[1], "<|im_start|>");
  EXPECT_EQ(tokens[2], "<|im_end|>");
  EXPECT_EQ(tokens[3 + 'a'], "a");
  EXPECT_EQ(tokens[3 + ' '], "\xc4\xa0");   // U+0120 'Ġ'
  EXPECT_EQ(tokens[3 + '\n'], "\xc4\x8a");  // U+010A 'Ċ'
  EXPECT_EQ(tokens[3 + 0xff], "\xc3\xbf");  // U+00FF 'ÿ'
  EXPECT_EQ(tokens[259], "<extra_0>");
  EXPECT_EQ(tokens[319], "<extra_60>");
  const auto types = f.get_int_array("tokenizer.ggml.token_type");
  ASSERT_EQ(types.size(), 320u);
  EXPECT_EQ(types[0], 3);
  EXPECT_EQ(types[2], 3);
  EXPECT_EQ(types[3], 1);
  EXPECT_TRUE(f.get_string_array("tokenizer.ggml.merges").empty());
  EXPECT_EQ(f.get_uint("tokenizer.ggml.bos_token_id"), 1u);
  EXPECT_EQ(f.get_uint("tokenizer.ggml.eos_token_id"), 2u);
  EXPECT_FALSE(f.get_bool("tokenizer.ggml.add_bos_token"));
  EXPECT_NE(f.get_string("tokenizer.chat_template").find("<|im_start|>"), std::string::npos);

  // Tensors: embedding, 9 per layer, output norm; tied head.
  EXPECT_EQ(f.tensors().size(), 1u + 9u * 2u + 1u);
  EXPECT_EQ(f.find_tensor("output.weight"), nullptr);
  const auto q41 = static_cast<uint32_t>(TensorType::Q4_1);
  struct Expect {
    const char* name;
    std::vector<uint64_t> shape;
    uint32_t type;
  };
  const std::vector<Expect> expected = {
      {"token_embd.weight", {64, 320}, static_cast<uint32_t>(TensorType::Q8_0)},
      {"blk.1.attn_norm.weight", {64}, 0},
      {"blk.1.attn_q.weight", {64, 64}, q41},
      {"blk.1.attn_k.weight", {64, 32}, q41},
      {"blk.1.attn_v.weight", {64, 32}, q41},
      {"blk.1.attn_output.weight", {64, 64}, q41},
      {"blk.1.ffn_norm.weight", {64}, 0},
      {"blk.1.ffn_gate.weight", {64, 128}, q41},
      {"blk.1.ffn_up.weight", {64, 128}, q41},
      {"blk.1.ffn_down.weight", {128, 64}, q41},
      {"output_norm.weight", {64}, 0},
  };
  for (const Expect& e : expected) {
    const GgufTensor& t = f.tensor(e.name);
    EXPECT_EQ(t.shape, e.shape) << e.name;
    EXPECT_EQ(t.type_id, e.type) << e.name;
  }
  const GgufTensor& norm = f.tensor("blk.0.ffn_norm.weight");
  for (uint64_t i = 0; i < norm.n_elements; ++i) {
    float x;
    std::memcpy(&x, norm.data + 4 * i, 4);
    EXPECT_EQ(x, 1.0f);
  }

  // Embedding rows look like normal(0, 0.02).
  const GgufTensor& emb = f.tensor("token_embd.weight");
  std::vector<BlockQ8_0> blocks(emb.n_bytes / sizeof(BlockQ8_0));
  std::memcpy(blocks.data(), emb.data, emb.n_bytes);
  std::vector<float> w(emb.n_elements);
  dequantize_row_q8_0_ref(blocks.data(), w.data(), static_cast<int64_t>(w.size()));
  double sum = 0, sum2 = 0;
  for (float x : w) {
    sum += x;
    sum2 += double{x} * x;
  }
  const double mean = sum / w.size(), stddev = std::sqrt(sum2 / w.size() - mean * mean);
  EXPECT_NEAR(mean, 0.0, 0.002);
  EXPECT_NEAR(stddev, 0.02, 0.002);
}

TEST(GgufSynthetic, DeterministicPerSeed) {
  TempDir dir;
  SyntheticModelOptions o;
  write_synthetic_model(o, dir.file("a.gguf"));
  write_synthetic_model(o, dir.file("b.gguf"));
  o.seed = 2;
  write_synthetic_model(o, dir.file("c.gguf"));
  const auto a = read_all(dir.file("a.gguf"));
  EXPECT_EQ(a, read_all(dir.file("b.gguf")));
  const auto c = read_all(dir.file("c.gguf"));
  EXPECT_EQ(a.size(), c.size());
  EXPECT_NE(a, c);
  // write() and to_bytes() agree.
  EXPECT_EQ(make_synthetic_model(SyntheticModelOptions{}).to_bytes(), a);
}

TEST(GgufSynthetic, EveryWeightType) {
  for (TensorType t : {TensorType::F32, TensorType::F16, TensorType::BF16, TensorType::Q8_0,
                       TensorType::Q4_0, TensorType::Q4_1}) {
    SyntheticModelOptions o;
    o.weight_type = static_cast<uint32_t>(t);
    o.embedding_type = static_cast<uint32_t>(t);
    const auto image = make_synthetic_model(o).to_bytes();
    const GgufFile f = GgufFile::parse(image, "tiny");
    EXPECT_EQ(f.tensor("blk.0.ffn_down.weight").type_id, static_cast<uint32_t>(t));
    EXPECT_EQ(f.tensor("token_embd.weight").type_id, static_cast<uint32_t>(t));
  }
  SyntheticModelOptions bad;
  bad.weight_type = static_cast<uint32_t>(TensorType::Q6_K);
  EXPECT_THROW(make_synthetic_model(bad), Error);
  bad = SyntheticModelOptions{};
  bad.shape = "7b";
  EXPECT_THROW(make_synthetic_model(bad), Error);
}

TEST(GgufSynthetic, CopiesTokenizerFromFile) {
  TempDir dir;
  SyntheticModelOptions src;
  const std::string src_path = dir.file("src.gguf");
  write_synthetic_model(src, src_path);

  SyntheticModelOptions o;
  o.seed = 9;
  o.tokenizer_from = src_path;
  const auto image = make_synthetic_model(o).to_bytes();
  const GgufFile f = GgufFile::parse(image, "copy");
  const GgufFile s = GgufFile::open(src_path);
  EXPECT_EQ(f.get_string_array("tokenizer.ggml.tokens"),
            s.get_string_array("tokenizer.ggml.tokens"));
  EXPECT_EQ(f.get_string("tokenizer.chat_template"), s.get_string("tokenizer.chat_template"));

  o.shape = "135m";  // vocab 49152 != 320
  EXPECT_THROW(make_synthetic_model(o), Error);
  o.tokenizer_from = dir.file("missing.gguf");
  EXPECT_THROW(make_synthetic_model(o), Error);
}

TEST(GgufSynthetic, ShapesTable) {
  const auto s = synthetic_shape("135m");
  ASSERT_TRUE(s.has_value());
  EXPECT_EQ(s->d_model, 576u);
  EXPECT_EQ(s->head_dim(), 64u);
  EXPECT_EQ(synthetic_shape("1.7b")->head_dim(), 64u);
  EXPECT_EQ(synthetic_shape("360m")->n_kv_heads, 5u);
  EXPECT_FALSE(synthetic_shape("huge").has_value());
}

}  // namespace
}  // namespace kvbits
