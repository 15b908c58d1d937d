// SIMD Walsh-Hadamard transform (ops/kv_codec.h), bit-identical to hadamard_ref.
//
// hadamard_ref's stage h replaces each pair (x[j], x[j + h]) by (a + b, a - b). Hadamard works on
// the target's full vectors (below); Hadamard4, for rows shorter than one, on 4-lane vectors:
//  * h >= 4: the pairs are whole vectors apart: the same Add and Sub lane by lane;
//  * h = 2: b = the vector with its 64-bit halves swapped; lanes 0-1 take a + b, lanes 2-3 take
//    b - a (there b holds x[j] and a holds x[j + 2]);
//  * h = 1: b = adjacent lanes swapped; even lanes a + b, odd lanes b - a.
// IEEE addition is commutative, so a + b equals the reference's x[j] + x[j + h] to the bit, and
// every difference is formed as x[j] - x[j + h] exactly as in the reference.
#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "ops/hadamard.cc"
#include "hwy/foreach_target.h"  // IWYU pragma: keep
#include "hwy/highway.h"

#include <cmath>

#include "ops/kv_codec.h"

HWY_BEFORE_NAMESPACE();
namespace kvbits {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

#if HWY_TARGET != HWY_SCALAR
// The 4-lane form (shuffles within 128-bit blocks), for rows shorter than a full vector.
// n: a power of two >= 4.
void Hadamard4(float* x, int n) {
  const hn::CappedTag<float, 4> d;
  const auto low_half = hn::FirstN(d, 2);
  for (int i = 0; i < n; i += 4) {
    auto v = hn::LoadU(d, x + i);
    auto b = hn::Shuffle2301(v);
    v = hn::OddEven(hn::Sub(b, v), hn::Add(v, b));
    b = hn::Shuffle1032(v);
    v = hn::IfThenElse(low_half, hn::Add(v, b), hn::Sub(b, v));
    hn::StoreU(v, d, x + i);
  }
  for (int h = 4; h < n; h *= 2) {
    for (int i = 0; i < n; i += 2 * h) {
      for (int j = i; j < i + h; j += 4) {
        const auto a = hn::LoadU(d, x + j), b = hn::LoadU(d, x + j + h);
        hn::StoreU(hn::Add(a, b), d, x + j);
        hn::StoreU(hn::Sub(a, b), d, x + j + h);
      }
    }
  }
  const auto norm = hn::Set(d, 1.0f / std::sqrt(static_cast<float>(n)));
  for (int i = 0; i < n; i += 4) hn::StoreU(hn::Mul(hn::LoadU(d, x + i), norm), d, x + i);
}
#endif

// n: a power of two >= 4. Rows of at least a full vector (N lanes): the stages h < N within each
// vector, partner lanes fetched with one permute (lane i's partner is lane i ^ h); the stages
// h >= N between whole vectors; the last stage scaled on the way out (the reference's (a + b) *
// norm, the same two roundings). The decode step rotates every new K and V row and every query,
// and un-rotates every attention output: 18 transforms per layer call at SmolLM2-135M's shape,
// a quarter of a short call's time with the 4-lane form (perf, docs/benchmarks.md session 44).
void Hadamard(float* x, int n) {
#if HWY_TARGET == HWY_SCALAR  // one lane: no shuffles to use
  hadamard_ref(x, n);
#else
  const hn::ScalableTag<float> d;
  const hn::RebindToSigned<decltype(d)> di;
  const int N = static_cast<int>(hn::Lanes(d));
  if (n < N || N < 4) {
    Hadamard4(x, n);
    return;
  }
  const auto iota = hn::Iota(di, 0);
  const auto norm = hn::Set(d, 1.0f / std::sqrt(static_cast<float>(n)));
  // A stage h < N within vectors: lane i's partner is lane i ^ h (`partner`), and lanes with
  // bit h clear (`low`) take the sum.
  const auto partner_of = [&](int h) HWY_ATTR { return hn::IndicesFromVec(d, hn::Xor(iota, hn::Set(di, h))); };
  const auto low_of = [&](int h) HWY_ATTR {
    return hn::RebindMask(d, hn::Eq(hn::And(iota, hn::Set(di, h)), hn::Zero(di)));
  };
  const auto in_vector = [](auto v, auto partner, auto low) HWY_ATTR {
    const auto b = hn::TableLookupLanes(v, partner);
    // Lane j (low) holds v = x[j], b = x[j + h]: a + b. Lane j + h holds v = x[j + h], b = x[j]:
    // x[j] - x[j + h] = b - v, the reference's operands in its order.
    return hn::IfThenElse(low, hn::Add(v, b), hn::Sub(b, v));
  };
  if (n == 4 * N) {
    // Four vectors (SmolLM2's 64 dims on 16 lanes) kept in registers through all the stages:
    // ~25 ns against ~55 with a store and a reload per stage (BM_Hadamard/64).
    auto v0 = hn::LoadU(d, x), v1 = hn::LoadU(d, x + N), v2 = hn::LoadU(d, x + 2 * N), v3 = hn::LoadU(d, x + 3 * N);
    for (int h = 1; h < N; h *= 2) {
      const auto partner = partner_of(h);
      const auto low = low_of(h);
      v0 = in_vector(v0, partner, low);
      v1 = in_vector(v1, partner, low);
      v2 = in_vector(v2, partner, low);
      v3 = in_vector(v3, partner, low);
    }
    const auto s0 = hn::Add(v0, v1), d0 = hn::Sub(v0, v1), s1 = hn::Add(v2, v3), d1 = hn::Sub(v2, v3);  // h = N
    hn::StoreU(hn::Mul(hn::Add(s0, s1), norm), d, x);                                                  // h = 2N
    hn::StoreU(hn::Mul(hn::Add(d0, d1), norm), d, x + N);
    hn::StoreU(hn::Mul(hn::Sub(s0, s1), norm), d, x + 2 * N);
    hn::StoreU(hn::Mul(hn::Sub(d0, d1), norm), d, x + 3 * N);
    return;
  }
  for (int h = 1; h < N; h *= 2) {
    const auto partner = partner_of(h);
    const auto low = low_of(h);
    for (int i = 0; i < n; i += N) hn::StoreU(in_vector(hn::LoadU(d, x + i), partner, low), d, x + i);
  }
  if (n == N) {
    for (int i = 0; i < n; i += N) hn::StoreU(hn::Mul(hn::LoadU(d, x + i), norm), d, x + i);
    return;
  }
  for (int h = N; h < n; h *= 2) {
    const bool last = 2 * h == n;
    for (int i = 0; i < n; i += 2 * h) {
      for (int j = i; j < i + h; j += N) {
        const auto a = hn::LoadU(d, x + j), b = hn::LoadU(d, x + j + h);
        auto sum = hn::Add(a, b), diff = hn::Sub(a, b);
        if (last) {
          sum = hn::Mul(sum, norm);
          diff = hn::Mul(diff, norm);
        }
        hn::StoreU(sum, d, x + j);
        hn::StoreU(diff, d, x + j + h);
      }
    }
  }
#endif
}

}  // namespace HWY_NAMESPACE
}  // namespace kvbits
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace kvbits {
HWY_EXPORT(Hadamard);

void hadamard(float* x, int n) {
  if (n < 4) {
    hadamard_ref(x, n);
    return;
  }
  HWY_DYNAMIC_DISPATCH(Hadamard)(x, n);
}

}  // namespace kvbits
#endif
