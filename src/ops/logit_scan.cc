// ops/logit_scan.h. max_index takes two passes, both in Highway vectors: pass 1 the maximum with
// NaN lanes replaced by -inf, pass 2 the first index whose value equals that maximum. Equality
// picks the same element as the reference's strict '>' scan: the first occurrence of the maximum
// (with -0 == +0, the reference also keeps the first zero). A row of NaNs leaves the maximum at
// -inf, which no value then equals: -1.
#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "ops/logit_scan.cc"
#include "hwy/foreach_target.h"  // IWYU pragma: keep
#include "hwy/highway.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "ops/logit_scan.h"

HWY_BEFORE_NAMESPACE();
namespace kvbits {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

int64_t MaxIndex(const float* x, int64_t n) {
  const hn::ScalableTag<float> d;
  const int64_t N = static_cast<int64_t>(hn::Lanes(d));
  const auto neg_inf = hn::Set(d, -std::numeric_limits<float>::infinity());
  // Two independent maxima so the loop is not one chain of max latencies.
  auto m0 = neg_inf, m1 = neg_inf;
  int64_t i = 0;
  for (; i + 2 * N <= n; i += 2 * N) {
    const auto a = hn::LoadU(d, x + i), b = hn::LoadU(d, x + i + N);
    m0 = hn::Max(m0, hn::IfThenElse(hn::IsNaN(a), neg_inf, a));
    m1 = hn::Max(m1, hn::IfThenElse(hn::IsNaN(b), neg_inf, b));
  }
  float best = hn::GetLane(hn::MaxOfLanes(d, hn::Max(m0, m1)));
  for (; i < n; ++i) {
    if (x[i] > best) best = x[i];  // false for NaN
  }
  const auto vb = hn::Set(d, best);
  for (i = 0; i + N <= n; i += N) {
    const intptr_t lane = hn::FindFirstTrue(d, hn::Eq(hn::LoadU(d, x + i), vb));
    if (lane >= 0) return i + lane;
  }
  for (; i < n; ++i) {
    if (x[i] == best) return i;
  }
  return -1;  // every value is NaN (or the row is empty)
}

float ClearNanMax(float* x, int64_t n) {
  const hn::ScalableTag<float> d;
  const int64_t N = static_cast<int64_t>(hn::Lanes(d));
  const auto neg_inf = hn::Set(d, -std::numeric_limits<float>::infinity());
  auto m = neg_inf;
  int64_t i = 0;
  for (; i + N <= n; i += N) {
    const auto v = hn::LoadU(d, x + i);
    const auto nan = hn::IsNaN(v);
    const auto clean = hn::IfThenElse(nan, neg_inf, v);
    if (!hn::AllFalse(d, nan)) hn::StoreU(clean, d, x + i);
    m = hn::Max(m, clean);
  }
  float best = hn::GetLane(hn::MaxOfLanes(d, m));
  for (; i < n; ++i) {
    if (std::isnan(x[i])) x[i] = -std::numeric_limits<float>::infinity();
    if (x[i] > best) best = x[i];
  }
  return best;
}

int64_t CountAtLeast(const float* x, int64_t n, float t) {
  const hn::ScalableTag<float> d;
  const int64_t N = static_cast<int64_t>(hn::Lanes(d));
  const auto vt = hn::Set(d, t);
  int64_t count = 0, i = 0;
  for (; i + N <= n; i += N) count += static_cast<int64_t>(hn::CountTrue(d, hn::Ge(hn::LoadU(d, x + i), vt)));
  for (; i < n; ++i) count += x[i] >= t ? 1 : 0;
  return count;
}

// A vector compare per N values; the lanes are visited only where some value passes (a few
// dozen of 49152 for the sampler's top-k bound).
void IndicesAtLeast(const float* x, int64_t n, float t, std::vector<int32_t>& out) {
  const hn::ScalableTag<float> d;
  const int64_t N = static_cast<int64_t>(hn::Lanes(d));
  const auto vt = hn::Set(d, t);
  out.clear();
  int64_t i = 0;
  for (; i + N <= n; i += N) {
    if (hn::AllFalse(d, hn::Ge(hn::LoadU(d, x + i), vt))) continue;
    for (int64_t j = i; j < i + N; ++j) {
      if (x[j] >= t) out.push_back(static_cast<int32_t>(j));
    }
  }
  for (; i < n; ++i) {
    if (x[i] >= t) out.push_back(static_cast<int32_t>(i));
  }
}

}  // namespace HWY_NAMESPACE
}  // namespace kvbits
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace kvbits {
HWY_EXPORT(MaxIndex);
HWY_EXPORT(ClearNanMax);
HWY_EXPORT(CountAtLeast);
HWY_EXPORT(IndicesAtLeast);

int64_t max_index(std::span<const float> x) {
  return HWY_DYNAMIC_DISPATCH(MaxIndex)(x.data(), static_cast<int64_t>(x.size()));
}

int64_t max_index_ref(std::span<const float> x) {
  int64_t best = -1;
  float best_value = 0.0f;
  for (size_t i = 0; i < x.size(); ++i) {
    const float v = x[i];
    if (std::isnan(v)) continue;
    if (best < 0 || v > best_value) {  // strict '>': the lowest index among ties
      best = static_cast<int64_t>(i);
      best_value = v;
    }
  }
  return best;
}

float clear_nan_max(std::span<float> x) {
  return HWY_DYNAMIC_DISPATCH(ClearNanMax)(x.data(), static_cast<int64_t>(x.size()));
}

float clear_nan_max_ref(std::span<float> x) {
  float best = -std::numeric_limits<float>::infinity();
  for (float& v : x) {
    if (std::isnan(v)) v = -std::numeric_limits<float>::infinity();
    best = std::max(best, v);
  }
  return best;
}

int64_t count_at_least(std::span<const float> x, float t) {
  return HWY_DYNAMIC_DISPATCH(CountAtLeast)(x.data(), static_cast<int64_t>(x.size()), t);
}

int64_t count_at_least_ref(std::span<const float> x, float t) {
  int64_t count = 0;
  for (float v : x) count += v >= t ? 1 : 0;
  return count;
}

void indices_at_least(std::span<const float> x, float t, std::vector<int32_t>& out) {
  HWY_DYNAMIC_DISPATCH(IndicesAtLeast)(x.data(), static_cast<int64_t>(x.size()), t, out);
}

void indices_at_least_ref(std::span<const float> x, float t, std::vector<int32_t>& out) {
  out.clear();
  for (size_t i = 0; i < x.size(); ++i) {
    if (x[i] >= t) out.push_back(static_cast<int32_t>(i));
  }
}

}  // namespace kvbits
#endif  // HWY_ONCE
