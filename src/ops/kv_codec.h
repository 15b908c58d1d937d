#pragma once
// KV row codecs: how one head's K or V row (head_dim floats) is stored at 2, 4, 8 or 16 bits.
//
// 2/4/8 bits: group-wise asymmetric quantization along the head dimension. Each group of `group`
// consecutive elements has an fp16 scale s and an fp16 minimum m, and each element a code
// c in [0, 2^bits): x ~ s * c + m. 16 bits: plain IEEE fp16, no metadata.
//
// Keys have outlier channels that ruin low-bit codes; the store can rotate K and V rows with an
// orthonormal Walsh-Hadamard transform before quantizing (hadamard() below): q.k = (Hq).(Hk), and
// attention un-rotates the V sum with H (H = H^T = H^-1), so quality, not the math, changes.
//
// These are the scalar reference codecs; the store uses them to encode (once per token and layer,
// off the attention hot path), and the attention kernels read their codes in the page layout of
// ops/kv_page.h.
#include <cstdint>

namespace kvbits {

// True for the widths a KV row can be stored at: 2, 4, 8, 16.
bool valid_kv_bits(int bits);

// Geometry of one head's row at one width.
struct KvRowFormat {
  int bits = 16;      // 2, 4, 8 or 16
  int head_dim = 0;   // elements per row
  int group = 0;      // elements per (scale, minimum) pair; divides head_dim; unused at 16 bits

  int groups() const { return bits == 16 ? 0 : head_dim / group; }
  int code_bytes() const { return head_dim * bits / 8; }
  // fp16 scale + fp16 minimum per group.
  int meta_bytes() const { return bits == 16 ? 0 : 4 * groups(); }
  int row_bytes() const { return code_bytes() + meta_bytes(); }
};

// Quantizes n = groups * group elements of x to codes[n] (one code per byte, logical order) and
// per-group fp16 scale[groups], minimum[groups], for bits in {2, 4, 8}.
// Range: at 2 and 4 bits the group's range [min, max] is shrunk about its centre by the clip
// ratio r in {1, 0.9, ..., 0.5} that gives the smallest squared error (values beyond the clipped
// range take the end codes): with 4 or 16 levels, rows whose extremes are rare gain most from
// finer steps. 8 bits use the full range. Then m = fp16(lo), s = fp16((hi - m) / (2^bits - 1)),
// c = clamp(round((x - m) / s)).
// Robust to bad activations: NaN elements get code 0 and are ignored for the range; +-Inf and
// values beyond the fp16 range clamp to +-65504, so scale and minimum are always finite; a
// constant group gets s = 0 and decodes exactly to m (when m is representable in fp16).
void kv_quantize_ref(const float* x, int n, int bits, int group, uint8_t* codes, uint16_t* scale,
                     uint16_t* minimum);

// Inverse of kv_quantize_ref: out[i] = s * c + m (fp32 fused multiply-add).
void kv_dequantize_ref(const uint8_t* codes, int n, int group, const uint16_t* scale,
                       const uint16_t* minimum, float* out);

// The value a row has after being stored at `bits` and read back, in place; x: one head's row of
// n elements. Quantized widths: subtract `mean` (if given: key centering, kv/kv_store.h), rotate,
// quantize, dequantize, rotate back, add `mean`. bits 16: fp16 rounding only.
void kv_roundtrip(float* x, int n, int bits, int group, bool rotate, const float* mean = nullptr);

// True if n is a power of two in [1, 1024], the sizes hadamard() handles.
bool hadamard_supported(int n);

// In-place orthonormal Walsh-Hadamard transform (Sylvester order, scaled by 1/sqrt(n)), so it is
// its own inverse. n log2 n additions: ~400 flops for a 64-element head, run a few times per token
// and layer, so a plain loop (which the compiler vectorizes) is enough.
void hadamard(float* x, int n);

}  // namespace kvbits
