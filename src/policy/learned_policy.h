#pragma once
// `learned:PATH[@BITS]`: the learned precision controller (issue 5). For each token leaving the
// FP16 window: features from TokenInfo and the controller's token-frequency table
// (policy/controller_features.h), normalised as stored, through the MLP -> one score per class
// (the file's classes, each a K width and a V width: the shipped controller chooses from int2,
// int4/int2, int4, int8 and fp16), then budget control (policy/budget_control.h): the class
// maximising score - lambda * bits, lambda from the file's calibration table plus an integral
// correction on the run's committed bits, so the run averages BITS effective bits (+-0.1).
//
// The bits of a class come from the store's own layout (KvPageLayout::token_bytes for the model's
// shape and the session's group, plus the 16-bit per-token record), never a constant, so a change
// of codec metadata is accounted automatically. A token gets the same class in every layer,
// unless a layer sensitivity file is given (`--kv-layers FILE`, with_layers()): then the widths
// come from that file's classes, per layer, by LayerTokenBudget (policy/layer_token_budget.h),
// with the token's damage multiplier a_t from the controller's scores (damage_multiplier()).
// The budget counts committed tokens: with R > 0 the FP16 window adds to the effective bits.
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "policy/budget_control.h"
#include "policy/controller_file.h"
#include "policy/layer_sensitivity.h"
#include "policy/layer_token_budget.h"
#include "policy/precision_policy.h"

namespace kvbits {

// Effective bits of one token-layer row of class p in a store with these options: 8 (token_bytes
// + per-token record) / (2 kv_dim).
double class_effective_bits(const LlamaConfig& config, const KvStoreOptions& kv, KvPrecision p);
// Checks a budget against the cheapest class of a store; the error explains what the cheapest
// class costs.
void check_budget_reachable(double target, const LlamaConfig& config, const KvStoreOptions& kv, KvPrecision cheapest,
                            const std::string& what);
// class_effective_bits of every class, after check_budget_reachable with the cheapest of them.
std::vector<double> reachable_class_bits(double target, const LlamaConfig& config, const KvStoreOptions& kv,
                                         const std::vector<KvPrecision>& classes, const std::string& what);

class LearnedPolicy : public PrecisionPolicy {
 public:
  // target: average effective bits; unset = the controller's default_bits.
  LearnedPolicy(std::shared_ptr<const ControllerFile> controller, std::string path, std::optional<double> target,
                int64_t residual);
  // Reads the file (Error on anything wrong with it).
  static std::unique_ptr<LearnedPolicy> load(const std::filesystem::path& path, std::optional<double> target,
                                             int64_t residual);
  // Per-layer widths from a layer sensitivity file (before the first bind). The controller must
  // have int2 and int4 classes and its training summary the soft-label temperature and mu.
  void with_layers(LayerSensitivity layers, std::string path);

  std::string spec() const override;
  std::string family() const override;
  nlohmann::json parameters() const override;
  bool mixed() const override { return true; }
  KvPrecision floor() const override;
  PolicyNeeds needs() const override { return needs_; }
  std::optional<double> budget_bits() const override { return target_; }
  void bind(const PolicyBinding& binding) override;
  void decide(std::span<const TokenInfo> tokens, int n_layers, std::span<KvPrecision> out) override;
  void charge(double bits) override;

  // The scores (one per class) for a token; `rarity_running` as RunningFrequency gives it.
  void score(const TokenInfo& token, float rarity_running, std::span<float> out) const;
  // The token's damage multiplier from its scores (one per class): the soft labels the controller
  // was fitted to are softmax_j(-(D_j + mu bits_j) / T), so g = T (s_int4 - s_int2) + mu (bits_int4
  // - bits_int2) estimates D_int2 - D_int4, what int4 saves this token (nats, all layers); a =
  // sqrt(max(0, g / its held-out mean over the training tokens)), so an average token has a ~ 1.
  // The square root shrinks the estimate towards the mean: chosen on the ARC train text, where
  // a = 1, sqrt and the full g gave KL 0.0298, 0.0298 and 0.0300 at 3 bits (docs/controller.md:
  // on long text the per-token estimate adds little to the layer axis; the full g lost 4 % on
  // WikiText, the square root gained 1 %).
  double damage_multiplier(std::span<const float> scores) const;
  const ControllerFile& controller() const { return *controller_; }
  const BudgetController& budget() const { return budget_; }
  // Tokens decided per class so far.
  const std::vector<int64_t>& class_counts() const { return class_counts_; }

 private:
  void bind_layers(const PolicyBinding& binding);

  std::shared_ptr<const ControllerFile> controller_;
  std::string path_;
  double target_;
  PolicyNeeds needs_;
  bool bound_ = false;
  BudgetController budget_;
  RunningFrequency running_;
  std::vector<int64_t> class_counts_;
  mutable std::vector<float> x_, scratch_, scores_;
  // with_layers() only
  std::optional<LayerSensitivity> layers_;
  std::string layers_path_;
  LayerTokenBudget layer_budget_;
  size_t int2_class_ = 0, int4_class_ = 0;
  double temperature_ = 0.0, mu_ = 0.0, mean_gain_ = 1.0, multiplier_sum_ = 0.0;
  std::vector<int> layer_classes_;
  std::vector<int64_t> layer_class_counts_;  // [class of the layer file]: token-layer rows decided
};

}  // namespace kvbits
