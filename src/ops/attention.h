#pragma once
// Scaled dot-product attention of query tokens over the mixed-precision KV cache of one layer,
// with grouped-query heads.
//
// The cache (KvLayerView) is a set of pages, each holding up to page_tokens tokens of one class
// (K width, V width) in the layout of ops/kv_page.h, plus an FP16 window of the most recent,
// uncommitted tokens in position order. Cached tokens are order-independent (RoPE is already in
// K), so every query attends every page token; window rows are selected per query (causal masking
// within a chunk, or separate continuations scored side by side). One online softmax spans all
// pages, widths and the window; quantized codes are read in place (dequantization fused into the
// dot products), no float copy of the cache is made.
//
// Query head h uses KV head h / (n_heads / n_kv_heads); the heads of one group are processed
// together so each K/V row is read once per group. A single query (decode) splits the pages
// across threads and merges the partial (max, sum, weighted V) states.
#include <cstdint>
#include <span>
#include <vector>

#include "backend/thread_pool.h"
#include "ops/kv_page.h"

namespace kvbits {

// Tokens of one page whose V weights share one int8 scale in the VNNI kernel (AVX3_DL): the
// softmax max, sums and weight scale are taken once per step of this many tokens.
inline constexpr int kAttentionStepTokens = 64;

// Queries per prefill task: they share each page tile. A task whose block holds one query (a
// decode, or the last of n_queries = 8 k + 1) reads quantized tiles in place like a decode, with
// the integer kernels where the target has them (ops/attention_int_tiles-inl.h).
inline constexpr int kAttentionQueryBlock = 8;

struct AttentionShape {
  int n_heads = 0;
  int n_kv_heads = 0;
  int head_dim = 0;
};

// One page of committed tokens. Non-owning; the store owns data and layout.
struct KvPageRef {
  const uint8_t* data = nullptr;
  const KvPageLayout* layout = nullptr;
  int n_tokens = 0;  // used slots [0, n_tokens)
};

struct KvLayerView {
  std::span<const KvPageRef> pages;  // may contain empty pages (n_tokens 0): skipped
  int group = 0;           // elements per scale/minimum pair of quantized rows (all pages)
  bool rotated_k = false;  // quantized (b < 16) K rows hold H k (ops/kv_codec.h hadamard)
  bool rotated_v = false;  // quantized V rows hold H v
  // Quantized K rows flagged centred (ops/kv_codec.h kKvCentredFlag) hold k - key_mean (before
  // rotation): [n_kv_heads, head_dim], or nullptr (no row is centred).
  const float* key_mean = nullptr;
  // Quantized K rows hold w * k (or w * (k - key_mean)) per channel: [n_kv_heads, head_dim], or
  // nullptr (w = 1). Queries over them are divided by w (kv/kv_store.h key_weight).
  const float* key_weight = nullptr;
  // 8-bit rows read exactly to ~1/254 of an int8 step on the VNNI kernel (a second int8 product
  // with the query's and the V weights' rounding errors: ops/attention_vnni-inl.h), at 20-30 %
  // more time per 8-bit tile. The model sets it with fp32 activations; with int8 ones the
  // activations' own rounding hides the difference (docs/kv_quality.md). Other kernels read 8-bit
  // rows in fp32 either way.
  bool exact_8bit = false;
  // Window rows in position order: [n_kv_heads, window_stride, head_dim] fp16 bits, RoPE in K.
  const uint16_t* window_k = nullptr;
  const uint16_t* window_v = nullptr;
  int64_t window_stride = 0;
};

// The window rows a query attends besides every page token: [0, shared) and [begin, end).
// A causal chunk uses shared = its own row + 1; continuations scored side by side share the
// context's window rows and each add their own rows.
struct WindowRange {
  int64_t shared = 0;
  int64_t begin = 0;
  int64_t end = 0;
};

// Optional statistics of the attention rows, for token features (policy/precision_policy.h).
struct AttentionTap {
  // Per query and head: sum_j a(j)^2 of its normalised attention row. [n_queries * n_heads]
  std::vector<float> concentration;
  // Per window row: attention mass received from the queries of this call other than the row's
  // own token, summed over queries, mean over heads (sized to the largest row attended + 1).
  std::vector<float> received;
};

struct AttentionScratch {
  std::vector<float> partial;   // per task: online-softmax state (see attention.cc)
  std::vector<float> buffers;   // per thread: decoded tile rows
  std::vector<float> window;    // the window rows as fp32 tiles (ops/attention_tiles-inl.h)
  std::vector<int64_t> parts;   // page ranges of the tasks
  std::vector<float> queries;   // prepared queries
  std::vector<int8_t> queries_i8;
};

// q: [n_queries, n_heads * head_dim]; out: [n_queries, n_heads * head_dim]. A query that attends
// no key at all gets a zero output. With `tap`, also fills its statistics.
void attention(const AttentionShape& shape, const float* q, int64_t n_queries, const WindowRange* window,
               const KvLayerView& cache, float* out, ThreadPool& pool, AttentionScratch& scratch,
               AttentionTap* tap = nullptr);

// Scalar reference, same contract: dequantizes every page row (kv_page_read_row), un-rotates it
// with the Hadamard transform where the view says it is rotated, divides K rows by the key weights
// and adds the key mean to centred ones, and accumulates in double.
void attention_ref(const AttentionShape& shape, const float* q, int64_t n_queries, const WindowRange* window,
                   const KvLayerView& cache, float* out);

// Name of the SIMD target attention dispatches to on this machine.
const char* attention_target_name();

}  // namespace kvbits
