// Reading page tiles on the targets without the VNNI kernel (and the page block pointers every
// target uses), included by ops/attention_kernels.cc after attention_tiles-inl.h inside each
// Highway target's namespace (no include guard on purpose: one copy per target):
//  * PageBlock: one head's K or V block of a page, resolved once per page;
//  * TileMeta: a tile's (or a step's) scales and minimums as fp32;
//  * DecodePageTile: a tile decoded to fp32 once for a block of prefill queries;
//  * FoldQuantTile: a decode query over one tile read in place (QuantTile kernels of
//    attention_tiles-inl.h, integer ones on x86: attention_int_tiles-inl.h);
//  * FoldIntStep: the same over a step of 4 tiles when K and V are both 2- or 4-bit (x86), and
//    FoldIntPage: a page of such steps.

// Scales or minimums of tokens [t0, t0 + len) of group gr as fp32 (out[len]): one E5M2 byte each
// (2- and 4-bit rows: the high byte of an fp16) or fp16 (8-bit rows), from a metadata block
// [groups][page_tokens]. The sign bit (a K scale's centring flag) is kept.
// kLen > 0: len is kLen (a full step of FoldIntStep's fixed shapes), the loop unrolled.
template <int kLen = 0, class DF>
HWY_INLINE void PageMetaF32(DF df, const uint8_t* base, int page_tokens, int gr, int t0, int meta_size, int len,
                            float* out) {
  const hn::Rebind<uint8_t, DF> du8;
  const hn::Rebind<uint16_t, DF> du16;
  const hn::Rebind<hwy::float16_t, DF> dh;
  const int N = static_cast<int>(hn::Lanes(df));
  ForRange<kLen != 0>(0, (kLen > 0 ? kLen : len) / N, [&](int un) KVBITS_ALWAYS_INLINE {
    const int u = un * N;
    const size_t at = static_cast<size_t>(gr) * page_tokens + t0 + u;
    const auto bits = meta_size == 1 ? hn::ShiftLeft<8>(hn::PromoteTo(du16, hn::LoadU(du8, base + at)))
                                     : hn::LoadU(du16, reinterpret_cast<const uint16_t*>(base) + at);
    hn::StoreU(hn::PromoteTo(df, hn::BitCast(dh, bits)), df, out + u);
  });
}

// One head's K or V block of a page, resolved once per page: computed from the layout at every
// tile, its offsets cost integer divisions and multiplies (with the metadata loads, TileMeta was
// ~15 % of the AVX2 decode kernel's samples, perf 2026-12-05; the VNNI kernel's HeadBlocks, which
// is two of these, had shown the same).
struct PageBlock {
  const uint8_t* codes = nullptr;     // tile 0's codes (fp16 rows when bits == 16)
  const uint8_t* scales = nullptr;    // [groups][page_tokens] (a K scale's sign bit: centring flag)
  const uint8_t* minimums = nullptr;  // same shape
  size_t tile_bytes = 0;              // bytes per 16-token tile of codes
  int bits = 16, group = 0, groups = 0, meta_size = 0;
  int page_tokens = 0;  // stride of the metadata rows

  // Codes of the tile holding token t0 (fp16 rows of a 16-bit block, in the tile layouts).
  const uint8_t* tile(int t0) const { return codes + static_cast<size_t>(t0 / kKvTile) * tile_bytes; }
  const hwy::float16_t* fp16_tile(int t0) const { return reinterpret_cast<const hwy::float16_t*>(tile(t0)); }
};

HWY_INLINE PageBlock ResolveBlock(const KvPageLayout& layout, const uint8_t* page, int kvh, bool is_v) {
  const KvRowFormat& f = layout.format(is_v);
  return {page + layout.codes(is_v, kvh), page + layout.scales(is_v, kvh), page + layout.minimums(is_v, kvh),
          layout.tile_bytes(is_v), f.bits, f.group, layout.groups(is_v), f.meta_size(), layout.page_tokens()};
}

