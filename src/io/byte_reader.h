#pragma once
// Bounds-checked little-endian cursor over an untrusted byte span (used by the GGUF parser).
//
// Every read checks the remaining length first and throws
//   Error("<name>: truncated file: <what> at offset <pos> needs <n> bytes, <left> left")
// so a short or lying file never reads past the end. Returned views point into the span.
#include <bit>
#include <cstdint>
#include <cstring>
#include <span>
#include <string>
#include <string_view>

#include "util/error.h"

namespace kvbits {

static_assert(std::endian::native == std::endian::little,
              "kvbits reads GGUF on little-endian hosts only");

class ByteReader {
 public:
  ByteReader(std::span<const uint8_t> bytes, const std::string& name)
      : bytes_(bytes), name_(name) {}

  uint64_t pos() const { return pos_; }
  uint64_t remaining() const { return bytes_.size() - pos_; }
  std::span<const uint8_t> all() const { return bytes_; }
  const std::string& name() const { return name_; }

  // Throws unless `n` more bytes are available.
  void require(uint64_t n, std::string_view what) const {
    if (n > remaining()) {
      throw Error(name_ + ": truncated file: " + std::string(what) + " at offset " +
                  std::to_string(pos_) + " needs " + std::to_string(n) + " bytes, " +
                  std::to_string(remaining()) + " left");
    }
  }

  // Throws unless `count` items of at least `min_size` bytes each can still fit. Call before
  // reserving memory for `count` items so a huge count fails here, not in the allocator.
  void require_items(uint64_t count, uint64_t min_size, std::string_view what) const {
    if (min_size != 0 && count > remaining() / min_size) {
      throw Error(name_ + ": " + std::string(what) + " count " + std::to_string(count) +
                  " at offset " + std::to_string(pos_) + " cannot fit in the " +
                  std::to_string(remaining()) + " bytes left");
    }
  }

  std::span<const uint8_t> bytes(uint64_t n, std::string_view what) {
    require(n, what);
    auto out = bytes_.subspan(pos_, n);
    pos_ += n;
    return out;
  }
  void skip(uint64_t n, std::string_view what) { bytes(n, what); }

  uint8_t u8(std::string_view what) { return bytes(1, what)[0]; }
  uint16_t u16(std::string_view what) { return load<uint16_t>(what); }
  uint32_t u32(std::string_view what) { return load<uint32_t>(what); }
  uint64_t u64(std::string_view what) { return load<uint64_t>(what); }

  // GGUF string: u64 byte length, then the bytes (not necessarily UTF-8, not NUL-terminated).
  std::string_view str(std::string_view what) {
    const uint64_t len = u64(what);
    auto b = bytes(len, what);
    return {reinterpret_cast<const char*>(b.data()), b.size()};
  }

 private:
  // Little-endian load; kvbits only targets little-endian hosts, so a memcpy is the decode.
  template <typename T>
  T load(std::string_view what) {
    auto b = bytes(sizeof(T), what);
    T v;
    std::memcpy(&v, b.data(), sizeof(T));
    return v;
  }

  std::span<const uint8_t> bytes_;
  const std::string& name_;  // display name for errors; owned by the caller, outlives the reader
  uint64_t pos_ = 0;
};

}  // namespace kvbits
