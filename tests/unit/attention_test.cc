// Attention over the mixed-precision store (ops/attention.cc, dispatched) against the scalar
// double-precision reference attention_ref, over random stores: mixed widths per token and
// layer, odd lengths (tile and page boundaries), empty pages, R = 0 and R > 0 (window rows),
// every rotation setting, decode (one query, pages split across threads) and prefill blocks
// (causal windows, side-by-side continuations), 1 and 2 threads. An all-FP16 store is also checked
// against plain attention over the fp16-rounded rows written (what the FP16 engine computes).
//
// Tolerance. Kernel and reference decode the same bytes. The portable path then differs only by
// fp32 rounding: scores are dot products of hd terms (|q| <= 1 scaled by 1/sqrt(hd), |k| <= 8),
// softmax and weighted sums of n rows run in fp32: relative error ~(hd + n) 2^-24 of the sums,
// below 1e-4 absolute on outputs of magnitude <= 1 for n <= 2000. The VNNI path (AVX3_DL) also
// rounds the rotated query to int8 per group (|dq| <= qmax/254) and each tile's V weights to
// int8 (|dw| <= wmax/254); see vnni_bound() for the bound this adds.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <string>

#include "hwy/targets.h"
#include "kv/kv_store.h"
#include "kv_test_util.h"
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
};

std::string describe(const Setup& s) {
  std::string c;
  for (auto p : s.classes) c += to_string(p) + " ";
  return "heads " + std::to_string(s.n_heads) + "/" + std::to_string(s.n_kv_heads) + " hd " + std::to_string(s.head_dim) +
         " tokens " + std::to_string(s.tokens) + " R " + std::to_string(s.residual) + " rot " +
         std::to_string(static_cast<int>(s.rotation)) + " group " + std::to_string(s.group) + " classes " + c;
}

double max_abs_diff(const std::vector<float>& a, const std::vector<float>& b) {
  double m = 0.0;
  for (size_t i = 0; i < a.size(); ++i) {
    if (!std::isfinite(a[i])) return INFINITY;
    m = std::max(m, std::fabs(static_cast<double>(a[i]) - b[i]));
  }
  return m;
}

double tolerance(const Setup& s) {
  bool quantized = false;
  for (auto p : s.classes) quantized |= p.k_bits < 16 || p.v_bits < 16;
  (void)quantized;
  return 1e-4;
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
  KvStore store(c, o);
  const auto rows = fill_store(store, c, s.tokens, 61, s.residual, s.classes, seed, pool);
  KvLayerView view = store.layer_view(0);
  // An empty page in front and at the end must be skipped.
  std::vector<KvPageRef> pages;
  pages.push_back({});
  pages.insert(pages.end(), view.pages.begin(), view.pages.end());
  pages.push_back({});
  view.pages = pages;

  const AttentionShape shape{s.n_heads, s.n_kv_heads, s.head_dim};
  const int64_t w = store.window_tokens();
  const int q_dim = s.n_heads * s.head_dim;
  std::mt19937 rng(seed * 31 + 7);
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  AttentionScratch scratch;
  // Decode: one query over everything; a block of causal queries over the window; and
  // continuations scored side by side (shared window prefix + own rows).
  std::vector<std::vector<WindowRange>> windows = {{{w, 0, 0}}};
  std::vector<WindowRange> causal;
  for (int64_t j = 0; j < std::min<int64_t>(w, 11); ++j) causal.push_back({w - j, 0, 0});
  if (!causal.empty()) windows.push_back(causal);
  if (w >= 6) windows.push_back({{2, 2, 3}, {2, 2, 5}, {2, 5, 6}, {0, 0, 0}});
  for (const auto& win : windows) {
    const int64_t nq = static_cast<int64_t>(win.size());
    std::vector<float> q(static_cast<size_t>(nq * q_dim));
    for (float& x : q) x = u(rng);
    std::vector<float> out(q.size()), ref(q.size());
    attention(shape, q.data(), nq, win.data(), view, out.data(), pool, scratch);
    attention_ref(shape, q.data(), nq, win.data(), view, ref.data());
    EXPECT_LE(max_abs_diff(out, ref), tolerance(s)) << "queries " << nq;
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

}  // namespace
}  // namespace kvbits
