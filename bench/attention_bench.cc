// Google Benchmark micro-benchmarks of decode attention over committed KV pages: one query token
// (SmolLM2-135M's shape: 9 query heads, 3 KV heads, head_dim 64) attending `tokens` page tokens of
// one class, on 1 or 2 threads. tokens = 245760 = 8192 x 30 layers, so the bytes read equal one decode
// step's cache reads at depth 8192 and do not fit in any cache level. Reports bytes/s of cache read
// and time_per_tile: wall ns per 16 tokens of one KV head (with 2 threads, of both together), and
// steal: the share of CPU time the hypervisor took meanwhile (report_steal).
//
// BM_AttentionPrefillWindow: one layer of a 256-token prefill chunk attending its own FP16 window.
// The label names the SIMD target; KVBITS_BENCH_NO_AVX512=1 runs what an AVX2 machine gets
// (bench/simd_targets_bench.cc).
//
//   ./build/bench/kvbits_kernel_bench --benchmark_filter=Attention
#include <benchmark/benchmark.h>

#include <algorithm>
#include <cstring>
#include <memory>
#include <new>
#include <optional>
#include <random>
#include <vector>

#include "backend/cpu_steal.h"
#include "io/mapped_file.h"
#include "ops/attention.h"
#include "ops/kv_codec.h"

