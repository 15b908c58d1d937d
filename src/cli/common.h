#pragma once
// Flags and helpers shared by the generation frontends (run, chat, bench).
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <CLI/CLI.hpp>

#include "engine/sampler.h"
#include "engine/session.h"
#include "model/llama_model.h"
#include "tokenizer/tokenizer.h"

namespace kvbits::cli {

struct ModelFlags {
  std::string model_path;
  int threads = 2;
  int64_t context = 0;  // tokens; 0 = the model's full context (memory is touched as used)
};

// The KV cache: policy and store options, shared by run, chat, bench and eval.
struct KvFlags {
  std::string policy = "fp16";       // --kv SPEC (policy/precision_policy.h)
  std::optional<int64_t> residual;   // --kv-residual R
  int group = 64;                    // --kv-group
  int page_tokens = KvStoreOptions{}.page_tokens;  // --kv-page: token slots per page (the store's default)
  std::string rotate = "kv";         // --kv-rotate none|k|kv
  double budget_mib = 0.0;           // --kv-mb (0: none)
  std::optional<double> kv_bits;     // --kv-bits: average effective bits (learned, oracle)
  std::string center = "on";         // --kv-center on|off (key centering per row, engine/key_means.h)
  std::string key_weight = "on";     // --kv-key-weight on|off (key channel weights, engine/key_means.h)
  int64_t sinks = 0;                 // --kv-sinks N: first N positions at FP16 (policy/sink_policy.h)
  std::string layers;                // --kv-layers FILE: per-layer widths for learned (policy/learned_policy.h)
  std::string sink_like = "off";     // --kv-sinklike WIDTH|off: least width of sink-like rows (policy/sink_policy.h)
};

void add_model_flags(CLI::App& cmd, ModelFlags& flags);
void add_sampler_flags(CLI::App& cmd, SamplerOptions& options);
void add_kv_flags(CLI::App& cmd, KvFlags& flags);
// Parses the policy and fills so.policy and so.kv; throws Error on bad values.
void apply_kv_flags(const KvFlags& flags, SessionOptions& so);
// "int4: 2.1 MiB for 100 tokens, 4.52 effective bits (2.5 MiB allocated)" style.
std::string kv_summary(const Session& session);
// Share of the committed token-layer rows at each class ("k4/v2" ...), largest first; empty
// before any commit.
std::vector<std::pair<std::string, double>> kv_class_mix(const KvStats& stats);
// "k2/v2 58.80% k4/v4 29.20%" for logs.
std::string format_class_mix(const std::vector<std::pair<std::string, double>>& mix);

struct LoadedModel {
  std::unique_ptr<LlamaModel> model;
  std::unique_ptr<Tokenizer> tokenizer;
};
LoadedModel load_model(const ModelFlags& flags);

// The whole file as bytes; throws Error("PATH: cannot open WHAT (reason)"). UTF-8 is checked where
// the text is tokenized (tokenizer/tokenizer.h).
std::string read_text_file(const std::string& path, const std::string& what);

// "12.3 MiB" style.
std::string format_bytes(uint64_t bytes);

// A one-line warning on stderr when a policy with a bit budget (--kv-bits, learned@B, alloc@B)
// stored more than 0.1 bits away from it (e.g. FP16 sinks on contexts of a dozen tokens, or
// sink-like keys on random token ids, cost more than int2 everywhere else gives back). `what`
// names the run ("eval arc_easy"). Returns whether it warned.
bool warn_if_budget_missed(const PrecisionPolicy& policy, double effective_bits, const std::string& what);

}  // namespace kvbits::cli
