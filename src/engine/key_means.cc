#include "engine/key_means.h"

#include <algorithm>

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
    "the town, but everyone agrees that something has to change.";
constexpr int64_t kMaxTokens = 96;
}  // namespace

std::vector<float> measure_key_means(const LlamaModel& model, ThreadPool& pool) {
  const LlamaConfig& c = model.config();
  const Tokenizer tok(tokenizer_data_from_gguf(model.file()));
  std::vector<int32_t> ids = tok.encode(kPassage, /*parse_special=*/false);
  if (tok.add_bos() && tok.bos_id() >= 0) ids.insert(ids.begin(), tok.bos_id());
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
  model.forward({ids, {}, {}}, store, LogitsFor::kNone, logits, pool, scratch);
  const int kv_dim = c.kv_dim();
  std::vector<float> mean(static_cast<size_t>(c.n_layers) * kv_dim, 0.0f);
  std::vector<uint16_t> k(static_cast<size_t>(kv_dim)), v(k.size());
  for (int l = 0; l < c.n_layers; ++l) {
    std::vector<double> sum(static_cast<size_t>(kv_dim), 0.0);
    for (int64_t pos = 1; pos < n; ++pos) {
      store.get_window_row(l, pos, k.data(), v.data());
      for (int e = 0; e < kv_dim; ++e) sum[e] += fp16_to_fp32(k[e]);
    }
    for (int e = 0; e < kv_dim; ++e) mean[static_cast<size_t>(l) * kv_dim + e] = static_cast<float>(sum[e] / (n - 1));
  }
  return mean;
}

}  // namespace kvbits