namespace kvbits {
namespace {

constexpr int kHeads = 9, kKvHeads = 3, kHeadDim = 64, kGroup = 64, kPageTokens = 64;

struct PagedCache {
  KvPageLayout layout;
  std::vector<uint8_t> bytes;
  std::vector<KvPageRef> pages;
  size_t token_bytes = 0;
};

// Pages filled with valid random rows (written through kv_page_write_* so metadata is finite).
std::unique_ptr<PagedCache> make_cache(int bits, int64_t tokens) {
  auto c = std::make_unique<PagedCache>();
  const KvRowFormat f{bits, kHeadDim, kGroup};
  c->layout = KvPageLayout(f, f, kPageTokens, kKvHeads);
  c->token_bytes = c->layout.token_bytes();
  const int64_t n_pages = (tokens + kPageTokens - 1) / kPageTokens;
  // Pages from a 64-byte line, as the store allocates them (kv/kv_store.cc): a large vector's data
  // is 16 bytes past a 4 KiB boundary, and the split loads made int2 pages ~12 % slower.
  c->bytes.assign(static_cast<size_t>(n_pages) * c->layout.page_bytes() + 64, 0);
  uint8_t* base = c->bytes.data() + (64 - reinterpret_cast<uintptr_t>(c->bytes.data()) % 64) % 64;
  std::mt19937 rng(7);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  std::vector<float> x(kHeadDim);
  std::vector<uint8_t> codes(kHeadDim);
  std::vector<uint16_t> scale(kHeadDim / kGroup), minimum(kHeadDim / kGroup), row(kHeadDim);
  // The first kDistinctPages pages get random rows; later full pages copy one of them (the
  // reference quantizer made the 30-layer benchmark's set-up take ~20 s per run; a kernel's time
  // does not depend on which valid rows it reads, only on their widths).
  constexpr int64_t kDistinctPages = 16;
  for (int64_t p = 0; p < n_pages; ++p) {
    uint8_t* page = base + p * c->layout.page_bytes();
    const int used = static_cast<int>(std::min<int64_t>(kPageTokens, tokens - p * kPageTokens));
    if (p >= kDistinctPages && used == kPageTokens) {
      std::memcpy(page, base + (p % kDistinctPages) * c->layout.page_bytes(), c->layout.page_bytes());
      c->pages.push_back({page, &c->layout, used});
      continue;
    }
    for (int slot = 0; slot < used; ++slot) {
      for (int h = 0; h < kKvHeads; ++h) {
        for (bool is_v : {false, true}) {
          for (float& v : x) v = nd(rng);
          if (bits == 16) {
            for (int e = 0; e < kHeadDim; ++e) row[e] = kv_meta_round(x[e], 8);  // fp16 bits
            kv_page_write_fp16(c->layout, page, is_v, h, slot, row.data());
          } else {
            kv_quantize_ref(x.data(), kHeadDim, bits, kGroup, codes.data(), scale.data(), minimum.data());
            kv_page_write_codes(c->layout, page, is_v, h, slot, codes.data(), scale.data(), minimum.data());
          }
        }
      }
    }
    c->pages.push_back({page, &c->layout, used});
  }
  return c;
}

// The view attention() reads for a cache of one width (rotated codes below 16 bits, as the store
// writes them).
KvLayerView view_of(const PagedCache& c, int bits) {
  KvLayerView view;
  view.pages = c.pages;
  view.group = kGroup;
  view.rotated_k = view.rotated_v = bits < 16;
  return view;
}

// One decode query, [kHeads * kHeadDim], fixed seed.
std::vector<float> random_query() {
  std::vector<float> q(kHeads * kHeadDim);
  std::mt19937 rng(3);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  for (float& v : q) v = nd(rng);
  return q;
}

// Counter "steal": the share of the CPUs' time the hypervisor took during the timed loop
// (backend/cpu_steal.h); compare only rounds with little of it.
void report_steal(benchmark::State& state, const std::optional<CpuTimes>& before) {
  const std::optional<CpuTimes> after = read_cpu_times();
  if (before && after) state.counters["steal"] = steal_fraction(*before, *after);
}

void BM_AttentionDecode(benchmark::State& state) {
  const int bits = static_cast<int>(state.range(0));
  const int64_t tokens = state.range(1);
  const int threads = static_cast<int>(state.range(2));
  const auto cache = make_cache(bits, tokens);
  const KvLayerView view = view_of(*cache, bits);
  const AttentionShape shape{kHeads, kKvHeads, kHeadDim};
  const std::vector<float> q = random_query();
  std::vector<float> out(kHeads * kHeadDim);
  const WindowRange window{};
  ThreadPool pool(threads);
  AttentionScratch scratch;
  const std::optional<CpuTimes> t0 = read_cpu_times();
  for (auto _ : state) {
    attention(shape, q.data(), 1, &window, view, out.data(), pool, scratch);
    benchmark::DoNotOptimize(out.data());
  }
  report_steal(state, t0);
  state.SetBytesProcessed(state.iterations() * tokens * static_cast<int64_t>(cache->token_bytes));
  state.SetLabel(attention_target_name());
  state.counters["time_per_tile"] = benchmark::Counter(
      static_cast<double>(state.iterations()) * (tokens / kKvTile) * kKvHeads,
      benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
}
BENCHMARK(BM_AttentionDecode)
    ->ArgNames({"bits", "tokens", "threads"})
    ->Args({16, 245760, 1})
    ->Args({8, 245760, 1})
    ->Args({4, 245760, 1})
    ->Args({2, 245760, 1})
    ->Args({8, 8192, 1})
    ->Args({4, 8192, 1})
    ->Args({2, 8192, 1})
    ->Args({16, 245760, 2})
    ->Args({4, 245760, 2})
    ->Args({2, 245760, 2})
    // One layer at depth 8192 on 2 threads (the 30-layer benchmark's call), and one page: the
    // call's fixed cost (queries prepared, tasks set up, states merged) beside 12 tiles of work.
    ->Args({2, 8192, 2})
    ->Args({2, 64, 1})
    ->Args({2, 64, 2})
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);

// One decode step's attention as the engine runs it: 30 layers of `tokens` tokens each, one
// attention() call per layer. `layout` says where the pages lie:
//  0: the store's before session 33: every page a separate allocation on a 64-byte line, made in
//     the order a growing cache makes them (page p of layer 0, of layer 1, ..., then page p + 1),
//     so a layer's consecutive pages are not adjacent in memory;
//  1: each layer's pages back to back in one region of its own on transparent huge pages
//     (io/mapped_file.h allocate_huge_page_buffer: 2 MiB-aligned, MADV_HUGEPAGE);
//  2: the same regions on 4 KiB pages, as the store's page arena now reserves them
//     (io/mapped_file.h reserve_memory_region; kv/page_arena.h; docs/benchmarks.md, session 33).
void BM_AttentionDecodeLayers(benchmark::State& state) {
  const int bits = static_cast<int>(state.range(0));
  const int64_t tokens = state.range(1);
  const int threads = static_cast<int>(state.range(2));
  const int layout = static_cast<int>(state.range(3));
  constexpr int kLayers = 30;
  std::vector<std::unique_ptr<PagedCache>> layers;
  for (int l = 0; l < kLayers; ++l) layers.push_back(make_cache(bits, tokens));
  const size_t n_pages = layers[0]->pages.size();
  const size_t page_bytes = layers[0]->layout.page_bytes();  // a multiple of 64
  struct LineFree {
    void operator()(uint8_t* p) const { ::operator delete[](p, std::align_val_t{64}); }
  };
  std::vector<std::unique_ptr<uint8_t[], LineFree>> owned;  // layout 0
  std::vector<ReservedRegion> regions;                       // layouts 1 and 2: one per layer
  for (size_t p = 0; p < n_pages; ++p) {
    for (int l = 0; l < kLayers; ++l) {
      PagedCache& c = *layers[l];
      uint8_t* page;
      if (layout == 0) {
        page = static_cast<uint8_t*>(::operator new[](page_bytes, std::align_val_t{64}));
        owned.emplace_back(page);
      } else {
        if (p == 0) {
          regions.push_back(layout == 1 ? allocate_huge_page_buffer(n_pages * page_bytes)
                                        : reserve_memory_region(n_pages * page_bytes));
          if (!regions.back()) {
            state.SkipWithError("cannot reserve address space");
            return;
          }
        }
        page = regions[static_cast<size_t>(l)].get() + p * page_bytes;
      }
      std::memcpy(page, c.pages[p].data, page_bytes);
      c.pages[p].data = page;
    }
  }
  std::vector<KvLayerView> views;
  for (auto& c : layers) {
    c->bytes.clear();
    c->bytes.shrink_to_fit();
    views.push_back(view_of(*c, bits));
  }
  const AttentionShape shape{kHeads, kKvHeads, kHeadDim};
  const std::vector<float> q = random_query();
  std::vector<float> out(kHeads * kHeadDim);
  const WindowRange window{};
  ThreadPool pool(threads);
  AttentionScratch scratch;
  const std::optional<CpuTimes> t0 = read_cpu_times();
  for (auto _ : state) {
    for (const KvLayerView& view : views) {
      attention(shape, q.data(), 1, &window, view, out.data(), pool, scratch);
      benchmark::DoNotOptimize(out.data());
    }
  }
  report_steal(state, t0);
  state.SetBytesProcessed(state.iterations() * kLayers * tokens * static_cast<int64_t>(layers[0]->token_bytes));
  state.SetLabel(attention_target_name());
}
BENCHMARK(BM_AttentionDecodeLayers)
    ->ArgNames({"bits", "tokens", "threads", "layout"})
    ->Args({16, 8192, 2, 0})
    ->Args({8, 8192, 2, 0})
    ->Args({4, 8192, 2, 0})
    ->Args({2, 8192, 2, 0})
    ->Args({2, 8192, 1, 0})
    ->Args({16, 8192, 2, 1})
    ->Args({4, 8192, 2, 1})
    ->Args({2, 8192, 2, 1})
    ->Args({16, 8192, 2, 2})
    ->Args({4, 8192, 2, 2})
    ->Args({2, 8192, 2, 2})
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);

// One layer's attention inside a prefill chunk: `rows` queries, each attending the FP16 window rows
// up to its own (causal), no pages (the first chunk of a prompt). Reports time per query.
void BM_AttentionPrefillWindow(benchmark::State& state) {
  const int64_t rows = state.range(0);
  const int threads = static_cast<int>(state.range(1));
  std::mt19937 rng(11);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  std::vector<uint16_t> k(static_cast<size_t>(kKvHeads * rows * kHeadDim)), v(k.size());
  for (uint16_t& x : k) x = kv_meta_round(nd(rng), 8);  // fp16 bits
  for (uint16_t& x : v) x = kv_meta_round(nd(rng), 8);
  KvLayerView view;
  view.window_k = k.data();
  view.window_v = v.data();
  view.window_stride = rows;
  std::vector<float> q(static_cast<size_t>(rows * kHeads * kHeadDim));
  for (float& x : q) x = nd(rng);
  std::vector<WindowRange> window;
  for (int64_t i = 0; i < rows; ++i) window.push_back({i + 1, 0, 0});
  std::vector<float> out(q.size());
  const AttentionShape shape{kHeads, kKvHeads, kHeadDim};
  ThreadPool pool(threads);
  AttentionScratch scratch;
  for (auto _ : state) {
    attention(shape, q.data(), rows, window.data(), view, out.data(), pool, scratch);
    benchmark::DoNotOptimize(out.data());
  }
  state.SetLabel(attention_target_name());
  state.counters["time_per_query"] = benchmark::Counter(static_cast<double>(state.iterations()) * rows,
                                                        benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
}
BENCHMARK(BM_AttentionPrefillWindow)
    ->ArgNames({"rows", "threads"})
    ->Args({256, 1})
    ->Args({256, 2})
    ->UseRealTime()
    ->Unit(benchmark::kMicrosecond);

}  // namespace
}  // namespace kvbits
