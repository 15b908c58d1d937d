#pragma once
// Static widths per layer (every token of layer l at W_l):
//  * `layers:W0,W1,...`: the list given, e.g. `layers:int4x2,int2x28` (first two layers int4, the
//    other 28 int2) or `layers:fp16x5,int2,fp16x24` (only layer 5 quantized: the sensitivity probe
//    of scripts/layers/sensitivity.sh). W is a width pair as in `--kv` (int4, int4/int2, fp16, ...);
//    `WxN` repeats it N times. The list must name exactly the model's layers (checked at bind).
//  * `alloc:FILE@BITS`: the list that minimises the summed measured single-layer damage of a layer
//    sensitivity file (policy/layer_sensitivity.h) at an average of BITS effective bits, computed
//    when a session binds the policy (class bits from the store's own layout).
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "policy/layer_sensitivity.h"
#include "policy/precision_policy.h"

namespace kvbits {

class LayerPolicy : public PrecisionPolicy {
 public:
  // layers:LIST. Throws Error naming the spec on a malformed list.
  LayerPolicy(const std::string& list, int64_t residual);
  // alloc:PATH@BUDGET with the file already read.
  LayerPolicy(LayerSensitivity sensitivity, std::filesystem::path path, double budget, int64_t residual);

  std::string spec() const override;
  std::string family() const override;
  nlohmann::json parameters() const override;
  // Every token of a layer shares its width, so the store needs no per-token record.
  bool mixed() const override { return false; }
  bool allows_demotion() const override { return false; }
  KvPrecision floor() const override;
  std::optional<double> budget_bits() const override { return budget_; }
  void bind(const PolicyBinding& binding) override;
  void decide(std::span<const TokenInfo> tokens, int n_layers, std::span<KvPrecision> out) override;

  // Per layer (alloc: empty until bound).
  const std::vector<KvPrecision>& widths() const { return widths_; }

 private:
  std::vector<KvPrecision> widths_;
  // alloc: only
  std::optional<LayerSensitivity> sensitivity_;
  std::filesystem::path path_;
  std::optional<double> budget_;
  double allocated_bits_ = 0.0;  // mean class bits of the allocation
};

}  // namespace kvbits
