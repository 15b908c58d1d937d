// The larger synthetic shapes (360m, 1.7b) end to end: written with the real tokenizer, loaded,
// 16 tokens prefilled and 4 decoded; logits finite and of the right size. The files are large
// (~270 MB and ~1.1 GB as Q4_1) and are deleted at the end of each test.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <span>
#include <string>
#include <vector>

#include "engine/session.h"
#include "model/llama_model.h"
#include "model_test_util.h"
#include "model/synthetic_model.h"

namespace kvbits {
namespace {

// Removes the file (and the writer's "<path>.tmp", if a write failed half-way) on scope exit.
struct RemoveOnExit {
  std::string path;
  ~RemoveOnExit() {
    std::error_code ec;
    std::filesystem::remove(path, ec);
    std::filesystem::remove(path + ".tmp", ec);
  }
};

size_t count_non_finite(std::span<const float> x) {
  size_t bad = 0;
  for (float v : x) bad += std::isfinite(v) ? 0 : 1;
  return bad;
}

void check_shape(const std::string& shape_name) {
  if (!testing::model_available()) GTEST_SKIP() << "model file not found: " << testing::model_path();
  const SyntheticShape shape = *synthetic_shape(shape_name);
  const std::string path = (std::filesystem::temp_directory_path() /
                            ("kvbits-synthetic-" + shape_name + "-" + std::to_string(::getpid()) + ".gguf"))
                               .string();
  RemoveOnExit cleanup{path};

  SyntheticModelOptions o;
  o.shape = shape_name;
  o.weight_type = static_cast<uint32_t>(TensorType::Q4_1);
  o.tokenizer_from = testing::model_path();
  const auto t0 = std::chrono::steady_clock::now();
  write_synthetic_model(o, path);
  const auto t1 = std::chrono::steady_clock::now();

  const auto model = LlamaModel::load(path);
  const LlamaConfig& c = model->config();
  EXPECT_EQ(c.d_model, static_cast<int>(shape.d_model));
  EXPECT_EQ(c.n_layers, static_cast<int>(shape.n_layers));
  EXPECT_EQ(c.n_heads, static_cast<int>(shape.n_heads));
  EXPECT_EQ(c.n_kv_heads, static_cast<int>(shape.n_kv_heads));
  EXPECT_EQ(c.d_ff, static_cast<int>(shape.d_ff));
  EXPECT_EQ(c.vocab_size, static_cast<int>(shape.vocab));
  EXPECT_EQ(c.head_dim, static_cast<int>(shape.head_dim()));

  SessionOptions so;
  so.context = 64;
  so.threads = 2;
  Session session(*model, so);
  std::vector<int32_t> tokens(16);
  for (size_t i = 0; i < tokens.size(); ++i) tokens[i] = static_cast<int32_t>((i * 3001 + 17) % shape.vocab);
  std::span<float> logits = session.prefill(tokens);
  ASSERT_EQ(logits.size(), shape.vocab);
  EXPECT_EQ(count_non_finite(logits), 0u) << "after prefill";
  int32_t next = 0;
  for (int step = 0; step < 4; ++step) {
    next = static_cast<int32_t>(std::max_element(logits.begin(), logits.end()) - logits.begin());
    logits = session.decode(next);
    ASSERT_EQ(logits.size(), shape.vocab);
    EXPECT_EQ(count_non_finite(logits), 0u) << "after decode step " << step;
  }
  EXPECT_EQ(session.n_past(), 20);
  const auto t2 = std::chrono::steady_clock::now();
  const auto secs = [](auto a, auto b) { return std::chrono::duration<double>(b - a).count(); };
  std::printf("[ synth %s ] write %.1f s, load + 16 prefill + 4 decode %.1f s, %.0f MB\n", shape_name.c_str(),
              secs(t0, t1), secs(t1, t2), static_cast<double>(std::filesystem::file_size(path)) / 1e6);
}

TEST(SyntheticShapes, Shape360mQ4_1RunsEndToEnd) { check_shape("360m"); }

TEST(SyntheticShapes, Shape1_7bQ4_1RunsEndToEnd) { check_shape("1.7b"); }

}  // namespace
}  // namespace kvbits
