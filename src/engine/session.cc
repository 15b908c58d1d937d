#include "engine/session.h"

#include <algorithm>
#include <chrono>
#include <string>

#include "engine/key_means.h"
#include "engine/damage_probe.h"
#include "ops/softmax_stats.h"
#include "policy/static_policy.h"
#include "util/error.h"

namespace kvbits {

namespace {
int64_t resolve_context(const LlamaModel& model, int64_t requested, bool allow_beyond) {
  const int64_t max = model.config().context_length;
  if (requested < 0) throw Error("context size must be positive, got " + std::to_string(requested));
  if (requested > max && !allow_beyond) {
    throw Error("context size " + std::to_string(requested) + " exceeds the model's context length " +
                std::to_string(max));
  }
  return requested == 0 ? max : requested;
}

KvStoreOptions store_options(const SessionOptions& o, const PrecisionPolicy& policy, int64_t capacity) {
  KvStoreOptions kv = o.kv;
  kv.capacity = capacity;
  kv.residual = policy.residual();
  kv.max_chunk = std::max(o.prefill_chunk, o.max_batch);
  kv.floor = policy.allows_demotion() ? KvPrecision{2, 2} : policy.floor();
  kv.allow_demotion = policy.allows_demotion();
  kv.per_token_record = policy.mixed();
  return kv;
}
}  // namespace

Session::Session(const LlamaModel& model, const SessionOptions& options)
    : model_(model),
      options_(options),
      policy_(options.policy ? options.policy : std::make_shared<StaticPolicy>(KvPrecision{16, 16}, "", 0)),
      own_pool_(options.pool ? nullptr : std::make_unique<ThreadPool>(options.threads)),
      pool_(options.pool ? options.pool : own_pool_.get()) {
  if (options.prefill_chunk <= 0 || options.max_batch <= 0) throw Error("prefill chunk and batch must be positive");
  const int64_t capacity = resolve_context(model, options.context, options.allow_beyond_trained_context);
  KvStoreOptions kv = store_options(options_, *policy_, capacity);
  const bool quantizes = policy_->mixed() || policy_->floor().k_bits < 16;
  const bool need_mean = options_.center_keys && kv.key_mean.empty();
  const bool need_weight = options_.weight_keys && kv.key_weight.empty();
  if (quantizes && (need_mean || need_weight)) {
    KeyCalibration cal = measure_key_calibration(model, *pool_);
    if (need_mean) kv.key_mean = std::move(cal.mean);
    if (need_weight) kv.key_weight = std::move(cal.weight);
  }
  store_ = std::make_unique<KvStore>(model.config(), kv);
  // The policy learns the model's shape, the store's layout options and how to measure damage.
  PolicyBinding binding;
  binding.config = &model.config();
  binding.kv = &store_->options();
  DamageProbeOptions probe;
  probe.group = store_->options().group;
  probe.rotation = store_->options().rotation;
  probe.center_keys = options.center_keys;
  probe.weight_keys = options.weight_keys;
  if (!store_->options().key_mean.empty() || !store_->options().key_weight.empty()) {
    // The store's own calibration (measured above or given): the probe codes rows as it does.
    auto cal = std::make_shared<KeyCalibration>();
    cal->mean = store_->options().key_mean;
    cal->weight = store_->options().key_weight;
    probe.calibration = cal;
  }
  probe.threads = options.threads;
  probe.activations = options.activations;
  binding.damage = [&model, probe](std::span<const int32_t> tokens, int64_t begin, int64_t end, int64_t horizon,
                                    std::span<const KvPrecision> classes) {
    DamageProbeOptions o = probe;
    o.horizon = horizon;
    o.widths.assign(classes.begin(), classes.end());
    std::vector<std::vector<float>> out;
    for (TokenDamage& d : probe_damage(model, tokens, begin, end, o)) out.push_back(std::move(d.kl));
    return out;
  };
  policy_->bind(binding);
  needs_ = policy_->needs();
}

void Session::reset() {
  store_->clear();
  history_.clear();
  features_.clear();
  have_last_ = false;
}

void Session::forward(const ForwardInput& input, LogitsFor which) {
  model_.forward(input, *store_, which, logits_, *pool_, scratch_,
                 {options_.activations, needs_.attention ? &tap_ : nullptr});
}

void Session::record(std::span<const int32_t> tokens, LogitsFor which) {
  const auto t0 = std::chrono::steady_clock::now();
  const int64_t first = static_cast<int64_t>(history_.size());
  history_.insert(history_.end(), tokens.begin(), tokens.end());
  features_.resize(history_.size());
  const int64_t n = static_cast<int64_t>(tokens.size());
  for (int64_t i = 0; i < n; ++i) {
    features_[first + i].position = first + i;
    features_[first + i].token = tokens[i];
  }
  const LlamaConfig& c = model_.config();
  if (needs_.logits) {
    const size_t vocab = static_cast<size_t>(c.vocab_size);
    const int64_t rows = static_cast<int64_t>(logits_.size() / vocab);
    const int64_t row0 = n - rows;  // logits cover the last `rows` tokens
    // One pass of softmax statistics per logits row; its log-sum-exp also gives the surprisal of
    // the next token.
    double prev_lse = 0.0;
    for (int64_t i = 0; i < n; ++i) {
      TokenInfo& f = features_[first + i];
      // Surprisal: the row before this token (the previous call's last row for i = 0).
      if (i == 0) {
        f.surprisal = have_last_ ? static_cast<float>(last_lse_ - last_row_[tokens[0]]) : 0.0f;
      } else if (i - 1 >= row0) {
        f.surprisal = static_cast<float>(prev_lse - logits_[static_cast<size_t>(i - 1 - row0) * vocab + tokens[i]]);
      }
      if (i >= row0) {
        const SoftmaxStats st = softmax_stats(std::span<const float>(logits_).subspan((i - row0) * vocab, vocab));
        f.entropy = static_cast<float>(st.entropy);
        f.confidence = static_cast<float>(st.confidence);
        prev_lse = st.lse;
        if (i == n - 1) last_lse_ = st.lse;
      }
    }
    have_last_ = rows > 0;
    if (have_last_) last_row_.assign(logits_.end() - static_cast<ptrdiff_t>(vocab), logits_.end());
  }
  (void)which;
  if (needs_.attention) {
    const int H = c.n_heads;
    for (int64_t i = 0; i < n; ++i) {
      double mean = 0.0, sq = 0.0;
      for (int h = 0; h < H; ++h) mean += tap_.concentration[i * H + h];
      mean /= H;
      for (int h = 0; h < H; ++h) sq += (tap_.concentration[i * H + h] - mean) * (tap_.concentration[i * H + h] - mean);
      features_[first + i].attn_concentration = static_cast<float>(mean);
      features_[first + i].attn_variance = static_cast<float>(sq / H);
    }
    const int64_t committed = store_->committed();
    for (size_t row = 0; row < tap_.received.size(); ++row) {
      const int64_t pos = committed + static_cast<int64_t>(row);
      if (pos < static_cast<int64_t>(features_.size())) features_[pos].attn_received += tap_.received[row];
    }
  }
  policy_seconds_ += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

void Session::commit_ready() {
  const int64_t n = store_->window_tokens() - policy_->residual();
  if (n <= 0) return;
  const int n_layers = model_.config().n_layers;
  const auto t0 = std::chrono::steady_clock::now();
  if (needs_.key_geometry) {
    for (int64_t pos = store_->committed(); pos < store_->committed() + n; ++pos) {
      features_[static_cast<size_t>(pos)].sink_like_layers = store_->key_sink_like_layers(pos);
    }
  }
  const std::span<const TokenInfo> infos(features_.data() + store_->committed(), static_cast<size_t>(n));
  precisions_.resize(static_cast<size_t>(n * n_layers));
  policy_->decide(infos, n_layers, precisions_);
  policy_seconds_ += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  store_->commit(n, precisions_, *pool_);
}

std::span<float> Session::prefill(std::span<const int32_t> tokens) {
  if (tokens.empty()) throw Error("prefill needs at least one token");
  if (store_->size() + static_cast<int64_t>(tokens.size()) > store_->capacity()) {
    throw Error("context overflow: " + std::to_string(store_->size() + tokens.size()) +
                " tokens exceed the context size of " + std::to_string(store_->capacity()));
  }
  for (size_t i = 0; i < tokens.size(); i += static_cast<size_t>(options_.prefill_chunk)) {
    const size_t n = std::min(tokens.size() - i, static_cast<size_t>(options_.prefill_chunk));
    const bool last = i + n == tokens.size();
    const auto chunk = tokens.subspan(i, n);
    const LogitsFor which = needs_.logits ? LogitsFor::kAll : last ? LogitsFor::kLast : LogitsFor::kNone;
    forward({chunk, {}, {}}, which);
    record(chunk, which);
    commit_ready();
  }
  if (needs_.logits) return last_row_;  // kAll: the last row
  return logits_;
}

std::span<float> Session::decode(int32_t token) {
  forward({std::span<const int32_t>(&token, 1), {}, {}}, LogitsFor::kLast);
  record(std::span<const int32_t>(&token, 1), LogitsFor::kLast);
  commit_ready();
  return logits_;
}

std::span<float> Session::prefill_all_logits(std::span<const int32_t> tokens) {
  if (tokens.empty()) throw Error("prefill needs at least one token");
  if (store_->size() + static_cast<int64_t>(tokens.size()) > store_->capacity()) {
    throw Error("context overflow: " + std::to_string(store_->size() + tokens.size()) +
                " tokens exceed the context size of " + std::to_string(store_->capacity()));
  }
  const size_t vocab = static_cast<size_t>(model_.config().vocab_size);
  all_logits_.resize(tokens.size() * vocab);
  for (size_t i = 0; i < tokens.size(); i += static_cast<size_t>(options_.prefill_chunk)) {
    const size_t n = std::min(tokens.size() - i, static_cast<size_t>(options_.prefill_chunk));
    const auto chunk = tokens.subspan(i, n);
    forward({chunk, {}, {}}, LogitsFor::kAll);
    std::copy(logits_.begin(), logits_.end(), all_logits_.begin() + static_cast<ptrdiff_t>(i * vocab));
    record(chunk, LogitsFor::kAll);
    commit_ready();
  }
  return all_logits_;
}

std::span<float> Session::score_continuations(std::span<const std::vector<int32_t>> continuations,
                                              std::vector<int64_t>& offsets, int64_t prefix) {
  const int64_t size = store_->size();
  if (prefix > store_->window_tokens()) throw Error("score_continuations: prefix beyond the window");
  // Window rows every continuation attends, and the position its first token takes.
  const int64_t shared = prefix >= 0 ? prefix : store_->window_tokens();
  const int64_t base = store_->committed() + shared;
  const size_t vocab = static_cast<size_t>(model_.config().vocab_size);
  int64_t total = 0;
  offsets.clear();
  for (const auto& c : continuations) {
    if (c.empty()) throw Error("cannot score an empty continuation");
    if (static_cast<int64_t>(c.size()) > options_.max_batch) {
      throw Error("a continuation of " + std::to_string(c.size()) + " tokens exceeds the batch limit of " +
                  std::to_string(options_.max_batch));
    }
    if (size + static_cast<int64_t>(c.size()) > store_->capacity()) {
      throw Error("context overflow: " + std::to_string(size + c.size()) + " tokens exceed the context size of " +
                  std::to_string(store_->capacity()));
    }
    offsets.push_back(total);
    total += static_cast<int64_t>(c.size());
  }
  all_logits_.resize(static_cast<size_t>(total) * vocab);
  std::vector<int32_t> tokens;
  std::vector<int64_t> positions;
  std::vector<WindowRange> windows;
  size_t j = 0;
  while (j < continuations.size()) {
    // A batch: whole continuations up to max_batch tokens, rows after the shared context rows.
    tokens.clear();
    positions.clear();
    windows.clear();
    const size_t first = j;
    for (; j < continuations.size(); ++j) {
      const auto& c = continuations[j];
      if (!tokens.empty() && static_cast<int64_t>(tokens.size() + c.size()) > options_.max_batch) break;
      const int64_t row0 = (size - store_->committed()) + static_cast<int64_t>(tokens.size());
      for (size_t t = 0; t < c.size(); ++t) {
        tokens.push_back(c[t]);
        positions.push_back(base + static_cast<int64_t>(t));
        windows.push_back({shared, row0, row0 + static_cast<int64_t>(t) + 1});
      }
    }
    forward({tokens, positions, windows}, LogitsFor::kAll);
    store_->truncate(size);
    std::copy(logits_.begin(), logits_.end(), all_logits_.begin() + static_cast<ptrdiff_t>(offsets[first] * vocab));
  }
  return all_logits_;
}

}  // namespace kvbits
