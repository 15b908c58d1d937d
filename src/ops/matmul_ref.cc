// Scalar parts of ops/matmul.h: views, activation quantization, reference matmul.
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

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

void QuantizedActivations::arrange(int64_t n_tokens) {
  // The copy laid out like planar weight codes (PlanarGeometry), padding zero.
  const int64_t nb = cols_ / kBlockElems;
  const PlanarGeometry g(nb);
  const int64_t n_chunks = g.n_chunks();
  qt_stride_ = n_chunks * 512;
  lane_stride_ = n_chunks * 16;
  const size_t qt_bytes = static_cast<size_t>(n_tokens * qt_stride_);
  const size_t lane_bytes = static_cast<size_t>(n_tokens * lane_stride_) * 4;
  arranged_.resize(qt_bytes + 4 * lane_bytes + 64);
  auto base = reinterpret_cast<uintptr_t>(arranged_.data());
  base = (base + 63) & ~uintptr_t{63};
  uint8_t* p = reinterpret_cast<uint8_t*>(base);
  std::memset(p, 0, qt_bytes + 4 * lane_bytes);
  qt_ = reinterpret_cast<int8_t*>(p);
  lane_d_ = reinterpret_cast<float*>(p + qt_bytes);
  lane_ds_ = reinterpret_cast<float*>(p + qt_bytes + lane_bytes);
  lane_neg8_ = reinterpret_cast<int32_t*>(p + qt_bytes + 2 * lane_bytes);
  lane_neg128_ = reinterpret_cast<int32_t*>(p + qt_bytes + 3 * lane_bytes);
  for (int64_t t = 0; t < n_tokens; ++t) {
    const int8_t* q = qs_.data() + t * cols_;
    int8_t* qt = qt_ + t * qt_stride_;
    const size_t l0 = static_cast<size_t>(t * lane_stride_);
    for (int64_t c = 0; c < n_chunks; ++c) {
      const PlanarChunk k = g.chunk(c);
      const int per_part = kBlockElems / k.parts;
      for (int bl = 0; bl < k.blocks; ++bl) {
        const int64_t b = k.first_block + bl;
        const size_t i = static_cast<size_t>(t * nb + b);
        for (int part = 0; part < k.parts; ++part) {
          const int lane = bl * k.parts + part;
          for (int step = 0; step < k.steps; ++step) {
            std::memcpy(qt + 512 * c + 4 * k.lanes * step + 4 * lane, q + b * kBlockElems + part * per_part + 4 * step, 4);
          }
          const size_t l = l0 + static_cast<size_t>(16 * c + lane);
          lane_d_[l] = d_[i];
          int32_t lane_sum = isum_[i];  // the lane's own elements (the whole block when parts == 1)
          if (k.parts > 1) {
            lane_sum = 0;
            for (int e = 0; e < per_part; ++e) lane_sum += q[b * kBlockElems + part * per_part + e];
          }
          lane_neg128_[l] = -128 * lane_sum;
          if (part == 0) {
            lane_ds_[l] = ds_[i];
            lane_neg8_[l] = -8 * isum_[i];
          }
        }
      }
    }
  }
}

bool can_repack_planar(uint32_t type_id) {
  const auto t = static_cast<TensorType>(type_id);
  return t == TensorType::Q4_0 || t == TensorType::Q4_1 || t == TensorType::Q8_0;
}

