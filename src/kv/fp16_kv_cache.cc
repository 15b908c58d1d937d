#include "kv/fp16_kv_cache.h"

#include <string>

#include "util/error.h"
#include "util/half.h"

namespace kvbits {

Fp16KvCache::Fp16KvCache(const LlamaConfig& c, int64_t capacity)
    : n_layers_(c.n_layers), n_kv_heads_(c.n_kv_heads), head_dim_(c.head_dim), capacity_(capacity) {
  if (capacity <= 0) throw Error("KV cache capacity must be positive, got " + std::to_string(capacity));
  const size_t n = static_cast<size_t>(n_kv_heads_) * static_cast<size_t>(capacity) * head_dim_;
  for (int l = 0; l < n_layers_; ++l) {
    // new T[] without () leaves memory untouched: the OS maps pages on first write.
    k_.emplace_back(new uint16_t[n]);
    v_.emplace_back(new uint16_t[n]);
  }
}

void Fp16KvCache::set_size(int64_t n) {
  if (n < 0 || n > capacity_) throw Error("KV cache size " + std::to_string(n) + " outside [0, capacity]");
  size_ = n;
}

void Fp16KvCache::store(int layer, int64_t pos, const float* k, const float* v) {
  uint16_t* kd = k_[static_cast<size_t>(layer)].get();
  uint16_t* vd = v_[static_cast<size_t>(layer)].get();
  for (int h = 0; h < n_kv_heads_; ++h) {
    const int64_t base = (static_cast<int64_t>(h) * capacity_ + pos) * head_dim_;
    for (int e = 0; e < head_dim_; ++e) {
      kd[base + e] = fp32_to_fp16(k[h * head_dim_ + e]);
      vd[base + e] = fp32_to_fp16(v[h * head_dim_ + e]);
    }
  }
}

Fp16CacheLayerView Fp16KvCache::layer_view(int layer) const {
  return {k_[static_cast<size_t>(layer)].get(), v_[static_cast<size_t>(layer)].get(), capacity_};
}

uint64_t Fp16KvCache::bytes_used() const {
  return static_cast<uint64_t>(size_) * n_layers_ * 2 * n_kv_heads_ * head_dim_ * sizeof(uint16_t);
}

uint64_t Fp16KvCache::bytes_allocated() const {
  return static_cast<uint64_t>(capacity_) * n_layers_ * 2 * n_kv_heads_ * head_dim_ * sizeof(uint16_t);
}

}  // namespace kvbits
