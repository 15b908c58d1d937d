#pragma once
// Key centering data for the KV store (KvStoreOptions::key_mean): the mean key row of every
// layer, measured once per model by running a built-in passage of ordinary English prose with an
// FP16 cache. Keys share a large channel-wise offset (a per-head bias pattern that RoPE moves only
// slowly), so storing k - mean instead of k shrinks the range a low-bit code must cover: measured
// on SmolLM2-135M, the 2-bit key error halves and the 4-bit one too (docs/kv_quality.md). The
// store centres a row only where that lowers its error (ops/kv_codec.h kv_quantize_key_ref):
// sink-like keys lie far from the mean. The
// mean barely depends on the text: one measured on WikiText serves ARC text as well as the
// text's own mean (relative MSE 0.097 vs 0.093 at 2 bits).
#include <vector>

#include "backend/thread_pool.h"
#include "model/llama_model.h"

namespace kvbits {

// [n_layers, n_kv_heads * head_dim] fp32: mean over positions 1..n-1 of the passage (position 0,
// an attention sink with extreme keys, is left out). Deterministic for a given model file.
std::vector<float> measure_key_means(const LlamaModel& model, ThreadPool& pool);

}  // namespace kvbits
