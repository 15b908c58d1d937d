#pragma once
// fp32 -> fp16 conversion of whole rows, as the KV store's FP16 window writes every new token's K
// and V rows (all layers, every token of a prefill). The scalar fp32_to_fp16 (util/half.h) is the
// reference; this is the Highway version (vcvtps2ph on x86), bit-identical to it for every finite
// and infinite input (round to nearest even, subnormals, overflow to infinity). NaN stays NaN
// (the payload may differ). tests/unit/fp16_rows_test.cc checks both over every fp16 boundary.
#include <cstdint>

namespace kvbits {

// out[i] = fp32_to_fp16(x[i]) for i < n.
void fp32_to_fp16_row(const float* x, int64_t n, uint16_t* out);

}  // namespace kvbits
