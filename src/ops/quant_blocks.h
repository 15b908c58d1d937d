#pragma once
// Weight block layouts, bit-compatible with ggml/GGUF, and their scalar reference
// quantizers/dequantizers. Every SIMD kernel in ops/ is tested against these.
//
// A block covers kBlockElems = 32 consecutive elements of one row. Scales are IEEE fp16.
//   Q4_0: x = d * (q - 8),        q in [0,15]; qs[j] holds element j (low nibble) and j+16 (high).
//   Q4_1: x = d * q + m,          q in [0,15]; same nibble order as Q4_0.
//   Q8_0: x = d * q,              q in [-127,127].
//   Q8_1: x = d * q, s = d*sum(q) q in [-127,127]; activation format for Q4_1 dot products.
#include <cstddef>
#include <cstdint>

namespace kvbits {

inline constexpr int kBlockElems = 32;

struct BlockQ4_0 {
  uint16_t d;       // fp16 scale
  uint8_t qs[16];   // nibbles
};
static_assert(sizeof(BlockQ4_0) == 18);

struct BlockQ4_1 {
  uint16_t d;       // fp16 scale
  uint16_t m;       // fp16 minimum
  uint8_t qs[16];   // nibbles
};
static_assert(sizeof(BlockQ4_1) == 20);

struct BlockQ8_0 {
  uint16_t d;       // fp16 scale
  int8_t qs[32];
};
static_assert(sizeof(BlockQ8_0) == 34);

struct BlockQ8_1 {
  uint16_t d;       // fp16 scale
  uint16_t s;       // fp16 of d * sum(qs)
  int8_t qs[32];
};
static_assert(sizeof(BlockQ8_1) == 36);

// Scalar reference (de)quantizers. n must be a multiple of kBlockElems.
// The quantizers follow ggml's reference rounding so files we write read back like ggml's.
void quantize_row_q4_0_ref(const float* x, BlockQ4_0* y, int64_t n);
void quantize_row_q4_1_ref(const float* x, BlockQ4_1* y, int64_t n);
void quantize_row_q8_0_ref(const float* x, BlockQ8_0* y, int64_t n);
void quantize_row_q8_1_ref(const float* x, BlockQ8_1* y, int64_t n);

void dequantize_row_q4_0_ref(const BlockQ4_0* x, float* y, int64_t n);
void dequantize_row_q4_1_ref(const BlockQ4_1* x, float* y, int64_t n);
void dequantize_row_q8_0_ref(const BlockQ8_0* x, float* y, int64_t n);
void dequantize_row_q8_1_ref(const BlockQ8_1* x, float* y, int64_t n);

}  // namespace kvbits
