#pragma once
// Token sampling: turns one row of logits into a token id.
//
// The chain follows llama.cpp's default order:
//   repetition penalty -> top-k -> top-p -> min-p -> temperature -> softmax -> draw.
// Top-p and min-p therefore judge the *unscaled* (temperature 1) distribution, as llama.cpp does;
// temperature only reshapes the probabilities among the tokens that survived.
// temperature == 0 is greedy decoding: only the repetition penalty and argmax run.
//
// Determinism: the generator is std::mt19937_64 (its output sequence is fixed by the C++ standard)
// and the uniform variate is built from its bits by hand, because std::uniform_real_distribution is
// implementation-defined. Sums and the draw visit candidates in token id order, never in an order a
// partition happened to leave. What remains platform-dependent is the last bit of std::exp and of
// top-p's boundary search (which sums in partition order): a sample can only differ where a
// cumulative sum ties its target to within an ulp.
#include <cstdint>
#include <random>
#include <span>
#include <vector>

namespace kvbits {

struct SamplerOptions {
  float temperature = 0.8f;      // 0: greedy (argmax); < 0 is an error
  int top_k = 40;                // <= 0: disabled
  float top_p = 0.95f;           // in (0, 1]; 1: disabled
  float min_p = 0.05f;           // in [0, 1]; 0: disabled (keep tokens with p >= min_p * p_max)
  float repeat_penalty = 1.0f;   // > 0; 1: disabled. llama.cpp semantics: positive logits of recent
                                 // tokens are divided by it, negative ones multiplied
  int repeat_last_n = 64;        // >= 0; how many recent accepted tokens the penalty looks at
  uint64_t seed = 0;             // fixed seed => identical samples
};

// Throws kvbits::Error with a one-line message for values that make no sense (negative or
// non-finite temperature, top_p outside (0,1], min_p outside [0,1], repeat_penalty <= 0,
// repeat_last_n < 0).
void validate(const SamplerOptions& options);

class Sampler {
 public:
  explicit Sampler(const SamplerOptions& options);  // validates

  // logits: [vocab] raw model outputs. They are scratch: the penalty is applied in place and NaN
  // entries become -inf. Returns the chosen token id. NaN and -inf logits are never chosen; if
  // every logit is NaN or -inf (or the row is empty) throws kvbits::Error. +inf logits win outright
  // (shared uniformly among them). Each non-greedy call consumes exactly one generator draw.
  int32_t sample(std::span<float> logits);

  // Records a token (prompt or generated) for the repetition penalty window.
  void accept(int32_t token);

  // Clears the history and re-seeds, so the next samples repeat those after construction.
  void reset();

  const SamplerOptions& options() const { return options_; }

 private:
  struct Candidate {
    float logit;   // after the penalty
    float weight;  // unnormalised probability, filled by the stage that needs it
    int32_t id;
  };

  void apply_repeat_penalty(std::span<float> logits);
  double uniform01();  // in [0, 1), 53 random bits

  SamplerOptions options_;
  std::mt19937_64 rng_;
  std::vector<int32_t> history_;     // ring buffer of the last repeat_last_n accepted tokens
  size_t history_next_ = 0;          // slot the next accepted token overwrites once full
  std::vector<int32_t> window_;      // scratch: distinct tokens in the window
  std::vector<int32_t> ids_;           // scratch: ids of the logits that may become candidates
  std::vector<Candidate> candidates_;  // scratch: [<= vocab], kept in token id order
  std::vector<Candidate> scratch_;     // scratch: top-k heap / top-p selection
};

// Index of the largest logit; ties go to the lowest index; NaN is never chosen.
// Throws kvbits::Error if logits is empty or all NaN.
int32_t argmax(std::span<const float> logits);

}  // namespace kvbits
