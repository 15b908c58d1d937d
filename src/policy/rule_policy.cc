#include "policy/rule_policy.h"

#include <algorithm>

namespace kvbits {

RulePolicy::RulePolicy(const RuleOptions& options, int64_t residual) : options_(options) { residual_ = residual; }

nlohmann::json RulePolicy::parameters() const {
  return {{"sink_tokens", options_.sink_tokens}, {"sink", to_string(options_.sink)},
          {"frequent_below", options_.frequent_below}, {"frequent", to_string(options_.frequent)},
          {"other", to_string(options_.other)}, {"residual", residual_}};
}

KvPrecision RulePolicy::floor() const {
  KvPrecision f{16, 16};
  for (const KvPrecision& p : {options_.sink, options_.frequent, options_.other}) {
    f.k_bits = std::min(f.k_bits, p.k_bits);
    f.v_bits = std::min(f.v_bits, p.v_bits);
  }
  return f;
}

void RulePolicy::decide(std::span<const TokenInfo> tokens, int n_layers, std::span<KvPrecision> out) {
  for (size_t i = 0; i < tokens.size(); ++i) {
    const TokenInfo& t = tokens[i];
    const KvPrecision p = t.position < options_.sink_tokens   ? options_.sink
                          : t.token < options_.frequent_below ? options_.frequent
                                                              : options_.other;
    std::fill_n(out.begin() + static_cast<ptrdiff_t>(i) * n_layers, n_layers, p);
  }
}

}  // namespace kvbits
