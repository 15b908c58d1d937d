#pragma once
// Helpers shared by the GGUF tests: a scratch directory and byte-level patching of file images.
#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

namespace kvbits::testing {

// A fresh directory under the system temp dir, removed (with its contents) on destruction.
class TempDir {
 public:
  TempDir() {
    static std::atomic<int> counter{0};
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    const std::string test = info ? std::string(info->test_suite_name()) + "." + info->name() : "x";
    path_ = std::filesystem::temp_directory_path() /
            ("kvbits-" + test + "-" + std::to_string(::getpid()) + "-" + std::to_string(counter++));
    std::filesystem::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  std::string file(std::string_view name) const { return (path_ / name).string(); }

 private:
  std::filesystem::path path_;
};

// Little-endian appends, for building values and files by hand.
template <typename T>
void put(std::vector<uint8_t>& out, T v) {
  uint8_t b[sizeof(T)];
  std::memcpy(b, &v, sizeof(T));
  out.insert(out.end(), b, b + sizeof(T));
}
inline void put_str(std::vector<uint8_t>& out, std::string_view s) {
  put<uint64_t>(out, s.size());
  out.insert(out.end(), s.begin(), s.end());
}

// Index just past the first occurrence of the GGUF string `s` (u64 length + bytes) in `image`,
// i.e. where the field after a key or tensor name starts. Fails the test if absent.
inline size_t after_gguf_string(const std::vector<uint8_t>& image, std::string_view s) {
  std::vector<uint8_t> needle;
  put_str(needle, s);
  for (size_t i = 0; i + needle.size() <= image.size(); ++i) {
    if (std::memcmp(image.data() + i, needle.data(), needle.size()) == 0) return i + needle.size();
  }
  ADD_FAILURE() << "string '" << s << "' not found in image";
  return 0;
}

template <typename T>
void patch(std::vector<uint8_t>& image, size_t at, T v) {
  ASSERT_LE(at + sizeof(T), image.size());
  std::memcpy(image.data() + at, &v, sizeof(T));
}

}  // namespace kvbits::testing
