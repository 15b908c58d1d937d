#include "policy/layer_policy.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>

#include "model/llama_config.h"
#include "policy/learned_policy.h"
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

LayerPolicy::LayerPolicy(LayerSensitivity sensitivity, std::filesystem::path path, double budget, int64_t residual)
    : sensitivity_(std::move(sensitivity)), path_(std::move(path)), budget_(budget) {
  residual_ = residual;
}

std::string LayerPolicy::family() const {
  if (!sensitivity_) return spec();
  return "alloc:" + path_.stem().string();
}

std::string LayerPolicy::spec() const {
  if (sensitivity_) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "@%g", *budget_);
    return family() + buf;
  }
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
  nlohmann::json p = {{"layers", layers}, {"residual", residual_}};
  if (sensitivity_) {
    p["sensitivity"] = path_.string();
    p["target_bits"] = *budget_;
    if (!widths_.empty()) p["allocated_bits"] = allocated_bits_;
  }
  return p;
}

KvPrecision LayerPolicy::floor() const {
  const std::vector<KvPrecision>& from = sensitivity_ ? sensitivity_->classes : widths_;
  KvPrecision f = from.front();
  for (const KvPrecision& w : from) {
    f.k_bits = std::min(f.k_bits, w.k_bits);
    f.v_bits = std::min(f.v_bits, w.v_bits);
  }
  return f;
}

void LayerPolicy::bind(const PolicyBinding& binding) {
  if (!binding.config) return;
  const LlamaConfig& config = *binding.config;
  if (sensitivity_) {
    const LayerSensitivity& s = *sensitivity_;
    if (s.n_layers != config.n_layers) {
      throw Error(path_.string() + ": measured on a model with " + std::to_string(s.n_layers) + " layers" +
                  (s.model_name.empty() ? "" : " (" + s.model_name + ")") + ", this one has " +
                  std::to_string(config.n_layers));
    }
    if (!binding.kv) throw Error("alloc policy: bound without the store's options");
    const std::vector<double> bits = reachable_class_bits(*budget_, config, *binding.kv, s.classes, spec());
    const std::vector<int> pick = allocate_layers(s.kl, bits, *budget_);
    widths_.clear();
    allocated_bits_ = 0.0;
    for (int c : pick) {
      widths_.push_back(s.classes[static_cast<size_t>(c)]);
      allocated_bits_ += bits[static_cast<size_t>(c)] / static_cast<double>(pick.size());
    }
    return;
  }
  if (static_cast<size_t>(config.n_layers) != widths_.size()) {
    throw Error("--kv " + spec() + ": names " + std::to_string(widths_.size()) + " layers but the model has " +
                std::to_string(config.n_layers));
  }
}

void LayerPolicy::decide(std::span<const TokenInfo> tokens, int n_layers, std::span<KvPrecision> out) {
  if (static_cast<int>(widths_.size()) != n_layers) throw Error("layer policy: decide() before bind()");
  for (size_t i = 0; i < tokens.size(); ++i) {
    for (int l = 0; l < n_layers; ++l) out[i * static_cast<size_t>(n_layers) + static_cast<size_t>(l)] = widths_[static_cast<size_t>(l)];
  }
}

}  // namespace kvbits
