#include "ops/elementwise.h"

#include <cmath>

namespace kvbits {

void rms_norm(const float* x, const float* weight, int64_t n, float eps, float* out) {
  float ss = 0.0f;
  for (int64_t i = 0; i < n; ++i) ss += x[i] * x[i];
  const float scale = 1.0f / std::sqrt(ss / static_cast<float>(n) + eps);
  for (int64_t i = 0; i < n; ++i) out[i] = x[i] * scale * weight[i];
}

void rope_normal(float* x, int n_heads, int head_dim, int rot_dim, int64_t pos, float theta_base) {
  // Same recurrence and float precision as ggml's rope: theta_k = pos * base^(-2k/rot_dim),
  // computed by repeated multiplication, so our angles round exactly like the reference's.
  const float theta_scale = std::pow(theta_base, -2.0f / static_cast<float>(rot_dim));
  float theta = static_cast<float>(pos);
  for (int i = 0; i < rot_dim; i += 2, theta *= theta_scale) {
    const float c = std::cos(theta), s = std::sin(theta);
    for (int h = 0; h < n_heads; ++h) {
      float* v = x + h * head_dim + i;
      const float x0 = v[0], x1 = v[1];
      v[0] = x0 * c - x1 * s;
      v[1] = x0 * s + x1 * c;
    }
  }
}

void swiglu(float* gate, const float* up, int64_t n) {
  for (int64_t i = 0; i < n; ++i) gate[i] = gate[i] / (1.0f + std::exp(-gate[i])) * up[i];
}

void add_in_place(float* x, const float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) x[i] += y[i];
}

void log_softmax(const float* logits, int64_t n, float* out) {
  float mx = -INFINITY;
  for (int64_t i = 0; i < n; ++i) mx = std::fmax(mx, logits[i]);
  double sum = 0.0;
  for (int64_t i = 0; i < n; ++i) sum += std::exp(static_cast<double>(logits[i] - mx));
  const float lse = mx + static_cast<float>(std::log(sum));
  for (int64_t i = 0; i < n; ++i) out[i] = logits[i] - lse;
}

}  // namespace kvbits
