#pragma once
// `rule`: hand-written heuristics, the baseline a learned controller must beat.
//  * attention sinks: the first `sink_tokens` positions (models park attention there) -> `sink`;
//  * frequent tokens -> `frequent`. Frequency proxy: the token id. SmolLM2's byte-level BPE
//    vocabulary lists merges in the order they were learned, i.e. by corpus frequency, so ids below
//    `frequent_below` are the common words, pieces and punctuation;
//  * everything else -> `other`;
//  * recent tokens stay at FP16 in the residual window of R tokens (--kv-residual; default 0, so
//    that benchmark tables compress every context token, as ../shared/PROTOCOLS.md asks).
#include "policy/precision_policy.h"

namespace kvbits {

struct RuleOptions {
  int64_t sink_tokens = 4;
  KvPrecision sink{8, 8};
  int32_t frequent_below = 1000;
  KvPrecision frequent{4, 2};
  KvPrecision other{4, 4};
};

class RulePolicy : public PrecisionPolicy {
 public:
  RulePolicy(const RuleOptions& options, int64_t residual);
  std::string spec() const override { return "rule"; }
  nlohmann::json parameters() const override;
  bool mixed() const override { return true; }
  KvPrecision floor() const override;
  void decide(std::span<const TokenInfo> tokens, int n_layers, std::span<KvPrecision> out) override;

 private:
  RuleOptions options_;
};

}  // namespace kvbits
