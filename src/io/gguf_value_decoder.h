#pragma once
// Internal to io/: reads and validates one GGUF metadata value from an untrusted byte stream.
// Shared by the file parser (gguf.cc) and GgufValue::elements() (gguf_value.cc).
#include <string_view>

#include "io/byte_reader.h"
#include "io/gguf.h"

namespace kvbits {

struct GgufValueDecoder {
  // Arrays may nest (array of arrays); real files use depth 1. The bound keeps recursion (and
  // stack use) small on hostile input.
  static constexpr int kMaxArrayDepth = 8;

  // True for the 13 type ids of the GGUF spec.
  static bool valid_type(uint32_t t) { return t <= static_cast<uint32_t>(GgufValueType::FLOAT64); }

  // Reads one value of `type` at r's position, checking every length against the bytes left, and
  // returns a view of it. `ctx` names the value in errors ("metadata key 'x'").
  static GgufValue read(ByteReader& r, GgufValueType type, std::string_view ctx, int depth = 0);
};

// Escapes a name from the file for a one-line message: printable ASCII kept, other bytes as \xNN,
// cut after `max_bytes` with "...".
std::string printable_name(std::string_view s, size_t max_bytes = 96);

}  // namespace kvbits
