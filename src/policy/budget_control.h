#pragma once
// Budget control: turns per-class scores into widths so that the average effective bits over a run
// of decisions meets a target.
//
// Each token takes the class j maximising score_j - lambda * bits_j (a Lagrange multiplier on
// bits; bits_j = the effective bits one token-layer row of class j costs in the store). lambda
// starts from an offline calibration lambda0 = lambda(target) (ControllerFile's budget table) and
// is corrected online by integral control on the running surplus of committed bits:
//   lambda = lambda0 + gain * surplus,   surplus = sum over decided tokens of (bits_chosen - target)
// so the average error surplus / n goes to 0 as the run grows (the surplus itself stays bounded
// while the target lies between the cheapest and the widest class). gain is in nats per bit-token;
// LearnedPolicy sets it from the table's local slope so the loop's time constant is ~1/kappa
// tokens whatever the target. A guard keeps |surplus| <= slack (+ one class step) even when the
// offline calibration is far off (another task, another score distribution): a choice that would
// push the surplus past +-slack is replaced by the best-scoring class on the other side of the
// target. So after n tokens the average is within (slack + 16) / n bits of the target.
#include <cstdint>
#include <span>
#include <vector>

namespace kvbits {

class BudgetController {
 public:
  BudgetController() = default;
  // class_bits non-empty; target inside [min, max] of class_bits (the caller checks and words
  // the error). gain >= 0.
  BudgetController(std::vector<double> class_bits, double target, double lambda0, double gain, double slack = 16.0);

  // The class for one token given its scores[class_bits.size()]; updates the surplus.
  int choose(std::span<const float> scores);
  // Bits stored beyond the last choice (PrecisionPolicy::charge): they count in the surplus and
  // the average like chosen bits.
  void charge(double bits);
  // The class choose() would pick at multiplier `lambda` (no state change).
  int argmax_at(std::span<const float> scores, double lambda) const;

  double lambda() const { return lambda0_ + gain_ * surplus_; }
  double target() const { return target_; }
  int64_t decided() const { return decided_; }
  int64_t guarded() const { return guarded_; }  // choices the guard replaced
  // Mean bits of the decided tokens (0 if none).
  double average_bits() const { return decided_ ? bits_sum_ / static_cast<double>(decided_) : 0.0; }
  const std::vector<double>& class_bits() const { return class_bits_; }
  void reset();  // forgets the run (surplus 0)

 private:
  std::vector<double> class_bits_;
  double target_ = 0.0, lambda0_ = 0.0, gain_ = 0.0, slack_ = 16.0;
  double surplus_ = 0.0, bits_sum_ = 0.0;
  int64_t decided_ = 0, guarded_ = 0;
};

// The multiplier at which argmax_j score_j - lambda bits_j over `scores` ([n][classes]) averages
// `target` bits: bisection on lambda (mean bits is non-increasing in lambda). Used to calibrate
// the budget table offline.
double calibrate_lambda(std::span<const float> scores, const std::vector<double>& class_bits, double target);
// Mean bits over `scores` at a given lambda.
double mean_bits_at(std::span<const float> scores, const std::vector<double>& class_bits, double lambda);

}  // namespace kvbits
