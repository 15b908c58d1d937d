#pragma once
// SHA-256 (FIPS 180-4) of a file or a byte string, as lowercase hex — identifies the model file
// in result files. Self-contained: the project links no crypto library, and this is ~100 lines
// checked against the NIST test vectors and `sha256sum` (tests/unit/eval_sha256_test.cc).
#include <array>
#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>

namespace kvbits::eval {

class Sha256 {
 public:
  Sha256();
  void update(const void* data, size_t size);
  std::array<uint8_t, 32> finish();  // the object must not be updated afterwards

 private:
  void compress(const uint8_t* block);  // one 64-byte block
  std::array<uint32_t, 8> h_;
  std::array<uint8_t, 64> buffer_;
  size_t buffered_ = 0;
  uint64_t total_bytes_ = 0;
};

std::string sha256_hex(std::string_view bytes);
// Reads the file in 1 MiB blocks. Throws Error("FILE: cannot read ...").
std::string sha256_file(const std::filesystem::path& file);

}  // namespace kvbits::eval
