#pragma once
// `layers:W0,W1,...`: a static width per layer (every token of layer l at W_l), e.g.
// `layers:int4x2,int2x28` (first two layers int4, the other 28 int2) or
// `layers:fp16x5,int2,fp16x24` (only layer 5 quantized: the per-layer sensitivity probe of
// docs/kv_quality.md). W is a width pair as in `--kv` (int4, int4/int2, fp16, ...); `WxN` repeats
// it N times. The list must name exactly the model's layers (checked when a session binds it).
#include <vector>

#include "policy/precision_policy.h"

namespace kvbits {

class LayerPolicy : public PrecisionPolicy {
 public:
  // Throws Error naming the spec on a malformed list.
  LayerPolicy(const std::string& list, int64_t residual);
  std::string spec() const override;
  nlohmann::json parameters() const override;
  // Every token of a layer shares its width, so the store needs no per-token record.
  bool mixed() const override { return false; }
  bool allows_demotion() const override { return false; }
  KvPrecision floor() const override;
  void bind(const PolicyBinding& binding) override;
  void decide(std::span<const TokenInfo> tokens, int n_layers, std::span<KvPrecision> out) override;

  const std::vector<KvPrecision>& widths() const { return widths_; }

 private:
  std::vector<KvPrecision> widths_;  // per layer
};

}  // namespace kvbits
