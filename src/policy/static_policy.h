#pragma once
// Static policies: every token at one (K, V) width; kivi = static 2 or 4 bits + FP16 residual.
#include "policy/precision_policy.h"

namespace kvbits {

class StaticPolicy : public PrecisionPolicy {
 public:
  // name: "" for plain static specs, "kivi" for KIVI-style.
  StaticPolicy(KvPrecision precision, std::string name, int64_t residual);
  std::string spec() const override;
  nlohmann::json parameters() const override;
  bool mixed() const override { return false; }
  KvPrecision floor() const override { return precision_; }
  void decide(std::span<const TokenInfo> tokens, int n_layers, std::span<KvPrecision> out) override;

 private:
  KvPrecision precision_;
  std::string name_;
};

}  // namespace kvbits
