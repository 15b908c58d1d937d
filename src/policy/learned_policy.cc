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

std::string LearnedPolicy::spec() const { return family() + "@" + bits_text(target_); }

std::string LearnedPolicy::family() const { return "learned:" + std::filesystem::path(path_).stem().string(); }

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
  return p;
}

KvPrecision LearnedPolicy::floor() const {
  KvPrecision f{16, 16};
  for (KvPrecision p : controller_->classes) {
    f.k_bits = std::min(f.k_bits, p.k_bits);
    f.v_bits = std::min(f.v_bits, p.v_bits);
  }
  return f;
}

void LearnedPolicy::bind(const PolicyBinding& b) {
  if (!b.config || !b.kv) throw Error("learned policy: bound without a model");
  check_controller_model(controller_->model, *b.config, path_);
  std::vector<double> bits;
  size_t cheapest = 0;
  for (size_t j = 0; j < controller_->classes.size(); ++j) {
    bits.push_back(class_effective_bits(*b.config, *b.kv, controller_->classes[j]));
    if (bits[j] < bits[cheapest]) cheapest = j;
  }
  check_budget_reachable(target_, *b.config, *b.kv, controller_->classes[cheapest], "learned:" + path_);
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
    const int j = budget_.choose(scores_);
    ++class_counts_[static_cast<size_t>(j)];
    std::fill_n(out.begin() + static_cast<ptrdiff_t>(i) * n_layers, n_layers, controller_->classes[static_cast<size_t>(j)]);
  }
}

}  // namespace kvbits