namespace {

// Codes (0..15 for Q4, -128..127 for Q8) of one block in file layout.
void block_codes(TensorType type, const uint8_t* blk, int codes[kBlockElems]) {
  if (type == TensorType::Q8_0) {
    for (int e = 0; e < kBlockElems; ++e) codes[e] = static_cast<int8_t>(blk[offsetof(BlockQ8_0, qs) + e]);
    return;
  }
  const uint8_t* qs = blk + (type == TensorType::Q4_1 ? offsetof(BlockQ4_1, qs) : offsetof(BlockQ4_0, qs));
  for (int j = 0; j < 16; ++j) {
    codes[j] = qs[j] & 0x0f;
    codes[j + 16] = qs[j] >> 4;
  }
}

size_t file_block_bytes(TensorType type) {
  return type == TensorType::Q4_1 ? sizeof(BlockQ4_1) : type == TensorType::Q4_0 ? sizeof(BlockQ4_0) : sizeof(BlockQ8_0);
}

int64_t code_bytes_per_block(TensorType type) { return type == TensorType::Q8_0 ? 32 : 16; }

}  // namespace

MatrixView repack_planar(const MatrixView& w, uint8_t* dst) {
  if (!can_repack_planar(w.type_id) || w.planar) throw Error("repack_planar: unsupported matrix");
  const auto type = static_cast<TensorType>(w.type_id);
  const int64_t nb = w.cols / kBlockElems;
  const PlanarGeometry g(nb);
  const size_t bsize = file_block_bytes(type);
  const int64_t code_bytes = code_bytes_per_block(type) * nb;
  int codes[kBlockElems];
  for (int64_t r = 0; r < w.rows; ++r) {
    const uint8_t* src = w.data + static_cast<uint64_t>(r) * w.row_bytes;
    uint8_t* row = dst + static_cast<uint64_t>(r) * w.row_bytes;
    std::memset(row, 0, static_cast<size_t>(code_bytes));
    uint8_t* d = row + code_bytes;
    uint8_t* m = d + nb * 2;
    for (int64_t b = 0; b < nb; ++b) {
      const uint8_t* blk = src + b * bsize;
      std::memcpy(d + 2 * b, blk, 2);  // d is the first field of every block type
      if (type == TensorType::Q4_1) std::memcpy(m + 2 * b, blk + offsetof(BlockQ4_1, m), 2);
    }
    for (int64_t c = 0; c < g.n_chunks(); ++c) {
      const PlanarChunk k = g.chunk(c);
      if (k.parts == 1) {
        // One lane per block: lane bl's 4-byte step i is bytes 4i..4i+3 of the block's file codes
        // (for Q4 the file's bytes already pair element j with j + 16, i.e. step i with i + 4).
        const int loads = type == TensorType::Q8_0 ? 8 : 4;
        const uint32_t bias = type == TensorType::Q8_0 ? 0x80808080u : 0u;
        const size_t qs_at = type == TensorType::Q8_0 ? offsetof(BlockQ8_0, qs)
                             : type == TensorType::Q4_1 ? offsetof(BlockQ4_1, qs) : offsetof(BlockQ4_0, qs);
        uint8_t* out = row + (type == TensorType::Q8_0 ? 512 : 256) * c;
        for (int bl = 0; bl < k.blocks; ++bl) {
          const uint8_t* qs = src + (k.first_block + bl) * bsize + qs_at;
          for (int i = 0; i < loads; ++i) {
            uint32_t v;
            std::memcpy(&v, qs + 4 * i, 4);
            v ^= bias;
            std::memcpy(out + 4 * k.valid_lanes * i + 4 * bl, &v, 4);
          }
        }
        continue;
      }
      for (int bl = 0; bl < k.blocks; ++bl) {  // narrow tail: element by element
        const int64_t b = k.first_block + bl;
        block_codes(type, src + b * bsize, codes);
        for (int e = 0; e < kBlockElems; ++e) {
          if (type == TensorType::Q8_0) {
            row[planar_q8_offset(g, b, e)] = static_cast<uint8_t>(codes[e] ^ 0x80);
          } else {
            // The offset (and its shift) first: in `a[f(&s)] |= x << s` the right side is
            // sequenced before the left, so s would be read before f sets it.
            int shift = 0;
            const int64_t at = planar_q4_offset(g, b, e, &shift);
            row[at] |= static_cast<uint8_t>(codes[e] << shift);
          }
        }
      }
    }
  }
  MatrixView out = w;
  out.data = dst;
  out.planar = true;
  return out;
}

