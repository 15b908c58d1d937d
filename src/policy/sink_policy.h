#pragma once
// Attention sinks at FP16 on top of any policy: the first N positions of a context (`--kv-sinks
// N`) are stored at 16 bits in every layer, whatever the wrapped policy decides, and with
// `--kv-sinklike WIDTH` every K/V row pair whose key is sink-like in its layer (far from the
// model's mean key: TokenInfo::sink_like_layers, ops/kv_codec.h kv_key_row_sink_like) gets at
// least WIDTH (e.g. fp16, int8, int4) in that layer; every other row gets the wrapped policy's
// width.
//
// Why: models park most of a head's attention on the first token(s) (attention sinks), so an
// error in their keys shifts every other token's weight and an error in their values reaches
// every output. On WikiText-2 (16 windows, key centring on) one FP16 sink cuts the KL of int2 by
// 18 % and of int4/int2 by 33 % for +0.03 bits at a 512-token context (docs/kv_quality.md).
//
// The sink rows count in the effective bits like any row. The wrapped policy is charged the bits
// of every promotion (PrecisionPolicy::charge), so a learned policy still averages its budget
// over a run: the other tokens give up what the sinks take (on a 12-token OpenBookQA context one
// FP16 sink is +1.1 bits). Policies without a running budget (alloc, oracle, static) get the
// promotions on top: N (16 - b) / T bits more at context T, e.g. +0.03 for N = 1 at T = 512. The
// store keeps a per-token record (mixed widths), which a static or per-layer policy alone does
// not need (+0.04 bits).
//
// Sink-like rows: beside the first token, a few tokens per layer (0.1-5 % of rows on SmolLM2,
// most in the first layers) have keys far from the mean, and they draw a large share of the
// attention: an offline simulation on real K/V (512 WikiText tokens) put the output error of
// 2-bit values 28 % lower with them at FP16 than with only the first token (docs/kv_quality.md).
// Their share, hence their cost in bits, depends on the text; the effective bits say it.
#include <memory>
#include <optional>
#include <vector>

#include "policy/precision_policy.h"

namespace kvbits {

class SinkPolicy : public PrecisionPolicy {
 public:
  // sinks >= 0, at least one sink or a sink_like width; inner non-null.
  SinkPolicy(std::shared_ptr<PrecisionPolicy> inner, int64_t sinks, std::optional<KvPrecision> sink_like = {});

  std::string spec() const override;    // "<inner spec>[+sinks:N][+sinklike:WIDTH]"
  std::string family() const override;  // the same with the inner family
  nlohmann::json parameters() const override;
  bool mixed() const override { return true; }
  bool allows_demotion() const override { return inner_->allows_demotion(); }
  KvPrecision floor() const override { return inner_->floor(); }
  int64_t residual() const override { return inner_->residual(); }
  PolicyNeeds needs() const override;
  std::optional<double> budget_bits() const override { return inner_->budget_bits(); }
  void bind(const PolicyBinding& binding) override;
  void decide(std::span<const TokenInfo> tokens, int n_layers, std::span<KvPrecision> out) override;
  void charge(double bits) override { inner_->charge(bits); }

 private:
  std::shared_ptr<PrecisionPolicy> inner_;
  int64_t sinks_;
  std::optional<KvPrecision> sink_like_;  // the least width of sink-like rows
  // Effective bits of one token-layer row per (K bits, V bits), index [log2(k) - 1][log2(v) - 1]
  // (from the store's layout at bind; empty before).
  std::vector<double> row_bits_;
  double row_bits(KvPrecision p) const;
  std::string suffix() const;
};

}  // namespace kvbits
