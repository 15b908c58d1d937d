#include "policy/precision_policy.h"

#include "policy/rule_policy.h"
#include "policy/static_policy.h"
#include "util/error.h"

namespace kvbits {

namespace {

constexpr const char* kSpecHelp =
    "fp16, int8, int4, int2, K/V pairs like int4/int2, kivi:2, kivi:4, rule";

int parse_width(const std::string& w, const std::string& what) {
  if (w == "fp16" || w == "int16") return 16;
  if (w == "int8") return 8;
  if (w == "int4") return 4;
  if (w == "int2") return 2;
  throw Error(what + ": '" + w + "' is not a KV width (fp16, int8, int4, int2)");
}

}  // namespace

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

std::unique_ptr<PrecisionPolicy> parse_policy(const std::string& spec, const PolicyOptions& options) {
  if (spec.empty()) throw Error(std::string("--kv: empty policy (one of: ") + kSpecHelp + ")");
  if (options.residual && *options.residual < 0) {
    throw Error("--kv-residual: R must be >= 0, got " + std::to_string(*options.residual));
  }
  const int64_t r0 = options.residual.value_or(0);
  if (spec == "rule") return std::make_unique<RulePolicy>(RuleOptions{}, r0);
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
