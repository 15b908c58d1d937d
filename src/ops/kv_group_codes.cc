// SIMD group codes of the KV codec (ops/kv_group_codes.h).
#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "ops/kv_group_codes.cc"
#include "hwy/foreach_target.h"  // IWYU pragma: keep
#include "hwy/highway.h"

#include <algorithm>
#include <cmath>

#include "ops/kv_group_codes.h"

#ifndef KVBITS_KV_GROUP_CODES_SHARED
#define KVBITS_KV_GROUP_CODES_SHARED
namespace kvbits::kv_group_codes_detail {

constexpr float kHalfMax = 65504.0f;

// round_half_even(y) for finite y, inline (std::nearbyint is a libm call in the baseline
// target, which has no SSE4.1). Adding and subtracting 1.5 * 2^23 rounds to an integer for
// |y| < 2^22 ((y + M) - M is kept as written: no -ffast-math in this project); larger |y| are
// integers already or clamped to the code range by the caller.
inline float round_half_even(float y) {
  if (!(std::fabs(y) < 4194304.0f)) return y;
  const float magic = 12582912.0f;
  return (y + magic) - magic;
}

// One element of the reference loop: its code and its squared error (0 for NaN).
inline double element(float v, int levels, float m, float s, float inv, uint8_t* code) {
  if (std::isnan(v)) {
    *code = 0;
    return 0.0;
  }
  const float vc = std::clamp(v, -kHalfMax, kHalfMax);
  const float c = std::clamp(round_half_even((vc - m) * inv), 0.0f, static_cast<float>(levels));
  *code = static_cast<uint8_t>(c);
  const float decoded = std::fma(s, c, m);  // as kv_dequantize_ref decodes
  const double d = static_cast<double>(decoded) - vc;
  return d * d;
}

}  // namespace kvbits::kv_group_codes_detail
#endif

HWY_BEFORE_NAMESPACE();
namespace kvbits {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

double GroupCodes(const float* x, int n, int levels, float m, float s, float inv, uint8_t* codes) {
#if HWY_TARGET == HWY_SCALAR  // one lane: no halves to promote; the reference loop
  return kv_group_codes_ref(x, n, levels, m, s, inv, codes);
#else
  using kv_group_codes_detail::kHalfMax;
  const hn::ScalableTag<float> df;
  const hn::RebindToSigned<decltype(df)> di;
  const hn::Rebind<uint8_t, decltype(df)> du8;
  const hn::Half<decltype(df)> dfh;
  const hn::Repartition<double, decltype(df)> dd;  // half as many lanes as df
  const int N = static_cast<int>(hn::Lanes(df));
  const auto vm = hn::Set(df, m), vs = hn::Set(df, s), vinv = hn::Set(df, inv);
  const auto lo = hn::Set(df, -kHalfMax), hi = hn::Set(df, kHalfMax);
  const auto vlevels = hn::Set(df, static_cast<float>(levels)), zero = hn::Zero(df);
  auto err0 = hn::Zero(dd), err1 = hn::Zero(dd);
  int i = 0;
  for (; i + N <= n; i += N) {
    const auto v = hn::LoadU(df, x + i);
    const auto nan = hn::IsNaN(v);
    const auto vc = hn::IfThenZeroElse(nan, hn::Min(hn::Max(v, lo), hi));
    // Round: to nearest, ties to even, like the reference (vroundps / vrndscaleps).
    auto c = hn::Round(hn::Mul(hn::Sub(vc, vm), vinv));
    c = hn::IfThenZeroElse(nan, hn::Min(hn::Max(c, zero), vlevels));
    hn::StoreU(hn::DemoteTo(du8, hn::ConvertTo(di, c)), du8, codes + i);
    // fp32 fma, as the decoder (on targets without FMA Highway's MulAdd rounds twice, so there
    // the error, not the codes, can differ from the reference in its last bits).
    const auto decoded = hn::MulAdd(vs, c, vm);
    const auto diff_mask = hn::Not(nan);
    const auto dec = hn::IfThenElseZero(diff_mask, decoded);
    const auto d0 = hn::Sub(hn::PromoteTo(dd, hn::LowerHalf(dfh, dec)), hn::PromoteTo(dd, hn::LowerHalf(dfh, vc)));
    const auto d1 = hn::Sub(hn::PromoteTo(dd, hn::UpperHalf(dfh, dec)), hn::PromoteTo(dd, hn::UpperHalf(dfh, vc)));
    err0 = hn::MulAdd(d0, d0, err0);
    err1 = hn::MulAdd(d1, d1, err1);
  }
  double err = hn::GetLane(hn::SumOfLanes(dd, hn::Add(err0, err1)));
  for (; i < n; ++i) err += kv_group_codes_detail::element(x[i], levels, m, s, inv, codes + i);
  return err;
#endif
}

}  // namespace HWY_NAMESPACE
}  // namespace kvbits
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace kvbits {
HWY_EXPORT(GroupCodes);

double kv_group_codes_ref(const float* x, int n, int levels, float m, float s, float inv, uint8_t* codes) {
  double err = 0.0;
  for (int i = 0; i < n; ++i) err += kv_group_codes_detail::element(x[i], levels, m, s, inv, codes + i);
  return err;
}

double kv_group_codes(const float* x, int n, int levels, float m, float s, float inv, uint8_t* codes) {
  return HWY_DYNAMIC_DISPATCH(GroupCodes)(x, n, levels, m, s, inv, codes);
}

}  // namespace kvbits
#endif
