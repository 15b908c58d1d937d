// The scalar reference attention (ops/attention.h attention_ref): every page row dequantized by
// kv_page_read_row and brought back to the model's basis, scores and sums in double. The kernels
// of ops/attention_kernels.cc, run by ops/attention.cc, are tested against it.
#include <cmath>
#include <utility>
#include <vector>

#include "ops/attention.h"
#include "ops/kv_codec.h"
#include "util/half.h"

namespace kvbits {

void attention_ref(const AttentionShape& shape, const float* q, int64_t n_queries, const WindowRange* window,
                   const KvLayerView& cache, float* out) {
  const int hd = shape.head_dim;
  const int g = shape.n_heads / shape.n_kv_heads;
  const double scale = 1.0 / std::sqrt(static_cast<double>(hd));
  std::vector<float> row(static_cast<size_t>(hd));
  for (int64_t i = 0; i < n_queries; ++i) {
    for (int kvh = 0; kvh < shape.n_kv_heads; ++kvh) {
      // Every key and value this query sees, decoded to the model's basis.
      std::vector<std::vector<double>> keys, values;
      auto add_row = [&](std::vector<std::vector<double>>& dst, bool rotated) {
        if (rotated) hadamard(row.data(), hd);
        dst.emplace_back(row.begin(), row.end());
      };
      for (const KvPageRef& page : cache.pages) {
        for (int t = 0; t < page.n_tokens; ++t) {
          kv_page_read_row(*page.layout, page.data, false, kvh, t, row.data());
          if (page.layout->format(false).bits < 16) {
            const bool centred = cache.key_mean && kv_page_key_centred(*page.layout, page.data, kvh, t);
            kv_key_row_to_model(row.data(), hd, cache.rotated_k, cache.key_weight ? cache.key_weight + kvh * hd : nullptr,
                                centred ? cache.key_mean + kvh * hd : nullptr);
          }
          add_row(keys, false);
          kv_page_read_row(*page.layout, page.data, true, kvh, t, row.data());
          add_row(values, page.layout->format(true).bits < 16 && cache.rotated_v);
        }
      }
      for (const auto& [j0, j1] : {std::pair{int64_t{0}, window[i].shared}, std::pair{window[i].begin, window[i].end}}) {
        for (int64_t j = j0; j < j1; ++j) {
          const int64_t off = (static_cast<int64_t>(kvh) * cache.window_stride + j) * hd;
          for (int d = 0; d < hd; ++d) row[d] = fp16_to_fp32(cache.window_k[off + d]);
          add_row(keys, false);
          for (int d = 0; d < hd; ++d) row[d] = fp16_to_fp32(cache.window_v[off + d]);
          add_row(values, false);
        }
      }
      for (int h = 0; h < g; ++h) {
        const float* qh = q + i * shape.n_heads * hd + (kvh * g + h) * hd;
        float* o = out + i * shape.n_heads * hd + (kvh * g + h) * hd;
        std::vector<double> s(keys.size());
        double m = -INFINITY;
        for (size_t j = 0; j < keys.size(); ++j) {
          double dot = 0.0;
          for (int d = 0; d < hd; ++d) dot += static_cast<double>(qh[d]) * keys[j][d];
          s[j] = dot * scale;
          m = std::max(m, s[j]);
        }
        double total = 0.0;
        for (double& x : s) total += (x = std::exp(x - m));
        for (int d = 0; d < hd; ++d) {
          double acc = 0.0;
          for (size_t j = 0; j < keys.size(); ++j) acc += s[j] * values[j][d];
          o[d] = keys.empty() ? 0.0f : static_cast<float>(acc / total);
        }
      }
    }
  }
}

}  // namespace kvbits
