#pragma once
// Training the controller's MLP (policy/mlp.h): backward pass, the controller loss, and Adam.
// Hand-written, single-threaded and deterministic (fixed sample order from a seed, fixed summation
// order), so the same data and seed give the same file bit for bit.
//
// Loss per token, over the class probabilities p = softmax(z), z = MLP(x):
//   alpha * CE(q, p)            q: soft labels from the measured damage (train/fit.h)
// + beta  * sum_j p_j bits_j    expected effective bits
// + gamma * sum_j p_j D_j       expected damage (nats)
#include <cstdint>
#include <span>
#include <vector>

#include "policy/mlp.h"

namespace kvbits::train {

// Gradients with the MLP's shapes.
struct MlpGrad {
  std::vector<DenseLayer> layers;
  explicit MlpGrad(const Mlp& mlp);
  void zero();
};

// Forward pass keeping what the backward pass needs, then backward from dL/dz (accumulated into
// grad).
class MlpBackprop {
 public:
  explicit MlpBackprop(const Mlp& mlp) : mlp_(mlp) {}
  void forward(const float* x, float* out);
  void backward(const float* dout, MlpGrad& grad);

 private:
  const Mlp& mlp_;
  std::vector<std::vector<float>> pre_, post_;  // per layer: pre-activation, input
};

struct LossWeights {
  double alpha = 1.0, beta = 0.0, gamma = 0.0;
};

// Loss of one token and dL/dz (dz[k]). q sums to 1; bits and damage have k entries.
double controller_loss(std::span<const float> z, std::span<const float> q, std::span<const double> bits,
                       std::span<const float> damage, const LossWeights& w, std::span<float> dz);

struct AdamOptions {
  double lr = 3e-3, beta1 = 0.9, beta2 = 0.999, eps = 1e-8;
  double weight_decay = 1e-4;  // decoupled (AdamW), on weights only
};

class Adam {
 public:
  Adam(const Mlp& mlp, const AdamOptions& options);
  // One step with gradient `grad` (already averaged over the batch).
  void step(Mlp& mlp, const MlpGrad& grad);

 private:
  AdamOptions o_;
  MlpGrad m_, v_;
  int64_t t_ = 0;
};

}  // namespace kvbits::train
