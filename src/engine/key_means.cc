#include "engine/key_means.h"

#include <algorithm>
#include <cmath>

#include "kv/kv_store.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/tokenizer_data.h"
#include "util/error.h"
#include "util/half.h"

namespace kvbits {

namespace {
// Plain, varied prose (written for kvbits): a fixed input so the means are reproducible.
constexpr const char* kPassage =
    "The old harbour town wakes slowly. Fishing boats come back before sunrise, and the market opens "
    "as soon as the first crates of fish reach the square. Children walk to school past the bakery, "
    "where the smell of fresh bread fills the narrow street. In the afternoon the wind turns, clouds "
    "gather over the hills, and most people decide to stay inside. Scientists at the small research "
    "station measure the temperature of the water every day; their records show that the sea has "
    "warmed by almost two degrees over the last forty years. Nobody is sure what this will mean for "
    "the town, but everyone agrees that something has to change. "
    "At the town hall, the council met on Tuesday evening to discuss a new plan for the harbour. "
    "The mayor, a former teacher named Helen Ward, explained that the old sea wall was built in "
    "1887 and had been repaired only twice since then. Engineers estimate that a new wall would "
    "cost about 4.5 million pounds, and that work could begin next spring if the government agrees "
    "to pay half. Some fishermen worry that the building work will block the harbour entrance for "
    "months; others say that without it, the next big storm could flood the lower streets. "
    "Meanwhile, the local school has started a project in which pupils record the birds they see "
    "each week. So far they have counted forty-three species, including a pair of rare grey "
    "herons that nest near the river mouth. \"We want the children to notice what is around "
    "them,\" said one of the teachers. \"If they care about it now, they will protect it later.\"";
constexpr int64_t kMaxTokens = 320;
}  // namespace

KeyCalibration measure_key_calibration(const LlamaModel& model, ThreadPool& pool) {
  const LlamaConfig& c = model.config();
  const Tokenizer tok(tokenizer_data_from_gguf(model.file()));
  std::vector<int32_t> ids = tok.encode(kPassage, /*parse_special=*/false);
  tok.prepend_bos(ids);
  if (static_cast<int64_t>(ids.size()) > kMaxTokens) ids.resize(kMaxTokens);
  const int64_t n = std::min<int64_t>(static_cast<int64_t>(ids.size()), c.context_length);
  if (n < 2) throw Error("key centering: the calibration passage has fewer than 2 tokens for this tokenizer");
  ids.resize(static_cast<size_t>(n));
  KvStoreOptions o;
  o.capacity = n;
  o.max_chunk = n;
  o.residual = n;  // everything stays in the FP16 window
  o.rotation = KvRotation::kNone;
  o.floor = {16, 16};
  KvStore store(c, o);
  std::vector<float> logits;
  ForwardScratch scratch;
  std::vector<double> query_power;
  ForwardOptions fo;
  fo.query_power = &query_power;
  model.forward({ids, {}, {}}, store, LogitsFor::kNone, logits, pool, scratch, fo);
  const int kv_dim = c.kv_dim(), hd = c.head_dim, g = c.n_heads / c.n_kv_heads;
  const int64_t q_dim = static_cast<int64_t>(c.n_heads) * hd;
  KeyCalibration out;
  out.mean.assign(static_cast<size_t>(c.n_layers) * kv_dim, 0.0f);
  out.weight.assign(out.mean.size(), 1.0f);
  std::vector<uint16_t> k(static_cast<size_t>(kv_dim)), v(k.size());
  std::vector<std::vector<float>> rows(static_cast<size_t>(n));
  for (int l = 0; l < c.n_layers; ++l) {
    std::vector<double> sum(static_cast<size_t>(kv_dim), 0.0), var(sum.size(), 0.0);
    for (int64_t pos = 1; pos < n; ++pos) {
      store.get_window_row(l, pos, k.data(), v.data());
      rows[pos].resize(static_cast<size_t>(kv_dim));
      for (int e = 0; e < kv_dim; ++e) sum[e] += rows[pos][e] = fp16_to_fp32(k[e]);
    }
    float* mean = out.mean.data() + static_cast<size_t>(l) * kv_dim;
    for (int e = 0; e < kv_dim; ++e) mean[e] = static_cast<float>(sum[e] / (n - 1));
    for (int64_t pos = 1; pos < n; ++pos) {
      for (int e = 0; e < kv_dim; ++e) var[e] += (rows[pos][e] - mean[e]) * static_cast<double>(rows[pos][e] - mean[e]);
    }
    // Weights per KV head: Q_j over the group's query heads, both as means over the passage.
    for (int h = 0; h < c.n_kv_heads; ++h) {
      std::vector<double> qj(static_cast<size_t>(hd), 0.0), kj(qj.size());
      double q_avg = 0.0, k_avg = 0.0;
      for (int j = 0; j < hd; ++j) {
        for (int r = 0; r < g; ++r) qj[j] += query_power[static_cast<size_t>(l * q_dim + (h * g + r) * hd + j)];
        kj[j] = var[static_cast<size_t>(h * hd + j)];
        q_avg += qj[j] / hd;
        k_avg += kj[j] / hd;
      }
      if (!(q_avg > 0.0) || !(k_avg > 0.0) || !std::isfinite(q_avg) || !std::isfinite(k_avg)) continue;  // w = 1
      // A floor of 1e-3 of the head's average keeps a channel that never varies (or is never
      // queried) from taking an extreme weight.
      std::vector<double> lw(static_cast<size_t>(hd));
      double lw_avg = 0.0;
      for (int j = 0; j < hd; ++j) {
        lw[j] = 0.25 * (std::log(qj[j] + 1e-3 * q_avg) - std::log(kj[j] + 1e-3 * k_avg));
        lw_avg += lw[j] / hd;
      }
      for (int j = 0; j < hd; ++j) {
        out.weight[static_cast<size_t>(l) * kv_dim + h * hd + j] =
            static_cast<float>(std::clamp(std::exp(lw[j] - lw_avg), 1.0 / 16, 16.0));
      }
    }
  }
  return out;
}

}  // namespace kvbits
