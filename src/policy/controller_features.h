#pragma once
// The learned controller's input features: what each one is, how it is computed from the
// engine's TokenInfo, and the token-frequency tables behind the rarity features. Deployment
// (policy/learned_policy.cc) and training (train/) call the same functions, so a controller sees
// at run time exactly the values it was fitted on.
//
// Feature value = normalise(transform(raw)), raw from:
//   rarity              -log of the token's smoothed unigram frequency in the calibration corpus
//                       (TokenFrequency: counts stored in the controller file)
//   rarity_running      the same from running counts of the tokens the policy has seen so far in
//                       this run (RunningFrequency; the token itself is counted after)
//   entropy             TokenInfo::entropy (nats)          -- PolicyNeeds::logits
//   confidence          TokenInfo::confidence              -- PolicyNeeds::logits
//   surprisal           TokenInfo::surprisal (nats)        -- PolicyNeeds::logits
//   attn_variance       TokenInfo::attn_variance           -- PolicyNeeds::attention
//   attn_concentration  TokenInfo::attn_concentration      -- PolicyNeeds::attention
//   attn_received       TokenInfo::attn_received (0 with R = 0) -- PolicyNeeds::attention
//   position            TokenInfo::position
// Transforms: none, log (log(x + 1e-9)), log1p (log(1 + x)).
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "policy/precision_policy.h"

namespace kvbits {

enum class Feature {
  kRarity,
  kRarityRunning,
  kEntropy,
  kConfidence,
  kSurprisal,
  kAttnVariance,
  kAttnConcentration,
  kAttnReceived,
  kPosition,
};
inline constexpr int kFeatureKinds = 9;

enum class FeatureTransform { kNone, kLog, kLog1p };

const char* to_string(Feature f);
const char* to_string(FeatureTransform t);
// Throw Error("unknown feature 'x' (known: ...)") / ("unknown feature transform ...").
Feature parse_feature(const std::string& name);
FeatureTransform parse_feature_transform(const std::string& name);
// The transform a feature gets unless told otherwise (log for the attention statistics and
// position, which span orders of magnitude).
FeatureTransform default_transform(Feature f);
// Every feature, in enum order.
std::vector<Feature> all_features();

struct FeatureSpec {
  Feature feature = Feature::kEntropy;
  FeatureTransform transform = FeatureTransform::kNone;
  float mean = 0.0f;  // of the transformed value over the training data
  float std = 1.0f;   // > 0
};

// What the engine must compute for these features.
PolicyNeeds needs_of(std::span<const FeatureSpec> features);

// Unigram counts over a calibration corpus, with add-alpha smoothing over the whole vocabulary:
// rarity(t) = -log((count(t) + alpha) / (total + alpha * vocab)). Tokens never seen get the
// smoothed default -log(alpha / (total + alpha * vocab)). Only seen tokens are stored.
class TokenFrequency {
 public:
  TokenFrequency() = default;
  // ids strictly ascending, each < vocab; counts >= 1. Throws Error otherwise.
  TokenFrequency(int32_t vocab, double alpha, std::vector<int32_t> ids, std::vector<uint32_t> counts);
  // Counts the tokens of a corpus.
  static TokenFrequency count(int32_t vocab, double alpha, std::span<const int32_t> tokens);

  float rarity(int32_t token) const;
  int32_t vocab() const { return vocab_; }
  double alpha() const { return alpha_; }
  uint64_t total() const { return total_; }
  const std::vector<int32_t>& ids() const { return ids_; }
  const std::vector<uint32_t>& counts() const { return counts_; }

 private:
  int32_t vocab_ = 0;
  double alpha_ = 1.0;
  uint64_t total_ = 0;
  std::vector<int32_t> ids_;
  std::vector<uint32_t> counts_;
  std::vector<float> table_;  // [vocab] rarity, filled by the constructor
};

// Running counts: rarity from the tokens seen before, then counts the token.
class RunningFrequency {
 public:
  RunningFrequency(int32_t vocab, double alpha) : vocab_(vocab), alpha_(alpha), counts_(static_cast<size_t>(vocab)) {}
  float observe(int32_t token);

 private:
  int32_t vocab_;
  double alpha_;
  uint64_t total_ = 0;
  std::vector<uint32_t> counts_;
};

// Raw values of every feature kind for one token (index = Feature), before transform.
struct RawFeatures {
  float v[kFeatureKinds] = {};
};
RawFeatures raw_features(const TokenInfo& t, float rarity, float rarity_running);

// The normalised input vector: out[i] = (transform_i(raw[f_i]) - mean_i) / std_i.
void feature_vector(std::span<const FeatureSpec> features, const RawFeatures& raw, float* out);
// transform(raw) alone (training computes means and deviations of it).
float transform_feature(FeatureTransform t, float raw);

}  // namespace kvbits
