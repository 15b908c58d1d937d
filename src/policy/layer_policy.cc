#include "policy/layer_policy.h"

#include <algorithm>
#include <cstdlib>

#include "model/llama_config.h"
#include "util/error.h"

namespace kvbits {

namespace {
// Most layers a list may name (guards "int4x999999999").
constexpr long kMaxLayers = 4096;
}  // namespace

LayerPolicy::LayerPolicy(const std::string& list, int64_t residual) {
  residual_ = residual;
  const std::string what = "--kv layers:" + list;
  if (list.empty()) throw Error(what + ": give one width per layer, e.g. layers:int4x2,int2x28");
  size_t begin = 0;
  while (begin <= list.size()) {
    const size_t comma = std::min(list.find(',', begin), list.size());
    const std::string item = list.substr(begin, comma - begin);
    if (item.empty()) throw Error(what + ": empty entry");
    const size_t x = item.find('x');
    long repeat = 1;
    if (x != std::string::npos) {
      const std::string n = item.substr(x + 1);
      char* end = nullptr;
      repeat = n.empty() ? 0 : std::strtol(n.c_str(), &end, 10);
      if (n.empty() || end != n.c_str() + n.size() || repeat < 1 || repeat > kMaxLayers) {
        throw Error(what + ": '" + item + "': the repeat count after 'x' must be 1.." + std::to_string(kMaxLayers));
      }
    }
    const KvPrecision w = parse_width_pair(item.substr(0, x), what);
    if (static_cast<long>(widths_.size()) + repeat > kMaxLayers) throw Error(what + ": more than 4096 layers");
    widths_.insert(widths_.end(), static_cast<size_t>(repeat), w);
    begin = comma + 1;
  }
}

std::string LayerPolicy::spec() const {
  std::string s = "layers:";
  for (size_t i = 0; i < widths_.size();) {
    size_t j = i;
    while (j < widths_.size() && widths_[j] == widths_[i]) ++j;
    if (i > 0) s += ",";
    s += width_pair_name(widths_[i]);
    if (j - i > 1) s += "x" + std::to_string(j - i);
    i = j;
  }
  return s;
}

nlohmann::json LayerPolicy::parameters() const {
  nlohmann::json layers = nlohmann::json::array();
  for (const KvPrecision& w : widths_) layers.push_back(width_pair_name(w));
  return {{"layers", layers}, {"residual", residual_}};
}

KvPrecision LayerPolicy::floor() const {
  KvPrecision f = widths_.front();
  for (const KvPrecision& w : widths_) {
    f.k_bits = std::min(f.k_bits, w.k_bits);
    f.v_bits = std::min(f.v_bits, w.v_bits);
  }
  return f;
}

void LayerPolicy::bind(const PolicyBinding& binding) {
  if (binding.config && static_cast<size_t>(binding.config->n_layers) != widths_.size()) {
    throw Error("--kv " + spec() + ": names " + std::to_string(widths_.size()) + " layers but the model has " +
                std::to_string(binding.config->n_layers));
  }
}

void LayerPolicy::decide(std::span<const TokenInfo> tokens, int n_layers, std::span<KvPrecision> out) {
  for (size_t i = 0; i < tokens.size(); ++i) {
    for (int l = 0; l < n_layers; ++l) out[i * static_cast<size_t>(n_layers) + static_cast<size_t>(l)] = widths_[static_cast<size_t>(l)];
  }
}

}  // namespace kvbits
