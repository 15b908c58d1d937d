#pragma once
// Budget control across layers *and* tokens (`learned:CTRL@BITS` with `--kv-layers FILE`).
//
// Damage model: storing token t at class c in layer l costs a_t * S[c][l], where S is a layer
// sensitivity table (policy/layer_sensitivity.h: KL when only layer l is stored at c) and a_t >= 0
// is the token's damage multiplier (mean ~1; the learned controller's estimate of how much this
// token suffers from a narrow code relative to an average token). Each (token, layer) takes the
// class minimising
//     a_t * S[c][l] + lambda * bits_c
// (ties: the cheaper class): a Lagrangian allocation over layers, scaled per token. With every
// a_t = 1 it is the Lagrangian (convex-hull) version of `alloc:` (policy/layer_policy.h), so the
// layers keep their measured order and the controller only moves a token's widths up or down.
// lambda = lambda0 + gain * surplus, surplus = sum over decided tokens of (their mean bits over
// layers - target): lambda0 is where the a = 1 allocation meets the target, gain = kappa / (bits
// per unit of lambda near it), so the surplus relaxes in ~1/kappa tokens as in BudgetController
// (policy/budget_control.h). A guard keeps |surplus| <= slack + one token's excursion: a token that
// would push it past +-slack takes the cheapest (or the best-damage) class in every layer.
#include <cstdint>
#include <span>
#include <vector>

namespace kvbits {

class LayerTokenBudget {
 public:
  LayerTokenBudget() = default;
  // kl[c][l] finite >= 0 (same layer count for every class), class_bits[c] > 0, target inside
  // [min class bits, max class bits] (the caller checks and words that error). Throws Error on
  // shapes that do not agree.
  LayerTokenBudget(std::vector<std::vector<double>> kl, std::vector<double> class_bits, double target,
                   double kappa = 0.05, double slack = 16.0);

  // Classes per layer (out[n_layers]) for one token with multiplier a (clamped to >= 0); updates
  // the surplus. Returns the token's mean bits over layers.
  double choose(double a, std::span<int> out);
  // Bits stored beyond the last choice (PrecisionPolicy::charge), counted like chosen bits.
  void charge(double bits) {
    surplus_ += bits;
    bits_sum_ += bits;
  }
  // The allocation at a given multiplier and lambda, no state change; returns its mean bits.
  double allocate(double a, double lambda, std::span<int> out) const;

  int n_layers() const { return n_layers_; }
  double lambda() const { return lambda0_ + gain_ * surplus_; }
  double lambda0() const { return lambda0_; }
  double gain() const { return gain_; }
  double target() const { return target_; }
  int64_t decided() const { return decided_; }
  int64_t guarded() const { return guarded_; }
  double average_bits() const { return decided_ ? bits_sum_ / static_cast<double>(decided_) : 0.0; }
  const std::vector<double>& class_bits() const { return class_bits_; }

 private:
  // Smallest lambda (bisection) at which the a = 1 allocation averages <= bits.
  double lambda_for(double bits) const;

  std::vector<std::vector<double>> kl_;
  std::vector<double> class_bits_;
  int n_layers_ = 0;
  double target_ = 0.0, lambda0_ = 0.0, gain_ = 0.0, slack_ = 16.0;
  double surplus_ = 0.0, bits_sum_ = 0.0;
  int64_t decided_ = 0, guarded_ = 0;
};

}  // namespace kvbits
