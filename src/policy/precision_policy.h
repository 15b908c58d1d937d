#pragma once
// Precision policies: which width (K bits, V bits) each token gets in each layer of the KV store.
//
// A token's precision is decided once, when it leaves the FP16 window: right after its own forward
// pass when R = 0 (the first moment all its features exist), or R tokens later. The policy sees
// only TokenInfo (ids, positions, features) and returns precisions; it never touches cache bytes.
//
// Specs (`--kv SPEC`, parse_policy):
//   fp16, int8, int4, int2            static: every token at that width, K and V
//   intK/intV, fp16/int4, ...         static with separate K and V widths (keys need more bits)
//   kivi:B                            B in {2, 4} bits plus an FP16 residual of R recent tokens
//                                     (default R 128, as in KIVI; --kv-residual overrides)
//   rule                              heuristics, see RulePolicy in rule_policy.cc
//   layers:W0,W1,...                  a static width per layer, WxN repeats (layer_policy.h)
//   alloc:PATH[@BITS]                 per-layer widths allocated from the measured layer
//                                     sensitivity in PATH at BITS average bits (layer_policy.h)
//   learned:PATH[@BITS]               the learned controller in PATH (learned_policy.h) at an
//                                     average of BITS effective bits (--kv-bits overrides); with
//                                     --kv-layers FILE its widths vary per layer too
//   oracle[@BITS]                     measured damage, knapsack per context (oracle_policy.h;
//                                     expensive: for --limit'ed runs)
#include <array>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "kv/kv_store.h"

namespace kvbits {

// What a policy may look at for one token, computed online by the engine (engine/session.cc)
// when the policy asks for it (PolicyNeeds). All are known when the token's own forward pass ends,
// except attn_received, which grows while the token waits in the FP16 window (R > 0).
struct TokenInfo {
  int64_t position = 0;
  int32_t token = 0;
  // PolicyNeeds::logits: the model's next-token distribution at this token (the one predicting
  // the following token), and how surprising the token itself was.
  float entropy = 0.0f;       // nats
  float confidence = 0.0f;    // its max probability
  float surprisal = 0.0f;     // -log p(token | prefix), nats (0 for the first token)
  // PolicyNeeds::attention: the token's own attention row in the final layer. Per head h the
  // concentration c_h = sum_j a_h(j)^2 (1/keys for uniform, 1 for one key); attn_variance is
  // the variance of c_h across heads, attn_concentration their mean.
  float attn_variance = 0.0f;
  float attn_concentration = 0.0f;
  // Attention mass the token received from later queries while in the window, final layer,
  // mean over heads, summed over queries (0 when R = 0).
  float attn_received = 0.0f;
  // PolicyNeeds::key_geometry: bit l set if the token's K row is sink-like in layer l (far from
  // the model's mean key; kv/kv_store.h key_sink_like_layers).
  uint64_t sink_like_layers = 0;
};

// Features a policy wants the engine to compute (each has a cost: docs/benchmarks.md).
struct PolicyNeeds {
  bool logits = false;     // entropy, confidence, surprisal: logits at every prompt position
  bool attention = false;  // attn_variance, attn_concentration, attn_received
  bool key_geometry = false;  // sink_like_layers: one range test per K row leaving the window
};

// Measured damage D(t, b) (engine/damage_probe.h) of positions [begin, end) of `tokens` for each
// class b of `classes` (K and V widths, not fp16/fp16), summed KL over the following `horizon`
// tokens: result[t - begin][j]. Supplied by the engine.
using DamageFn = std::function<std::vector<std::vector<float>>(std::span<const int32_t> tokens, int64_t begin,
                                                               int64_t end, int64_t horizon,
                                                               std::span<const KvPrecision> classes)>;

// What the engine tells a policy before its first decide(): the model's shape, the store's
// options (group, page size, per-token record: what a class costs in bytes), and a damage probe.
struct PolicyBinding {
  const LlamaConfig* config = nullptr;
  const KvStoreOptions* kv = nullptr;
  DamageFn damage;
};

class PrecisionPolicy {
 public:
  virtual ~PrecisionPolicy() = default;
  // Canonical spec, e.g. "int4/int2", "kivi:2", "rule".
  virtual std::string spec() const = 0;
  // The curve this policy belongs to in plots (spec without budget), and every parameter.
  virtual std::string family() const { return spec(); }
  virtual nlohmann::json parameters() const = 0;
  // True if it may give different tokens different widths (the store then keeps a per-token record).
  virtual bool mixed() const = 0;
  // True if the store may demote its tokens to lower widths to meet a memory budget.
  virtual bool allows_demotion() const { return mixed(); }
  // The narrowest class it ever returns.
  virtual KvPrecision floor() const = 0;
  // Tokens kept at FP16 in the window after each commit (R).
  virtual int64_t residual() const { return residual_; }
  virtual PolicyNeeds needs() const { return {}; }
  // The average effective bits it aims at, for policies with a budget (learned, oracle).
  virtual std::optional<double> budget_bits() const { return std::nullopt; }
  // Called by every Session using the policy, before any decide(). May throw Error (e.g. a
  // controller trained for another model, a budget below the cheapest class).
  virtual void bind(const PolicyBinding& binding) { (void)binding; }
  void set_residual(int64_t r) { residual_ = r; }

  // out[i * n_layers + l]: precision of tokens[i] in layer l.
  virtual void decide(std::span<const TokenInfo> tokens, int n_layers, std::span<KvPrecision> out) = 0;
  // The store keeps the token just decided at `bits` more (effective bits, mean over its layers)
  // than this policy chose: a wrapper promoted some of its rows (SinkPolicy). Policies that hold a
  // budget over a run (learned) count it against their target, so the run still averages the
  // target; the others ignore it.
  virtual void charge(double bits) { (void)bits; }

 protected:
  int64_t residual_ = 0;
};

struct PolicyOptions {
  std::optional<int64_t> residual;  // --kv-residual; unset: the policy's default
  std::optional<double> budget_bits;  // --kv-bits: average effective bits (learned, oracle)
  std::optional<std::string> layers;  // --kv-layers FILE: learned widths per layer (learned_policy.h)
};

// Budgets are average effective bits in [kMinBudgetBits, kMaxBudgetBits].
inline constexpr double kMinBudgetBits = 2.0, kMaxBudgetBits = 16.0;
// Throws Error("WHAT: ...") unless bits is finite and inside that range.
void check_budget_bits(double bits, const std::string& what);

// Parses a spec (see above). Throws Error with the accepted forms on anything else.
std::unique_ptr<PrecisionPolicy> parse_policy(const std::string& spec, const PolicyOptions& options = {});

// Parses "int4", "fp16", "int8/int4" into widths; throws Error naming `what` on bad input.
KvPrecision parse_width_pair(const std::string& text, const std::string& what);
// The inverse: "int4", "int4/int2", "fp16".
std::string width_pair_name(KvPrecision p);

}  // namespace kvbits
