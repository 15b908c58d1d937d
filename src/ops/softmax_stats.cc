// Softmax statistics of a logits row (ops/softmax_stats.h): a scalar double reference and a
// Highway kernel, one pass for the max and one for the exp sums.
#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "ops/softmax_stats.cc"
#include "hwy/foreach_target.h"  // IWYU pragma: keep
#include "hwy/contrib/math/math-inl.h"
#include "hwy/highway.h"

#include <algorithm>
#include <cmath>

#include "ops/softmax_stats.h"

HWY_BEFORE_NAMESPACE();
namespace kvbits {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

// {z, zx}: sum of e = exp(x - mx) and of e (x - mx) over row[0, n), lanes in float, the tail and
// the lane totals in double.
void ExpSums(const float* row, size_t n, float mx, double* z_out, double* zx_out) {
  const hn::ScalableTag<float> d;
  const size_t N = hn::Lanes(d);
  const auto vmx = hn::Set(d, mx);
  auto z0 = hn::Zero(d), z1 = hn::Zero(d), zx0 = hn::Zero(d), zx1 = hn::Zero(d);
  size_t i = 0;
  for (; i + 2 * N <= n; i += 2 * N) {
    const auto a = hn::Sub(hn::LoadU(d, row + i), vmx);
    const auto b = hn::Sub(hn::LoadU(d, row + i + N), vmx);
    const auto ea = hn::Exp(d, a), eb = hn::Exp(d, b);
    z0 = hn::Add(z0, ea);
    z1 = hn::Add(z1, eb);
    zx0 = hn::MulAdd(ea, a, zx0);
    zx1 = hn::MulAdd(eb, b, zx1);
  }
  double z = 0.0, zx = 0.0;
  for (; i < n; ++i) {
    const double x = static_cast<double>(row[i] - mx);
    const double e = std::exp(x);
    z += e;
    zx += e * x;
  }
  const auto zs = hn::Add(z0, z1), zxs = hn::Add(zx0, zx1);
  for (size_t k = 0; k < N; ++k) {
    z += static_cast<double>(hn::ExtractLane(zs, k));
    zx += static_cast<double>(hn::ExtractLane(zxs, k));
  }
  *z_out = z;
  *zx_out = zx;
}

float MaxOf(const float* row, size_t n) {
  const hn::ScalableTag<float> d;
  const size_t N = hn::Lanes(d);
  auto m = hn::Set(d, -INFINITY);
  size_t i = 0;
  for (; i + N <= n; i += N) m = hn::Max(m, hn::LoadU(d, row + i));
  float mx = hn::GetLane(hn::MaxOfLanes(d, m));
  for (; i < n; ++i) mx = std::max(mx, row[i]);
  return mx;
}

}  // namespace HWY_NAMESPACE
}  // namespace kvbits
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace kvbits {
HWY_EXPORT(ExpSums);
HWY_EXPORT(MaxOf);

namespace {
SoftmaxStats from_sums(double mx, double z, double zx) {
  const double lz = std::log(z);
  return {mx + lz, lz - zx / z, 1.0 / z};
}
}  // namespace

SoftmaxStats softmax_stats_ref(std::span<const float> row) {
  float mx = -INFINITY;
  for (float x : row) mx = std::max(mx, x);
  double z = 0.0, zx = 0.0;
  for (float x : row) {
    const double e = std::exp(static_cast<double>(x - mx));
    z += e;
    zx += e * (x - mx);
  }
  return from_sums(mx, z, zx);
}

SoftmaxStats softmax_stats(std::span<const float> row) {
  const float mx = HWY_DYNAMIC_DISPATCH(MaxOf)(row.data(), row.size());
  double z = 0.0, zx = 0.0;
  HWY_DYNAMIC_DISPATCH(ExpSums)(row.data(), row.size(), mx, &z, &zx);
  return from_sums(mx, z, zx);
}

double log_sum_exp(std::span<const float> row) { return softmax_stats(row).lse; }

}  // namespace kvbits
#endif
