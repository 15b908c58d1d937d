#pragma once
// Training data of the learned controller: per calibration token, its features exactly as the
// engine computes them online, and its measured damage at each width.
//
// Features: each sequence is prefilled through a Session in one chunk with R = 0 and int8
// activations, as evaluation prefills a context (docs/protocols.md), with a policy that records
// the TokenInfo it is shown; rarity comes from the corpus frequency table (TokenFrequency over all
// packed calibration tokens), rarity_running from RunningFrequency over the probed sequences in
// order. Damage: engine/damage_probe.h, D(t, b) for every class b (a K width and a V width, e.g.
// int4/int2), summed KL over the next `horizon` tokens of the sequence; D(t, fp16) = 0 without a
// probe. The last token of a sequence has no follower and is not a sample.
//
// Label files (`kvbits train --save-labels / --labels`) keep samples so that fitting can be
// re-run without the model: JSON {"format": "kvbits-controller-labels", "format_version": 2,
// "meta": {...}, "classes": ["int2", "int4/int2", ...], "rarity": {"vocab_size", "alpha", "ids",
// "counts"}, "samples": [[seq, position, token, raw features (9, Feature order)..., D per class],
// ...]}. Version 1 files (no "classes"; D2, D4, D8 per row: classes int2, int4, int8, fp16) load.
#include <array>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <optional>
#include <vector>

#include <nlohmann/json.hpp>

#include "engine/session.h"
#include "model/llama_model.h"
#include "policy/controller_features.h"

namespace kvbits::train {

struct TokenSample {
  int32_t seq = 0, position = 0, token = 0;
  RawFeatures raw;
  std::vector<float> damage;  // per class of LabelData::classes, nats (fp16: 0)
};

struct LabelData {
  std::vector<KvPrecision> classes;  // what each damage entry measures
  std::vector<TokenSample> samples;
  TokenFrequency frequency;
  nlohmann::json meta = nlohmann::json::object();
};

struct LabelOptions {
  int64_t horizon = 16;
  ActivationMode probe_activations = ActivationMode::kInt8;  // labels; features always use int8
  int threads = 2;
  int group = 64;
  KvRotation rotation = KvRotation::kKeysAndValues;
  bool center_keys = true;    // as the store (SessionOptions::center_keys, --kv-center)
  bool weight_keys = true;    // as the store (SessionOptions::weight_keys, --kv-key-weight)
  // The other tokens' class while a token is probed (DamageProbeOptions::context; unset: FP16)
  // and the leading positions kept FP16 in that context.
  std::optional<KvPrecision> context;
  int64_t context_sinks = 0;
  int64_t max_tokens = 4000;  // probed tokens (whole sequences in a seeded order, two at least)
  uint64_t seed = 1;
  double alpha = 0.5;         // frequency smoothing
  // Classes to measure (fp16/fp16 costs no probe: damage 0). Each other class costs one forward
  // of `horizon` tokens per labelled token.
  std::vector<KvPrecision> classes{{2, 2}, {4, 2}, {4, 4}, {8, 8}, {16, 16}};
};

// TokenInfo of every position of `tokens`, as a Session computes them for a policy that needs
// logits and attention (one prefill chunk, R = 0, int8 activations).
std::vector<TokenInfo> token_features(const LlamaModel& model, std::span<const int32_t> tokens, int threads);

// Features and damage for the sequences (all of them counted in the frequency table; the first
// ones in a seeded shuffle probed until max_tokens). `progress(done, total)` after each sequence.
LabelData build_labels(const LlamaModel& model, const std::vector<std::vector<int32_t>>& sequences,
                       const LabelOptions& options, const std::function<void(int64_t, int64_t)>& progress);

void save_labels(const LabelData& data, const std::filesystem::path& path);
// Throws Error naming the file on anything malformed.
LabelData load_labels(const std::filesystem::path& path);

}  // namespace kvbits::train
