#include "policy/precision_policy.h"

#include <cmath>
#include <cstdio>
#include <cstdlib>

#include "policy/layer_policy.h"
#include "policy/learned_policy.h"
#include "policy/oracle_policy.h"
#include "policy/rule_policy.h"
#include "policy/static_policy.h"
#include "util/error.h"

namespace kvbits {

namespace {

constexpr const char* kSpecHelp =
    "fp16, int8, int4, int2, K/V pairs like int4/int2, kivi:2, kivi:4, rule, layers:W0,W1,... (WxN repeats), "
    "alloc:FILE@BITS, learned:FILE[@BITS], oracle@BITS";

int parse_width(const std::string& w, const std::string& what) {
  if (w == "fp16" || w == "int16") return 16;
  if (w == "int8") return 8;
  if (w == "int4") return 4;
  if (w == "int2") return 2;
  throw Error(what + ": '" + w + "' is not a KV width (fp16, int8, int4, int2)");
}

// Splits "NAME@BITS" into NAME and the budget (nullopt without '@'); throws on a malformed number.
std::pair<std::string, std::optional<double>> split_budget(const std::string& spec) {
  const size_t at = spec.rfind('@');
  if (at == std::string::npos) return {spec, std::nullopt};
  const std::string num = spec.substr(at + 1);
  char* end = nullptr;
  const double v = num.empty() ? NAN : std::strtod(num.c_str(), &end);
  if (num.empty() || end != num.c_str() + num.size()) {
    throw Error("--kv: '" + spec + "': the budget after '@' must be a number of bits, e.g. @3");
  }
  return {spec.substr(0, at), v};
}

// The budget from "@BITS" or --kv-bits (both given: they must agree).
std::optional<double> merge_budget(const std::optional<double>& in_spec, const std::optional<double>& flag,
                                   const std::string& spec) {
  if (in_spec && flag && *in_spec != *flag) {
    throw Error("--kv '" + spec + "' and --kv-bits give different budgets; give it once");
  }
  return in_spec ? in_spec : flag;
}

}  // namespace

void check_budget_bits(double bits, const std::string& what) {
  if (!std::isfinite(bits) || bits < kMinBudgetBits || bits > kMaxBudgetBits) {
    char buf[160];
    std::snprintf(buf, sizeof buf, "%s: a budget of %g effective bits is outside [%g, %g]", what.c_str(), bits,
                  kMinBudgetBits, kMaxBudgetBits);
    throw Error(buf);
  }
}

KvPrecision parse_width_pair(const std::string& text, const std::string& what) {
  const size_t slash = text.find('/');
  if (slash == std::string::npos) {
    const int b = parse_width(text, what);
    return {static_cast<uint8_t>(b), static_cast<uint8_t>(b)};
  }
  if (text.find('/', slash + 1) != std::string::npos) throw Error(what + ": '" + text + "' has more than one '/'");
  return {static_cast<uint8_t>(parse_width(text.substr(0, slash), what)),
          static_cast<uint8_t>(parse_width(text.substr(slash + 1), what))};
}

std::string width_pair_name(KvPrecision p) {
  const auto w = [](int b) { return b == 16 ? std::string("fp16") : "int" + std::to_string(b); };
  return p.k_bits == p.v_bits ? w(p.k_bits) : w(p.k_bits) + "/" + w(p.v_bits);
}

std::unique_ptr<PrecisionPolicy> parse_policy(const std::string& spec, const PolicyOptions& options) {
  if (spec.empty()) throw Error(std::string("--kv: empty policy (one of: ") + kSpecHelp + ")");
  if (options.residual && *options.residual < 0) {
    throw Error("--kv-residual: R must be >= 0, got " + std::to_string(*options.residual));
  }
  const int64_t r0 = options.residual.value_or(0);
  if (options.budget_bits) check_budget_bits(*options.budget_bits, "--kv-bits");
  if (spec.rfind("learned", 0) == 0) {
    if (spec.size() < 9 || spec[7] != ':') throw Error("--kv: '" + spec + "': give the controller file, learned:FILE[@BITS]");
    const auto [path, bits] = split_budget(spec.substr(8));
    if (path.empty()) throw Error("--kv: '" + spec + "': give the controller file, learned:FILE[@BITS]");
    const std::optional<double> budget = merge_budget(bits, options.budget_bits, spec);
    if (budget) check_budget_bits(*budget, "--kv " + spec);
    auto policy = LearnedPolicy::load(path, budget, r0);
    if (options.layers) policy->with_layers(read_layer_sensitivity(*options.layers), *options.layers);
    return policy;
  }
  if (options.layers) throw Error("--kv-layers: '" + spec + "' is not a learned policy; per-layer widths from a file apply to learned:FILE (or use alloc:FILE@BITS)");
  if (spec.rfind("alloc", 0) == 0) {
    if (spec.size() < 7 || spec[5] != ':') throw Error("--kv: '" + spec + "': give the sensitivity file, alloc:FILE@BITS");
    const auto [path, bits] = split_budget(spec.substr(6));
    if (path.empty()) throw Error("--kv: '" + spec + "': give the sensitivity file, alloc:FILE@BITS");
    const std::optional<double> budget = merge_budget(bits, options.budget_bits, spec);
    if (!budget) throw Error("--kv " + spec + " needs a budget: alloc:FILE@BITS or --kv-bits BITS");
    check_budget_bits(*budget, "--kv " + spec);
    return std::make_unique<LayerPolicy>(read_layer_sensitivity(path), path, *budget, r0);
  }
  if (spec.rfind("oracle", 0) == 0) {
    const auto [name, bits] = split_budget(spec);
    int64_t horizon = 16;
    if (name != "oracle") {
      const std::string h = name.rfind("oracle:h", 0) == 0 ? name.substr(8) : "";
      char* end = nullptr;
      const long v = h.empty() ? 0 : std::strtol(h.c_str(), &end, 10);
      if (h.empty() || end != h.c_str() + h.size() || v < 1 || v > 256) {
        throw Error("--kv: '" + spec + "' is not oracle@BITS or oracle:hHORIZON@BITS (horizon 1..256)");
      }
      horizon = v;
    }
    const std::optional<double> budget = merge_budget(bits, options.budget_bits, spec);
    if (!budget) throw Error("--kv oracle needs a budget: oracle@BITS or --kv-bits BITS");
    check_budget_bits(*budget, "--kv " + spec);
    return std::make_unique<OraclePolicy>(*budget, horizon, r0);
  }
  if (options.budget_bits) {
    throw Error("--kv-bits: '" + spec + "' stores fixed widths; a budget applies to learned and oracle policies");
  }
  if (spec == "rule") return std::make_unique<RulePolicy>(RuleOptions{}, r0);
  if (spec.rfind("layers:", 0) == 0) return std::make_unique<LayerPolicy>(spec.substr(7), r0);
  if (spec.rfind("kivi", 0) == 0) {
    const std::string bits = spec == "kivi" ? "2" : spec.size() > 5 && spec[4] == ':' ? spec.substr(5) : "";
    if (bits != "2" && bits != "4") throw Error("--kv: '" + spec + "' is not kivi:2 or kivi:4");
    const uint8_t b = static_cast<uint8_t>(std::stoi(bits));
    return std::make_unique<StaticPolicy>(KvPrecision{b, b}, "kivi", options.residual.value_or(128));
  }
  if (spec.rfind("int", 0) == 0 || spec.rfind("fp16", 0) == 0) {
    return std::make_unique<StaticPolicy>(parse_width_pair(spec, "--kv"), "", r0);
  }
  throw Error("--kv: unknown policy '" + spec + "' (one of: " + kSpecHelp + ")");
}

}  // namespace kvbits
