// Attention over the mixed-precision store (ops/attention.cc; its kernels dispatched to every SIMD
// target compiled in) against the scalar double-precision reference attention_ref, over random
// stores: mixed widths per token and layer, odd lengths (tile and page boundaries), empty pages,
// R = 0 and R > 0 (window rows), every rotation setting and group size, decode (one query, pages
// split across threads) and prefill blocks (causal windows, side-by-side continuations), 1 and 2
// threads. An all-FP16 store is also checked against plain attention over the fp16-rounded rows
// written (what an FP16-cache engine computes).
//
// Tolerance, per query head, on the 2-norm of the output difference (rotations preserve 2-norms):
//  * Portable path: kernel and reference decode the same bytes and differ only by fp32 rounding
//    of dot products (hd terms), softmax and weighted sums of n <= ~2100 rows: relative ~(hd + n)
//    2^-24 ~ 1.3e-4 of the sums; we allow 2e-4 ||v||max + 1e-6.
//  * VNNI path (AVX3_DL) adds two roundings on purpose:
//    (1) the query (rotated when K is) is rounded to int8 per group: qi = round(q 127 / amax),
//        qd = amax / 127, and with KvLayerView::exact_8bit for 8-bit K rows also its error,
//        qi2 = round((q 127 / amax - qi) 254). This one is deterministic, so the test applies it
//        too (emulate_integer; the VNNI kernel is run with exact_8bit off and on):
//        scores of quantized keys are computed from the same qi, qd, codes, scales and minimums
//        in double, and the softmax and sums in double give the expected output;
//    (2) the V weights w_t = p_t vs_t of each step T (kAttentionStepTokens tokens of a page) are
//        rounded to int8 against the step's largest weight: |dw_t| <= max_T(w) / 254, which moves the output by at most
//        sum_t max_T(p vs) / 254 ||c_t|| / sum p (codes c_t of token t's group, summed per group);
//        with exact_8bit, for 8-bit V rows the rounding error is rounded and multiplied too, so
//        254 times less.
//    The kernel must match the emulation within (2) plus the fp32 allowance above. (2) is a
//    worst-case sum of rounding errors; measured errors are a few percent of it. A layout or
//    indexing error moves scores by O(1) and outputs by far more.
//  * Integer tiles (other x86 targets from AVX2, ops/attention_int_tiles-inl.h): the same two
//    roundings for 2- and 4-bit rows only (8-bit ones stay fp32), for a query alone in its task
//    (a decode, or the last query of 8 k + 1). V weights are rounded per step of a page, as in
//    the VNNI kernel, where K and V are both 2- or 4-bit (g <= 4, <= 4 groups: FoldIntStep),
//    else per 16-token tile. Emulated the same way (IntegerMode).
#include <gtest/gtest.h>

#include <array>
#include <cmath>
#include <cstring>
#include <map>
#include <utility>
#include <random>
#include <string>

#include "hwy/targets.h"
#include "ops/kv_page.h"
#include "kv/kv_store.h"
#include "kv_test_util.h"
#include "test_random.h"
#include "ops/attention.h"
#include "ops/kv_codec.h"
#include "util/half.h"

