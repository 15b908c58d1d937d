#pragma once
// Per-layer KV sensitivity and the per-layer width allocation built on it (`alloc:FILE@BITS`).
//
// File format "kvbits-layer-sensitivity", format_version 1 (written by scripts/layers/allocate.py
// --write from the runs of scripts/layers/sensitivity.sh):
// {
//   "format": "kvbits-layer-sensitivity", "format_version": 1,
//   "model": {"name": "...", "n_layers": 30},
//   "classes": ["int2", "int4/int2", "int2/int4", "int4"],
//   "kl": [[n_layers numbers], ...],   // kl[c][l]: KL vs the FP16 cache (nats/token) when only
//                                      // layer l is stored at class c, every other layer at FP16
//   "source": {...}                    // how it was measured (text, windows, commit)
// }
// The allocation assumes the layers' damages add up (approximate; docs/controller.md).
#include <filesystem>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "kv/kv_store.h"

namespace kvbits {

struct LayerSensitivity {
  std::string model_name;
  int n_layers = 0;
  std::vector<KvPrecision> classes;
  std::vector<std::vector<double>> kl;  // [class][layer], finite, >= 0
  nlohmann::json source = nlohmann::json::object();
};

// Validates and converts; every problem is one line "WHERE: ...".
LayerSensitivity layer_sensitivity_from_json(const nlohmann::json& doc, const std::string& where);
// Reads a file (missing, unreadable, not JSON or invalid: Error naming the path).
LayerSensitivity read_layer_sensitivity(const std::filesystem::path& path);

// One class index per layer minimising sum_l kl[c_l][l] subject to mean_l class_bits[c_l] <= budget:
// an exact dynamic program over layers with bits rounded up to 1/100 bit (so the mean never
// exceeds the budget by more than the rounding, 0.01 bits). Throws Error if even the cheapest
// class of every layer exceeds the budget.
std::vector<int> allocate_layers(const std::vector<std::vector<double>>& kl, const std::vector<double>& class_bits,
                                 double budget);

}  // namespace kvbits
