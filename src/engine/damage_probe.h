#pragma once
// Measured damage of storing one token's K and V at a lower width: the training signal of the
// learned precision controller (issue 5) and the oracle policy.
//
// For a token sequence, the whole sequence is prefilled with an FP16 cache and kept in the window.
// Then, for each probed position t and class b = (K bits, V bits): token t's K rows in every layer
// are replaced by their image after storage at b.k_bits and its V rows by theirs at b.v_bits
// (kv_roundtrip: the store's own codec; 16 leaves a row untouched), the following `horizon` tokens
// are run again attending the modified cache (their own K/V recomputed), and the damage is
//   D(t, b) = sum over those tokens of KL(p_fp16 || p_b)   (nats)
// of the next-token distributions; the rows are restored before the next probe. The reference
// p_fp16 is the same continuation run through the same code path with token t untouched, so only
// token t's rows differ. Cost: one forward of `horizon` tokens per (t, b), plus one per t.
// With a context class (DamageProbeOptions::context) every other position of the prefix is first
// stored at that class (sinks excepted), reference included: D(t, b) is then what token t costs
// at b *given a quantized context* (its marginal damage), not alone in an FP16 cache.
// Separate K and V widths matter: at the same bits, keys are far more fragile than values
// (docs/results.md: int4/int2 halves the KL of a token-level int2/int4 mix).
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <vector>

#include "engine/key_means.h"
#include "engine/session.h"
#include "kv/kv_store.h"
#include "model/llama_model.h"

namespace kvbits {

struct DamageProbeOptions {
  int64_t horizon = 16;            // following tokens whose distributions are compared
  // Classes probed; each a K and a V width from {2, 4, 8, 16}, not both 16.
  std::vector<KvPrecision> widths{{2, 2}, {4, 4}, {8, 8}};
  int group = 64;
  KvRotation rotation = KvRotation::kKeysAndValues;
  bool center_keys = true;  // as the store does (engine/key_means.h)
  bool weight_keys = true;  // key channel weights, as the store (engine/key_means.h)
  // The model's key calibration if already measured (a session's store has it); null: measured
  // by each probe_damage call (one forward of the ~300-token passage).
  std::shared_ptr<const KeyCalibration> calibration;
  // The other tokens' class (their K and V rows' codec round trip, kept for the whole probe);
  // unset: FP16. The first `context_sinks` positions stay FP16 (as --kv-sinks keeps them).
  std::optional<KvPrecision> context;
  int64_t context_sinks = 0;
  int threads = 2;
  ActivationMode activations = ActivationMode::kInt8;
};

struct TokenDamage {
  int64_t position = 0;
  std::vector<float> kl;  // [widths] D(t, b), nats summed over `tokens` following tokens
  int64_t tokens = 0;     // following tokens compared (horizon, fewer near the end)
};

// Probes positions [begin, end) of `tokens` (end <= tokens.size() - 1: the last token has no
// following token). Throws Error on bad options.
std::vector<TokenDamage> probe_damage(const LlamaModel& model, std::span<const int32_t> tokens, int64_t begin,
                                      int64_t end, const DamageProbeOptions& options);

}  // namespace kvbits
