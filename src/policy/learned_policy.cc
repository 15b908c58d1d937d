#include "policy/learned_policy.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "ops/kv_page.h"
#include "util/error.h"

namespace kvbits {

namespace {
std::string bits_text(double b) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%g", b);
  return buf;
}
std::string bits2(double b) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.2f", b);
  return buf;
}
// Integral gain = kKappa / (bits per unit of lambda near the target): the surplus relaxes in about
// 1 / kKappa tokens.
constexpr double kKappaDefault = 0.05;
}  // namespace

double class_effective_bits(const LlamaConfig& c, const KvStoreOptions& kv, KvPrecision p) {
  const int group = std::min(kv.group, c.head_dim);
  const KvPageLayout layout({p.k_bits, c.head_dim, group}, {p.v_bits, c.head_dim, group}, kv.page_tokens, c.n_kv_heads);
  const double record = kv.per_token_record ? 2.0 : 0.0;  // 16-bit page id per token and layer
  return 8.0 * (static_cast<double>(layout.token_bytes()) + record) / (2.0 * c.kv_dim());
}

void check_budget_reachable(double target, const LlamaConfig& c, const KvStoreOptions& kv, KvPrecision cheapest,
                            const std::string& what) {
  const double floor_bits = class_effective_bits(c, kv, cheapest);
  if (target < floor_bits) {
    throw Error(what + ": a budget of " + bits_text(target) + " bits is below the cheapest class: " + to_string(cheapest) +
                " costs " + bits2(floor_bits) + " effective bits here (codes + scale and minimum per group of " +
                std::to_string(std::min(kv.group, c.head_dim)) + (kv.per_token_record ? " + the 16-bit per-token record" : "") +
                "); give a budget from " + bits2(floor_bits) + " to 16");
  }
}

std::vector<double> reachable_class_bits(double target, const LlamaConfig& c, const KvStoreOptions& kv,
                                         const std::vector<KvPrecision>& classes, const std::string& what) {
  std::vector<double> bits;
  size_t cheapest = 0;
  for (size_t j = 0; j < classes.size(); ++j) {
    bits.push_back(class_effective_bits(c, kv, classes[j]));
    if (bits[j] < bits[cheapest]) cheapest = j;
  }
  if (!classes.empty()) check_budget_reachable(target, c, kv, classes[cheapest], what);
  return bits;
}

LearnedPolicy::LearnedPolicy(std::shared_ptr<const ControllerFile> controller, std::string path,
                             std::optional<double> target, int64_t residual)
    : controller_(std::move(controller)),
      path_(std::move(path)),
      target_(target.value_or(controller_->budget.default_bits)),
      needs_(needs_of(controller_->features)),
      running_(controller_->rarity.vocab(), controller_->rarity.alpha()),
      class_counts_(controller_->classes.size(), 0) {
  residual_ = residual;
  check_budget_bits(target_, "learned:" + path_);
}

std::unique_ptr<LearnedPolicy> LearnedPolicy::load(const std::filesystem::path& path, std::optional<double> target,
                                                   int64_t residual) {
  auto c = std::make_shared<const ControllerFile>(read_controller(path));
  return std::make_unique<LearnedPolicy>(std::move(c), path.string(), target, residual);
}

