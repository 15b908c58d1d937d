#include "engine/session.h"

#include <algorithm>
#include <string>

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
      pool_(options.threads) {
  if (options.prefill_chunk <= 0 || options.max_batch <= 0) throw Error("prefill chunk and batch must be positive");
  const int64_t capacity = resolve_context(model, options.context, options.allow_beyond_trained_context);
  store_ = std::make_unique<KvStore>(model.config(), store_options(options_, *policy_, capacity));
}

void Session::reset() {
  store_->clear();
  history_.clear();
}

void Session::forward(const ForwardInput& input, LogitsFor which) {
  model_.forward(input, *store_, which, logits_, pool_, scratch_, {options_.activations});
}

void Session::commit_ready() {
  const int64_t n = store_->window_tokens() - policy_->residual();
  if (n <= 0) return;
  const int n_layers = model_.config().n_layers;
  infos_.resize(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) {
    const int64_t pos = store_->committed() + i;
    infos_[i] = {pos, history_[static_cast<size_t>(pos)]};
  }
  precisions_.resize(static_cast<size_t>(n * n_layers));
  policy_->decide(infos_, n_layers, precisions_);
  store_->commit(n, precisions_, pool_);
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
    forward({chunk, {}, {}}, last ? LogitsFor::kLast : LogitsFor::kNone);
    history_.insert(history_.end(), chunk.begin(), chunk.end());
    commit_ready();
  }
  return logits_;
}

std::span<float> Session::decode(int32_t token) {
  forward({std::span<const int32_t>(&token, 1), {}, {}}, LogitsFor::kLast);
  history_.push_back(token);
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
    history_.insert(history_.end(), chunk.begin(), chunk.end());
    commit_ready();
  }
  return all_logits_;
}

std::span<float> Session::score_continuations(std::span<const std::vector<int32_t>> continuations,
                                              std::vector<int64_t>& offsets) {
  const int64_t base = store_->size();
  const int64_t shared = store_->window_tokens();  // context rows still in the window
  const size_t vocab = static_cast<size_t>(model_.config().vocab_size);
  int64_t total = 0;
  offsets.clear();
  for (const auto& c : continuations) {
    if (c.empty()) throw Error("cannot score an empty continuation");
    if (static_cast<int64_t>(c.size()) > options_.max_batch) {
      throw Error("a continuation of " + std::to_string(c.size()) + " tokens exceeds the batch limit of " +
                  std::to_string(options_.max_batch));
    }
    if (base + static_cast<int64_t>(c.size()) > store_->capacity()) {
      throw Error("context overflow: " + std::to_string(base + c.size()) + " tokens exceed the context size of " +
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
      const int64_t row0 = shared + static_cast<int64_t>(tokens.size());
      for (size_t t = 0; t < c.size(); ++t) {
        tokens.push_back(c[t]);
        positions.push_back(base + static_cast<int64_t>(t));
        windows.push_back({shared, row0, row0 + static_cast<int64_t>(t) + 1});
      }
    }
    forward({tokens, positions, windows}, LogitsFor::kAll);
    store_->truncate(base);
    std::copy(logits_.begin(), logits_.end(), all_logits_.begin() + static_cast<ptrdiff_t>(offsets[first] * vocab));
  }
  return all_logits_;
}

}  // namespace kvbits
