// SIMD fp32 -> fp16 row conversion (ops/fp16_rows.h).
#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "ops/fp16_rows.cc"
#include "hwy/foreach_target.h"  // IWYU pragma: keep
#include "hwy/highway.h"

#include "ops/fp16_rows.h"
#include "util/half.h"

HWY_BEFORE_NAMESPACE();
namespace kvbits {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

void Fp32ToFp16Row(const float* x, int64_t n, uint16_t* out) {
  const hn::ScalableTag<float> df;
  const hn::Rebind<hwy::float16_t, decltype(df)> dh;
  const int64_t N = static_cast<int64_t>(hn::Lanes(df));
  auto* o = reinterpret_cast<hwy::float16_t*>(out);
  int64_t i = 0;
  for (; i + N <= n; i += N) hn::StoreU(hn::DemoteTo(dh, hn::LoadU(df, x + i)), dh, o + i);
  for (; i < n; ++i) out[i] = fp32_to_fp16(x[i]);
}

}  // namespace HWY_NAMESPACE
}  // namespace kvbits
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace kvbits {
HWY_EXPORT(Fp32ToFp16Row);

void fp32_to_fp16_row(const float* x, int64_t n, uint16_t* out) { HWY_DYNAMIC_DISPATCH(Fp32ToFp16Row)(x, n, out); }

}  // namespace kvbits
#endif
