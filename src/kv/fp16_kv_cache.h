#pragma once
// The plain FP16 KV cache: every token's K and V rows stored as fp16, for all layers.
// (The mixed-precision store of issue 3 replaces this; it stays as the FP16 baseline.)
//
// Layout per layer: k, v: [n_kv_heads, capacity, head_dim] fp16 bits, RoPE applied to K.
// Memory is reserved for `capacity` tokens up front but pages are only touched as tokens
// arrive, so resident memory grows with the context actually used.
#include <cstdint>
#include <memory>
#include <vector>

#include "model/llama_config.h"
#include "ops/attention.h"

namespace kvbits {

class Fp16KvCache {
 public:
  Fp16KvCache(const LlamaConfig& config, int64_t capacity);

  int64_t capacity() const { return capacity_; }
  int64_t size() const { return size_; }      // tokens stored
  void set_size(int64_t n);                   // after a forward pass appended tokens; or truncate
  void clear() { size_ = 0; }

  // Writes token t's K and V rows (fp32 [n_kv_heads * head_dim]) of layer l at position pos.
  void store(int layer, int64_t pos, const float* k, const float* v);
  Fp16CacheLayerView layer_view(int layer) const;

  // Bytes the cached tokens occupy (PROTOCOLS.md kv_bytes) and bytes reserved.
  uint64_t bytes_used() const;
  uint64_t bytes_allocated() const;

 private:
  int n_layers_, n_kv_heads_, head_dim_;
  int64_t capacity_;
  int64_t size_ = 0;
  std::vector<std::unique_ptr<uint16_t[]>> k_, v_;  // per layer [n_kv_heads, capacity, head_dim]
};

}  // namespace kvbits
