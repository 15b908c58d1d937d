#pragma once
// Key centering data for the KV store (KvStoreOptions::key_mean): the mean key row of every
// layer, measured once per model by running a built-in passage of ordinary English prose with an
// FP16 cache. Keys share a large channel-wise offset (a per-head bias pattern that RoPE moves only
// slowly), so storing k - mean instead of k shrinks the range a low-bit code must cover: measured
// on SmolLM2-135M, the 2-bit key error halves and the 4-bit one too (docs/kv_quality.md). The
// store centres a row only where that lowers its error (ops/kv_codec.h kv_quantize_key):
// sink-like keys lie far from the mean. The
// mean barely depends on the text: one measured on WikiText serves ARC text as well as the
// text's own mean (relative MSE 0.097 vs 0.093 at 2 bits).
//
// The same forward gives the key channel weights (KvStoreOptions::key_weight, ops/kv_codec.h):
// per layer, KV head and channel j, w_j = (Q_j / K_j)^(1/4) with Q_j the mean square of the
// queries of the head's group (after RoPE) and K_j the variance of the keys about their mean, then
// scaled to a geometric mean of 1 per head and clamped to [1/16, 16]. This minimises the expected
// squared error of q . k under an error spread evenly over the (rotated) channels; on SmolLM2 the
// channels the queries weigh are not those where the keys vary, and an offline simulation on
// 512 WikiText tokens put the attention KL of 2-bit keys 19 % lower (docs/kv_quality.md).
#include <vector>

#include "backend/thread_pool.h"
#include "model/llama_model.h"

namespace kvbits {

struct KeyCalibration {
  std::vector<float> mean;    // [n_layers, n_kv_heads * head_dim]
  std::vector<float> weight;  // [n_layers, n_kv_heads * head_dim], each in [1/16, 16]
};

// Statistics over positions 1..n-1 of the passage (position 0, an attention sink with extreme
// keys, is left out). Deterministic for a given model file.
KeyCalibration measure_key_calibration(const LlamaModel& model, ThreadPool& pool);

}  // namespace kvbits
