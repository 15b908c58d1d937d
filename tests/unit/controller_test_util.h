#pragma once
// A small, valid controller file for tests: random (fixed-seed) MLP weights, three features, a
// frequency table and a budget table calibrated on random scores. Shared by the controller tests.
#include <functional>
#include <random>
#include <vector>

#include "engine/session.h"

#include "model/llama_config.h"
#include "policy/budget_control.h"
#include "policy/controller_file.h"
#include "policy/learned_policy.h"

namespace kvbits::testing {

inline ControllerFile make_test_controller(const LlamaConfig& config, uint64_t seed = 7) {
  ControllerFile c;
  c.model = controller_model(config);
  c.classes = {{2, 2}, {4, 4}, {8, 8}, {16, 16}};
  c.features = {{Feature::kRarity, FeatureTransform::kNone, 8.0f, 2.0f},
                {Feature::kEntropy, FeatureTransform::kNone, 2.0f, 1.5f},
                {Feature::kPosition, FeatureTransform::kLog1p, 3.0f, 1.0f}};
  c.mlp = Mlp({3, 8, 4}, MlpActivation::kGelu);
  c.mlp.init(seed);
  c.rarity = TokenFrequency(config.vocab_size, 0.5, {1, 5, 9}, {10, 3, 1});
  KvStoreOptions kv;
  kv.per_token_record = true;
  for (KvPrecision p : c.classes) c.budget.class_bits.push_back(class_effective_bits(config, kv, p));
  // Calibrate lambda(target) on random scores.
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  std::vector<float> scores(2000 * 4);
  for (float& s : scores) s = nd(rng);
  double prev = 1e9;
  for (double b = c.budget.class_bits.front(); b < c.budget.class_bits.back(); b += 0.5) {
    const double l = std::min(prev, calibrate_lambda(scores, c.budget.class_bits, b));
    prev = l;
    c.budget.bits.push_back(b);
    c.budget.lambda.push_back(l);
  }
  c.budget.gain = 0.05;
  c.budget.default_bits = 3.0;
  c.training = {{"note", "test controller"}};
  return c;
}

// A run of `items` contexts through one session, reset between them as evaluation does:
// context(item) gives each one's tokens. Returns the token-weighted mean of the store's own
// effective bits at the end of each context.
inline double stored_average_bits(Session& s, int items, const std::function<std::vector<int32_t>(int)>& context) {
  double bits = 0, tokens = 0;
  for (int item = 0; item < items; ++item) {
    s.reset();
    s.prefill(context(item));
    const KvStats st = s.kv().stats();
    bits += st.effective_bits * static_cast<double>(st.tokens);
    tokens += static_cast<double>(st.tokens);
  }
  return bits / tokens;
}

}  // namespace kvbits::testing
