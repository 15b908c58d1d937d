// Window attention (the FP16 rows not yet committed to pages: a prefill chunk's own rows, side by
// side continuations), included by ops/attention.cc inside each Highway target's namespace (no
// include guard on purpose: one copy per target).
//
// The driver converts the window rows of every KV head to fp32 tiles once per attention() call
// (ConvertWindowTile); each query then reads them from cache. Per tile of kKvTile rows:
//   Kt [hd][kKvTile]: K transposed, so one vector of scores is hd products with a broadcast query
//                     element and no horizontal sums;
//   V  [kKvTile][hd]: V rows.
// Rows past the window's last row are zero (and masked). Before, every query converted the rows it
// attends from fp16 again (a block of 8 queries, 8 times) and scored each row with a dot product
// ending in a horizontal sum: ~15 % of a 512-token prefill (perf, 2026-12-05).

// Floats of one converted tile.
inline size_t WindowTileFloats(int hd) { return 2 * static_cast<size_t>(kKvTile) * static_cast<size_t>(hd); }

// Rows [0, nt) of one tile, k and v: [nt, hd] fp16 bits (the tile's first row first), to `tile`.
void ConvertWindowTile(const uint16_t* k, const uint16_t* v, int hd, int nt, float* tile) {
  const hn::ScalableTag<float> df;
  const hn::Rebind<hwy::float16_t, decltype(df)> dh;
  const int N = static_cast<int>(hn::Lanes(df));  // hd is a multiple of N (checked by attention())
  float* kt = tile;
  float* vf = tile + kKvTile * hd;
  HWY_ALIGN float lanes[HWY_MAX_BYTES / sizeof(float)];
  const auto* kh = reinterpret_cast<const hwy::float16_t*>(k);
  const auto* vh = reinterpret_cast<const hwy::float16_t*>(v);
  for (int j = 0; j < kKvTile; ++j) {
    if (j < nt) {
      for (int d = 0; d < hd; d += N) {
        hn::Store(hn::PromoteTo(df, hn::LoadU(dh, kh + j * hd + d)), df, lanes);
        for (int i = 0; i < N; ++i) kt[(d + i) * kKvTile + j] = lanes[i];
        hn::StoreU(hn::PromoteTo(df, hn::LoadU(dh, vh + j * hd + d)), df, vf + j * hd + d);
      }
    } else {
      for (int d = 0; d < hd; ++d) kt[d * kKvTile + j] = 0.0f;
      std::fill(vf + j * hd, vf + (j + 1) * hd, 0.0f);
    }
  }
}

// Lanes [u, u + N) of a tile that lie in [lo, hi) (tile-relative rows).
template <class D>
HWY_INLINE hn::Mask<D> WindowLanes(D d, int u, int lo, int hi) {
  const auto below_hi = hn::FirstN(d, static_cast<size_t>(std::max(hi - u, 0)));
  const auto below_lo = hn::FirstN(d, static_cast<size_t>(std::max(lo - u, 0)));
  return hn::AndNot(below_lo, below_hi);
}

