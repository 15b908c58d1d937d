#pragma once
// Tensor element types as numbered by ggml/GGUF, with their block geometry.
// Only the geometry lives here (io layer: needed to bounds-check tensor data); the block
// layouts and kernels live in ops/quant_blocks.h and ops/.
#include <cstdint>
#include <optional>
#include <string_view>

namespace kvbits {

enum class TensorType : uint32_t {
  F32 = 0,
  F16 = 1,
  Q4_0 = 2,
  Q4_1 = 3,
  Q5_0 = 6,
  Q5_1 = 7,
  Q8_0 = 8,
  Q8_1 = 9,
  Q2_K = 10,
  Q3_K = 11,
  Q4_K = 12,
  Q5_K = 13,
  Q6_K = 14,
  Q8_K = 15,
  I8 = 24,
  I16 = 25,
  I32 = 26,
  I64 = 27,
  F64 = 28,
  BF16 = 30,
};

struct TensorTypeInfo {
  std::string_view name;
  uint32_t block_elems;  // elements per block (1 for plain types)
  uint32_t block_bytes;  // bytes per block
  bool supported;        // kvbits has kernels for it
};

// Geometry of a ggml type id; std::nullopt for ids kvbits does not know at all.
std::optional<TensorTypeInfo> tensor_type_info(uint32_t type_id);

// Name for messages ("Q4_1", or "type#17" for an unknown id).
std::string tensor_type_name(uint32_t type_id);

}  // namespace kvbits
