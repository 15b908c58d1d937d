#pragma once
// The learned precision controller as data: a small, versioned JSON file loaded at run time
// (`--kv learned:controllers/NAME.json`), written by `kvbits train`.
//
// Format "kvbits-controller", format_version 1:
// {
//   "format": "kvbits-controller", "format_version": 1,
//   "model": {"architecture": "llama", "name": "...", "n_layers": 30, "n_kv_heads": 3,
//             "head_dim": 64, "kv_dim": 192, "vocab_size": 49152},   // the model it was fitted on
//   "classes": ["int2", "int4/int2", "int4", "int8", "fp16"],  // MLP output j scores class j (K width/V width)
//   "features": [{"name": "entropy", "transform": "none", "mean": 2.1, "std": 1.3}, ...],
//   "mlp": {"activation": "relu", "sizes": [7, 64, 64, 5],
//           "layers": [{"w": [out * in numbers, row-major], "b": [out numbers]}, ...]},
//   "rarity": {"vocab_size": 49152, "alpha": 0.5, "ids": [ascending token ids seen],
//              "counts": [their counts]},                       // TokenFrequency
//   "budget": {"class_bits": [2.29, 3.29, 4.29, 8.54, 16.04],  // effective bits per class when calibrated
//              "bits": [ascending targets], "lambda": [matching multipliers],  // lambda(target)
//              "gain": 0.02,                               // online correction (learned_policy.h)
//              "default_bits": 3.0},                       // target when none is given
//   "training": {...}                                      // free-form summary (data, loss, accuracy)
// }
// The decision for a token is argmax_j score_j - lambda * bits_j, score = MLP(features).
#include <filesystem>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "kv/kv_store.h"
#include "model/llama_config.h"
#include "policy/controller_features.h"
#include "policy/mlp.h"

namespace kvbits {

inline constexpr const char* kControllerFormat = "kvbits-controller";
inline constexpr int kControllerFormatVersion = 1;

struct ControllerModel {
  std::string architecture;
  std::string name;
  int n_layers = 0, n_kv_heads = 0, head_dim = 0, kv_dim = 0, vocab_size = 0;
};
ControllerModel controller_model(const LlamaConfig& config);
// Throws Error("WHERE was trained for ..., not for ...") unless the shapes agree.
void check_controller_model(const ControllerModel& trained, const LlamaConfig& config, const std::string& where);

struct BudgetTable {
  std::vector<double> class_bits;  // per class, as measured when the table was calibrated
  std::vector<double> bits;        // ascending
  std::vector<double> lambda;      // lambda(bits[i]); non-increasing
  double gain = 0.0;               // online correction gain
  double default_bits = 3.0;
  // lambda for a target by linear interpolation (clamped at the ends).
  double lambda_for(double target) const;
};

struct ControllerFile {
  ControllerModel model;
  std::vector<KvPrecision> classes;
  std::vector<FeatureSpec> features;
  Mlp mlp;
  TokenFrequency rarity;
  BudgetTable budget;
  nlohmann::json training = nlohmann::json::object();
};

// Validates and converts. `where` names the file in errors: every problem is one line,
// "WHERE: ...". Checks: format and version, every field's type, feature names and transforms,
// feature count == MLP inputs, classes == MLP outputs, finite weights and normalisation, std > 0,
// the frequency table, a monotone budget table.
ControllerFile controller_from_json(const nlohmann::json& doc, const std::string& where);
nlohmann::json to_json(const ControllerFile& c);
// Reads a file (missing, unreadable, truncated or invalid: Error naming the path).
ControllerFile read_controller(const std::filesystem::path& path);
// Writes compact JSON (numbers in their shortest float form). Throws Error if it cannot.
void write_controller(const ControllerFile& c, const std::filesystem::path& path);

}  // namespace kvbits
