#include "policy/layer_token_budget.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "util/error.h"

namespace kvbits {

LayerTokenBudget::LayerTokenBudget(std::vector<std::vector<double>> kl, std::vector<double> class_bits, double target,
                                   double kappa, double slack)
    : kl_(std::move(kl)), class_bits_(std::move(class_bits)), target_(target), slack_(slack) {
  if (kl_.empty() || kl_.size() != class_bits_.size()) throw Error("layer-token budget: one sensitivity row per class");
  n_layers_ = static_cast<int>(kl_[0].size());
  if (n_layers_ == 0) throw Error("layer-token budget: no layers");
  for (size_t c = 0; c < kl_.size(); ++c) {
    if (static_cast<int>(kl_[c].size()) != n_layers_) throw Error("layer-token budget: classes cover different layer counts");
    if (!(class_bits_[c] > 0.0) || !std::isfinite(class_bits_[c])) throw Error("layer-token budget: invalid class bits");
    for (double v : kl_[c]) {
      if (!(v >= 0.0) || !std::isfinite(v)) throw Error("layer-token budget: invalid sensitivity");
    }
  }
  if (!(kappa >= 0.0)) throw Error("layer-token budget: invalid gain");
  lambda0_ = lambda_for(target_);
  // Gain from the a = 1 curve's slope over +-0.5 bits around the target (clamped to the classes).
  const auto [lo_it, hi_it] = std::minmax_element(class_bits_.begin(), class_bits_.end());
  const double hi_bits = std::min(*hi_it, target_ + 0.5), lo_bits = std::max(*lo_it, target_ - 0.5);
  const double dl = lambda_for(lo_bits) - lambda_for(hi_bits);
  gain_ = dl > 0.0 && hi_bits > lo_bits ? kappa * dl / (hi_bits - lo_bits) : kappa * std::max(lambda0_, 1e-6);
}

double LayerTokenBudget::allocate(double a, double lambda, std::span<int> out) const {
  a = std::max(a, 0.0);
  double bits = 0.0;
  for (int l = 0; l < n_layers_; ++l) {
    int best = 0;
    double best_cost = std::numeric_limits<double>::infinity();
    for (size_t c = 0; c < class_bits_.size(); ++c) {
      const double cost = a * kl_[c][static_cast<size_t>(l)] + lambda * class_bits_[c];
      if (cost < best_cost || (cost == best_cost && class_bits_[c] < class_bits_[static_cast<size_t>(best)])) {
        best_cost = cost;
        best = static_cast<int>(c);
      }
    }
    out[static_cast<size_t>(l)] = best;
    bits += class_bits_[static_cast<size_t>(best)];
  }
  return bits / n_layers_;
}

double LayerTokenBudget::lambda_for(double bits) const {
  std::vector<int> tmp(static_cast<size_t>(n_layers_));
  // Mean bits falls as lambda grows; at lambda = 0 every layer takes its least-damage class.
  double lo = 0.0, hi = 1e-6;
  for (int i = 0; i < 80 && allocate(1.0, hi, tmp) > bits; ++i) hi *= 2.0;
  if (allocate(1.0, lo, tmp) <= bits) return 0.0;
  for (int i = 0; i < 100; ++i) {
    const double mid = 0.5 * (lo + hi);
    if (allocate(1.0, mid, tmp) > bits) lo = mid;
    else hi = mid;
  }
  return hi;
}

double LayerTokenBudget::choose(double a, std::span<int> out) {
  double bits = allocate(a, lambda(), out);
  const double next = surplus_ + bits - target_;
  if (next > slack_) {
    bits = allocate(0.0, 1.0, out);  // no damage weight: the cheapest class everywhere
    ++guarded_;
  } else if (next < -slack_) {
    bits = allocate(1.0, 0.0, out);  // no price: each layer's least-damage class
    ++guarded_;
  }
  surplus_ += bits - target_;
  bits_sum_ += bits;
  ++decided_;
  return bits;
}

}  // namespace kvbits
