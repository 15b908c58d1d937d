#include "policy/static_policy.h"

#include <algorithm>

namespace kvbits {

namespace {
std::string width_name(int bits) { return bits == 16 ? "fp16" : "int" + std::to_string(bits); }
}  // namespace

StaticPolicy::StaticPolicy(KvPrecision precision, std::string name, int64_t residual)
    : precision_(precision), name_(std::move(name)) {
  residual_ = residual;
}

std::string StaticPolicy::spec() const {
  if (name_ == "kivi") return "kivi:" + std::to_string(precision_.k_bits);
  if (precision_.k_bits == precision_.v_bits) return width_name(precision_.k_bits);
  return width_name(precision_.k_bits) + "/" + width_name(precision_.v_bits);
}

nlohmann::json StaticPolicy::parameters() const {
  return {{"k_bits", precision_.k_bits}, {"v_bits", precision_.v_bits}, {"residual", residual_}};
}

void StaticPolicy::decide(std::span<const TokenInfo>, int, std::span<KvPrecision> out) {
  std::fill(out.begin(), out.end(), precision_);
}

}  // namespace kvbits