// The metadata of tokens [t0, t0 + len) of a quantized block (len: a multiple of kKvTile within
// the page's slots) into s and m [groups][len] (rows >= nt zero); for K (add != nullptr) also
// add[len] = 1 for rows stored centred (the sign bit of their scales), else 0.
// kGroups, kLen > 0: a full step of FoldIntStep's fixed shapes (groups = kGroups, nt = len = kLen,
// one-byte metadata), its loops unrolled.
template <int kGroups = 0, int kLen = 0>
QuantTile TileMeta(const PageBlock& b, int t0, int nt, int len, float* s, float* m, float* add) {
  constexpr bool kFixed = kGroups > 0 && kLen > 0;
  const hn::ScalableTag<float> df;
  const hn::RebindToUnsigned<decltype(df)> du;
  const int N = static_cast<int>(hn::Lanes(df));
  const int groups = kFixed ? kGroups : b.groups, meta_size = kFixed ? 1 : b.meta_size;
  if constexpr (kFixed) nt = len = kLen;
  ForRange<kFixed>(0, groups, [&](int gr) KVBITS_ALWAYS_INLINE {
    PageMetaF32<kLen>(df, b.scales, b.page_tokens, gr, t0, meta_size, len, s + gr * len);
    PageMetaF32<kLen>(df, b.minimums, b.page_tokens, gr, t0, meta_size, len, m + gr * len);
  });
  const auto sign = hn::Set(du, 0x80000000u);
  if (add) {  // the centring flag: the sign bit of every scale of the row (group 0's is read)
    ForRange<kFixed>(0, len / N, [&](int un) KVBITS_ALWAYS_INLINE {
      const auto flag = hn::TestBit(hn::BitCast(du, hn::LoadU(df, s + un * N)), sign);
      hn::StoreU(hn::IfThenElseZero(hn::RebindMask(df, flag), hn::Set(df, 1.0f)), df, add + un * N);
    });
  }
  ForRange<kFixed>(0, groups, [&](int gr) KVBITS_ALWAYS_INLINE {  // scales >= 0 apart from that flag
    ForRange<kFixed>(0, len / N, [&](int un) KVBITS_ALWAYS_INLINE {
      const int u = un * N;
      float* sp = s + gr * len + u;
      const auto scale = hn::BitCast(df, hn::AndNot(sign, hn::BitCast(du, hn::LoadU(df, sp))));
      if (u + N <= nt) {  // every lane valid: nothing to clear
        hn::StoreU(scale, df, sp);
        return;
      }
      const auto valid = WindowLanes(df, u, 0, nt);
      float* mp = m + gr * len + u;
      hn::StoreU(hn::IfThenElseZero(valid, scale), df, sp);
      hn::StoreU(hn::IfThenElseZero(valid, hn::LoadU(df, mp)), df, mp);
    });
  });
  return {b.tile(t0), s, m, nullptr, nullptr, nullptr, b.bits, b.group, groups, len};
}

