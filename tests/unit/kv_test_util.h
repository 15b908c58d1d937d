#pragma once
// Builds KV stores filled with fixed-seed random K/V rows for the store and attention tests.
#include <cstdint>
#include <random>
#include <vector>

#include "kv/kv_store.h"
#include "model/llama_config.h"

namespace kvbits::testing {

inline LlamaConfig kv_test_config(int n_layers, int n_heads, int n_kv_heads, int head_dim) {
  LlamaConfig c;
  c.n_layers = n_layers;
  c.n_heads = n_heads;
  c.n_kv_heads = n_kv_heads;
  c.head_dim = head_dim;
  c.d_model = n_heads * head_dim;
  c.context_length = 1 << 16;
  return c;
}

// Appends n tokens of random rows (uniform [-1, 1], plus an outlier channel in K, as real keys
// have) in chunks of `chunk`, committing after each chunk all but `residual` window tokens at
// precisions drawn from `classes` (per token and layer). Returns the fp32 rows written, per layer:
// k[l][pos * kv_dim + e], v likewise.
struct FilledRows {
  std::vector<std::vector<float>> k, v;
};

inline FilledRows fill_store(KvStore& store, const LlamaConfig& c, int64_t n, int64_t chunk, int64_t residual,
                             const std::vector<KvPrecision>& classes, uint32_t seed, ThreadPool& pool) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  const int kv_dim = c.n_kv_heads * c.head_dim;
  FilledRows rows;
  rows.k.resize(static_cast<size_t>(c.n_layers));
  rows.v.resize(static_cast<size_t>(c.n_layers));
  for (int64_t done = 0; done < n;) {
    const int64_t m = std::min(chunk, n - done);
    const int64_t start = store.begin_append(m);
    for (int l = 0; l < c.n_layers; ++l) {
      std::vector<float> k(static_cast<size_t>(m * kv_dim)), v(k.size());
      for (int64_t i = 0; i < m * kv_dim; ++i) {
        k[i] = u(rng) * ((i % c.head_dim) == 3 ? 8.0f : 1.0f);
        v[i] = u(rng);
      }
      store.write_window(l, start, m, k.data(), v.data());
      rows.k[l].insert(rows.k[l].end(), k.begin(), k.end());
      rows.v[l].insert(rows.v[l].end(), v.begin(), v.end());
    }
    store.end_append(m);
    done += m;
    const int64_t ready = store.window_tokens() - residual;
    if (ready > 0) {
      std::vector<KvPrecision> p(static_cast<size_t>(ready * c.n_layers));
      for (auto& x : p) x = classes[rng() % classes.size()];
      store.commit(ready, p, pool);
    }
  }
  return rows;
}

}  // namespace kvbits::testing
