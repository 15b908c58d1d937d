#pragma once
// `oracle[@BITS]`: an offline upper bound for precision policies. For each batch of tokens it must
// decide (a prefilled context, with R = 0), it *measures* the damage D(t, b) of storing each token
// in each class b of kOracleClasses — int2, int4/int2, int4, int8 (K width / V width), as the
// shipped controller chooses from — (engine/damage_probe.h: summed KL over the next `horizon`
// tokens of the context) and picks the widths minimising the total damage under the bit budget: a greedy
// multiple-choice knapsack over the lower convex hull of each token's (bits, damage) points,
// taking upgrades in order of damage saved per bit. The run average is held at the target by
// carrying the surplus of earlier batches.
//
// It only sees the context so far: tokens with fewer than `horizon` followers inside it get their
// measured damage scaled by horizon / followers, and the last token (no follower) the largest
// damage of the batch at each width. Cost: one forward of `horizon` tokens per token and class,
// plus one (~0.2 s per token on 2 threads): meant for --limit'ed runs.
#include <array>
#include <vector>

#include "policy/precision_policy.h"

namespace kvbits {

// Ascending in bits; fp16 (damage 0) is not probed.
inline constexpr std::array<KvPrecision, 5> kOracleClasses{{{2, 2}, {4, 2}, {4, 4}, {8, 8}, {16, 16}}};

class OraclePolicy : public PrecisionPolicy {
 public:
  OraclePolicy(double target, int64_t horizon, int64_t residual);

  std::string spec() const override;
  std::string family() const override { return "oracle"; }
  nlohmann::json parameters() const override;
  bool mixed() const override { return true; }
  KvPrecision floor() const override { return {2, 2}; }
  std::optional<double> budget_bits() const override { return target_; }
  void bind(const PolicyBinding& binding) override;
  void decide(std::span<const TokenInfo> tokens, int n_layers, std::span<KvPrecision> out) override;

 private:
  double target_;
  int64_t horizon_;
  DamageFn damage_;
  std::vector<double> class_bits_;  // of kOracleClasses
  std::vector<int32_t> history_;    // tokens of the current sequence (position = index)
  double surplus_ = 0.0;            // bits committed beyond target, summed over tokens
  int64_t decided_ = 0;
  double bits_sum_ = 0.0;
};

// The knapsack step, exposed for tests: damage[i][j] for token i and class j (class_bits
// ascending, the last class has damage 0 by convention), a total bit allowance; returns the class
// per token. Every token gets at least class 0.
std::vector<int> knapsack_widths(const std::vector<std::vector<double>>& damage, const std::vector<double>& class_bits,
                                 double allowance);

}  // namespace kvbits