// The quantized K and V rows of tokens [t0, t0 + 16) of head kvh of a page as an fp32 tile: kt
// [hd][16] (K transposed), vf [16][hd], add[16] = 1 for K rows stored centred (they need
// + q . key_mean), else 0; a 16-bit K or V is left alone (its page tile has the same layout in
// fp16). Rows are as stored (rotated, key-weighted), each element s * c + m as kv_dequantize_ref
// computes it (one fma). Code positions: ops/kv_page.h ("K, lanes = tokens": dim e = c D + j in
// byte j mod 4 of token t's 32-bit lane of chunk c, at bit shift (j / 4) b; "V, lanes = dims":
// token 4 (z (8 / b) + j) + i in byte i of dim l's lane of chunk z of the dim block, at shift j b).
void DecodePageTile(const PageBlock& kb, const PageBlock& vb, int hd, int t0, float* kt, float* vf, float* add) {
  const hn::ScalableTag<float> df;
  const hn::RebindToSigned<decltype(df)> di;
  const hn::RebindToUnsigned<decltype(df)> du;
  const int N = static_cast<int>(hn::Lanes(df));
  HWY_ALIGN float sf[kMaxTileGroups * kKvTile], mf[kMaxTileGroups * kKvTile];  // per group and token
  for (bool is_v : {false, true}) {
    const PageBlock& f = is_v ? vb : kb;
    const int b = f.bits;
    if (b == 16) continue;  // folded from the page's own fp16 tile (FP16 K is [hd][16], V [16][hd])
    const uint8_t* codes = TileMeta(f, t0, kKvTile, kKvTile, sf, mf, is_v ? nullptr : add).codes;
    const int groups = f.groups;
    const auto mask = hn::Set(du, (1u << b) - 1u);
    if (!is_v) {
      // Chunks of D = 32 / b dims never straddle a group (a multiple of 16 dims). No division
      // per dim: three per dim made the K decode ~45 % of a tile's time on AVX2.
      const int dims_per_chunk = 32 / b, chunks_per_group = f.group / dims_per_chunk;
      for (int gr = 0; gr < groups; ++gr) {
        const float* s = sf + gr * kKvTile;
        const float* m = mf + gr * kKvTile;
        for (int c = gr * chunks_per_group; c < (gr + 1) * chunks_per_group; ++c) {
          const uint32_t* chunk = reinterpret_cast<const uint32_t*>(codes + 64 * c);
          for (int j = 0; j < dims_per_chunk; ++j) {
            const int shift = 8 * (j % 4) + (j / 4) * b;
            float* out = kt + (c * dims_per_chunk + j) * kKvTile;
            for (int u = 0; u < kKvTile; u += N) {
              const auto code =
                  hn::ConvertTo(df, hn::BitCast(di, hn::And(hn::ShiftRightSame(hn::LoadU(du, chunk + u), shift), mask)));
              hn::StoreU(hn::MulAdd(hn::LoadU(df, s + u), code, hn::LoadU(df, m + u)), df, out + u);
            }
          }
        }
      }
    } else {
      const int planes = 8 / b, chunks = b / 2;
      for (int k = 0; k < hd / 16; ++k) {
        const int gr = 16 * k / f.group;
        const uint8_t* block = codes + static_cast<size_t>(k) * 32 * b;
        for (int z = 0; z < chunks; ++z) {
          for (int j = 0; j < planes; ++j) {
            for (int i = 0; i < 4; ++i) {
              const int t = 4 * (z * planes + j) + i, shift = 8 * i + j * b;
              const auto s = hn::Set(df, sf[gr * kKvTile + t]), m = hn::Set(df, mf[gr * kKvTile + t]);
              for (int u = 0; u < 16; u += N) {
                const auto raw = hn::LoadU(du, reinterpret_cast<const uint32_t*>(block + 64 * z) + u);
                const auto code = hn::ConvertTo(df, hn::BitCast(di, hn::And(hn::ShiftRightSame(raw, shift), mask)));
                hn::StoreU(hn::MulAdd(s, code, m), df, vf + t * hd + 16 * k + u);
              }
            }
          }
        }
      }
    }
  }
}

