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
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>

#include <nlohmann/json.hpp>

#include "kv/kv_store.h"

namespace kvbits {

// What a policy may look at for one token. Features beyond ids and positions are filled only when
// the policy asks for them (PolicyNeeds).
struct TokenInfo {
  int64_t position = 0;
  int32_t token = 0;
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
  void set_residual(int64_t r) { residual_ = r; }

  // out[i * n_layers + l]: precision of tokens[i] in layer l.
  virtual void decide(std::span<const TokenInfo> tokens, int n_layers, std::span<KvPrecision> out) = 0;

 protected:
  int64_t residual_ = 0;
};

struct PolicyOptions {
  std::optional<int64_t> residual;  // --kv-residual; unset: the policy's default
};

// Parses a spec (see above). Throws Error with the accepted forms on anything else.
std::unique_ptr<PrecisionPolicy> parse_policy(const std::string& spec, const PolicyOptions& options = {});

// Parses "int4", "fp16", "int8/int4" into widths; throws Error naming `what` on bad input.
KvPrecision parse_width_pair(const std::string& text, const std::string& what);

}  // namespace kvbits
