#pragma once
// Attention sinks at FP16 on top of any policy (`--kv-sinks N`): the first N positions of a
// context are stored at 16 bits in every layer, whatever the wrapped policy decides; every other
// token gets the wrapped policy's width.
//
// Why: models park most of a head's attention on the first token(s) (attention sinks), so an
// error in their keys shifts every other token's weight and an error in their values reaches
// every output. On WikiText-2 (16 windows, key centring on) one FP16 sink cuts the KL of int2 by
// 18 % and of int4/int2 by 33 % for +0.03 bits at a 512-token context (docs/kv_quality.md).
//
// The sink rows count in the effective bits like any row. For policies with a budget (learned,
// alloc, oracle) they come on top of it: N (16 - b) / T bits more at context T, e.g. +0.03 for
// N = 1 at T = 512 but +0.5 for a 30-token multiple-choice context. The store keeps a per-token
// record (mixed widths), which a static or per-layer policy alone does not need (+0.04 bits).
#include <memory>

#include "policy/precision_policy.h"

namespace kvbits {

class SinkPolicy : public PrecisionPolicy {
 public:
  // sinks >= 1; inner non-null.
  SinkPolicy(std::shared_ptr<PrecisionPolicy> inner, int64_t sinks);

  std::string spec() const override;    // "<inner spec>+sinks:N"
  std::string family() const override;  // "<inner family>+sinks:N"
  nlohmann::json parameters() const override;
  bool mixed() const override { return true; }
  bool allows_demotion() const override { return inner_->allows_demotion(); }
  KvPrecision floor() const override { return inner_->floor(); }
  int64_t residual() const override { return inner_->residual(); }
  PolicyNeeds needs() const override { return inner_->needs(); }
  std::optional<double> budget_bits() const override { return inner_->budget_bits(); }
  void bind(const PolicyBinding& binding) override { inner_->bind(binding); }
  void decide(std::span<const TokenInfo> tokens, int n_layers, std::span<KvPrecision> out) override;

 private:
  std::shared_ptr<PrecisionPolicy> inner_;
  int64_t sinks_;
};

}  // namespace kvbits
