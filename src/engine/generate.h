#pragma once
// The decode loop: sample, stop on end-of-generation or the token limit, time everything.
#include <cstdint>
#include <functional>
#include <span>
#include <vector>

#include "engine/sampler.h"
#include "engine/session.h"

namespace kvbits {

struct GenerationStats {
  int64_t prompt_tokens = 0;
  int64_t generated_tokens = 0;
  double prefill_seconds = 0.0;
  double decode_seconds = 0.0;   // covers generated_tokens - 1 decode steps (the first token
                                 // comes from the prefill logits)
  bool stopped_at_eog = false;

  double prefill_tokens_per_second() const;
  double decode_ms_per_token() const;
};

struct GenerateOptions {
  int64_t max_new_tokens = 128;
  bool stop_at_eog = true;
};

// Prefills `prompt` into the session, then samples up to max_new_tokens tokens, calling
// on_token(id) for each as soon as it is chosen. is_eog decides end-of-generation tokens.
GenerationStats generate(Session& session, std::span<const int32_t> prompt, Sampler& sampler,
                         const GenerateOptions& options, const std::function<bool(int32_t)>& is_eog,
                         const std::function<void(int32_t)>& on_token);

}  // namespace kvbits