void planar_row_to_blocks(const MatrixView& w, int64_t r, uint8_t* blocks) {
  const auto type = static_cast<TensorType>(w.type_id);
  const uint8_t* row = w.data + static_cast<uint64_t>(r) * w.row_bytes;
  const int64_t nb = w.cols / kBlockElems;
  const PlanarGeometry g(nb);
  const size_t bsize = file_block_bytes(type);
  const uint8_t* d = row + code_bytes_per_block(type) * nb;
  const bool q8 = type == TensorType::Q8_0;
  const size_t qs_at = q8 ? offsetof(BlockQ8_0, qs) : type == TensorType::Q4_1 ? offsetof(BlockQ4_1, qs) : offsetof(BlockQ4_0, qs);
  std::memset(blocks, 0, static_cast<size_t>(nb) * bsize);
  for (int64_t b = 0; b < nb; ++b) {
    std::memcpy(blocks + b * bsize, d + 2 * b, 2);
    if (type == TensorType::Q4_1) std::memcpy(blocks + b * bsize + offsetof(BlockQ4_1, m), d + 2 * nb + 2 * b, 2);
  }
  for (int64_t c = 0; c < g.n_chunks(); ++c) {
    const PlanarChunk k = g.chunk(c);
    const int per_part = kBlockElems / k.parts;
    const uint8_t* codes = row + (q8 ? 512 : 256) * c;
    for (int lane = 0; lane < k.valid_lanes; ++lane) {
      uint8_t* qs = blocks + (k.first_block + lane / k.parts) * bsize + qs_at;
      const int e0 = (lane % k.parts) * per_part;
      for (int step = 0; step < k.steps; ++step) {
        for (int byte = 0; byte < 4; ++byte) {
          const int e = e0 + 4 * step + byte;
          if (q8) {
            qs[e] = codes[4 * k.valid_lanes * step + 4 * lane + byte] ^ 0x80;
          } else {
            const int half = k.steps / 2;
            const int q = (codes[4 * k.valid_lanes * (step % half) + 4 * lane + byte] >> (step < half ? 0 : 4)) & 0x0f;
            qs[e % 16] |= static_cast<uint8_t>(e < 16 ? q : q << 4);
          }
        }
      }
    }
  }
}

void dequantize_row(const MatrixView& w, int64_t r, float* out) {
  if (w.planar) {
    std::vector<uint8_t> blocks(static_cast<size_t>(w.row_bytes));
    planar_row_to_blocks(w, r, blocks.data());
    switch (static_cast<TensorType>(w.type_id)) {
      case TensorType::Q4_0: dequantize_row_q4_0_ref(reinterpret_cast<const BlockQ4_0*>(blocks.data()), out, w.cols); break;
      case TensorType::Q4_1: dequantize_row_q4_1_ref(reinterpret_cast<const BlockQ4_1*>(blocks.data()), out, w.cols); break;
      default: dequantize_row_q8_0_ref(reinterpret_cast<const BlockQ8_0*>(blocks.data()), out, w.cols); break;
    }
    return;
  }
  const uint8_t* row = w.data + static_cast<uint64_t>(r) * w.row_bytes;
  switch (static_cast<TensorType>(w.type_id)) {
    case TensorType::F32:
      std::memcpy(out, row, static_cast<size_t>(w.cols) * sizeof(float));  // rows may be unaligned
      break;
    case TensorType::F16:
      for (int64_t c = 0; c < w.cols; ++c) {
        uint16_t h;
        std::memcpy(&h, row + 2 * c, 2);
        out[c] = fp16_to_fp32(h);
      }
      break;
    case TensorType::BF16:
      for (int64_t c = 0; c < w.cols; ++c) {
        uint16_t h;
        std::memcpy(&h, row + 2 * c, 2);
        out[c] = bf16_to_fp32(h);
      }
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
