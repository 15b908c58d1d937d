#pragma once
// Matrix-vector and matrix-matrix products against weights in their file format.
//
//   y[t, r] = sum_c W[r, c] * x[t, c]     W: [rows, cols] row-major, in GGUF block format
//                                         x: [n_tokens, cols] fp32, y: [n_tokens, rows] fp32
//
// Quantized weights (Q4_0, Q4_1, Q8_0) are multiplied with activations quantized per block of 32
// to int8 (as ggml does: Q8_1 for Q4_1, Q8_0 otherwise), so the inner loops are integer dot
// products. Float weights (F32, F16, BF16) use fp32 activations. Rows are split across the
// thread pool; tokens are processed in tiles so a weight row is unpacked once per tile.
#include <cstdint>
#include <span>
#include <vector>

#include "backend/thread_pool.h"

namespace kvbits {

// Non-owning view of a weight matrix stored in a GGUF tensor (ne0 = cols, ne1 = rows).
struct MatrixView {
  uint32_t type_id = 0;          // TensorType
  const uint8_t* data = nullptr;  // [rows, row_bytes]
  int64_t rows = 0;
  int64_t cols = 0;
  uint64_t row_bytes = 0;
  // Planar rows (Q4_0, Q4_1 and Q8_0; see repack_planar): the same bytes per row, regrouped as
  // [all codes][all fp16 scales d][all fp16 minimums m (Q4_1)], the codes arranged so that the
  // int8 kernels hold one block per 32-bit lane (layout: PlanarGeometry in ops/quant_blocks.h).
  bool planar = false;
};

// True for the types repack_planar handles.
bool can_repack_planar(uint32_t type_id);
// Writes w's rows in planar layout to dst (w.rows * w.row_bytes bytes, caller-owned) and returns
// the view of dst. w must be in file layout.
MatrixView repack_planar(const MatrixView& w, uint8_t* dst);

// Builds a view; throws Error if the type has no kernel or cols does not fit its block size.
MatrixView make_matrix_view(uint32_t type_id, const uint8_t* data, int64_t rows, int64_t cols);

// One token's activations quantized to int8 per block of 32 (layout chosen for the kernels, not a
// file format). d is the block scale rounded through fp16 exactly as ggml stores it; isum =
// sum(qs) exactly. (ggml's Q8_1 keeps fp16(d * isum) instead, which overflows to inf for blocks
// summing past 65504; the Q4_1 kernels use d * isum in fp32.)
//
// The same values are also stored arranged like planar weight codes (PlanarGeometry in
// ops/quant_blocks.h: chunk c at qt + 512 c, step k of lane l at + 4 * lanes * k + 4 * l, lanes
// past a chunk's valid ones zero) with per-lane factors (chunk c at + 16 c): the kernels for
// planar weights read only these.
struct QuantizedRowView {
  const int8_t* qs;     // [cols]
  const float* d;       // [cols / 32]
  const int32_t* isum;  // [cols / 32]
  const float* ds;      // [cols / 32] d * isum (the Q4_1 minimum term's factor)
  const int8_t* qt;     // [n_chunks * 512] arranged codes, 64-byte aligned
  const float* lane_d;  // [n_chunks * 16] d of the lane's block
  // In the first lane of each block (part 0), 0 in the others and in padding lanes:
  const float* lane_ds;         // d * isum (Q4_1 minimum term)
  const int32_t* lane_neg8;     // -8 * isum (Q4_0: sum (q - 8) a = sum q a - 8 sum a)
  // -128 * (sum of the lane's own elements; the block's isum when a block has one lane): Q8_0
  // codes are stored as q + 128, so each lane then holds its exact partial sum of q * a.
  const int32_t* lane_neg128;
};

// Storage for quantized activations of n_tokens rows of `cols`. Reused across calls.
class QuantizedActivations {
 public:
  void quantize(const float* x, int64_t n_tokens, int64_t cols);  // x: [n_tokens, cols]
  QuantizedRowView row(int64_t t) const {
    const int64_t nb = cols_ / 32;
    const size_t i = static_cast<size_t>(t * nb), l = static_cast<size_t>(t * lane_stride_);
    return {qs_.data() + t * cols_, d_.data() + i, isum_.data() + i, ds_.data() + i,
            qt_ + t * qt_stride_, lane_d_ + l, lane_ds_ + l, lane_neg8_ + l, lane_neg128_ + l};
  }
  int64_t cols() const { return cols_; }

 private:
  void arrange(int64_t n_tokens);  // builds the arranged copy from qs_, d_, isum_, ds_

  int64_t cols_ = 0;
  int64_t qt_stride_ = 0, lane_stride_ = 0;  // per token
  std::vector<int8_t> qs_;
  std::vector<float> d_, ds_;
  std::vector<int32_t> isum_;
  // The arranged copy: 64-byte aligned arrays inside `arranged_`.
  std::vector<uint8_t> arranged_;
  int8_t* qt_ = nullptr;
  float* lane_d_ = nullptr;
  float* lane_ds_ = nullptr;
  int32_t* lane_neg8_ = nullptr;
  int32_t* lane_neg128_ = nullptr;
};

// How activations meet quantized weights. kInt8 is the fast path (as in ggml). kFloat keeps the
// activations in fp32 and dequantizes weight blocks on the fly: slower, but free of the rounding
// of activations, whose effect a 30-layer model amplifies (a 2^-11 perturbation of attention
// changes logits by up to ~0.5 through flipped int8 roundings); used to test the forward pass
// tightly against float references.
enum class ActivationMode { kInt8, kFloat };

// Scratch reused across matmul calls (one per model instance; not shared between threads).
struct MatmulScratch {
  QuantizedActivations act;
};

void matmul(const MatrixView& w, const float* x, int64_t n_tokens, float* y, ThreadPool& pool,
            MatmulScratch& scratch, ActivationMode mode = ActivationMode::kInt8);

// Several matrices with the same input size applied to the same activations (Q/K/V, gate/up):
// activations are quantized once and all rows share one parallel loop. y of each job: [n_tokens,
// rows of its matrix].
struct MatmulJob {
  const MatrixView* w;
  float* y;
};
void matmul_group(std::span<const MatmulJob> jobs, const float* x, int64_t n_tokens, ThreadPool& pool,
                  MatmulScratch& scratch, ActivationMode mode = ActivationMode::kInt8);

// Scalar reference: dequantizes each row to fp32 and accumulates in double. When
// `quantize_activations` is true, activations are first rounded exactly as the fast kernels
// round them, so the two differ only by fp32 summation order.
void matmul_ref(const MatrixView& w, const float* x, int64_t n_tokens, float* y,
                bool quantize_activations);

// Dequantizes row r of w into out[cols] (scalar; used for embedding lookups and tests).
void dequantize_row(const MatrixView& w, int64_t r, float* out);

// Row r of a planar matrix rebuilt as file-layout blocks (blocks: w.row_bytes bytes).
void planar_row_to_blocks(const MatrixView& w, int64_t r, uint8_t* blocks);

// Name of the SIMD target the dispatcher picked for this machine (for bench output).
const char* matmul_target_name();

}  // namespace kvbits
