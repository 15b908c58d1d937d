// The forward pass of the real SmolLM2-135M against two independent references.
//
// 1. HF transformers + torch (scripts/fixtures/make_float_fixtures.py): fp32 weights dequantized
//    from the same GGUF, fp32 everything. Compared with kvbits' fp32-activation mode, which differs
//    from it only by storing K/V as fp16 (relative rounding 2^-11) and by fp32 summation order.
//    Observed worst |logit difference| over all fixture positions: 0.03. Tolerance 0.08. The
//    64-token greedy continuation must be identical for every prompt (it is: the smallest top-2
//    margin along them, recorded by the fixture, is ~0.08, while our error is ~0.01 per logit).
//
// 2. llama.cpp (scripts/fixtures/make_model_fixtures.py) with its int8-activation kernels, compared
//    with kvbits' default int8-activation path. Both round every matmul input to int8 per block of
//    32 and the 30-layer network amplifies any tiny arithmetic difference through flipped roundings:
//    a 2^-11 perturbation of attention inside kvbits alone moves logits by up to ~0.6. llama.cpp
//    itself departs from the fp32 reference at the first greedy token of 2 of the 7 prompts (where
//    the fp32 top-2 margin is < 0.1). So the int8 path is held to llama.cpp's own noise level:
//    identical top-1 wherever llama.cpp's top-2 margin exceeds 0.5, mean |difference| of the top-20
//    logits < 0.35 per prompt (observed 0.13-0.28) and worst < 2.5 (observed 1.8).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>

#include "engine/session.h"
#include "model/llama_model.h"
#include "model_test_util.h"

namespace kvbits {
namespace {

class ForwardFixture : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (!testing::model_available()) return;
    model_ = LlamaModel::load(testing::model_path()).release();
  }
  static void TearDownTestSuite() {
    delete model_;
    model_ = nullptr;
  }
  void SetUp() override {
    if (!model_) GTEST_SKIP() << "model not found at " << testing::model_path() << " (run scripts/fetch-model.sh)";
  }
  static SessionOptions options(ActivationMode mode) {
    SessionOptions o;
    o.context = 512;
    o.threads = 2;
    o.activations = mode;
    return o;
  }
  static int32_t argmax(std::span<const float> v) {
    return static_cast<int32_t>(std::max_element(v.begin(), v.end()) - v.begin());
  }
  static LlamaModel* model_;
};
LlamaModel* ForwardFixture::model_ = nullptr;

TEST_F(ForwardFixture, Fp32PathMatchesTransformersLogits) {
  const nlohmann::json fx = testing::load_fixture("model_logits_float.json");
  const int vocab = model_->config().vocab_size;
  float worst = 0.0f;
  for (const auto& c : fx["cases"]) {
    const std::vector<int32_t> ids = c["ids"].get<std::vector<int32_t>>();
    Session s(*model_, options(ActivationMode::kFloat));
    std::span<float> logits = s.prefill_all_logits(ids);
    for (size_t pos = 0; pos < ids.size(); ++pos) {
      const auto& top = c["top"][pos];
      const float* row = logits.data() + pos * vocab;
      for (size_t k = 0; k < top["ids"].size(); ++k) {
        const int id = top["ids"][k];
        const float diff = std::fabs(row[id] - top["logits"][k].get<float>());
        worst = std::max(worst, diff);
        ASSERT_LT(diff, 0.08f) << "prompt " << c["prompt"] << " position " << pos << " token " << id;
      }
      EXPECT_EQ(argmax({row, static_cast<size_t>(vocab)}), top["ids"][0].get<int>()) << "position " << pos;
    }
  }
  std::printf("fp32 path vs transformers: worst |logit difference| %.4f\n", worst);
}

TEST_F(ForwardFixture, Fp32PathGreedyContinuationIsIdenticalToTransformers) {
  const nlohmann::json fx = testing::load_fixture("model_logits_float.json");
  for (const auto& c : fx["cases"]) {
    const std::vector<int32_t> ids = c["ids"].get<std::vector<int32_t>>();
    const std::vector<int32_t> expected = c["greedy"].get<std::vector<int32_t>>();
    Session s(*model_, options(ActivationMode::kFloat));
    std::span<float> logits = s.prefill(ids);
    std::vector<int32_t> got;
    for (size_t i = 0; i < expected.size(); ++i) {
      got.push_back(argmax(logits));
      logits = s.decode(got.back());
    }
    EXPECT_EQ(got, expected) << "prompt: " << c["prompt"];
  }
}

TEST_F(ForwardFixture, Int8PathAgreesWithLlamaCppWithinItsNoise) {
  const nlohmann::json fx = testing::load_fixture("model_logits.json");
  const int vocab = model_->config().vocab_size;
  for (const auto& c : fx["cases"]) {
    const std::vector<int32_t> ids = c["ids"].get<std::vector<int32_t>>();
    Session s(*model_, options(ActivationMode::kInt8));
    std::span<float> logits = s.prefill_all_logits(ids);
    double sum = 0.0;
    float worst = 0.0f;
    int n = 0;
    for (size_t pos = 0; pos < ids.size(); ++pos) {
      const auto& top = c["top"][pos];
      const float* row = logits.data() + pos * vocab;
      for (size_t k = 0; k < top["ids"].size(); ++k) {
        const float diff = std::fabs(row[top["ids"][k].get<int>()] - top["logits"][k].get<float>());
        sum += diff;
        worst = std::max(worst, diff);
        ++n;
      }
      const float margin = top["logits"][0].get<float>() - top["logits"][1].get<float>();
      if (margin > 0.5f) {
        EXPECT_EQ(argmax({row, static_cast<size_t>(vocab)}), top["ids"][0].get<int>())
            << "prompt " << c["prompt"] << " position " << pos << " (reference margin " << margin << ")";
      }
    }
    EXPECT_LT(sum / n, 0.35) << "prompt " << c["prompt"];
    EXPECT_LT(worst, 2.5f) << "prompt " << c["prompt"];
  }
}

}  // namespace
}  // namespace kvbits
