#include "engine/session.h"

#include <algorithm>
#include <string>

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
}  // namespace

Session::Session(const LlamaModel& model, const SessionOptions& options)
    : model_(model),
      options_(options),
      pool_(options.threads),
      cache_(model.config(), resolve_context(model, options.context, options.allow_beyond_trained_context)) {
  if (options.prefill_chunk <= 0) throw Error("prefill chunk must be positive");
}

std::span<float> Session::prefill(std::span<const int32_t> tokens) {
  if (tokens.empty()) throw Error("prefill needs at least one token");
  if (cache_.size() + static_cast<int64_t>(tokens.size()) > cache_.capacity()) {
    throw Error("context overflow: " + std::to_string(cache_.size() + tokens.size()) +
                " tokens exceed the context size of " + std::to_string(cache_.capacity()));
  }
  for (size_t i = 0; i < tokens.size(); i += static_cast<size_t>(options_.prefill_chunk)) {
    const size_t n = std::min(tokens.size() - i, static_cast<size_t>(options_.prefill_chunk));
    const bool last = i + n == tokens.size();
    model_.forward(tokens.subspan(i, n), cache_, last ? LogitsFor::kLast : LogitsFor::kNone, logits_, pool_,
                   scratch_, {options_.activations});
  }
  return logits_;
}

std::span<float> Session::decode(int32_t token) {
  model_.forward(std::span<const int32_t>(&token, 1), cache_, LogitsFor::kLast, logits_, pool_, scratch_, {options_.activations});
  return logits_;
}

std::span<float> Session::prefill_all_logits(std::span<const int32_t> tokens) {
  if (tokens.empty()) throw Error("prefill needs at least one token");
  model_.forward(tokens, cache_, LogitsFor::kAll, logits_, pool_, scratch_, {options_.activations});
  return logits_;
}

}  // namespace kvbits
