#pragma once
// Statistics of softmax(row) over a vocabulary-sized logits row: the controller's per-token
// features (policy/controller_features.h) need them at every position whose logits are computed
// (every prompt position for the learned policy, every decoded token).
#include <span>

namespace kvbits {

struct SoftmaxStats {
  double lse = 0.0;         // log sum_i exp(row_i)   (nats)
  double entropy = 0.0;     // -sum_i p_i log p_i      (nats)
  double confidence = 0.0;  // max_i p_i
};

// Scalar reference: every term in double.
SoftmaxStats softmax_stats_ref(std::span<const float> row);

// SIMD (Highway, runtime dispatch): float exp and per-lane float sums of n / lanes terms each,
// combined in double. Error: the float exp (~1 ulp) and the per-lane sums of up to ~3k positive
// terms (49152 / 16) bound the relative error of z = sum exp(x - max) by ~3k * 2^-24 ~ 2e-4 in the
// worst case (a random walk of roundings gives ~1e-6 in practice); lse and entropy move by about
// that much in absolute terms (nats). tests/unit/softmax_stats_test.cc checks 1e-4 relative.
SoftmaxStats softmax_stats(std::span<const float> row);

// log sum_i exp(row_i) (nats) by the same SIMD kernel: the normaliser of a log-softmax, as the
// evaluation's log-likelihoods need it for every scored token. Same error as softmax_stats' lse.
double log_sum_exp(std::span<const float> row);

}  // namespace kvbits
