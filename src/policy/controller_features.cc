#include "policy/controller_features.h"

#include <algorithm>
#include <cmath>

#include "util/error.h"

namespace kvbits {

namespace {
constexpr const char* kFeatureNames[kFeatureKinds] = {
    "rarity", "rarity_running", "entropy", "confidence", "surprisal",
    "attn_variance", "attn_concentration", "attn_received", "position"};
}  // namespace

const char* to_string(Feature f) { return kFeatureNames[static_cast<int>(f)]; }

const char* to_string(FeatureTransform t) {
  return t == FeatureTransform::kLog ? "log" : t == FeatureTransform::kLog1p ? "log1p" : "none";
}

Feature parse_feature(const std::string& name) {
  std::string known;
  for (int i = 0; i < kFeatureKinds; ++i) {
    if (name == kFeatureNames[i]) return static_cast<Feature>(i);
    known += (i ? ", " : "") + std::string(kFeatureNames[i]);
  }
  throw Error("unknown feature '" + name + "' (known: " + known + ")");
}

FeatureTransform parse_feature_transform(const std::string& name) {
  if (name == "none") return FeatureTransform::kNone;
  if (name == "log") return FeatureTransform::kLog;
  if (name == "log1p") return FeatureTransform::kLog1p;
  throw Error("unknown feature transform '" + name + "' (none, log, log1p)");
}

FeatureTransform default_transform(Feature f) {
  switch (f) {
    case Feature::kAttnVariance:
    case Feature::kAttnConcentration:
      return FeatureTransform::kLog;
    case Feature::kAttnReceived:
    case Feature::kPosition:
      return FeatureTransform::kLog1p;
    default:
      return FeatureTransform::kNone;
  }
}

std::vector<Feature> all_features() {
  std::vector<Feature> f;
  for (int i = 0; i < kFeatureKinds; ++i) f.push_back(static_cast<Feature>(i));
  return f;
}

PolicyNeeds needs_of(std::span<const FeatureSpec> features) {
  PolicyNeeds n;
  for (const FeatureSpec& s : features) {
    switch (s.feature) {
      case Feature::kEntropy:
      case Feature::kConfidence:
      case Feature::kSurprisal:
        n.logits = true;
        break;
      case Feature::kAttnVariance:
      case Feature::kAttnConcentration:
      case Feature::kAttnReceived:
        n.attention = true;
        break;
      default:
        break;
    }
  }
  return n;
}

TokenFrequency::TokenFrequency(int32_t vocab, double alpha, std::vector<int32_t> ids, std::vector<uint32_t> counts)
    : vocab_(vocab), alpha_(alpha), ids_(std::move(ids)), counts_(std::move(counts)) {
  if (vocab < 1) throw Error("token frequency table: vocabulary size must be >= 1");
  if (!(alpha > 0.0) || !std::isfinite(alpha)) throw Error("token frequency table: alpha must be a positive number");
  if (ids_.size() != counts_.size()) {
    throw Error("token frequency table: " + std::to_string(ids_.size()) + " ids but " + std::to_string(counts_.size()) +
                " counts");
  }
  for (size_t i = 0; i < ids_.size(); ++i) {
    if (ids_[i] < 0 || ids_[i] >= vocab) {
      throw Error("token frequency table: token id " + std::to_string(ids_[i]) + " outside the vocabulary of " +
                  std::to_string(vocab));
    }
    if (i > 0 && ids_[i] <= ids_[i - 1]) throw Error("token frequency table: ids are not strictly ascending");
    if (counts_[i] < 1) throw Error("token frequency table: counts must be >= 1");
    total_ += counts_[i];
  }
  const double denom = static_cast<double>(total_) + alpha_ * vocab_;
  table_.assign(static_cast<size_t>(vocab_), static_cast<float>(-std::log(alpha_ / denom)));
  for (size_t i = 0; i < ids_.size(); ++i) {
    table_[static_cast<size_t>(ids_[i])] = static_cast<float>(-std::log((counts_[i] + alpha_) / denom));
  }
}

TokenFrequency TokenFrequency::count(int32_t vocab, double alpha, std::span<const int32_t> tokens) {
  std::vector<uint32_t> dense(static_cast<size_t>(vocab > 0 ? vocab : 0));
  for (int32_t t : tokens) {
    if (t < 0 || t >= vocab) throw Error("token frequency table: token id " + std::to_string(t) + " outside the vocabulary");
    ++dense[static_cast<size_t>(t)];
  }
  std::vector<int32_t> ids;
  std::vector<uint32_t> counts;
  for (int32_t i = 0; i < vocab; ++i) {
    if (dense[static_cast<size_t>(i)] > 0) {
      ids.push_back(i);
      counts.push_back(dense[static_cast<size_t>(i)]);
    }
  }
  return TokenFrequency(vocab, alpha, std::move(ids), std::move(counts));
}

float TokenFrequency::rarity(int32_t token) const {
  if (token < 0 || token >= vocab_) return table_.empty() ? 0.0f : static_cast<float>(-std::log(alpha_ / (total_ + alpha_ * vocab_)));
  return table_[static_cast<size_t>(token)];
}

float RunningFrequency::observe(int32_t token) {
  const double denom = static_cast<double>(total_) + alpha_ * vocab_;
  double c = 0.0;
  if (token >= 0 && token < vocab_) c = counts_[static_cast<size_t>(token)]++;
  ++total_;
  return static_cast<float>(-std::log((c + alpha_) / denom));
}

RawFeatures raw_features(const TokenInfo& t, float rarity, float rarity_running) {
  RawFeatures r;
  r.v[static_cast<int>(Feature::kRarity)] = rarity;
  r.v[static_cast<int>(Feature::kRarityRunning)] = rarity_running;
  r.v[static_cast<int>(Feature::kEntropy)] = t.entropy;
  r.v[static_cast<int>(Feature::kConfidence)] = t.confidence;
  r.v[static_cast<int>(Feature::kSurprisal)] = t.surprisal;
  r.v[static_cast<int>(Feature::kAttnVariance)] = t.attn_variance;
  r.v[static_cast<int>(Feature::kAttnConcentration)] = t.attn_concentration;
  r.v[static_cast<int>(Feature::kAttnReceived)] = t.attn_received;
  r.v[static_cast<int>(Feature::kPosition)] = static_cast<float>(t.position);
  return r;
}

float transform_feature(FeatureTransform t, float raw) {
  if (!std::isfinite(raw)) raw = 0.0f;
  switch (t) {
    case FeatureTransform::kLog:
      return std::log(std::max(raw, 0.0f) + 1e-9f);
    case FeatureTransform::kLog1p:
      return std::log1p(std::max(raw, 0.0f));
    default:
      return raw;
  }
}

void feature_vector(std::span<const FeatureSpec> features, const RawFeatures& raw, float* out) {
  for (size_t i = 0; i < features.size(); ++i) {
    const FeatureSpec& s = features[i];
    out[i] = (transform_feature(s.transform, raw.v[static_cast<int>(s.feature)]) - s.mean) / s.std;
  }
}

}  // namespace kvbits