#if !HWY_HAVE_SCALABLE
// One query (decode) over one page tile with quantized K and/or V read in place (QuantTile
// above); a 16-bit side is read from the page's fp16 tile.
void FoldQuantTile(const PreparedQuery& q, const SoftmaxState& st, int g, int hd, const PageBlock& kb,
                   const PageBlock& vb, int t0, int nt, bool rotated_v) {
  const bool k_quant = kb.bits < 16, v_quant = vb.bits < 16;
  HWY_ALIGN float ks[kMaxTileGroups * kKvTile], km[kMaxTileGroups * kKvTile];
  HWY_ALIGN float vs[kMaxTileGroups * kKvTile], vm[kMaxTileGroups * kKvTile];
  HWY_ALIGN float add[kKvTile];
  float* target = v_quant && rotated_v ? st.acc_rot : st.acc;
  QuantTile kq, vq;
  if (k_quant) {
    kq = TileMeta(kb, t0, nt, kKvTile, ks, km, add);
    kq.qsum = q.qsum;
    kq.qi = KVBITS_INT_TILES ? q.qi : nullptr;
    kq.qd = q.qd;
  }
  if (v_quant) vq = TileMeta(vb, t0, nt, kKvTile, vs, vm, nullptr);
  if (k_quant && v_quant) {
    FoldFloatTile(q.qr, q.qmu, add, g, hd, kq, vq, 0, nt, target, st);
  } else if (k_quant) {
    FoldFloatTile(q.qr, q.qmu, add, g, hd, kq, vb.fp16_tile(t0), 0, nt, target, st);
  } else {
    FoldFloatTile(q.qf, q.qmu, nullptr, g, hd, kb.fp16_tile(t0), vq, 0, nt, target, st);
  }
}

#if KVBITS_INT_TILES
// Most scale/minimum groups per row FoldIntStep holds (its metadata arrays are [groups][64]).
inline constexpr int kMaxStepGroups = 4;

// Whether a page's decode goes through FoldIntStep: K and V both 2- or 4-bit, g <= 4 query heads
// per KV head, few groups.
HWY_INLINE bool IntSteps(const PageBlock& kb, const PageBlock& vb, int g) {
  return IntTileBits(kb.bits) && IntTileBits(vb.bits) && g <= 4 && kb.groups <= kMaxStepGroups &&
         vb.groups <= kMaxStepGroups;
}

// One decode query over tokens [t0, t0 + n) of a page (t0 a multiple of kAttentionStepTokens, n
// <= it) whose K and V are both 2- or 4-bit (IntSteps): the integer tiles over a step of up to 4
// tiles with one softmax pass and one set of int8 V weights per head and group, as the VNNI
// kernel does, so that the horizontal reductions, the weights' scale, the metadata conversion
// and the calls are paid once per 64 tokens instead of once per tile.
// The widths, head dim and group fixed at compile time (all > 0: SmolLM2's default shape,
// FoldIntPage) with kLen = kAttentionStepTokens give the full steps' kernel: every loop of the
// step unrolled, every offset a constant (IntShape); 0: read from the blocks.
template <int G, int kKBits = 0, int kVBits = 0, int kHd = 0, int kGroup = 0, int kLen = 0>
void FoldIntStep(const PreparedQuery& q, const SoftmaxState& st, int hd, const PageBlock& kb, const PageBlock& vb,
                 int t0, int n, bool rotated_v) {
  constexpr int L = kAttentionStepTokens;
  constexpr int kGroups = kHd > 0 && kGroup > 0 ? kHd / kGroup : 0;
  static_assert(kLen == 0 || (kLen == L && kGroups > 0 && kKBits > 0 && kVBits > 0), "a full step of a fixed shape");
  HWY_ALIGN float ks[kMaxStepGroups * L], km[kMaxStepGroups * L], vs[kMaxStepGroups * L], vm[kMaxStepGroups * L];
  HWY_ALIGN float add[L], p[G * L];
  const int len = kLen > 0 ? kLen : (n + kKvTile - 1) / kKvTile * kKvTile;
  const int k_bits = kKBits > 0 ? kKBits : kb.bits, v_bits = kVBits > 0 ? kVBits : vb.bits;
  const bool dp = IntDpEnabled();  // once per step: a call, ~20 instructions per int2 tile when asked per tile
  QuantTile kq = TileMeta<kLen ? kGroups : 0, kLen>(kb, t0, n, len, ks, km, add);
  kq.qsum = q.qsum;
  kq.qi = q.qi;
  kq.qd = q.qd;
  const QuantTile vq = TileMeta<kLen ? kGroups : 0, kLen>(vb, t0, n, len, vs, vm, nullptr);
  ForRange<kLen != 0>(0, len / kKvTile, [&](int i) KVBITS_ALWAYS_INLINE {
    QuantTile tile = kq;
    tile.codes += i * (kLen > 0 ? size_t{kKvTile} * kHd * kKBits / 8 : kb.tile_bytes);
    tile.s += i * kKvTile;
    tile.m += i * kKvTile;
    if (k_bits == 2) {
      TileDotsInt<G, 2, kHd, kGroup>(dp, hd, tile, p + i * kKvTile, L);
    } else {
      TileDotsInt<G, 4, kHd, kGroup>(dp, hd, tile, p + i * kKvTile, L);
    }
  });
  bool live[16];
  const bool all_live = SoftmaxBlock<kLen ? G : 0, kLen>(G, hd, p, L, len, 0, n, q.qmu, add, st, live);
  float* target = rotated_v ? st.acc_rot : st.acc;
  if (all_live) {
    if (v_bits == 2) return TileSumsInt<G, 2, kHd, kGroup, kLen>(dp, p, L, len, hd, vq, target);
    return TileSumsInt<G, 4, kHd, kGroup, kLen>(dp, p, L, len, hd, vq, target);
  }
  for (int h = 0; h < G; ++h) {  // a head with nothing finite yet is left alone
    if (!live[h]) continue;
    if (v_bits == 2) {
      TileSumsInt<1, 2>(dp, p + h * L, L, len, hd, vq, target + h * hd);
    } else {
      TileSumsInt<1, 4>(dp, p + h * L, L, len, hd, vq, target + h * hd);
    }
  }
}

