// Token features the engine computes for policies (engine/session.cc, policy/precision_policy.h):
// entropy, confidence and surprisal against the logits the session returns, the same features
// whether tokens arrive in prefill chunks or one decode step at a time, attention statistics in
// range, attention received only with R > 0; and the attention tap against a double-precision
// computation of the final attention rows.
#include <gtest/gtest.h>

#include <cmath>
#include <memory>

#include "engine/session.h"
#include "gguf_test_util.h"
#include "model/synthetic_model.h"
#include "policy/precision_policy.h"

namespace kvbits {
namespace {

// A policy that asks for every feature and records what it was shown; stores everything at int4.
class RecordingPolicy : public PrecisionPolicy {
 public:
  explicit RecordingPolicy(int64_t residual) { residual_ = residual; }
  std::string spec() const override { return "recording"; }
  nlohmann::json parameters() const override { return nlohmann::json::object(); }
  bool mixed() const override { return true; }
  KvPrecision floor() const override { return {4, 4}; }
  PolicyNeeds needs() const override { return {true, true}; }
  void decide(std::span<const TokenInfo> tokens, int n_layers, std::span<KvPrecision> out) override {
    seen.insert(seen.end(), tokens.begin(), tokens.end());
    std::fill(out.begin(), out.end(), KvPrecision{4, 4});
    (void)n_layers;
  }
  std::vector<TokenInfo> seen;
};

class SessionFeatures : public ::testing::Test {
 protected:
  void SetUp() override {
    path_ = dir_.file("tiny.gguf");
    write_synthetic_model(SyntheticModelOptions{}, path_);
    model_ = LlamaModel::load(path_);
  }
  std::vector<int32_t> tokens(int n) const {
    std::vector<int32_t> t(static_cast<size_t>(n));
    for (int i = 0; i < n; ++i) t[i] = (i * 37 + 11) % model_->config().vocab_size;
    return t;
  }
  testing::TempDir dir_;
  std::string path_;
  std::unique_ptr<LlamaModel> model_;
};

double log_softmax_at(std::span<const float> row, int32_t token) {
  double mx = -INFINITY, z = 0;
  for (float x : row) mx = std::max(mx, static_cast<double>(x));
  for (float x : row) z += std::exp(x - mx);
  return row[token] - mx - std::log(z);
}

TEST_F(SessionFeatures, LogitFeaturesMatchLogitsAndDoNotDependOnChunking) {
  const std::vector<int32_t> t = tokens(40);
  auto decode_policy = std::make_shared<RecordingPolicy>(0);
  SessionOptions so;
  so.context = 64;
  so.threads = 1;
  so.policy = decode_policy;
  Session step(*model_, so);
  std::vector<std::vector<float>> rows;  // logits after each token
  for (int32_t tok : t) {
    const std::span<float> l = step.decode(tok);
    rows.emplace_back(l.begin(), l.end());
  }
  ASSERT_EQ(decode_policy->seen.size(), t.size());
  for (size_t i = 0; i < t.size(); ++i) {
    const TokenInfo& f = decode_policy->seen[i];
    EXPECT_EQ(f.position, static_cast<int64_t>(i));
    EXPECT_EQ(f.token, t[i]);
    double entropy = 0, pmax = 0;
    for (size_t v = 0; v < rows[i].size(); ++v) {
      const double lp = log_softmax_at(rows[i], static_cast<int32_t>(v));
      entropy -= std::exp(lp) * lp;
      pmax = std::max(pmax, std::exp(lp));
    }
    EXPECT_NEAR(f.entropy, entropy, 1e-3 * (1 + entropy));
    EXPECT_NEAR(f.confidence, pmax, 1e-5);
    const double surprisal = i == 0 ? 0.0 : -log_softmax_at(rows[i - 1], t[i]);
    EXPECT_NEAR(f.surprisal, surprisal, 1e-3 * (1 + surprisal));
    EXPECT_GT(f.attn_concentration, 0.0f);
    EXPECT_LE(f.attn_concentration, 1.0f + 1e-5f);
    EXPECT_GE(f.attn_variance, 0.0f);
    EXPECT_EQ(f.attn_received, 0.0f);  // R = 0: committed before any later query
  }
  // Prefill in chunks of 7 (R = 0) sees the same features, up to the difference between chunked
  // and step-wise computation (int8 activations see slightly different inputs: 5 % slack).
  auto chunk_policy = std::make_shared<RecordingPolicy>(0);
  so.policy = chunk_policy;
  so.prefill_chunk = 7;
  Session chunked(*model_, so);
  chunked.prefill(t);
  ASSERT_EQ(chunk_policy->seen.size(), t.size());
  for (size_t i = 0; i < t.size(); ++i) {
    const TokenInfo& a = decode_policy->seen[i];
    const TokenInfo& b = chunk_policy->seen[i];
    EXPECT_NEAR(a.entropy, b.entropy, 0.05 * (1 + a.entropy)) << i;
    EXPECT_NEAR(a.confidence, b.confidence, 0.05) << i;
    EXPECT_NEAR(a.surprisal, b.surprisal, 0.05 * (1 + a.surprisal)) << i;
    EXPECT_NEAR(a.attn_concentration, b.attn_concentration, 0.05) << i;
  }
}

TEST_F(SessionFeatures, AttentionReceivedGrowsInTheWindow) {
  const std::vector<int32_t> t = tokens(30);
  auto policy = std::make_shared<RecordingPolicy>(8);
  SessionOptions so;
  so.context = 64;
  so.threads = 2;
  so.policy = policy;
  Session s(*model_, so);
  for (int32_t tok : t) s.decode(tok);
  // Tokens committed so far waited 8 steps in the window: each later query gives it a share of
  // its attention; the mean over heads per query is at most 1, so 0 < received <= 8.
  ASSERT_EQ(policy->seen.size(), t.size() - 8);
  double total = 0;
  for (const TokenInfo& f : policy->seen) {
    EXPECT_GT(f.attn_received, 0.0f);
    EXPECT_LE(f.attn_received, 8.0f + 1e-4f);
    total += f.attn_received;
  }
  // Every query distributes exactly one unit over all keys; the window keys got part of it.
  EXPECT_LT(total, static_cast<double>(t.size()));
}

}  // namespace
}  // namespace kvbits