namespace kvbits {
namespace {

using testing::fill_store;
using testing::kv_test_config;

struct Setup {
  int n_heads, n_kv_heads, head_dim;
  int64_t tokens, residual;
  std::vector<KvPrecision> classes;
  KvRotation rotation;
  int group;
  bool center = false;  // key centering with a random mean row
  float q_scale = 1.0f;  // queries uniform in [-q_scale, q_scale]
  int page_tokens = 0;   // 0: the store's default (64, one step of the VNNI kernel)
};

std::string describe(const Setup& s) {
  std::string c;
  for (auto p : s.classes) c += to_string(p) + " ";
  return std::string(s.center ? "centred " : "") + "heads " + std::to_string(s.n_heads) + "/" + std::to_string(s.n_kv_heads) + " hd " + std::to_string(s.head_dim) +
         " tokens " + std::to_string(s.tokens) + " R " + std::to_string(s.residual) + " rot " +
         std::to_string(static_cast<int>(s.rotation)) + " group " + std::to_string(s.group) + " classes " + c;
}

// All keys one query attends, decoded: what the emulation needs per key.
struct KeyInfo {
  std::vector<float> k, v;                  // [hd] as stored (rotated basis for quantized rows)
  std::vector<uint8_t> k_codes, v_codes;    // [hd] quantized rows
  std::vector<float> ks, km, vs, vm;        // [groups] quantized rows
  int step = -1;                            // global step id (pages), -1 for window rows
  int tile = -1;                            // global 16-token tile id (pages), -1 for window rows
  int k_bits = 16, v_bits = 16;
  bool centred = false;                     // K row stored as k - key_mean (kKvCentredFlag)
};

std::vector<KeyInfo> gather_keys(const KvLayerView& view, int kvh, int hd, int group, const WindowRange& w) {
  std::vector<KeyInfo> keys;
  const int groups = hd / group;
  int step_base = 0, tile_base = 0;
  std::vector<uint16_t> sc(static_cast<size_t>(groups)), mn(sc.size());
  for (const KvPageRef& page : view.pages) {
    for (int t = 0; t < page.n_tokens; ++t) {
      KeyInfo ki;
      ki.step = step_base + t / kAttentionStepTokens;
      ki.tile = tile_base + t / kKvTile;
      ki.k_bits = page.layout->format(false).bits;
      ki.v_bits = page.layout->format(true).bits;
      for (const bool is_v : {false, true}) {
        std::vector<float>& row = is_v ? ki.v : ki.k;
        row.resize(static_cast<size_t>(hd));
        kv_page_read_row(*page.layout, page.data, is_v, kvh, t, row.data());
        if (page.layout->format(is_v).bits == 16) continue;
        std::vector<uint8_t>& codes = is_v ? ki.v_codes : ki.k_codes;
        codes.resize(static_cast<size_t>(hd));
        kv_page_read_codes(*page.layout, page.data, is_v, kvh, t, codes.data(), sc.data(), mn.data());
        if (!is_v) ki.centred = kv_row_centred(sc.data());
        for (int g = 0; g < groups; ++g) {
          (is_v ? ki.vs : ki.ks).push_back(fp16_to_fp32(static_cast<uint16_t>(sc[g] & ~kKvCentredFlag)));
          (is_v ? ki.vm : ki.km).push_back(fp16_to_fp32(mn[g]));
        }
      }
      keys.push_back(std::move(ki));
    }
    step_base += (page.n_tokens + kAttentionStepTokens - 1) / kAttentionStepTokens;
    tile_base += (page.n_tokens + kKvTile - 1) / kKvTile;
  }
  for (const auto& [j0, j1] : {std::pair{int64_t{0}, w.shared}, std::pair{w.begin, w.end}}) {
    for (int64_t j = j0; j < j1; ++j) {
      KeyInfo ki;
      const int64_t off = (static_cast<int64_t>(kvh) * view.window_stride + j) * hd;
      for (int e = 0; e < hd; ++e) {
        ki.k.push_back(fp16_to_fp32(view.window_k[off + e]));
        ki.v.push_back(fp16_to_fp32(view.window_v[off + e]));
      }
      keys.push_back(std::move(ki));
    }
  }
  return keys;
}

// Which integer kernel a query runs (header comment); kVnniExact8: with KvLayerView::exact_8bit.
enum class IntegerMode { kVnni, kVnniExact8, kIntTiles };

// Expected output of one query head q[hd] (unscaled) from the VNNI kernel or the integer tiles,
// with step (1) of the header comment applied, and the bound of step (2) plus the fp32 allowance.
struct Emulated {
  std::vector<double> out;
  double bound = 0.0;
};

Emulated emulate_integer(IntegerMode mode, int g_heads, const float* q, int hd, int group, bool rotated_k,
                         bool rotated_v, const float* key_mean, const float* key_weight,
                         const std::vector<KeyInfo>& keys) {
  const bool vnni = mode != IntegerMode::kIntTiles;
  const bool exact8 = mode == IntegerMode::kVnniExact8;
  Emulated r;
  r.out.assign(static_cast<size_t>(hd), 0.0);
  if (keys.empty()) {
    r.bound = 1e-6;
    return r;
  }
  const int groups = hd / group;
  const float scale = 1.0f / std::sqrt(static_cast<float>(hd));
  std::vector<float> qf(static_cast<size_t>(hd)), qr(static_cast<size_t>(hd));
  for (int e = 0; e < hd; ++e) qf[e] = qr[e] = q[e] * scale;
  if (key_weight) {
    for (int e = 0; e < hd; ++e) qr[e] /= key_weight[e];
  }
  if (rotated_k) hadamard(qr.data(), hd);
  float qmu = 0.0f;  // q . key_mean in fp32, as prepared for the kernels
  if (key_mean) {
    for (int e = 0; e < hd; ++e) qmu += qf[e] * key_mean[e];
  }
  std::vector<double> qd(static_cast<size_t>(groups)), qsum(qd.size());
  std::vector<int> qi(static_cast<size_t>(hd)), qi2(qi.size());
  for (int g = 0; g < groups; ++g) {
    float amax = 0.0f, sum = 0.0f;
    for (int e = g * group; e < (g + 1) * group; ++e) {
      amax = std::max(amax, std::fabs(qr[e]));
      sum += qr[e];
    }
    const float inv = amax > 0.0f ? 127.0f / amax : 0.0f;
    for (int e = g * group; e < (g + 1) * group; ++e) {
      const float scaled = qr[e] * inv;
      const float rounded = std::nearbyint(scaled);
      qi[e] = static_cast<int>(rounded);
      qi2[e] = static_cast<int>(std::nearbyint((scaled - rounded) * 254.0f));
    }
    qd[g] = amax / 127.0f;
    qsum[g] = sum;
  }
  std::vector<double> s(keys.size());
  double m = -INFINITY, vmax = 0.0;
  for (size_t j = 0; j < keys.size(); ++j) {
    const KeyInfo& ki = keys[j];
    double dot = 0.0;
    if (!ki.k_codes.empty()) {
      const bool int8_query = vnni || ki.k_bits <= 4;
      const bool residual = exact8 && ki.k_bits == 8;  // qi2 as well
      for (int g = 0; g < groups; ++g) {
        int64_t idot = 0, idot2 = 0;
        double fdot = 0.0;  // fp32 products of the integer tiles' 8-bit rows
        for (int e = g * group; e < (g + 1) * group; ++e) {
          idot += static_cast<int64_t>(qi[e]) * ki.k_codes[e];
          idot2 += static_cast<int64_t>(qi2[e]) * ki.k_codes[e];
          fdot += static_cast<double>(qr[e]) * ki.k_codes[e];
        }
        const double qdot = static_cast<double>(idot) + (residual ? static_cast<double>(idot2) / 254.0 : 0.0);
        dot += ki.ks[g] * (int8_query ? qd[g] * qdot : fdot) + ki.km[g] * qsum[g];
      }
      if (ki.centred) dot += qmu;
    } else {
      for (int e = 0; e < hd; ++e) dot += static_cast<double>(qf[e]) * ki.k[e];
    }
    s[j] = dot;
    m = std::max(m, dot);
    double n2 = 0.0;
    for (float x : ki.v) n2 += static_cast<double>(x) * x;
    vmax = std::max(vmax, std::sqrt(n2));
  }
  double total = 0.0;
  for (double& x : s) total += (x = std::exp(x - m));
  std::vector<double> rot(static_cast<size_t>(hd), 0.0);
  // The V weights rounded to int8, and the tokens sharing one scale (a step or a tile).
  auto int8_weights = [&](const KeyInfo& ki) { return !ki.v_codes.empty() && (vnni || ki.v_bits <= 4); };
  const bool steps_possible = g_heads <= 4 && hd / group <= 4;  // FoldIntStep's conditions
  auto weight_block = [&](const KeyInfo& ki) {
    const bool step = vnni || (steps_possible && ki.k_bits <= 4 && ki.v_bits <= 4);
    return step ? ki.step : ki.tile;
  };
  std::map<int, std::vector<double>> step_max;  // per step (or tile) and group: max of p vs
  for (size_t j = 0; j < keys.size(); ++j) {
    const KeyInfo& ki = keys[j];
    std::vector<double>& acc = !ki.v_codes.empty() && rotated_v ? rot : r.out;
    for (int e = 0; e < hd; ++e) acc[e] += s[j] * ki.v[e];
    if (!int8_weights(ki)) continue;
    auto& tm = step_max[weight_block(ki)];
    tm.resize(static_cast<size_t>(groups), 0.0);
    for (int g = 0; g < groups; ++g) tm[g] = std::max(tm[g], s[j] * ki.vs[g]);
  }
  std::vector<float> rf(rot.begin(), rot.end());
  hadamard(rf.data(), hd);
  for (int e = 0; e < hd; ++e) r.out[e] = (r.out[e] + (rotated_v ? rf[e] : rot[e])) / total;
  double weight_term = 0.0;
  for (const KeyInfo& ki : keys) {
    if (!int8_weights(ki)) continue;
    for (int g = 0; g < groups; ++g) {
      double c2 = 0.0;
      for (int e = g * group; e < (g + 1) * group; ++e) c2 += static_cast<double>(ki.v_codes[e]) * ki.v_codes[e];
      // 8-bit rows with exact_8bit: the residual weights leave 1/254 of the rounding.
      const double residual = exact8 && ki.v_bits == 8 ? 254.0 : 1.0;
      weight_term += step_max[weight_block(ki)][g] / 254.0 / residual * std::sqrt(c2);
    }
  }
  r.bound = weight_term / total + 2e-4 * vmax + 1e-6;
  return r;
}

void check(const Setup& s, uint32_t seed, int threads) {
  SCOPED_TRACE(describe(s) + " seed " + std::to_string(seed) + " threads " + std::to_string(threads));
  ThreadPool pool(threads);
  const LlamaConfig c = kv_test_config(1, s.n_heads, s.n_kv_heads, s.head_dim);
  KvStoreOptions o;
  o.capacity = s.tokens + 64;
  o.residual = s.residual;
  o.max_chunk = 64;
  o.group = s.group;
  o.rotation = s.rotation;
  o.per_token_record = s.classes.size() > 1;
  if (s.page_tokens > 0) o.page_tokens = s.page_tokens;
  if (s.center) {
    // fill_store's keys are U(-1, 1) with channel 3 scaled to U(-8, 8): a mean of +4 there makes
    // centring win for about half the rows (k3 > 0) and lose for the rest, so both kinds are read.
    o.key_mean = testing::random_vector(static_cast<size_t>(s.n_kv_heads) * s.head_dim, seed + 5, -0.1f, 0.1f);
    for (int h = 0; h < s.n_kv_heads; ++h) o.key_mean[static_cast<size_t>(h) * s.head_dim + 3] = 4.0f;
    // Key channel weights from 1/3 to 3 (the store keeps w * k, queries meet q / w).
    o.key_weight = testing::random_vector(o.key_mean.size(), seed + 6, -1.1f, 1.1f);
    for (float& x : o.key_weight) x = std::exp(x);
  }
  KvStore store(c, o);
  fill_store(store, c, s.tokens, 61, s.residual, s.classes, seed, pool);
  KvLayerView view = store.layer_view(0);
  // An empty page in front and at the end must be skipped.
  std::vector<KvPageRef> pages;
  pages.push_back({});
  pages.insert(pages.end(), view.pages.begin(), view.pages.end());
  pages.push_back({});
  view.pages = pages;

  const AttentionShape shape{s.n_heads, s.n_kv_heads, s.head_dim};
  const int hd = s.head_dim, g = s.n_heads / s.n_kv_heads;
  const int64_t w = store.window_tokens();
  const int q_dim = s.n_heads * hd;
  std::mt19937 rng(seed * 31 + 7);
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  AttentionScratch scratch;
  int64_t n_centred = 0, n_plain = 0;  // quantized K rows read, stored centred or not
  // Decode: one query over everything; a block of causal queries over the window; and
  // continuations scored side by side (shared window prefix + own rows).
  std::vector<std::vector<WindowRange>> windows = {{{w, 0, 0}}};
  std::vector<WindowRange> causal;
  for (int64_t j = 0; j < std::min<int64_t>(w, 11); ++j) causal.push_back({w - j, 0, 0});
  if (!causal.empty()) windows.push_back(causal);
  if (w >= 6) windows.push_back({{2, 2, 3}, {2, 2, 5}, {2, 5, 6}, {0, 0, 0}});
  // Several window tiles (16 rows each): a prefix ending and own rows starting inside later tiles.
  if (w >= 40) windows.push_back({{17, 20, 37}, {5, 33, w}, {0, 18, 19}, {31, 31, 32}});
  struct Reset {
    ~Reset() { hwy::SetSupportedTargetsForTest(0); }
  } reset;
  for (const auto& win : windows) {
    const int64_t nq = static_cast<int64_t>(win.size());
    std::vector<float> q(static_cast<size_t>(nq * q_dim));
    for (float& x : q) x = s.q_scale * u(rng);
    std::vector<float> ref(q.size());
    attention_ref(shape, q.data(), nq, win.data(), view, ref.data());
    // Per query head: the expected outputs of each IntegerMode (by its index).
    std::vector<std::array<Emulated, 3>> emulated(static_cast<size_t>(nq * s.n_heads));
    for (int64_t i = 0; i < nq; ++i) {
      for (int kvh = 0; kvh < s.n_kv_heads; ++kvh) {
        const std::vector<KeyInfo> keys = gather_keys(view, kvh, hd, std::min(s.group, hd), win[i]);
        for (const KeyInfo& ki : keys) {
          if (!ki.k_codes.empty()) ++(ki.centred ? n_centred : n_plain);
        }
        for (int h = kvh * g; h < (kvh + 1) * g; ++h) {
          for (const IntegerMode mode : {IntegerMode::kVnni, IntegerMode::kVnniExact8, IntegerMode::kIntTiles}) {
            emulated[i * s.n_heads + h][static_cast<int>(mode)] = emulate_integer(
                mode, g, q.data() + i * q_dim + h * hd, hd, std::min(s.group, hd), s.rotation != KvRotation::kNone,
                s.rotation == KvRotation::kKeysAndValues, view.key_mean ? view.key_mean + kvh * hd : nullptr,
                view.key_weight ? view.key_weight + kvh * hd : nullptr, keys);
          }
        }
      }
    }
    for (int64_t target : hwy::SupportedAndGeneratedTargets()) {
      hwy::SetSupportedTargetsForTest(target);
      ASSERT_STREQ(attention_target_name(), hwy::TargetName(target));
      // The kernels' conditions (ops/attention_kernels.cc AttendPage; IntSteps in attention_page_tiles-inl.h).
      const bool vnni = target == HWY_AVX3_DL && hd / std::min(s.group, hd) <= 4;
#if HWY_ARCH_X86
      const bool int_tiles = !vnni && target <= HWY_AVX2;
#else
      const bool int_tiles = false;
#endif
      // exact_8bit changes only the VNNI kernel: the other targets run once.
      for (const bool exact8 : {false, true}) {
        if (exact8 && !vnni) continue;
        view.exact_8bit = exact8;
        std::vector<float> out(q.size(), NAN);
        attention(shape, q.data(), nq, win.data(), view, out.data(), pool, scratch);
        const IntegerMode mode = !vnni ? IntegerMode::kIntTiles : exact8 ? IntegerMode::kVnniExact8 : IntegerMode::kVnni;
        for (int64_t i = 0; i < nq; ++i) {
          // Integer tiles: only a query alone in its task (kAttentionQueryBlock).
          const bool alone = nq - i / kAttentionQueryBlock * kAttentionQueryBlock == 1;
          const bool integer = vnni || (int_tiles && alone);
          for (int h = 0; h < s.n_heads; ++h) {
            // Integer kernels: against their emulation; otherwise against the exact reference.
            const Emulated& em = emulated[i * s.n_heads + h][static_cast<int>(mode)];
            double d2 = 0, v2 = 0;
            for (int e = 0; e < hd; ++e) {
              const double a = out[(i * s.n_heads + h) * hd + e];
              const double b = integer ? em.out[e] : ref[(i * s.n_heads + h) * hd + e];
              ASSERT_TRUE(std::isfinite(a));
              d2 += (a - b) * (a - b);
              v2 += b * b;
            }
            const double tol = integer ? em.bound : 2e-4 * std::max(1.0, std::sqrt(v2)) + 1e-6;
            ASSERT_LE(std::sqrt(d2), tol) << hwy::TargetName(target) << (exact8 ? " exact_8bit" : "") << " query "
                                          << i << " of " << nq << " head " << h;
          }
        }
      }
    }
  }
  if (s.center) {  // the per-row choice must have produced both kinds of rows
    EXPECT_GT(n_centred, 0);
    EXPECT_GT(n_plain, 0);
  } else {
    EXPECT_EQ(n_centred, 0);
  }
}

TEST(Attention, MatchesReferenceOnMixedStores) {
  const std::vector<KvPrecision> all = {{16, 16}, {8, 8}, {4, 4}, {2, 2}, {4, 2}, {8, 4}, {16, 2}, {2, 16}};
  uint32_t seed = 1;
  for (int64_t tokens : {1, 15, 16, 17, 63, 64, 65, 130, 700}) {
    for (int64_t residual : {0, 9}) {
      check({9, 3, 64, tokens, residual, all, KvRotation::kKeysAndValues, 64}, seed++, 2);
    }
  }
  for (const auto rot : {KvRotation::kNone, KvRotation::kKeys, KvRotation::kKeysAndValues}) {
    for (int group : {16, 32, 64}) check({4, 2, 64, 200, 3, all, rot, group}, seed++, 1);
  }
  for (const KvPrecision p : all) check({8, 2, 64, 300, 0, {p}, KvRotation::kKeysAndValues, 64}, seed++, 2);
  check({4, 4, 128, 150, 5, all, KvRotation::kKeysAndValues, 32}, seed++, 2);  // MHA, hd 128
  check({6, 1, 16, 90, 2, all, KvRotation::kNone, 16}, seed++, 2);              // one KV head, hd 16
  check({9, 3, 64, 2100, 0, all, KvRotation::kKeysAndValues, 64}, seed++, 2);    // many decode tasks
  check({9, 3, 64, 300, 40, all, KvRotation::kKeysAndValues, 64}, seed++, 2);    // a window of several tiles
  check({6, 1, 16, 90, 37, all, KvRotation::kNone, 16}, seed++, 2);             // the same, hd 16
  // Decode tasks take the largest divisor of n_kv_heads up to 16 heads at once: 16 of 32, 1 of 17.
  check({32, 32, 16, 700, 1, all, KvRotation::kKeysAndValues, 16}, seed++, 1);
  check({34, 17, 16, 600, 0, all, KvRotation::kNone, 16}, seed++, 1);
  for (const auto rot : {KvRotation::kNone, KvRotation::kKeys, KvRotation::kKeysAndValues}) {
    for (int group : {32, 64}) check({9, 3, 64, 300, 5, all, rot, group, /*center=*/true}, seed++, 2);  // key centering
  }
  // Large queries, so that a few rows carry the softmax and the 8-bit rows' residual products
  // (qi2, wq2 in attention_vnni-inl.h, with exact_8bit) show: without either, outputs moved 3-9x
  // the tolerance.
  for (const KvPrecision p : std::vector<KvPrecision>{{8, 8}, {8, 16}, {16, 8}}) {
    check({9, 3, 64, 130, 0, {p}, KvRotation::kKeysAndValues, 64, false, 16.0f}, seed++, 2);
  }
  // The fixed shapes of the integer steps (FoldIntStep on x86 targets without the VNNI kernel: 3
  // query heads per KV head, head dim 64, groups of 64, full 64-token steps) for each pair of 2-
  // and 4-bit widths, next to partial pages, with and without centred keys.
  const std::vector<KvPrecision> int_pairs = {{2, 2}, {2, 4}, {4, 2}, {4, 4}};
  for (const int64_t tokens : {64, 300, 1000}) {
    check({9, 3, 64, tokens, 0, int_pairs, KvRotation::kKeysAndValues, 64}, seed++, 2);
    check({9, 3, 64, tokens, 5, int_pairs, KvRotation::kKeysAndValues, 64, /*center=*/true}, seed++, 1);
  }
  // Pages of several steps (full steps at t0 > 0 in the VNNI kernels of fixed shape, then a
  // partial one), for every class; 1 and 2 threads.
  for (int page : {128, 208}) {
    for (const int64_t tokens : {200, 1000}) {
      check({9, 3, 64, tokens, 3, all, KvRotation::kKeysAndValues, 64, false, 1.0f, page}, seed++, 2);
      check({9, 3, 64, tokens, 0, all, KvRotation::kKeysAndValues, 64, true, 1.0f, page}, seed++, 1);
    }
  }
}

// An all-FP16 store computes plain attention over the fp16-rounded rows, like the FP16 engine.
TEST(Attention, AllFp16StoreMatchesPlainAttention) {
  ThreadPool pool(2);
  const LlamaConfig c = kv_test_config(1, 9, 3, 64);
  KvStoreOptions o;
  o.capacity = 600;
  o.max_chunk = 64;
  KvStore store(c, o);
  const auto rows = fill_store(store, c, 517, 64, 0, {{16, 16}}, 77, pool);
  std::mt19937 rng(3);
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  std::vector<float> q(9 * 64);
  for (float& x : q) x = u(rng);
  const WindowRange win{0, 0, 0};
  std::vector<float> out(q.size());
  AttentionScratch scratch;
  attention({9, 3, 64}, q.data(), 1, &win, store.layer_view(0), out.data(), pool, scratch);
  for (int h = 0; h < 9; ++h) {
    const int kvh = h / 3;
    std::vector<double> s(517);
    double m = -INFINITY;
    for (int j = 0; j < 517; ++j) {
      double d = 0;
      for (int e = 0; e < 64; ++e) d += q[h * 64 + e] * fp16_to_fp32(fp32_to_fp16(rows.k[0][j * 192 + kvh * 64 + e]));
      s[j] = d / 8.0;
      m = std::max(m, s[j]);
    }
    double total = 0;
    for (double& x : s) total += (x = std::exp(x - m));
    for (int e = 0; e < 64; ++e) {
      double acc = 0;
      for (int j = 0; j < 517; ++j) acc += s[j] * fp16_to_fp32(fp32_to_fp16(rows.v[0][j * 192 + kvh * 64 + e]));
      EXPECT_NEAR(out[h * 64 + e], acc / total, 1e-5) << "head " << h << " dim " << e;
    }
  }
}

// Decode's tasks are dealt to the threads in lanes with stealing (backend/chunk_lanes.h), so
// which thread runs which page range changes from call to call; each range keeps its own softmax
// state, merged in a fixed order, so the output must not change by a single bit. 3 threads on a
// 2-core machine make the schedules differ widely.
TEST(Attention, DecodeIsBitIdenticalWhateverTheSchedule) {
  const LlamaConfig c = kv_test_config(1, 9, 3, 64);
  for (const int threads : {2, 3}) {
    ThreadPool pool(threads);
    KvStoreOptions o;
    o.capacity = 2200;
    o.max_chunk = 64;
    o.per_token_record = true;
    KvStore store(c, o);
    fill_store(store, c, 2100, 61, 0, {{2, 2}, {4, 4}, {4, 2}, {16, 16}}, 11, pool);
    std::mt19937 rng(5);
    std::uniform_real_distribution<float> u(-1.0f, 1.0f);
    std::vector<float> q(9 * 64);
    for (float& x : q) x = u(rng);
    const WindowRange win{0, 0, 0};
    AttentionScratch scratch;
    std::vector<float> first(q.size()), out(q.size());
    attention({9, 3, 64}, q.data(), 1, &win, store.layer_view(0), first.data(), pool, scratch);
    for (int run = 0; run < 200; ++run) {
      attention({9, 3, 64}, q.data(), 1, &win, store.layer_view(0), out.data(), pool, scratch);
      ASSERT_EQ(std::memcmp(out.data(), first.data(), out.size() * sizeof(float)), 0)
          << threads << " threads, run " << run;
    }
  }
}

}  // namespace
}  // namespace kvbits

