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

// The structs are packed (alignment 1): GGUF stores blocks back to back, and a row or a test may
// start at any byte, so a block's fp16 fields are not always 2-byte aligned (UBSan flagged member
// access through such pointers as undefined; x86 and ARMv8 load them either way).
struct __attribute__((packed)) BlockQ4_0 {
  uint16_t d;       // fp16 scale
  uint8_t qs[16];   // nibbles
};
static_assert(sizeof(BlockQ4_0) == 18);

struct __attribute__((packed)) BlockQ4_1 {
  uint16_t d;       // fp16 scale
  uint16_t m;       // fp16 minimum
  uint8_t qs[16];   // nibbles
};
static_assert(sizeof(BlockQ4_1) == 20);

struct __attribute__((packed)) BlockQ8_0 {
  uint16_t d;       // fp16 scale
  int8_t qs[32];
};
static_assert(sizeof(BlockQ8_0) == 34);

struct __attribute__((packed)) BlockQ8_1 {
  uint16_t d;       // fp16 scale
  uint16_t s;       // fp16 of d * sum(qs)
  int8_t qs[32];
};
static_assert(sizeof(BlockQ8_1) == 36);

// ---- Planar rows: the layout ops/matmul repacks Q4_0, Q4_1 and Q8_0 matrices into at load ----
//
// A planar row of nb blocks holds the same bytes as the file's row, regrouped:
//   [codes of all blocks][fp16 d of blocks 0..nb-1][fp16 m of blocks 0..nb-1 (Q4_1 only)]
// The codes are arranged so that an int8 kernel keeps one block per 32-bit SIMD lane and adds a
// block's 32 products into that lane with 8 "4-byte dot product" steps (vpdpbusd), without
// horizontal sums. Blocks are grouped into chunks:
//  * full chunks of 16 blocks (16 lanes, lane l = block l of the chunk);
//  * a remaining tail of 1..15 blocks: 9..15 blocks form a "wide" chunk of 16 lanes with the
//    first `tail` lanes valid; 1..8 blocks form a "narrow" chunk of 8 lanes in which each block
//    spans P = 8 / D lanes ("parts" of 32 / P elements), D = max(2, next power of two >= tail)
//    being the number of 4-element steps per lane (2, 4 or 8). Narrow tails keep the 576-column
//    rows of SmolLM2 (16 + 2 blocks) from wasting 14 of 16 lanes.
// Within a chunk of V valid lanes, element e of block bl (part p = e / (32/P), o = e % (32/P))
// sits in lane l = bl*P + p at step k = o / 4, byte o % 4:
//   Q8_0: codes byte 4*V*k + 4*l + o%4 holds (q XOR 0x80), i.e. q + 128 as an unsigned byte.
//   Q4_0 / Q4_1: steps pair up into nibbles: step k < D/2 is the low nibble of "load" i = k and
//   step k + D/2 the high nibble of the same byte 4*V*i + 4*l + o%4.
// Chunks follow each other: chunk c starts at byte c*256 (Q4) or c*512 (Q8) of the codes.
// Int8 activations are arranged the same way per token, padded to whole lanes (see
// QuantizedActivations in ops/matmul.h).
struct PlanarChunk {
  int64_t first_block;  // first block of the row in this chunk
  int blocks;           // blocks in this chunk
  int lanes;            // 16 or 8 (narrow tail)
  int valid_lanes;      // blocks * parts
  int parts;            // P: lanes per block (1, 2 or 4)
  int steps;            // D = 8 / P: 4-byte steps per lane
  int64_t chunk_index;  // chunk number: codes at 256 * index (Q4) / 512 * index (Q8)
};

struct PlanarGeometry {
  int64_t nb = 0;      // blocks per row
  int64_t n_full = 0;  // full 16-block chunks
  int tail = 0;        // nb - 16 * n_full
  bool wide_tail() const { return tail > 8; }
  bool narrow_tail() const { return tail > 0 && tail <= 8; }
  int64_t n_chunks() const { return n_full + (tail > 0 ? 1 : 0); }

