#pragma once
// Helpers for the eval tests: a temporary directory removed at scope exit, file writing, and
// catching a kvbits::Error's message.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include "util/error.h"

namespace kvbits::eval::testing {

class TempDir {
 public:
  TempDir() {
    const char* base = std::getenv("TMPDIR");
    std::string tmpl = std::string(base && *base ? base : "/tmp") + "/kvbits-eval-XXXXXX";
    if (!::mkdtemp(tmpl.data())) throw std::runtime_error("mkdtemp failed");
    path_ = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  const std::filesystem::path& path() const { return path_; }
  std::filesystem::path operator/(const std::string& name) const { return path_ / name; }

 private:
  std::filesystem::path path_;
};

inline std::filesystem::path write_file(const std::filesystem::path& path, const std::string& content) {
  std::ofstream f(path, std::ios::binary);
  f << content;
  return path;
}

// The message of the kvbits::Error that `fn` throws ("" and a test failure if it does not).
template <typename Fn>
std::string error_of(Fn&& fn) {
  try {
    fn();
  } catch (const kvbits::Error& e) {
    return e.what();
  }
  ADD_FAILURE() << "expected a kvbits::Error";
  return "";
}

// The project's shared data directory for tests: $KVBITS_DATA, else ../shared/data beside the
// source tree (tests/fixtures/../../../shared/data).
inline std::filesystem::path shared_data_dir() {
  const char* env = std::getenv("KVBITS_DATA");
  if (env && *env) return env;
  return std::filesystem::path(KVBITS_FIXTURE_DIR) / ".." / ".." / ".." / "shared" / "data";
}

}  // namespace kvbits::eval::testing