// One decode query over a page of n_tokens whose K and V are both 2- or 4-bit (IntSteps), step by
// step; prefetch(tiles) issues the next block's share for that many tiles before each step.
// SmolLM2-135M / -360M with the default groups (3 query heads per KV head, head dim and groups
// 64): full steps through the fixed-shape kernel (FoldIntStep), ~1950 -> ~1170 instructions per
// int2 tile and KV head on AVX2 (docs/benchmarks.md, session 37).
template <class Prefetch>
void FoldIntPage(const PreparedQuery& q, const SoftmaxState& st, int g, int hd, int n_tokens, const PageBlock& kb,
                 const PageBlock& vb, bool rotated_v, Prefetch&& prefetch) {
  constexpr int kStep = kAttentionStepTokens;
  const int widths = g == 3 && hd == 64 && kb.group == 64 && vb.group == 64 ? kb.bits * 10 + vb.bits : 0;
  for (int t0 = 0; t0 < n_tokens; t0 += kStep) {
    prefetch(kStep / kKvTile);
    const int n = std::min(kStep, n_tokens - t0);
    if (n == kStep && widths != 0) {
      switch (widths) {
        case 22: FoldIntStep<3, 2, 2, 64, 64, kStep>(q, st, hd, kb, vb, t0, n, rotated_v); continue;
        case 24: FoldIntStep<3, 2, 4, 64, 64, kStep>(q, st, hd, kb, vb, t0, n, rotated_v); continue;
        case 42: FoldIntStep<3, 4, 2, 64, 64, kStep>(q, st, hd, kb, vb, t0, n, rotated_v); continue;
        default: FoldIntStep<3, 4, 4, 64, 64, kStep>(q, st, hd, kb, vb, t0, n, rotated_v); continue;
      }
    }
    switch (g) {
      case 1: FoldIntStep<1>(q, st, hd, kb, vb, t0, n, rotated_v); break;
      case 2: FoldIntStep<2>(q, st, hd, kb, vb, t0, n, rotated_v); break;
      case 3: FoldIntStep<3>(q, st, hd, kb, vb, t0, n, rotated_v); break;
      default: FoldIntStep<4>(q, st, hd, kb, vb, t0, n, rotated_v); break;
    }
  }
}
#endif
#endif
