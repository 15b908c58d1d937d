// Vectorized int8 rounding of query groups (ops/query_int8.h). Vectorized because decode runs it
// for every head of every layer, outside attention's threaded part: the scalar loop it replaced (a
// call to nearbyintf per element and a max chain) was 4-7 % of a one-thread decode attention call
// over 8192 int2 tokens (perf, session 40; docs/benchmarks.md). Checked through the attention
// tests (tests/unit/attention_test.cc emulates the kernels with the scalar rounding). The scaling
// and the division by the key channel weights before it (scale_query) likewise: 576 scalar
// divisions per layer at SmolLM2-135M's shape (9 heads x 64) take ~2,000 cycles at the divider's
// throughput (an estimate; the kernel benchmarks run without key weights).
#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "ops/query_int8.cc"
#include "hwy/foreach_target.h"  // IWYU pragma: keep
#include "hwy/highway.h"

#include "ops/query_int8.h"

HWY_BEFORE_NAMESPACE();
namespace kvbits {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

void QuantizeQueryGroup(const float* x, int n, int8_t* qi, int8_t* qi2, float* amax, float* sum) {
  const hn::ScalableTag<float> df;
  const hn::RebindToSigned<decltype(df)> di;
  const hn::Rebind<int8_t, decltype(df)> d8;
  const int N = static_cast<int>(hn::Lanes(df));
  auto vmax = hn::Zero(df), vsum = hn::Zero(df);
  for (int d = 0; d < n; d += N) {
    const auto v = hn::LoadU(df, x + d);
    vmax = hn::Max(vmax, hn::Abs(v));
    vsum = hn::Add(vsum, v);
  }
  const float m = hn::GetLane(hn::MaxOfLanes(df, vmax));
  *amax = m;
  *sum = hn::GetLane(hn::SumOfLanes(df, vsum));
  const auto inv = hn::Set(df, m > 0.0f ? 127.0f / m : 0.0f);
  for (int d = 0; d < n; d += N) {
    const auto scaled = hn::Mul(hn::LoadU(df, x + d), inv);
    const auto rounded = hn::Round(scaled);
    hn::StoreU(hn::DemoteTo(d8, hn::ConvertTo(di, rounded)), d8, qi + d);
    if (qi2 != nullptr) {
      const auto residual = hn::Round(hn::Mul(hn::Sub(scaled, rounded), hn::Set(df, 254.0f)));
      hn::StoreU(hn::DemoteTo(d8, hn::ConvertTo(di, residual)), d8, qi2 + d);
    }
  }
}

void ScaleQuery(const float* x, int n, float scale, const float* weight, float* qf, float* qr) {
  const hn::ScalableTag<float> df;
  const int N = static_cast<int>(hn::Lanes(df));
  const auto vs = hn::Set(df, scale);
  int d = 0;
  for (; d + N <= n; d += N) {
    const auto v = hn::Mul(hn::LoadU(df, x + d), vs);
    hn::StoreU(v, df, qf + d);
    hn::StoreU(weight ? hn::Div(v, hn::LoadU(df, weight + d)) : v, df, qr + d);
  }
  for (; d < n; ++d) {
    qf[d] = x[d] * scale;
    qr[d] = weight ? qf[d] / weight[d] : qf[d];
  }
}

}  // namespace HWY_NAMESPACE
}  // namespace kvbits
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace kvbits {
HWY_EXPORT(QuantizeQueryGroup);
HWY_EXPORT(ScaleQuery);

void quantize_query_group(const float* x, int n, int8_t* qi, int8_t* qi2, float* amax, float* sum) {
  HWY_DYNAMIC_DISPATCH(QuantizeQueryGroup)(x, n, qi, qi2, amax, sum);
}

void scale_query(const float* x, int n, float scale, const float* weight, float* qf, float* qr) {
  HWY_DYNAMIC_DISPATCH(ScaleQuery)(x, n, scale, weight, qf, qr);
}

}  // namespace kvbits
#endif
