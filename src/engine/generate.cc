#include "engine/generate.h"

#include <chrono>

namespace kvbits {

double GenerationStats::prefill_tokens_per_second() const {
  return prefill_seconds > 0.0 ? static_cast<double>(prompt_tokens) / prefill_seconds : 0.0;
}

double GenerationStats::decode_ms_per_token() const {
  const int64_t steps = generated_tokens - 1;
  return steps > 0 ? 1000.0 * decode_seconds / static_cast<double>(steps) : 0.0;
}

GenerationStats generate(Session& session, std::span<const int32_t> prompt, Sampler& sampler,
                         const GenerateOptions& options, const std::function<bool(int32_t)>& is_eog,
                         const std::function<void(int32_t)>& on_token) {
  using clock = std::chrono::steady_clock;
  GenerationStats stats;
  stats.prompt_tokens = static_cast<int64_t>(prompt.size());
  for (int32_t t : prompt) sampler.accept(t);
  const auto t0 = clock::now();
  std::span<float> logits = session.prefill(prompt);
  stats.prefill_seconds = std::chrono::duration<double>(clock::now() - t0).count();
  const auto t1 = clock::now();
  for (int64_t i = 0; i < options.max_new_tokens; ++i) {
    const int32_t next = sampler.sample(logits);
    sampler.accept(next);
    ++stats.generated_tokens;
    if (options.stop_at_eog && is_eog(next)) {
      stats.stopped_at_eog = true;
      break;
    }
    on_token(next);
    if (i + 1 == options.max_new_tokens || session.n_past() >= session.context()) break;
    logits = session.decode(next);
  }
  stats.decode_seconds = std::chrono::duration<double>(clock::now() - t1).count();
  return stats;
}

}  // namespace kvbits
