#include "policy/sink_policy.h"

#include <algorithm>

#include "util/error.h"

namespace kvbits {

SinkPolicy::SinkPolicy(std::shared_ptr<PrecisionPolicy> inner, int64_t sinks) : inner_(std::move(inner)), sinks_(sinks) {
  if (!inner_) throw Error("--kv-sinks: no policy to wrap");
  if (sinks_ < 1) throw Error("--kv-sinks: the number of sink tokens must be at least 1");
}

std::string SinkPolicy::spec() const { return inner_->spec() + "+sinks:" + std::to_string(sinks_); }

std::string SinkPolicy::family() const { return inner_->family() + "+sinks:" + std::to_string(sinks_); }

nlohmann::json SinkPolicy::parameters() const {
  nlohmann::json p = inner_->parameters();
  p["sinks"] = sinks_;
  p["sink_width"] = "fp16";
  return p;
}

void SinkPolicy::decide(std::span<const TokenInfo> tokens, int n_layers, std::span<KvPrecision> out) {
  inner_->decide(tokens, n_layers, out);
  for (size_t i = 0; i < tokens.size(); ++i) {
    if (tokens[i].position >= sinks_) continue;
    std::fill_n(out.begin() + static_cast<ptrdiff_t>(i) * n_layers, n_layers, KvPrecision{16, 16});
  }
}

}  // namespace kvbits
