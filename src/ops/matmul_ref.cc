// Scalar parts of ops/matmul.h: views, activation quantization, reference matmul.
#include <cmath>
#include <cstddef>
#include <cstring>
#include <string>

#include "io/tensor_type.h"
#include "ops/matmul.h"
#include "ops/quant_blocks.h"
#include "util/error.h"
#include "util/half.h"

namespace kvbits {

MatrixView make_matrix_view(uint32_t type_id, const uint8_t* data, int64_t rows, int64_t cols) {
  const auto info = tensor_type_info(type_id);
  switch (static_cast<TensorType>(type_id)) {
    case TensorType::F32: case TensorType::F16: case TensorType::BF16:
    case TensorType::Q4_0: case TensorType::Q4_1: case TensorType::Q8_0:
      break;
    default:
      throw Error("no matmul kernel for weight type " + tensor_type_name(type_id));
  }
  if (cols <= 0 || rows <= 0 || cols % info->block_elems != 0 ||
      (info->block_elems > 1 && cols % kBlockElems != 0)) {
    throw Error("matrix of " + std::to_string(rows) + "x" + std::to_string(cols) + " does not fit " +
                tensor_type_name(type_id) + " blocks");
  }
  MatrixView v;
  v.type_id = type_id;
  v.data = data;
  v.rows = rows;
  v.cols = cols;
  v.row_bytes = static_cast<uint64_t>(cols / info->block_elems) * info->block_bytes;
  return v;
}

void QuantizedActivations::quantize(const float* x, int64_t n_tokens, int64_t cols) {
  cols_ = cols;
  const int64_t nb = cols / kBlockElems;
  qs_.resize(static_cast<size_t>(n_tokens * cols));
  d_.resize(static_cast<size_t>(n_tokens * nb));
  isum_.resize(d_.size());
  ds_.resize(d_.size());
  for (int64_t t = 0; t < n_tokens; ++t) {
    for (int64_t b = 0; b < nb; ++b) {
      const float* xb = x + t * cols + b * kBlockElems;
      float amax = 0.0f;
      for (int j = 0; j < kBlockElems; ++j) amax = std::fmax(amax, std::fabs(xb[j]));
      // Same rounding as ggml's quantize_row_q8_1: q = round(x * 127 / amax), d stored as fp16.
      const float d = amax / 127.0f;
      const float id = amax != 0.0f ? 127.0f / amax : 0.0f;
      int8_t* q = qs_.data() + t * cols + b * kBlockElems;
      int32_t sum = 0;
      for (int j = 0; j < kBlockElems; ++j) {
        const float v = std::nearbyint(xb[j] * id);
        // NaN/Inf activations would be UB to convert; they only arise from a broken model,
        // and map to 0 here rather than to garbage.
        const int qi = std::isfinite(v) ? static_cast<int>(v) : 0;
        q[j] = static_cast<int8_t>(qi);
        sum += qi;
      }
      const size_t i = static_cast<size_t>(t * nb + b);
      d_[i] = fp16_to_fp32(fp32_to_fp16(d));
      isum_[i] = sum;
      ds_[i] = d_[i] * static_cast<float>(sum);
    }
  }
}

QuantizedRowView QuantizedActivations::row(int64_t t) const {
  const int64_t nb = cols_ / kBlockElems;
  return {qs_.data() + t * cols_, d_.data() + t * nb, isum_.data() + t * nb, ds_.data() + t * nb};
}

bool can_repack_planar(uint32_t type_id) {
  const auto t = static_cast<TensorType>(type_id);
  return t == TensorType::Q4_1 || t == TensorType::Q8_0;
}

MatrixView repack_planar(const MatrixView& w, uint8_t* dst) {
  if (!can_repack_planar(w.type_id) || w.planar) throw Error("repack_planar: unsupported matrix");
  const int64_t nb = w.cols / kBlockElems;
  for (int64_t r = 0; r < w.rows; ++r) {
    const uint8_t* src = w.data + static_cast<uint64_t>(r) * w.row_bytes;
    uint8_t* row = dst + static_cast<uint64_t>(r) * w.row_bytes;
    if (static_cast<TensorType>(w.type_id) == TensorType::Q4_1) {
      uint8_t* qs = row;
      uint8_t* d = row + nb * 16;
      uint8_t* m = d + nb * 2;
      for (int64_t b = 0; b < nb; ++b) {
        const uint8_t* blk = src + b * sizeof(BlockQ4_1);
        std::memcpy(d + 2 * b, blk + offsetof(BlockQ4_1, d), 2);
        std::memcpy(m + 2 * b, blk + offsetof(BlockQ4_1, m), 2);
        std::memcpy(qs + 16 * b, blk + offsetof(BlockQ4_1, qs), 16);
      }
    } else {
      uint8_t* qs = row;
      uint8_t* d = row + nb * 32;
      for (int64_t b = 0; b < nb; ++b) {
        const uint8_t* blk = src + b * sizeof(BlockQ8_0);
        std::memcpy(d + 2 * b, blk + offsetof(BlockQ8_0, d), 2);
        std::memcpy(qs + 32 * b, blk + offsetof(BlockQ8_0, qs), 32);
      }
    }
  }
  MatrixView out = w;
  out.data = dst;
  out.planar = true;
  return out;
}

void copy_block(const MatrixView& w, int64_t r, int64_t b, void* block_out) {
  const uint8_t* row = w.data + static_cast<uint64_t>(r) * w.row_bytes;
  const int64_t nb = w.cols / kBlockElems;
  if (static_cast<TensorType>(w.type_id) == TensorType::Q4_1) {
    BlockQ4_1 blk;
    std::memcpy(&blk.d, row + nb * 16 + 2 * b, 2);
    std::memcpy(&blk.m, row + nb * 18 + 2 * b, 2);
    std::memcpy(blk.qs, row + 16 * b, 16);
    std::memcpy(block_out, &blk, sizeof blk);
  } else {
    BlockQ8_0 blk;
    std::memcpy(&blk.d, row + nb * 32 + 2 * b, 2);
    std::memcpy(blk.qs, row + 32 * b, 32);
    std::memcpy(block_out, &blk, sizeof blk);
  }
}

void dequantize_row(const MatrixView& w, int64_t r, float* out) {
  if (w.planar) {
    for (int64_t b = 0; b < w.cols / kBlockElems; ++b) {
      if (static_cast<TensorType>(w.type_id) == TensorType::Q4_1) {
        BlockQ4_1 blk;
        copy_block(w, r, b, &blk);
        dequantize_row_q4_1_ref(&blk, out + b * kBlockElems, kBlockElems);
      } else {
        BlockQ8_0 blk;
        copy_block(w, r, b, &blk);
        dequantize_row_q8_0_ref(&blk, out + b * kBlockElems, kBlockElems);
      }
    }
    return;
  }
  const uint8_t* row = w.data + static_cast<uint64_t>(r) * w.row_bytes;
  switch (static_cast<TensorType>(w.type_id)) {
    case TensorType::F32:
      for (int64_t c = 0; c < w.cols; ++c) out[c] = reinterpret_cast<const float*>(row)[c];
      break;
    case TensorType::F16:
      for (int64_t c = 0; c < w.cols; ++c) out[c] = fp16_to_fp32(reinterpret_cast<const uint16_t*>(row)[c]);
      break;
    case TensorType::BF16:
      for (int64_t c = 0; c < w.cols; ++c) out[c] = bf16_to_fp32(reinterpret_cast<const uint16_t*>(row)[c]);
      break;
    case TensorType::Q4_0:
      dequantize_row_q4_0_ref(reinterpret_cast<const BlockQ4_0*>(row), out, w.cols);
      break;
    case TensorType::Q4_1:
      dequantize_row_q4_1_ref(reinterpret_cast<const BlockQ4_1*>(row), out, w.cols);
      break;
    case TensorType::Q8_0:
      dequantize_row_q8_0_ref(reinterpret_cast<const BlockQ8_0*>(row), out, w.cols);
      break;
    default:
      throw Error("cannot dequantize " + tensor_type_name(w.type_id));
  }
}

namespace {
bool is_quantized(uint32_t type_id) {
  const auto t = static_cast<TensorType>(type_id);
  return t == TensorType::Q4_0 || t == TensorType::Q4_1 || t == TensorType::Q8_0;
}
}  // namespace

void matmul_ref(const MatrixView& w, const float* x, int64_t n_tokens, float* y,
                bool quantize_activations) {
  std::vector<float> wrow(static_cast<size_t>(w.cols));
  std::vector<float> xq;
  const float* xs = x;
  if (quantize_activations && is_quantized(w.type_id)) {
    QuantizedActivations act;
    act.quantize(x, n_tokens, w.cols);
    xq.resize(static_cast<size_t>(n_tokens * w.cols));
    for (int64_t t = 0; t < n_tokens; ++t) {
      const QuantizedRowView a = act.row(t);
      for (int64_t c = 0; c < w.cols; ++c) {
        xq[t * w.cols + c] = a.d[c / kBlockElems] * static_cast<float>(a.qs[c]);
      }
    }
    xs = xq.data();
  }
  for (int64_t r = 0; r < w.rows; ++r) {
    dequantize_row(w, r, wrow.data());
    for (int64_t t = 0; t < n_tokens; ++t) {
      double acc = 0.0;
      for (int64_t c = 0; c < w.cols; ++c) acc += static_cast<double>(wrow[c]) * xs[t * w.cols + c];
      y[t * w.rows + r] = static_cast<float>(acc);
    }
  }
}

}  // namespace kvbits
