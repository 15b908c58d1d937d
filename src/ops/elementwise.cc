// The per-token ops of the Llama block (ops/elementwise.h): rms_norm, swiglu and add_in_place
// as Highway kernels with scalar references (the *_ref functions); rope and log_softmax scalar.
#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "ops/elementwise.cc"
#include "hwy/foreach_target.h"  // IWYU pragma: keep
#include "hwy/contrib/math/math-inl.h"
#include "hwy/highway.h"

#include <cmath>
#include <vector>

#include "ops/elementwise.h"

HWY_BEFORE_NAMESPACE();
namespace kvbits {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

// Sum of squares in lanes (the tail scalar), then the same scaling as rms_norm_ref.
void RmsNorm(const float* x, const float* weight, int64_t n, float eps, float* out) {
  const hn::ScalableTag<float> d;
  const int64_t N = static_cast<int64_t>(hn::Lanes(d));
  auto acc = hn::Zero(d);
  int64_t i = 0;
  for (; i + N <= n; i += N) {
    const auto v = hn::LoadU(d, x + i);
    acc = hn::MulAdd(v, v, acc);
  }
  float ss = hn::GetLane(hn::SumOfLanes(d, acc));
  for (; i < n; ++i) ss += x[i] * x[i];
  const float scale = 1.0f / std::sqrt(ss / static_cast<float>(n) + eps);
  const auto vs = hn::Set(d, scale);
  for (i = 0; i + N <= n; i += N) {
    hn::StoreU(hn::Mul(hn::Mul(hn::LoadU(d, x + i), vs), hn::LoadU(d, weight + i)), d, out + i);
  }
  for (; i < n; ++i) out[i] = x[i] * scale * weight[i];
}

// g / (1 + e^-g) * up with Highway's Exp (1 ulp, like expf). Exp is valid up to +104, so -g is
// capped at 100, which still overflows to +inf and gives g / inf = -0 as expf does.
void Swiglu(float* gate, const float* up, int64_t n) {
  const hn::ScalableTag<float> d;
  const int64_t N = static_cast<int64_t>(hn::Lanes(d));
  const auto one = hn::Set(d, 1.0f), cap = hn::Set(d, 100.0f);
  int64_t i = 0;
  for (; i + N <= n; i += N) {
    const auto g = hn::LoadU(d, gate + i);
    const auto e = hn::Exp(d, hn::Min(hn::Neg(g), cap));
    hn::StoreU(hn::Mul(hn::Div(g, hn::Add(one, e)), hn::LoadU(d, up + i)), d, gate + i);
  }
  for (; i < n; ++i) gate[i] = gate[i] / (1.0f + std::exp(-gate[i])) * up[i];
}

void AddInPlace(float* x, const float* y, int64_t n) {
  const hn::ScalableTag<float> d;
  const int64_t N = static_cast<int64_t>(hn::Lanes(d));
  int64_t i = 0;
  for (; i + N <= n; i += N) hn::StoreU(hn::Add(hn::LoadU(d, x + i), hn::LoadU(d, y + i)), d, x + i);
  for (; i < n; ++i) x[i] += y[i];
}

}  // namespace HWY_NAMESPACE
}  // namespace kvbits
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace kvbits {
HWY_EXPORT(RmsNorm);
HWY_EXPORT(Swiglu);
HWY_EXPORT(AddInPlace);

void rms_norm(const float* x, const float* weight, int64_t n, float eps, float* out) {
  HWY_DYNAMIC_DISPATCH(RmsNorm)(x, weight, n, eps, out);
}

void swiglu(float* gate, const float* up, int64_t n) { HWY_DYNAMIC_DISPATCH(Swiglu)(gate, up, n); }

void add_in_place(float* x, const float* y, int64_t n) { HWY_DYNAMIC_DISPATCH(AddInPlace)(x, y, n); }

void rms_norm_ref(const float* x, const float* weight, int64_t n, float eps, float* out) {
  float ss = 0.0f;
  for (int64_t i = 0; i < n; ++i) ss += x[i] * x[i];
  const float scale = 1.0f / std::sqrt(ss / static_cast<float>(n) + eps);
  for (int64_t i = 0; i < n; ++i) out[i] = x[i] * scale * weight[i];
}

void rope_angles(int64_t pos, int rot_dim, float theta_base, float* cos_sin) {
  // Same recurrence and float precision as ggml's rope: theta_k = pos * base^(-2k/rot_dim),
  // computed by repeated multiplication, so our angles round exactly like the reference's.
  const float theta_scale = std::pow(theta_base, -2.0f / static_cast<float>(rot_dim));
  float theta = static_cast<float>(pos);
  for (int i = 0; i < rot_dim; i += 2, theta *= theta_scale) {
    cos_sin[i] = std::cos(theta);
    cos_sin[i + 1] = std::sin(theta);
  }
}

void rope_apply(float* x, int n_heads, int head_dim, int rot_dim, const float* cos_sin) {
  for (int h = 0; h < n_heads; ++h) {
    float* v = x + h * head_dim;
    for (int i = 0; i < rot_dim; i += 2) {
      const float c = cos_sin[i], s = cos_sin[i + 1];
      const float x0 = v[i], x1 = v[i + 1];
      v[i] = x0 * c - x1 * s;
      v[i + 1] = x0 * s + x1 * c;
    }
  }
}

void rope_normal(float* x, int n_heads, int head_dim, int rot_dim, int64_t pos, float theta_base) {
  std::vector<float> cos_sin(static_cast<size_t>(rot_dim));
  rope_angles(pos, rot_dim, theta_base, cos_sin.data());
  rope_apply(x, n_heads, head_dim, rot_dim, cos_sin.data());
}

void swiglu_ref(float* gate, const float* up, int64_t n) {
  for (int64_t i = 0; i < n; ++i) gate[i] = gate[i] / (1.0f + std::exp(-gate[i])) * up[i];
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
#endif  // HWY_ONCE