namespace kvbits {
namespace {

// The tap's statistics against a double-precision computation of the same attention rows, on an
// FP16 store with a window (every target computes FP16 rows in fp32, so 1e-4 holds).
TEST(Attention, TapMatchesExactAttentionRows) {
  ThreadPool pool(2);
  const int H = 6, KVH = 2, hd = 64, g = H / KVH;
  const LlamaConfig c = kv_test_config(1, H, KVH, hd);
  KvStoreOptions o;
  o.capacity = 400;
  o.residual = 40;
  o.max_chunk = 64;
  KvStore store(c, o);
  const auto rows = fill_store(store, c, 300, 50, 40, {{16, 16}}, 99, pool);
  const int64_t w = store.window_tokens(), committed = store.committed();
  // Three causal queries at the last three window rows.
  const std::vector<WindowRange> win = {{w - 2, 0, 0}, {w - 1, 0, 0}, {w, 0, 0}};
  std::mt19937 rng(4);
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  std::vector<float> q(3 * H * hd), out(q.size());
  for (float& x : q) x = u(rng);
  AttentionScratch scratch;
  AttentionTap tap;
  attention({H, KVH, hd}, q.data(), 3, win.data(), store.layer_view(0), out.data(), pool, scratch, &tap);
  ASSERT_EQ(tap.concentration.size(), 3u * H);
  std::vector<double> received(static_cast<size_t>(w), 0.0);
  for (int i = 0; i < 3; ++i) {
    const int64_t keys = committed + win[i].shared;  // all positions up to and including the query's
    for (int h = 0; h < H; ++h) {
      const int kvh = h / g;
      std::vector<double> s(static_cast<size_t>(keys));
      double m = -INFINITY;
      for (int64_t j = 0; j < keys; ++j) {
        double d = 0;
        for (int e = 0; e < hd; ++e) d += q[(i * H + h) * hd + e] * fp16_to_fp32(fp32_to_fp16(rows.k[0][j * KVH * hd + kvh * hd + e]));
        s[j] = d / 8.0;
        m = std::max(m, s[j]);
      }
      double total = 0, c2 = 0;
      for (double& x : s) total += (x = std::exp(x - m));
      for (double x : s) c2 += (x / total) * (x / total);
      EXPECT_NEAR(tap.concentration[i * H + h], c2, 1e-4 * c2 + 1e-6) << "query " << i << " head " << h;
      for (int64_t j = committed; j < keys - 1; ++j) received[j - committed] += s[j] / total / H;  // own row excluded
    }
  }
  ASSERT_GE(tap.received.size(), static_cast<size_t>(w));
  for (int64_t r = 0; r < w; ++r) EXPECT_NEAR(tap.received[r], received[r], 1e-5) << "window row " << r;
}

}  // namespace
}  // namespace kvbits