// Window rows [j0, j1) of one KV head for one query: `tiles` are that head's converted tiles (tile
// t holds rows [16 t, 16 t + 16)). Online softmax per tile, as FoldTile: the sums are rescaled
// when the max grows, p = 2^(s - m) (Highway's Exp, 1 ulp), acc += sum_j p_j v_j.
// Each tile runs in three passes over the g heads (scores, softmax, V sums) rather than one head
// after the other: a head's scores -> max -> exp -> V sums is one long dependency chain, and
// within a pass the heads are independent, so the core overlaps them.
void AttendWindowTiles(const PreparedQuery& q, int g, int hd, const float* tiles, int64_t j0, int64_t j1,
                       const SoftmaxState& st) {
  const hn::ScalableTag<float> df;
  const int N = static_cast<int>(hn::Lanes(df));
  const auto neg_inf = hn::Set(df, -INFINITY), ln2 = hn::Set(df, 0.693147180559945f);
  HWY_ALIGN float p[16 * kKvTile];  // [g][kKvTile]: scores, then weights (g <= 16: attention())
  float tile_max[16];
  bool live[16];
  for (int64_t t0 = j0 / kKvTile * kKvTile; t0 < j1; t0 += kKvTile) {
    const float* kt = tiles + static_cast<size_t>(t0 / kKvTile) * WindowTileFloats(hd);
    const float* vf = kt + kKvTile * hd;
    const int lo = static_cast<int>(std::max<int64_t>(j0 - t0, 0));
    const int hi = static_cast<int>(std::min<int64_t>(j1 - t0, kKvTile));
    // Scores: four chains over the dims (hd is a multiple of 16), masked lanes -inf.
    for (int h = 0; h < g; ++h) {
      const float* qh = q.qf + h * hd;
      auto vmax = neg_inf;
      for (int u = 0; u < kKvTile; u += N) {
        auto a0 = hn::Zero(df), a1 = hn::Zero(df), a2 = hn::Zero(df), a3 = hn::Zero(df);
        const float* col = kt + u;
        for (int d = 0; d < hd; d += 4) {
          a0 = hn::MulAdd(hn::Set(df, qh[d]), hn::LoadU(df, col + d * kKvTile), a0);
          a1 = hn::MulAdd(hn::Set(df, qh[d + 1]), hn::LoadU(df, col + (d + 1) * kKvTile), a1);
          a2 = hn::MulAdd(hn::Set(df, qh[d + 2]), hn::LoadU(df, col + (d + 2) * kKvTile), a2);
          a3 = hn::MulAdd(hn::Set(df, qh[d + 3]), hn::LoadU(df, col + (d + 3) * kKvTile), a3);
        }
        const auto s = hn::IfThenElse(WindowLanes(df, u, lo, hi), hn::Add(hn::Add(a0, a1), hn::Add(a2, a3)), neg_inf);
        hn::Store(s, df, p + h * kKvTile + u);
        vmax = hn::Max(vmax, s);
      }
      tile_max[h] = hn::GetLane(hn::MaxOfLanes(df, vmax));
    }
    // Softmax: rescale on a new max, weights, sums.
    for (int h = 0; h < g; ++h) {
      const float new_max = std::max(st.m[h], tile_max[h]);
      live[h] = new_max != -INFINITY;  // else nothing finite yet
      if (!live[h]) continue;
      // 2^-inf = 0 on the first tile; exactly 1 (no call) while the max holds
      const float correction = new_max == st.m[h] ? 1.0f : std::exp2(st.m[h] - new_max);
      if (correction != 1.0f) {
        for (float* a : {st.acc + h * hd, st.acc_rot + h * hd}) {
          for (int d = 0; d < hd; ++d) a[d] *= correction;
        }
      }
      const auto vm = hn::Set(df, new_max);
      auto vsum = hn::Zero(df), vsum2 = hn::Zero(df);
      for (int u = 0; u < kKvTile; u += N) {
        float* ph = p + h * kKvTile + u;
        const auto e = hn::Exp(df, hn::Mul(hn::Sub(hn::Load(df, ph), vm), ln2));
        const auto pv = hn::IfThenElseZero(WindowLanes(df, u, lo, hi), e);
        hn::Store(pv, df, ph);
        vsum = hn::Add(vsum, pv);
        vsum2 = hn::MulAdd(pv, pv, vsum2);
      }
      st.l[h] = st.l[h] * correction + hn::GetLane(hn::SumOfLanes(df, vsum));
      if (st.l2) st.l2[h] = st.l2[h] * correction * correction + hn::GetLane(hn::SumOfLanes(df, vsum2));
      st.m[h] = new_max;
    }
    // acc += sum_j p_j v_j, four vectors of dims at a time (independent chains over the rows).
    for (int h = 0; h < g; ++h) {
      if (!live[h]) continue;
      const float* ph = p + h * kKvTile;
      float* a = st.acc + h * hd;
      int d = 0;
      for (; d + 4 * N <= hd; d += 4 * N) {
        auto c0 = hn::LoadU(df, a + d), c1 = hn::LoadU(df, a + d + N), c2 = hn::LoadU(df, a + d + 2 * N),
             c3 = hn::LoadU(df, a + d + 3 * N);
        for (int j = lo; j < hi; ++j) {
          const auto pj = hn::Set(df, ph[j]);
          const float* vr = vf + j * hd + d;
          c0 = hn::MulAdd(pj, hn::LoadU(df, vr), c0);
          c1 = hn::MulAdd(pj, hn::LoadU(df, vr + N), c1);
          c2 = hn::MulAdd(pj, hn::LoadU(df, vr + 2 * N), c2);
          c3 = hn::MulAdd(pj, hn::LoadU(df, vr + 3 * N), c3);
        }
        hn::StoreU(c0, df, a + d);
        hn::StoreU(c1, df, a + d + N);
        hn::StoreU(c2, df, a + d + 2 * N);
        hn::StoreU(c3, df, a + d + 3 * N);
      }
      for (; d < hd; d += N) {
        auto c = hn::LoadU(df, a + d);
        for (int j = lo; j < hi; ++j) c = hn::MulAdd(hn::Set(df, ph[j]), hn::LoadU(df, vf + j * hd + d), c);
        hn::StoreU(c, df, a + d);
      }
    }
  }
}
