// The mixed-precision KV store (kv/kv_store.h): byte accounting against PROTOCOLS.md's formula,
// the FP16 window (compaction, truncation), per-token record, budgets and demotion.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <optional>
#include <vector>

#include "kv/kv_store.h"
#include "kv/page_arena.h"
#include "kv_test_util.h"
#include "util/error.h"
#include "util/half.h"

namespace kvbits {
namespace {

using testing::fill_store;
using testing::kv_test_config;

KvStoreOptions options(int64_t capacity, int64_t residual = 0, bool mixed = false) {
  KvStoreOptions o;
  o.capacity = capacity;
  o.residual = residual;
  o.max_chunk = 64;
  o.per_token_record = mixed;
  return o;
}

TEST(KvStore, StaticAccountingIsExact) {
  ThreadPool pool(2);
  const LlamaConfig c = kv_test_config(3, 6, 2, 64);
  struct Case {
    KvPrecision p;
    double bits;  // codes + scale and minimum per 64-element group: fp16 (8 bits), E5M2 (2, 4)
  } cases[] = {{{16, 16}, 16.0}, {{8, 8}, 8.5}, {{4, 4}, 4.25}, {{2, 2}, 2.25}, {{4, 2}, 3.25}, {{8, 2}, 5.375}};
  for (const Case& k : cases) {
    KvStore store(c, options(1000));
    fill_store(store, c, 300, 64, 0, {k.p}, 1, pool);
    const KvStats s = store.stats();
    EXPECT_EQ(s.tokens, 300);
    EXPECT_EQ(s.window_tokens, 0);
    EXPECT_DOUBLE_EQ(s.effective_bits, k.bits) << to_string(k.p);
    EXPECT_EQ(s.kv_bytes, static_cast<uint64_t>(std::llround(k.bits / 8 * 300 * 3 * 2 * 128)));
    // 300 tokens in 64-token pages: 5 pages per layer.
    EXPECT_GE(s.kv_bytes_allocated, s.kv_bytes);
    EXPECT_EQ(s.rows_per_class[kv_class_index(k.p)], 900);
    EXPECT_EQ(store.precision_at(1, 299), k.p);
    // Pages start on 64-byte lines, so the kernels' 64-byte loads never split (kv_store.cc), and
    // a layer's pages lie back to back in its arena, in the order they were filled: all of them
    // in a region of the layer's own, those of one chunk in a region shared by the layers (where
    // the kernel gives transparent huge pages); except under AddressSanitizer, where every page
    // is a heap allocation (kv/page_arena.h).
    const KvLayerView view = store.layer_view(1);
    const std::span<const KvPageRef> pages = view.pages;
    ASSERT_EQ(pages.size(), 5u);
    const bool arenas_have_regions = PageArena(4096).region_size() > 0;
    const size_t bytes = pages[0].layout->page_bytes();
    const size_t per_chunk = transparent_huge_pages_available() ? PageArena::chunk_bytes(bytes) / bytes : pages.size();
    for (size_t i = 0; i < pages.size(); ++i) {
      EXPECT_EQ(reinterpret_cast<uintptr_t>(pages[i].data) % 64, 0u) << to_string(k.p);
      if (i % per_chunk != 0 && arenas_have_regions) {
        EXPECT_EQ(pages[i].data, pages[i - 1].data + pages[i - 1].layout->page_bytes()) << to_string(k.p);
      }
    }
  }
}

// huge_page_share: nothing to say for an empty store; after pages are written, a share in [0, 1]
// where the store has a huge-page region and smaps is readable (whether the kernel gave huge
// pages is the host's business), nullopt where it has none (THP off, AddressSanitizer).
TEST(KvStore, HugePageShareIsAFractionOfTheWrittenRegion) {
  ThreadPool pool(2);
  const LlamaConfig c = kv_test_config(3, 6, 2, 64);
  KvStore store(c, options(1000));
  EXPECT_EQ(store.huge_page_share(), std::nullopt);
  fill_store(store, c, 300, 64, 0, {KvPrecision{2, 2}}, 1, pool);
  const std::optional<double> share = store.huge_page_share();
  const bool region = PageArena(4096).region_size() > 0 && transparent_huge_pages_available();
  if (!region) {
    EXPECT_EQ(share, std::nullopt);
  } else if (share) {
    EXPECT_GE(*share, 0.0);
    EXPECT_LE(*share, 1.0);
  }
}

// A static store (no per-token record) may hold a different class in each layer (`layers:`),
// one per layer.
TEST(KvStore, StaticStoreHoldsOneClassPerLayer) {
  ThreadPool pool(1);
  const LlamaConfig c = kv_test_config(2, 2, 1, 64);
  const auto append = [&](KvStore& store, int64_t n) {
    const int64_t start = store.begin_append(n);
    std::vector<float> k(static_cast<size_t>(n * 64), 0.25f), v(k.size(), -0.5f);
    for (int l = 0; l < 2; ++l) store.write_window(l, start, n, k.data(), v.data());
    store.end_append(n);
  };
  const auto per_layer = [](int64_t n, KvPrecision l0, KvPrecision l1) {
    std::vector<KvPrecision> p;
    for (int64_t i = 0; i < n; ++i) {
      p.push_back(l0);
      p.push_back(l1);
    }
    return p;
  };
  KvStore store(c, options(100));
  append(store, 10);
  store.commit(10, per_layer(10, {4, 4}, {2, 2}), pool);
  append(store, 5);
  store.commit(5, per_layer(5, {4, 4}, {2, 2}), pool);
  EXPECT_EQ(store.precision_at(0, 12), (KvPrecision{4, 4}));
  EXPECT_EQ(store.precision_at(1, 12), (KvPrecision{2, 2}));
  EXPECT_DOUBLE_EQ(store.stats().effective_bits, (4.25 + 2.25) / 2);  // no record bytes
  // A layer's class cannot change, nor differ between tokens of one commit.
  append(store, 2);
  EXPECT_THROW(store.commit(2, per_layer(2, {2, 2}, {2, 2}), pool), Error);
  std::vector<KvPrecision> uneven = per_layer(2, {4, 4}, {2, 2});
  uneven[3] = {4, 4};  // token 1, layer 1
  EXPECT_THROW(store.commit(2, uneven, pool), Error);
}

TEST(KvStore, WindowTokensCountAtFp16AndRecordCostsTwoBytes) {
  ThreadPool pool(1);
  const LlamaConfig c = kv_test_config(2, 2, 1, 32);
  KvStore store(c, options(500, /*residual=*/10, /*mixed=*/true));
  fill_store(store, c, 100, 7, 10, {{4, 4}, {2, 2}}, 2, pool);
  const KvStats s = store.stats();
  EXPECT_EQ(s.window_tokens, 10);
  EXPECT_EQ(store.committed(), 90);
  uint64_t committed = 0;
  for (int cls = 0; cls < 16; ++cls) {
    if (s.rows_per_class[cls] == 0) continue;
    const KvPrecision p = kv_class_from_index(cls);
    // per row: K and V of 1 head of 32 elements; group 32 -> one scale + minimum each, 1 byte
    // apiece at 2 and 4 bits, 2 at 8.
    const auto meta = [](int b) { return b == 16 ? 0 : b <= 4 ? 2 : 4; };
    committed += s.rows_per_class[cls] * static_cast<uint64_t>(32 * p.k_bits / 8 + meta(p.k_bits) + 32 * p.v_bits / 8 + meta(p.v_bits));
  }
  EXPECT_EQ(s.kv_bytes, committed + 10ull * 2 * 2 * 32 * 2 + 90ull * 2 * 2);
  EXPECT_DOUBLE_EQ(s.effective_bits, 8.0 * s.kv_bytes / (100.0 * 2 * 2 * 32));
  for (int64_t pos = 90; pos < 100; ++pos) EXPECT_EQ(store.precision_at(0, pos), (KvPrecision{16, 16}));
}

TEST(KvStore, WindowRowsSurviveCompactionAndCommitsRoundTrip) {
  ThreadPool pool(2);
  const LlamaConfig c = kv_test_config(2, 4, 2, 64);
  KvStore store(c, options(2000, /*residual=*/50, /*mixed=*/true));
  // Chunks of 37 with R = 50 force many compactions of a 50 + 64 + 64 row window buffer.
  const auto rows = fill_store(store, c, 1000, 37, 50, {{16, 16}, {8, 8}, {8, 4}}, 3, pool);
  ASSERT_EQ(store.window_tokens(), 50);
  // Window rows are the fp16 of what was written, in position order.
  for (int l = 0; l < 2; ++l) {
    const KvLayerView view = store.layer_view(l);
    for (int64_t j = 0; j < 50; ++j) {
      const int64_t pos = store.committed() + j;
      for (int h = 0; h < 2; ++h) {
        for (int e = 0; e < 64; ++e) {
          ASSERT_EQ(view.window_k[(h * view.window_stride + j) * 64 + e],
                    fp32_to_fp16(rows.k[l][pos * 128 + h * 64 + e]));
        }
      }
    }
  }
  // Every committed token is in exactly one page of its class: per-class page slots add up.
  for (int l = 0; l < 2; ++l) {
    std::array<int64_t, 16> slots{};
    for (const KvPageRef& p : store.layer_view(l).pages) {
      if (p.n_tokens == 0) continue;
      slots[kv_class_index({static_cast<uint8_t>(p.layout->format(false).bits),
                            static_cast<uint8_t>(p.layout->format(true).bits)})] += p.n_tokens;
    }
    std::array<int64_t, 16> want{};
    for (int64_t pos = 0; pos < store.committed(); ++pos) ++want[kv_class_index(store.precision_at(l, pos))];
    EXPECT_EQ(slots, want);
  }
}

TEST(KvStore, TruncateOnlyDropsUncommittedTokens) {
  ThreadPool pool(1);
  const LlamaConfig c = kv_test_config(1, 2, 1, 16);
  KvStore store(c, options(100, 4));
  fill_store(store, c, 20, 20, 4, {{4, 4}}, 4, pool);
  EXPECT_EQ(store.committed(), 16);
  EXPECT_THROW(store.truncate(15), Error);
  EXPECT_THROW(store.truncate(21), Error);
  store.truncate(17);
  EXPECT_EQ(store.size(), 17);
  EXPECT_EQ(store.window_tokens(), 1);
  store.clear();
  EXPECT_EQ(store.size(), 0);
  EXPECT_EQ(store.stats().kv_bytes, 0u);
}

TEST(KvStore, OverflowAndMisuseAreErrors) {
  ThreadPool pool(1);
  const LlamaConfig c = kv_test_config(1, 2, 1, 16);
  KvStore store(c, options(10));
  EXPECT_THROW(store.begin_append(11), Error);   // beyond capacity
  EXPECT_THROW(store.begin_append(65), Error);   // beyond the chunk limit
  EXPECT_THROW(store.begin_append(0), Error);
  fill_store(store, c, 10, 10, 0, {{4, 4}}, 5, pool);
  EXPECT_THROW(store.begin_append(1), Error);    // full: context overflow
  // A static store (no record) refuses a second class.
  KvStore s2(c, options(100));
  fill_store(s2, c, 5, 5, 0, {{4, 4}}, 6, pool);
  EXPECT_THROW(fill_store(s2, c, 5, 5, 0, {{2, 2}}, 7, pool), Error);
  KvStoreOptions bad = options(100);
  bad.residual = -1;
  EXPECT_THROW(KvStore(c, bad), Error);
  bad = options(100);
  bad.group = 24;  // not a multiple of 16
  EXPECT_THROW(KvStore(kv_test_config(1, 2, 1, 64), bad), Error);
  bad.group = 48;  // does not divide 64
  EXPECT_THROW(KvStore(kv_test_config(1, 2, 1, 64), bad), Error);
}

// The FP16 window is sized to at most the context: a residual R far beyond it keeps every token
// at FP16 without reserving R rows, and a whole context still fits the window.
TEST(KvStore, WindowNeverExceedsTheContext) {
  ThreadPool pool(1);
  const LlamaConfig c = kv_test_config(2, 4, 2, 64);
  KvStore huge(c, options(100, /*residual=*/1000000, /*mixed=*/true));
  KvStore exact(c, options(100, /*residual=*/100, /*mixed=*/true));
  EXPECT_EQ(huge.stats().kv_bytes_allocated, exact.stats().kv_bytes_allocated);
  // 100 rows per head and layer at fp16, K and V (2 heads, 2 layers), plus the token records.
  const uint64_t window_bytes = 2ull * 2 * 2 * 100 * 64 * 2;
  EXPECT_LT(huge.stats().kv_bytes_allocated, 2 * window_bytes);
  // Fill the context in chunks of 7 that stay uncommitted, then commit them all at once.
  int64_t pos = 0;
  std::vector<float> k(2 * 64), v(2 * 64);
  while (pos < 100) {
    const int64_t n = std::min<int64_t>(7, 100 - pos);
    huge.begin_append(n);
    for (int64_t i = 0; i < n; ++i) {
      for (int l = 0; l < 2; ++l) {
        // Small integers, exact in fp16.
        for (size_t e = 0; e < k.size(); ++e) k[e] = v[e] = static_cast<float>((pos + i) * 8 + l * 2 + e % 2);
        huge.write_window(l, pos + i, 1, k.data(), v.data());
      }
    }
    huge.end_append(n);
    pos += n;
  }
  EXPECT_THROW(huge.begin_append(1), Error);  // context overflow, not a window error
  EXPECT_EQ(huge.window_tokens(), 100);
  std::vector<uint16_t> kr(2 * 64), vr(2 * 64);
  for (int64_t p : {0, 50, 99}) {
    huge.get_window_row(1, p, kr.data(), vr.data());
    EXPECT_EQ(fp16_to_fp32(kr[3]), static_cast<float>(p * 8 + 2 + 1));
    EXPECT_EQ(fp16_to_fp32(vr[64]), static_cast<float>(p * 8 + 2));
  }
  std::vector<KvPrecision> prec(100 * 2, KvPrecision{4, 4});
  huge.commit(100, prec, pool);
  EXPECT_EQ(huge.committed(), 100);
}

TEST(KvStore, BudgetRefusedUpFrontOrAtCommitWithoutDemotion) {
  ThreadPool pool(1);
  const LlamaConfig c = kv_test_config(4, 4, 2, 64);
  KvStoreOptions o = options(4096);
  o.floor = {4, 4};
  o.budget_bytes = 1 << 20;  // 1 MiB: 4096 tokens at int4 need 4096 * 4 * 576 B = 9 MiB
  EXPECT_THROW(KvStore(c, o), Error);
  o.capacity = 1000;
  o.budget_bytes = 3 << 19;  // 1.5 MiB: fits 1000 int4 tokens (0.55 MiB + 0.25 MiB window), not fp16 (1.95 MiB)
  KvStore store(c, o);
  EXPECT_THROW(fill_store(store, c, 1000, 64, 0, {{16, 16}}, 8, pool), Error);
}

TEST(KvStore, DemotionMeetsTheBudget) {
  ThreadPool pool(2);
  const LlamaConfig c = kv_test_config(4, 4, 2, 64);
  KvStoreOptions o = options(2000, 0, true);
  o.allow_demotion = true;
  o.budget_bytes = 3 << 20;
  KvStore store(c, o);
  const auto rows = fill_store(store, c, 2000, 64, 0, {{16, 16}, {8, 8}}, 9, pool);
  const KvStats s = store.stats();
  EXPECT_LE(s.kv_bytes_allocated, o.budget_bytes);
  EXPECT_GT(s.demoted_pages, 0);
  EXPECT_EQ(s.tokens, 2000);
  // Demoted tokens still decode close to what was written: read every token of layer 2 through
  // its page and compare with the original row within its width's step.
  const KvLayerView view = store.layer_view(2);
  int64_t seen = 0;
  for (const KvPageRef& p : view.pages) seen += p.n_tokens;
  EXPECT_EQ(seen, 2000);
  // precision_at agrees with the per-class counts after demotion.
  std::array<int64_t, 16> per_class{};
  for (int l = 0; l < 4; ++l) {
    for (int64_t pos = 0; pos < 2000; ++pos) ++per_class[kv_class_index(store.precision_at(l, pos))];
  }
  EXPECT_EQ(per_class, s.rows_per_class);
}

}  // namespace
}  // namespace kvbits
