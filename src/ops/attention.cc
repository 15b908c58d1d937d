// SIMD attention over the FP16 cache (ops/attention.h), compiled per Highway target.
#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "ops/attention.cc"
#include "hwy/foreach_target.h"  // IWYU pragma: keep
#include "hwy/highway.h"
#include "hwy/contrib/math/math-inl.h"

#include <algorithm>
#include <cmath>

#include "ops/attention.h"
#include "util/half.h"

HWY_BEFORE_NAMESPACE();
namespace kvbits {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

constexpr int kKeyTile = 32;  // keys scored before one online-softmax rescale

// Online-softmax attention of a group of g query heads over keys [j0, j1) of one KV head.
// q: [g, hd] (already scaled by 1/sqrt(hd)); k, v: [ctx, hd] fp16 bits of this KV head.
// State in/out: acc [g, hd], mx [g], sum [g]; start from acc = 0, mx = -inf, sum = 0.
void AttendRange(const float* q, int g, int hd, const uint16_t* k, const uint16_t* v, int64_t j0,
                 int64_t j1, float* acc, float* mx, float* sum) {
  const hn::ScalableTag<float> df;
  const hn::Rebind<hwy::float16_t, decltype(df)> dh;
  const int N = static_cast<int>(hn::Lanes(df));
  HWY_ALIGN float scores[16 * kKeyTile];
  for (int64_t t0 = j0; t0 < j1; t0 += kKeyTile) {
    const int nt = static_cast<int>(std::min<int64_t>(kKeyTile, j1 - t0));
    // Scores for the tile: each K row is loaded once for all g heads.
    for (int j = 0; j < nt; ++j) {
      const hwy::float16_t* kr = reinterpret_cast<const hwy::float16_t*>(k + (t0 + j) * hd);
      for (int h = 0; h < g; ++h) {
        auto a = hn::Zero(df);
        for (int d = 0; d < hd; d += N) {
          a = hn::MulAdd(hn::LoadU(df, q + h * hd + d), hn::PromoteTo(df, hn::LoadU(dh, kr + d)), a);
        }
        scores[h * kKeyTile + j] = hn::GetLane(hn::SumOfLanes(df, a));
      }
    }
    for (int h = 0; h < g; ++h) {
      float* s = scores + h * kKeyTile;
      for (int j = nt; j < kKeyTile; ++j) s[j] = -INFINITY;  // padding: exp -> 0
      auto vmax = hn::Set(df, -INFINITY);
      for (int j = 0; j < kKeyTile; j += N) vmax = hn::Max(vmax, hn::Load(df, s + j));
      const float new_max = std::max(mx[h], hn::GetLane(hn::MaxOfLanes(df, vmax)));
      const float correction = std::exp(mx[h] - new_max);  // exp(-inf) = 0 on the first tile
      const auto vm = hn::Set(df, new_max);
      auto vsum = hn::Zero(df);
      for (int j = 0; j < kKeyTile; j += N) {
        const auto e = hn::Exp(df, hn::Sub(hn::Load(df, s + j), vm));
        hn::Store(e, df, s + j);
        vsum = hn::Add(vsum, e);
      }
      sum[h] = sum[h] * correction + hn::GetLane(hn::SumOfLanes(df, vsum));
      mx[h] = new_max;
      // Weighted V, accumulated in a register per (head, dim chunk) over the tile's keys; the
      // tile's V rows (32 x hd fp16) stay in L1 across heads.
      const auto vc = hn::Set(df, correction);
      for (int d = 0; d < hd; d += N) {
        auto a = hn::Mul(hn::LoadU(df, acc + h * hd + d), vc);
        for (int j = 0; j < nt; ++j) {
          const hwy::float16_t* vr = reinterpret_cast<const hwy::float16_t*>(v + (t0 + j) * hd);
          a = hn::MulAdd(hn::Set(df, s[j]), hn::PromoteTo(df, hn::LoadU(dh, vr + d)), a);
        }
        hn::StoreU(a, df, acc + h * hd + d);
      }
    }
  }
}

int Lanes() { return static_cast<int>(hn::Lanes(hn::ScalableTag<float>())); }

}  // namespace HWY_NAMESPACE
}  // namespace kvbits
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace kvbits {

HWY_EXPORT(AttendRange);
HWY_EXPORT(Lanes);

namespace {
// Keys per decode task: large enough to amortize the merge, small enough to give every thread
// several tasks at depth >= 1024.
constexpr int64_t kDecodeChunk = 512;
}  // namespace

void attention_fp16(const AttentionShape& shape, const float* q, int64_t n_queries,
                    const int64_t* n_keys, const Fp16CacheLayerView& cache, float* out,
                    ThreadPool& pool, AttentionScratch& scratch) {
  const int hd = shape.head_dim;
  const int g = shape.n_heads / shape.n_kv_heads;
  const int lanes = HWY_DYNAMIC_DISPATCH(Lanes)();
  if (hd % lanes != 0 || g > 16) {
    attention_fp16_ref(shape, q, n_queries, n_keys, cache, out);
    return;
  }
  const float scale = 1.0f / std::sqrt(static_cast<float>(hd));
  const int64_t qstride = static_cast<int64_t>(shape.n_heads) * hd;
  const int64_t state = static_cast<int64_t>(g) * hd + 2 * g;  // acc, max, sum
  // Tasks: (query, kv head, key chunk). Only single-query decode splits the key range.
  const int64_t max_keys = *std::max_element(n_keys, n_keys + n_queries);
  const int64_t chunk = n_queries == 1 ? kDecodeChunk : std::max<int64_t>(max_keys, 1);
  const int64_t n_chunks = (std::max<int64_t>(max_keys, 1) + chunk - 1) / chunk;
  const int64_t n_tasks = n_queries * shape.n_kv_heads * n_chunks;
  scratch.partial.resize(static_cast<size_t>(n_tasks * (state + g * hd)));
  float* partial = scratch.partial.data();
  pool.parallel_for(n_tasks, [&](int64_t task, int) {
    const int64_t c = task % n_chunks;
    const int64_t kvh = (task / n_chunks) % shape.n_kv_heads;
    const int64_t i = task / (n_chunks * shape.n_kv_heads);
    float* st = partial + task * (state + g * hd);
    float* acc = st;
    float* mx = st + g * hd;
    float* sum = mx + g;
    float* qs = sum + g;  // scaled queries of the group
    std::fill(acc, acc + g * hd, 0.0f);
    std::fill(mx, mx + g, -INFINITY);
    std::fill(sum, sum + g, 0.0f);
    const int64_t j0 = c * chunk, j1 = std::min(n_keys[i], j0 + chunk);
    if (j0 >= j1) return;
    for (int h = 0; h < g * hd; ++h) qs[h] = q[i * qstride + kvh * g * hd + h] * scale;
    const uint16_t* k = cache.k + kvh * cache.ctx_stride * hd;
    const uint16_t* v = cache.v + kvh * cache.ctx_stride * hd;
    HWY_DYNAMIC_DISPATCH(AttendRange)(qs, g, hd, k, v, j0, j1, acc, mx, sum);
  });
  // Merge the chunks of each (query, kv head) and normalise.
  for (int64_t i = 0; i < n_queries; ++i) {
    for (int kvh = 0; kvh < shape.n_kv_heads; ++kvh) {
      for (int h = 0; h < g; ++h) {
        float m = -INFINITY;
        for (int64_t c = 0; c < n_chunks; ++c) {
          const float* st = partial + ((i * shape.n_kv_heads + kvh) * n_chunks + c) * (state + g * hd);
          m = std::max(m, st[g * hd + h]);
        }
        float* o = out + i * qstride + (kvh * g + h) * hd;
        std::fill(o, o + hd, 0.0f);
        float total = 0.0f;
        for (int64_t c = 0; c < n_chunks; ++c) {
          const float* st = partial + ((i * shape.n_kv_heads + kvh) * n_chunks + c) * (state + g * hd);
          const float cm = st[g * hd + h];
          if (cm == -INFINITY) continue;
          const float w = std::exp(cm - m);
          total += w * st[g * hd + g + h];
          for (int d = 0; d < hd; ++d) o[d] += w * st[h * hd + d];
        }
        const float inv = total > 0.0f ? 1.0f / total : 0.0f;
        for (int d = 0; d < hd; ++d) o[d] *= inv;
      }
    }
  }
}

void attention_fp16_ref(const AttentionShape& shape, const float* q, int64_t n_queries,
                        const int64_t* n_keys, const Fp16CacheLayerView& cache, float* out) {
  const int hd = shape.head_dim;
  const int g = shape.n_heads / shape.n_kv_heads;
  const int64_t qstride = static_cast<int64_t>(shape.n_heads) * hd;
  const double scale = 1.0 / std::sqrt(static_cast<double>(hd));
  std::vector<double> s;
  for (int64_t i = 0; i < n_queries; ++i) {
    for (int h = 0; h < shape.n_heads; ++h) {
      const int kvh = h / g;
      const uint16_t* k = cache.k + kvh * cache.ctx_stride * hd;
      const uint16_t* v = cache.v + kvh * cache.ctx_stride * hd;
      const float* qh = q + i * qstride + h * hd;
      s.assign(static_cast<size_t>(n_keys[i]), 0.0);
      double m = -INFINITY;
      for (int64_t j = 0; j < n_keys[i]; ++j) {
        double d = 0.0;
        for (int e = 0; e < hd; ++e) d += static_cast<double>(qh[e]) * fp16_to_fp32(k[j * hd + e]);
        s[j] = d * scale;
        m = std::max(m, s[j]);
      }
      double total = 0.0;
      for (auto& x : s) total += (x = std::exp(x - m));
      float* o = out + i * qstride + h * hd;
      for (int e = 0; e < hd; ++e) {
        double acc = 0.0;
        for (int64_t j = 0; j < n_keys[i]; ++j) acc += s[j] * fp16_to_fp32(v[j * hd + e]);
        o[e] = n_keys[i] > 0 ? static_cast<float>(acc / total) : 0.0f;
      }
    }
  }
}

}  // namespace kvbits
#endif
