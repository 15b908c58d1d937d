#pragma once
// Shared helpers for tests that need the real model file.
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include <nlohmann/json.hpp>

namespace kvbits::testing {

// The real SmolLM2 GGUF: $KVBITS_MODEL, else the build's default path (scripts/fetch-model.sh).
inline std::string model_path() {
  if (const char* p = std::getenv("KVBITS_MODEL"); p && *p) return p;
  return KVBITS_DEFAULT_MODEL;
}

inline bool model_available() { return std::filesystem::exists(model_path()); }

inline nlohmann::json load_fixture(const std::string& name) {
  std::ifstream in(std::string(KVBITS_FIXTURE_DIR) + "/" + name);
  return nlohmann::json::parse(in);
}

}  // namespace kvbits::testing
