#include "io/tensor_type.h"

#include <string>

namespace kvbits {

std::optional<TensorTypeInfo> tensor_type_info(uint32_t type_id) {
  switch (static_cast<TensorType>(type_id)) {
    case TensorType::F32: return TensorTypeInfo{"F32", 1, 4, true};
    case TensorType::F16: return TensorTypeInfo{"F16", 1, 2, true};
    case TensorType::BF16: return TensorTypeInfo{"BF16", 1, 2, true};
    case TensorType::Q4_0: return TensorTypeInfo{"Q4_0", 32, 18, true};
    case TensorType::Q4_1: return TensorTypeInfo{"Q4_1", 32, 20, true};
    case TensorType::Q8_0: return TensorTypeInfo{"Q8_0", 32, 34, true};
    // Known to the file format, not (yet) to kvbits' kernels: readable and listable by
    // `inspect`, refused with a clear error when a model needs them.
    case TensorType::Q5_0: return TensorTypeInfo{"Q5_0", 32, 22, false};
    case TensorType::Q5_1: return TensorTypeInfo{"Q5_1", 32, 24, false};
    case TensorType::Q8_1: return TensorTypeInfo{"Q8_1", 32, 36, false};
    case TensorType::Q2_K: return TensorTypeInfo{"Q2_K", 256, 84, false};
    case TensorType::Q3_K: return TensorTypeInfo{"Q3_K", 256, 110, false};
    case TensorType::Q4_K: return TensorTypeInfo{"Q4_K", 256, 144, false};
    case TensorType::Q5_K: return TensorTypeInfo{"Q5_K", 256, 176, false};
    case TensorType::Q6_K: return TensorTypeInfo{"Q6_K", 256, 210, false};
    case TensorType::Q8_K: return TensorTypeInfo{"Q8_K", 256, 292, false};
    case TensorType::I8: return TensorTypeInfo{"I8", 1, 1, false};
    case TensorType::I16: return TensorTypeInfo{"I16", 1, 2, false};
    case TensorType::I32: return TensorTypeInfo{"I32", 1, 4, false};
    case TensorType::I64: return TensorTypeInfo{"I64", 1, 8, false};
    case TensorType::F64: return TensorTypeInfo{"F64", 1, 8, false};
  }
  return std::nullopt;
}

std::string tensor_type_name(uint32_t type_id) {
  if (auto info = tensor_type_info(type_id)) return std::string(info->name);
  return "type#" + std::to_string(type_id);
}

}  // namespace kvbits
