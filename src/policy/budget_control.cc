#include "policy/budget_control.h"

#include <cmath>

#include "util/error.h"

namespace kvbits {

BudgetController::BudgetController(std::vector<double> class_bits, double target, double lambda0, double gain,
                                   double slack)
    : class_bits_(std::move(class_bits)), target_(target), lambda0_(lambda0), gain_(gain), slack_(slack) {
  if (class_bits_.empty()) throw Error("budget control needs at least one class");
  if (!(gain >= 0.0) || !std::isfinite(lambda0)) throw Error("budget control: invalid gain or multiplier");
}

int BudgetController::argmax_at(std::span<const float> scores, double lambda) const {
  int best = 0;
  double best_v = -INFINITY;
  for (size_t j = 0; j < class_bits_.size(); ++j) {
    const double v = static_cast<double>(scores[j]) - lambda * class_bits_[j];
    if (v > best_v) {  // ties: the first (cheapest, when classes ascend)
      best_v = v;
      best = static_cast<int>(j);
    }
  }
  return best;
}

int BudgetController::choose(std::span<const float> scores) {
  const double lambda = this->lambda();
  int j = argmax_at(scores, lambda);
  const double next = surplus_ + class_bits_[static_cast<size_t>(j)] - target_;
  if (next > slack_ || next < -slack_) {
    // The best class (at lambda) on the other side of the target, if there is one.
    const bool need_cheaper = next > slack_;
    int best = -1;
    double best_v = -INFINITY;
    for (size_t c = 0; c < class_bits_.size(); ++c) {
      if (need_cheaper ? class_bits_[c] > target_ : class_bits_[c] < target_) continue;
      const double v = static_cast<double>(scores[c]) - lambda * class_bits_[c];
      if (v > best_v) {
        best_v = v;
        best = static_cast<int>(c);
      }
    }
    if (best >= 0 && best != j) {
      j = best;
      ++guarded_;
    }
  }
  const double b = class_bits_[static_cast<size_t>(j)];
  surplus_ += b - target_;
  bits_sum_ += b;
  ++decided_;
  return j;
}

void BudgetController::charge(double bits) {
  surplus_ += bits;
  bits_sum_ += bits;
}

void BudgetController::reset() {
  guarded_ = 0;
  surplus_ = 0.0;
  bits_sum_ = 0.0;
  decided_ = 0;
}

double mean_bits_at(std::span<const float> scores, const std::vector<double>& class_bits, double lambda) {
  const size_t k = class_bits.size();
  const size_t n = scores.size() / k;
  if (n == 0) return 0.0;
  const BudgetController probe(class_bits, class_bits.front(), 0.0, 0.0);
  double sum = 0.0;
  for (size_t i = 0; i < n; ++i) sum += class_bits[static_cast<size_t>(probe.argmax_at(scores.subspan(i * k, k), lambda))];
  return sum / static_cast<double>(n);
}

double calibrate_lambda(std::span<const float> scores, const std::vector<double>& class_bits, double target) {
  // Bracket: mean bits falls as lambda grows.
  double lo = -1.0, hi = 1.0;
  for (int i = 0; i < 60 && mean_bits_at(scores, class_bits, lo) < target; ++i) lo *= 2.0;
  for (int i = 0; i < 60 && mean_bits_at(scores, class_bits, hi) > target; ++i) hi *= 2.0;
  for (int i = 0; i < 60; ++i) {
    const double mid = 0.5 * (lo + hi);
    if (mean_bits_at(scores, class_bits, mid) > target) lo = mid;
    else hi = mid;
  }
  return 0.5 * (lo + hi);
}

}  // namespace kvbits
