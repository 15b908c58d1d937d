#include "policy/layer_sensitivity.h"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <limits>
#include <sstream>

#include "policy/precision_policy.h"
#include "util/error.h"

namespace kvbits {

using nlohmann::json;

LayerSensitivity layer_sensitivity_from_json(const json& doc, const std::string& where) {
  const auto fail = [&](const std::string& field, const std::string& problem) {
    throw Error(where + ": field '" + field + "' " + problem);
  };
  if (!doc.is_object()) throw Error(where + ": not a layer sensitivity file (a JSON object expected)");
  if (!doc.contains("format") || doc["format"] != "kvbits-layer-sensitivity") {
    fail("format", "must be \"kvbits-layer-sensitivity\"");
  }
  if (!doc.contains("format_version") || !doc["format_version"].is_number_integer() || doc["format_version"] != 1) {
    fail("format_version", "must be 1 (this kvbits reads version 1)");
  }
  LayerSensitivity s;
  if (!doc.contains("model") || !doc["model"].is_object()) fail("model", "must be an object");
  const json& m = doc["model"];
  if (m.contains("name") && m["name"].is_string()) s.model_name = m["name"].get<std::string>();
  if (!m.contains("n_layers") || !m["n_layers"].is_number_integer() || m["n_layers"].get<int64_t>() < 1 ||
      m["n_layers"].get<int64_t>() > 4096) {
    fail("model.n_layers", "must be an integer in [1, 4096]");
  }
  s.n_layers = m["n_layers"].get<int>();
  if (!doc.contains("classes") || !doc["classes"].is_array() || doc["classes"].empty()) {
    fail("classes", "must be a non-empty array of widths");
  }
  for (size_t c = 0; c < doc["classes"].size(); ++c) {
    const json& x = doc["classes"][c];
    if (!x.is_string()) fail("classes[" + std::to_string(c) + "]", "must be a width like \"int4/int2\"");
    s.classes.push_back(parse_width_pair(x.get<std::string>(), where + ": classes[" + std::to_string(c) + "]"));
  }
  if (!doc.contains("kl") || !doc["kl"].is_array() || doc["kl"].size() != s.classes.size()) {
    fail("kl", "must hold one array per class");
  }
  for (size_t c = 0; c < s.classes.size(); ++c) {
    const json& row = doc["kl"][c];
    const std::string f = "kl[" + std::to_string(c) + "]";
    if (!row.is_array() || static_cast<int>(row.size()) != s.n_layers) {
      fail(f, "must hold one number per layer (" + std::to_string(s.n_layers) + ")");
    }
    std::vector<double> v;
    for (size_t l = 0; l < row.size(); ++l) {
      if (!row[l].is_number() || !std::isfinite(row[l].get<double>()) || row[l].get<double>() < 0.0) {
        fail(f + "[" + std::to_string(l) + "]", "must be a finite number >= 0");
      }
      v.push_back(row[l].get<double>());
    }
    s.kl.push_back(std::move(v));
  }
  if (doc.contains("source")) s.source = doc["source"];
  return s;
}

LayerSensitivity read_layer_sensitivity(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    std::error_code ec;
    throw Error(path.string() + (std::filesystem::exists(path, ec) ? ": cannot read the layer sensitivity file"
                                                                    : ": layer sensitivity file not found"));
  }
  std::stringstream ss;
  ss << in.rdbuf();
  json doc;
  try {
    doc = json::parse(ss.str());
  } catch (const json::parse_error& e) {
    throw Error(path.string() + ": not a valid layer sensitivity file (truncated or not JSON: parse error at byte " +
                std::to_string(e.byte) + ")");
  }
  return layer_sensitivity_from_json(doc, path.string());
}

std::vector<int> allocate_layers(const std::vector<std::vector<double>>& kl, const std::vector<double>& class_bits,
                                 double budget) {
  const size_t n_classes = class_bits.size();
  if (n_classes == 0 || kl.size() != n_classes || kl[0].empty()) throw Error("layer allocation: no classes or layers");
  const size_t n_layers = kl[0].size();
  // Bits in units of 1/100, rounded up so the allocation never exceeds the budget by rounding.
  std::vector<int64_t> units(n_classes);
  for (size_t c = 0; c < n_classes; ++c) units[c] = static_cast<int64_t>(std::ceil(class_bits[c] * 100.0 - 1e-9));
  const int64_t cap = static_cast<int64_t>(std::floor(budget * 100.0 * static_cast<double>(n_layers) + 1e-9));
  const int64_t cheapest = *std::min_element(units.begin(), units.end());
  if (cap < cheapest * static_cast<int64_t>(n_layers)) {
    throw Error("layer allocation: a budget of " + std::to_string(budget) + " bits is below the cheapest class");
  }
  constexpr double kInf = std::numeric_limits<double>::infinity();
  const size_t width = static_cast<size_t>(cap) + 1;
  // best[l][u]: least damage of layers [0, l) using exactly u units; pick[l][u]: class of layer l - 1.
  std::vector<std::vector<double>> best(n_layers + 1, std::vector<double>(width, kInf));
  std::vector<std::vector<int>> pick(n_layers + 1, std::vector<int>(width, -1));
  best[0][0] = 0.0;
  for (size_t l = 0; l < n_layers; ++l) {
    for (size_t u = 0; u < width; ++u) {
      if (best[l][u] == kInf) continue;
      for (size_t c = 0; c < n_classes; ++c) {
        const size_t v = u + static_cast<size_t>(units[c]);
        if (v >= width) continue;
        const double d = best[l][u] + kl[c][l];
        if (d < best[l + 1][v]) {
          best[l + 1][v] = d;
          pick[l + 1][v] = static_cast<int>(c);
        }
      }
    }
  }
  size_t u = 0;
  for (size_t v = 0; v < width; ++v) {
    if (best[n_layers][v] < best[n_layers][u]) u = v;
  }
  std::vector<int> out(n_layers);
  for (size_t l = n_layers; l > 0; --l) {
    out[l - 1] = pick[l][u];
    u -= static_cast<size_t>(units[static_cast<size_t>(pick[l][u])]);
  }
  return out;
}

}  // namespace kvbits
