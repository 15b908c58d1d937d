#include "engine/damage_probe.h"

#include <algorithm>
#include <cmath>

#include "engine/key_means.h"
#include "ops/kv_codec.h"
#include "policy/static_policy.h"
#include "util/error.h"
#include "util/half.h"

namespace kvbits {

namespace {

// log-softmax of one logits row into out (double accumulation).
void log_softmax_row(std::span<const float> row, std::vector<float>& out) {
  float mx = -INFINITY;
  for (float x : row) mx = std::max(mx, x);
  double z = 0.0;
  for (float x : row) z += std::exp(static_cast<double>(x - mx));
  const float lz = mx + static_cast<float>(std::log(z));
  out.resize(row.size());
  for (size_t i = 0; i < row.size(); ++i) out[i] = row[i] - lz;
}

// KL(p || q) with p given by its log-probabilities and q by logits.
double kl_from(const std::vector<float>& log_p, std::span<const float> q_logits) {
  float mx = -INFINITY;
  for (float x : q_logits) mx = std::max(mx, x);
  double z = 0.0;
  for (float x : q_logits) z += std::exp(static_cast<double>(x - mx));
  const double lz = mx + std::log(z);
  double kl = 0.0;
  for (size_t i = 0; i < log_p.size(); ++i) kl += std::exp(static_cast<double>(log_p[i])) * (log_p[i] - (q_logits[i] - lz));
  return std::max(0.0, kl);
}

}  // namespace

std::vector<TokenDamage> probe_damage(const LlamaModel& model, std::span<const int32_t> tokens, int64_t begin,
                                      int64_t end, const DamageProbeOptions& o) {
  const int64_t n = static_cast<int64_t>(tokens.size());
  if (begin < 0 || end > n - 1 || begin > end) {
    throw Error("damage probe: positions [" + std::to_string(begin) + ", " + std::to_string(end) +
                ") outside a sequence of " + std::to_string(n) + " tokens");
  }
  if (o.horizon < 1) throw Error("damage probe: horizon must be >= 1");
  if (o.widths.empty()) throw Error("damage probe: no widths to probe");
  for (KvPrecision b : o.widths) {
    if (!valid_kv_bits(b.k_bits) || !valid_kv_bits(b.v_bits) || (b.k_bits == 16 && b.v_bits == 16)) {
      throw Error("damage probe: class " + to_string(b) + " is not made of widths 2, 4, 8, 16 (not both 16)");
    }
  }
  const LlamaConfig& c = model.config();
  SessionOptions so;
  so.threads = o.threads;
  so.context = n + o.horizon + 1;
  so.prefill_chunk = 256;
  so.max_batch = std::max<int64_t>(256, o.horizon);
  so.activations = o.activations;
  so.kv.group = o.group;
  so.kv.rotation = o.rotation;
  // FP16 with a residual window as long as the sequence: nothing is ever committed.
  so.policy = std::make_shared<StaticPolicy>(KvPrecision{16, 16}, "", n + o.horizon + 1);
  if (so.context > c.context_length) throw Error("damage probe: the sequence is longer than the model's context");
  Session session(model, so);
  session.prefill(tokens);
  const size_t vocab = static_cast<size_t>(c.vocab_size);
  std::vector<std::vector<float>> ref(static_cast<size_t>(o.horizon));

  KvStore& store = session.mutable_kv();
  const int kv_dim = c.kv_dim();
  std::vector<uint16_t> k0(static_cast<size_t>(c.n_layers) * kv_dim), v0(k0.size());
  std::vector<uint16_t> k1(static_cast<size_t>(kv_dim)), v1(k1.size());
  std::vector<float> x(static_cast<size_t>(c.head_dim));
  std::vector<int64_t> offsets;
  std::vector<TokenDamage> out;
  const bool rot_k = o.rotation != KvRotation::kNone, rot_v = o.rotation == KvRotation::kKeysAndValues;
  std::shared_ptr<const KeyCalibration> cal = o.calibration;
  if (!cal && (o.center_keys || o.weight_keys)) {
    cal = std::make_shared<const KeyCalibration>(measure_key_calibration(model, session.pool()));
  }
  const std::vector<float> key_mean = o.center_keys ? cal->mean : std::vector<float>();
  const std::vector<float> key_weight = o.weight_keys ? cal->weight : std::vector<float>();
  // The rows of one position after storage at p (kv_roundtrip per head: the store's codec; 16
  // leaves a row untouched), from its FP16 rows in every layer (src_k, src_v: [n_layers][kv_dim]).
  const auto set_coded = [&](int64_t pos, const uint16_t* src_k, const uint16_t* src_v, KvPrecision p) {
    for (int l = 0; l < c.n_layers; ++l) {
      for (int is_v = 0; is_v < 2; ++is_v) {
        const uint16_t* src = (is_v ? src_v : src_k) + static_cast<size_t>(l) * kv_dim;
        uint16_t* dst = is_v ? v1.data() : k1.data();
        const int b = is_v ? p.v_bits : p.k_bits;
        if (b == 16) {
          std::copy(src, src + kv_dim, dst);
          continue;
        }
        for (int hh = 0; hh < c.n_kv_heads; ++hh) {
          for (int e = 0; e < c.head_dim; ++e) x[e] = fp16_to_fp32(src[hh * c.head_dim + e]);
          const float* mean = !is_v && !key_mean.empty() ? &key_mean[static_cast<size_t>(l) * kv_dim + hh * c.head_dim] : nullptr;
          const float* weight = !is_v && !key_weight.empty() ? &key_weight[static_cast<size_t>(l) * kv_dim + hh * c.head_dim] : nullptr;
          kv_roundtrip(x.data(), c.head_dim, b, std::min(o.group, c.head_dim), is_v ? rot_v : rot_k, mean, weight);
          for (int e = 0; e < c.head_dim; ++e) dst[hh * c.head_dim + e] = fp32_to_fp16(x[e]);
        }
      }
      store.set_window_row(l, pos, k1.data(), v1.data());
    }
  };
  // A quantized context: every position the probes attend (< end), sinks excepted, stored at the
  // context class once; each probed position is put back to FP16 for its own reference.
  // k_orig, v_orig: [end][n_layers][kv_dim], the FP16 rows of the coded positions.
  const bool coded_context = o.context && !(*o.context == KvPrecision{16, 16});
  std::vector<uint16_t> k_orig, v_orig;
  if (coded_context) {
    k_orig.resize(static_cast<size_t>(end) * c.n_layers * kv_dim);
    v_orig.resize(k_orig.size());
  }
  for (int64_t pos = std::max<int64_t>(0, o.context_sinks); coded_context && pos < end; ++pos) {
    uint16_t* ko = &k_orig[static_cast<size_t>(pos) * c.n_layers * kv_dim];
    uint16_t* vo = &v_orig[static_cast<size_t>(pos) * c.n_layers * kv_dim];
    for (int l = 0; l < c.n_layers; ++l) store.get_window_row(l, pos, &ko[l * kv_dim], &vo[l * kv_dim]);
    set_coded(pos, ko, vo, *o.context);
  }
  std::vector<uint16_t> kc, vc;  // position t in the context class, restored after its probes
  for (int64_t t = begin; t < end; ++t) {
    TokenDamage d;
    d.position = t;
    const int64_t h = std::min(o.horizon, n - 1 - t);
    d.tokens = h;
    const std::vector<int32_t> follow(tokens.begin() + t + 1, tokens.begin() + t + 1 + h);
    // Token t's FP16 rows into k0/v0 (from k_orig when the context is coded) and into the store.
    const bool t_coded = coded_context && t >= o.context_sinks;
    if (t_coded) {
      kc.resize(k0.size());
      vc.resize(v0.size());
      for (int l = 0; l < c.n_layers; ++l) store.get_window_row(l, t, &kc[l * kv_dim], &vc[l * kv_dim]);
      const size_t at = static_cast<size_t>(t) * c.n_layers * kv_dim;
      std::copy(k_orig.begin() + at, k_orig.begin() + at + k0.size(), k0.begin());
      std::copy(v_orig.begin() + at, v_orig.begin() + at + v0.size(), v0.begin());
      for (int l = 0; l < c.n_layers; ++l) store.set_window_row(l, t, &k0[l * kv_dim], &v0[l * kv_dim]);
    } else {
      for (int l = 0; l < c.n_layers; ++l) store.get_window_row(l, t, &k0[l * kv_dim], &v0[l * kv_dim]);
    }
    // Reference: the same continuation through the same code path with token t untouched, so the
    // only difference below is token t's rows (not the order of fp32 sums in another path).
    const std::vector<std::vector<int32_t>> conts{follow};
    {
      const std::span<float> logits = session.score_continuations(conts, offsets, t + 1);
      for (int64_t i = 0; i < h; ++i) log_softmax_row(logits.subspan(static_cast<size_t>(i) * vocab, vocab), ref[i]);
    }
    for (KvPrecision p : o.widths) {
      set_coded(t, k0.data(), v0.data(), p);
      const std::span<float> logits = session.score_continuations(conts, offsets, t + 1);
      double kl = 0.0;
      for (int64_t i = 0; i < h; ++i) kl += kl_from(ref[i], logits.subspan(static_cast<size_t>(i) * vocab, vocab));
      d.kl.push_back(static_cast<float>(kl));
    }
    const uint16_t* back_k = t_coded ? kc.data() : k0.data();
    const uint16_t* back_v = t_coded ? vc.data() : v0.data();
    for (int l = 0; l < c.n_layers; ++l) store.set_window_row(l, t, &back_k[l * kv_dim], &back_v[l * kv_dim]);
    out.push_back(std::move(d));
  }
  return out;
}

}  // namespace kvbits
