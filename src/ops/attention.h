#pragma once
// Scaled dot-product attention of query tokens over an FP16 KV cache, with grouped-query heads.
//
// Cache layout (one layer): k, v: [n_kv_heads, ctx_stride, head_dim] fp16 bits, RoPE already
// applied to K. Query head h uses KV head h / (n_heads / n_kv_heads); the heads of one group are
// processed together so each K/V row is read once per group.
//
// Decode (one query) splits the key range into chunks across threads, each producing a partial
// online-softmax state (max, sum, weighted V) that is merged at the end.
#include <cstdint>
#include <vector>

#include "backend/thread_pool.h"

namespace kvbits {

struct AttentionShape {
  int n_heads = 0;
  int n_kv_heads = 0;
  int head_dim = 0;
};

struct Fp16CacheLayerView {
  const uint16_t* k = nullptr;  // [n_kv_heads, ctx_stride, head_dim]
  const uint16_t* v = nullptr;  // [n_kv_heads, ctx_stride, head_dim]
  int64_t ctx_stride = 0;
};

struct AttentionScratch {
  std::vector<float> partial;  // per task: [group, head_dim] acc + [group] max + [group] sum
};

// q: [n_queries, n_heads * head_dim]; query i attends keys [0, n_keys[i]).
// out: [n_queries, n_heads * head_dim].
void attention_fp16(const AttentionShape& shape, const float* q, int64_t n_queries,
                    const int64_t* n_keys, const Fp16CacheLayerView& cache, float* out,
                    ThreadPool& pool, AttentionScratch& scratch);

// Scalar reference (double accumulation), same contract.
void attention_fp16_ref(const AttentionShape& shape, const float* q, int64_t n_queries,
                        const int64_t* n_keys, const Fp16CacheLayerView& cache, float* out);

}  // namespace kvbits
