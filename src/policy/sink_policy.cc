#include "policy/sink_policy.h"

#include <algorithm>

#include "util/error.h"

namespace kvbits {

SinkPolicy::SinkPolicy(std::shared_ptr<PrecisionPolicy> inner, int64_t sinks, std::optional<KvPrecision> sink_like)
    : inner_(std::move(inner)), sinks_(sinks), sink_like_(sink_like) {
  if (!inner_) throw Error("--kv-sinks: no policy to wrap");
  if (sinks_ < 0) throw Error("--kv-sinks: the number of sink tokens cannot be negative");
  if (sinks_ == 0 && !sink_like_) throw Error("--kv-sinks: neither sink tokens nor sink-like rows to keep");
}

std::string SinkPolicy::suffix() const {
  return (sinks_ > 0 ? "+sinks:" + std::to_string(sinks_) : "") + (sink_like_ ? "+sinklike:" + width_pair_name(*sink_like_) : "");
}

std::string SinkPolicy::spec() const { return inner_->spec() + suffix(); }

std::string SinkPolicy::family() const { return inner_->family() + suffix(); }

PolicyNeeds SinkPolicy::needs() const {
  PolicyNeeds n = inner_->needs();
  n.key_geometry |= sink_like_.has_value();
  return n;
}

nlohmann::json SinkPolicy::parameters() const {
  nlohmann::json p = inner_->parameters();
  p["sinks"] = sinks_;
  p["sink_like_width"] = sink_like_ ? width_pair_name(*sink_like_) : "none";
  p["sink_width"] = "fp16";
  return p;
}

void SinkPolicy::decide(std::span<const TokenInfo> tokens, int n_layers, std::span<KvPrecision> out) {
  inner_->decide(tokens, n_layers, out);
  for (size_t i = 0; i < tokens.size(); ++i) {
    if (tokens[i].position < sinks_) {
      std::fill_n(out.begin() + static_cast<ptrdiff_t>(i) * n_layers, n_layers, KvPrecision{16, 16});
      continue;
    }
    if (!sink_like_) continue;
    for (int l = 0; l < n_layers && l < 64; ++l) {
      if (!(tokens[i].sink_like_layers >> l & 1)) continue;
      KvPrecision& p = out[i * n_layers + l];
      p = {std::max(p.k_bits, sink_like_->k_bits), std::max(p.v_bits, sink_like_->v_bits)};
    }
  }
}

}  // namespace kvbits