void LearnedPolicy::with_layers(LayerSensitivity layers, std::string path) {
  if (bound_) throw Error("learned policy: with_layers() after bind()");
  const ControllerFile& c = *controller_;
  const std::string where = "--kv-layers with learned:" + path_;
  const auto find = [&](KvPrecision p) {
    for (size_t j = 0; j < c.classes.size(); ++j) {
      if (c.classes[j] == p) return j;
    }
    throw Error(where + ": the controller has no " + to_string(p) + " class to estimate a token's damage from");
  };
  int2_class_ = find({2, 2});
  int4_class_ = find({4, 4});
  const nlohmann::json& labels = c.training.contains("labels") ? c.training["labels"] : nlohmann::json::object();
  const auto number = [&](const nlohmann::json& j, const char* key) {
    if (!j.is_object() || !j.contains(key) || !j[key].is_number()) {
      throw Error(where + ": the controller's training summary lacks labels." + key + " (re-train it with this version)");
    }
    return j[key].get<double>();
  };
  temperature_ = number(labels, "temperature");
  mu_ = number(labels, "mu");
  const nlohmann::json& mean = labels.contains("heldout_mean_damage") ? labels["heldout_mean_damage"] : nlohmann::json();
  mean_gain_ = number(mean, "int2") - number(mean, "int4");
  if (!(temperature_ > 0.0) || !(mean_gain_ > 0.0) || !std::isfinite(mu_)) {
    throw Error(where + ": the controller's label temperature or mean damages are not usable");
  }
  if (c.budget.class_bits.size() != c.classes.size()) throw Error(where + ": the controller's budget table has no class bits");
  layers_ = std::move(layers);
  layers_path_ = std::move(path);
}

double LearnedPolicy::damage_multiplier(std::span<const float> scores) const {
  const std::vector<double>& bits = controller_->budget.class_bits;
  const double gain = temperature_ * (static_cast<double>(scores[int4_class_]) - scores[int2_class_]) +
                      mu_ * (bits[int4_class_] - bits[int2_class_]);
  return std::sqrt(std::max(0.0, gain / mean_gain_));
}

std::string LearnedPolicy::spec() const { return family() + "@" + bits_text(target_); }

std::string LearnedPolicy::family() const {
  std::string f = "learned:" + std::filesystem::path(path_).stem().string();
  if (layers_) f += "+layers:" + std::filesystem::path(layers_path_).stem().string();
  return f;
}

nlohmann::json LearnedPolicy::parameters() const {
  nlohmann::json feats = nlohmann::json::array();
  for (const FeatureSpec& s : controller_->features) feats.push_back(to_string(s.feature));
  nlohmann::json p = {{"controller", path_},
                      {"target_bits", target_},
                      {"features", feats},
                      {"mlp", controller_->mlp.sizes()},
                      {"residual", residual_}};
  if (bound_) {
    p["class_bits"] = budget_.class_bits();
    p["lambda0"] = controller_->budget.lambda_for(target_);
    p["lambda_final"] = budget_.lambda();
    p["decided_tokens"] = budget_.decided();
    p["decided_average_bits"] = budget_.average_bits();
    p["guarded_tokens"] = budget_.guarded();
    p["class_counts"] = class_counts_;
  }
  if (layers_) {
    p["layers"] = layers_path_;
    nlohmann::json names = nlohmann::json::array();
    for (KvPrecision c : layers_->classes) names.push_back(to_string(c));
    p["layer_classes"] = names;
    if (bound_) {
      p.erase("class_counts");  // token classes: the layer rows below count instead
      p["lambda0"] = layer_budget_.lambda0();
      p["lambda_final"] = layer_budget_.lambda();
      p["decided_tokens"] = layer_budget_.decided();
      p["decided_average_bits"] = layer_budget_.average_bits();
      p["guarded_tokens"] = layer_budget_.guarded();
      p["class_bits"] = layer_budget_.class_bits();
      p["layer_class_rows"] = layer_class_counts_;
      p["mean_damage_multiplier"] = layer_budget_.decided() ? multiplier_sum_ / static_cast<double>(layer_budget_.decided()) : 0.0;
    }
  }
  return p;
}

KvPrecision LearnedPolicy::floor() const {
  KvPrecision f{16, 16};
  for (KvPrecision p : layers_ ? layers_->classes : controller_->classes) {
    f.k_bits = std::min(f.k_bits, p.k_bits);
    f.v_bits = std::min(f.v_bits, p.v_bits);
  }
  return f;
}

