#include "policy/sink_policy.h"

#include <algorithm>

#include "policy/learned_policy.h"  // class_effective_bits
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

void SinkPolicy::bind(const PolicyBinding& binding) {
  inner_->bind(binding);
  row_bits_.clear();
  if (!binding.config || !binding.kv) return;
  for (int k = 2; k <= 16; k *= 2) {
    for (int v = 2; v <= 16; v *= 2) {
      row_bits_.push_back(class_effective_bits(*binding.config, *binding.kv,
                                               {static_cast<uint8_t>(k), static_cast<uint8_t>(v)}));
    }
  }
}

double SinkPolicy::row_bits(KvPrecision p) const {
  const auto idx = [](int b) { return b == 2 ? 0 : b == 4 ? 1 : b == 8 ? 2 : 3; };
  return row_bits_[static_cast<size_t>(idx(p.k_bits) * 4 + idx(p.v_bits))];
}

void SinkPolicy::decide(std::span<const TokenInfo> tokens, int n_layers, std::span<KvPrecision> out) {
  inner_->decide(tokens, n_layers, out);
  for (size_t i = 0; i < tokens.size(); ++i) {
    double extra = 0.0;  // effective bits added over the token's layers
    for (int l = 0; l < n_layers; ++l) {
      KvPrecision& p = out[i * static_cast<size_t>(n_layers) + static_cast<size_t>(l)];
      KvPrecision q = p;
      if (tokens[i].position < sinks_) {
        q = {16, 16};
      } else if (sink_like_ && l < 64 && (tokens[i].sink_like_layers >> l & 1)) {
        q = {std::max(p.k_bits, sink_like_->k_bits), std::max(p.v_bits, sink_like_->v_bits)};
      }
      if (q == p) continue;
      if (!row_bits_.empty()) extra += row_bits(q) - row_bits(p);
      p = q;
    }
    // Charged per token after the whole batch: a budgeted inner policy makes up for it in the
    // tokens it decides next (the next chunk or context).
    if (extra > 0.0) inner_->charge(extra / n_layers);
  }
}

}  // namespace kvbits