  explicit PlanarGeometry(int64_t blocks) : nb(blocks), n_full(blocks / 16), tail(static_cast<int>(blocks % 16)) {}

  PlanarChunk chunk(int64_t c) const {
    PlanarChunk k;
    k.chunk_index = c;
    k.first_block = 16 * c;
    if (c < n_full || wide_tail()) {
      k.blocks = c < n_full ? 16 : tail;
      k.lanes = 16;
      k.parts = 1;
    } else {
      k.blocks = tail;
      k.lanes = 8;
      const int d = tail <= 2 ? 2 : (tail <= 4 ? 4 : 8);
      k.parts = 8 / d;
    }
    k.steps = 8 / k.parts;
    k.valid_lanes = k.blocks * k.parts;
    return k;
  }
};

// Where element e (0..31) of block b lives in a planar row's codes.
struct PlanarPos {
  int64_t chunk;  // chunk index
  int lane;       // lane within the chunk
  int step;       // 4-byte step within the lane (0 .. steps-1)
  int byte;       // byte within the step's 4 bytes
};

inline PlanarPos planar_position(const PlanarGeometry& g, int64_t b, int e) {
  const PlanarChunk k = g.chunk(b / 16);
  const int bl = static_cast<int>(b - k.first_block);
  const int per_part = 32 / k.parts;
  const int o = e % per_part;
  return {k.chunk_index, bl * k.parts + e / per_part, o / 4, o % 4};
}

// Byte offset of element e of block b in a planar Q8_0 row (value stored: q ^ 0x80).
inline int64_t planar_q8_offset(const PlanarGeometry& g, int64_t b, int e) {
  const PlanarPos p = planar_position(g, b, e);
  const PlanarChunk k = g.chunk(p.chunk);
  return 512 * p.chunk + 4 * k.valid_lanes * p.step + 4 * p.lane + p.byte;
}

// Byte offset and nibble shift (0 or 4) of element e of block b in a planar Q4_0 / Q4_1 row.
inline int64_t planar_q4_offset(const PlanarGeometry& g, int64_t b, int e, int* shift) {
  const PlanarPos p = planar_position(g, b, e);
  const PlanarChunk k = g.chunk(p.chunk);
  const int half = k.steps / 2;
  *shift = p.step < half ? 0 : 4;
  return 256 * p.chunk + 4 * k.valid_lanes * (p.step % half) + 4 * p.lane + p.byte;
}

// Scalar reference (de)quantizers. n must be a multiple of kBlockElems.
// The quantizers follow ggml's reference rounding so files we write read back like ggml's.
void quantize_row_q4_0_ref(const float* x, BlockQ4_0* y, int64_t n);
void quantize_row_q4_1_ref(const float* x, BlockQ4_1* y, int64_t n);
void quantize_row_q8_0_ref(const float* x, BlockQ8_0* y, int64_t n);
void quantize_row_q8_1_ref(const float* x, BlockQ8_1* y, int64_t n);

// Activations for the int8 matmul kernels (ops/matmul.h QuantizedActivations), n_blocks blocks
// of 32: q = nearbyint(x * 127 / amax) (NaN -> 0), d = fp16(amax / 127) widened back to fp32,
// isum = sum(q), ds = d * isum. Same rounding as ggml's quantize_row_q8_1.
void quantize_activation_blocks_ref(const float* x, int64_t n_blocks, int8_t* qs, float* d, int32_t* isum,
                                    float* ds);

void dequantize_row_q4_0_ref(const BlockQ4_0* x, float* y, int64_t n);
void dequantize_row_q4_1_ref(const BlockQ4_1* x, float* y, int64_t n);
void dequantize_row_q8_0_ref(const BlockQ8_0* x, float* y, int64_t n);
void dequantize_row_q8_1_ref(const BlockQ8_1* x, float* y, int64_t n);

}  // namespace kvbits