void LearnedPolicy::bind(const PolicyBinding& b) {
  if (!b.config || !b.kv) throw Error("learned policy: bound without a model");
  check_controller_model(controller_->model, *b.config, path_);
  if (layers_) {
    bind_layers(b);
    return;
  }
  const std::vector<double> bits = reachable_class_bits(target_, *b.config, *b.kv, controller_->classes, "learned:" + path_);
  if (bound_ && bits == budget_.class_bits()) return;  // another session of the same run: keep its state
  // Integral gain from the calibration table's slope (bits per unit lambda) around the target.
  const BudgetTable& t = controller_->budget;
  const double l0 = t.lambda_for(target_);
  double slope = 0.0;
  if (t.bits.size() >= 2) {
    const double lo = std::max(t.bits.front(), target_ - 0.5), hi = std::min(t.bits.back(), target_ + 0.5);
    const double dl = t.lambda_for(lo) - t.lambda_for(hi);
    if (dl > 0 && hi > lo) slope = (hi - lo) / dl;
  }
  const double kappa = t.gain > 0 ? t.gain : kKappaDefault;
  const double gain = slope > 0 ? kappa / slope : kappa;
  budget_ = BudgetController(bits, target_, l0, gain);
  std::fill(class_counts_.begin(), class_counts_.end(), 0);
  bound_ = true;
}

void LearnedPolicy::bind_layers(const PolicyBinding& b) {
  const LayerSensitivity& s = *layers_;
  if (s.n_layers != b.config->n_layers) {
    throw Error("--kv-layers " + layers_path_ + ": measured on a model with " + std::to_string(s.n_layers) +
                " layers, this one has " + std::to_string(b.config->n_layers));
  }
  const std::vector<double> bits = reachable_class_bits(target_, *b.config, *b.kv, s.classes, spec());
  if (bound_ && bits == layer_budget_.class_bits()) return;  // another session of the same run
  const double kappa = controller_->budget.gain > 0 ? controller_->budget.gain : kKappaDefault;
  layer_budget_ = LayerTokenBudget(s.kl, bits, target_, kappa);
  layer_classes_.assign(static_cast<size_t>(s.n_layers), 0);
  layer_class_counts_.assign(s.classes.size(), 0);
  multiplier_sum_ = 0.0;
  bound_ = true;
}

void LearnedPolicy::score(const TokenInfo& token, float rarity_running, std::span<float> out) const {
  const ControllerFile& c = *controller_;
  x_.resize(c.features.size());
  const RawFeatures raw = raw_features(token, c.rarity.rarity(token.token), rarity_running);
  feature_vector(c.features, raw, x_.data());
  c.mlp.forward(x_.data(), out.data(), scratch_);
}

void LearnedPolicy::decide(std::span<const TokenInfo> tokens, int n_layers, std::span<KvPrecision> out) {
  if (!bound_) throw Error("learned policy: decide() before bind()");
  const size_t k = controller_->classes.size();
  scores_.resize(k);
  for (size_t i = 0; i < tokens.size(); ++i) {
    const float running = running_.observe(tokens[i].token);
    score(tokens[i], running, scores_);
    if (layers_) {
      if (n_layers != layer_budget_.n_layers()) throw Error("learned policy: decide() for another layer count than bound");
      const double a = damage_multiplier(scores_);
      multiplier_sum_ += a;
      layer_budget_.choose(a, layer_classes_);
      for (int l = 0; l < n_layers; ++l) {
        const int c = layer_classes_[static_cast<size_t>(l)];
        ++layer_class_counts_[static_cast<size_t>(c)];
        out[i * static_cast<size_t>(n_layers) + static_cast<size_t>(l)] = layers_->classes[static_cast<size_t>(c)];
      }
      continue;
    }
    const int j = budget_.choose(scores_);
    ++class_counts_[static_cast<size_t>(j)];
    std::fill_n(out.begin() + static_cast<ptrdiff_t>(i) * n_layers, n_layers, controller_->classes[static_cast<size_t>(j)]);
  }
}

void LearnedPolicy::charge(double bits) {
  if (!bound_) return;
  if (layers_) layer_budget_.charge(bits);
  else budget_.charge(bits);
}

}  // namespace kvbits
