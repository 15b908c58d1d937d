#pragma once
// KV row codecs: how one head's K or V row (head_dim floats) is stored at 2, 4, 8 or 16 bits.
//
// 2/4/8 bits: group-wise asymmetric quantization along the head dimension. Each group of `group`
// consecutive elements has a scale s and a minimum m, and each element a code c in [0, 2^bits):
// x ~ s * c + m. 16 bits: plain IEEE fp16, no metadata.
// Metadata: 8-bit rows keep s and m as fp16; 2- and 4-bit rows keep only their high byte (fp8
// E5M2: sign, 5 exponent bits, 2 mantissa bits; the fp16 value rounded to nearest even on that
// byte), 16 bits per group instead of 32: int2 costs 2.25 bits per element at group 64 instead of
// 2.5. Measured on real K/V rows this adds 2 % to the 2-bit and 10 % to the 4-bit squared error
// (docs/kv_quality.md), a good trade for 10 % and 5 % fewer bytes.
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
  // Bytes of one scale (or minimum): 1 (E5M2) at 2 and 4 bits, 2 (fp16) at 8 bits.
  int meta_size() const { return bits <= 4 ? 1 : 2; }
  // Scale + minimum per group.
  int meta_bytes() const { return bits == 16 ? 0 : 2 * meta_size() * groups(); }
  int row_bytes() const { return code_bytes() + meta_bytes(); }
};

// fp16 bits of x rounded to the metadata format of a `bits`-wide row (above): fp16 for 8 bits,
// fp16 then round-to-nearest-even on its high byte for 2 and 4 (finite: saturates at +-57344).
uint16_t kv_meta_round(float x, int bits);

// Quantizes n = groups * group elements of x to codes[n] (one code per byte, logical order) and
// per-group scale[groups], minimum[groups] as fp16 bits (representable in the row's metadata
// format, kv_meta_round), for bits in {2, 4, 8}.
// Range: at 2 and 4 bits the group's range [min, max] is shrunk about its centre by the clip
// ratio r in {1, 0.9, ..., 0.5} that gives the smallest squared error (values beyond the clipped
// range take the end codes): with 4 or 16 levels, rows whose extremes are rare gain most from
// finer steps. 8 bits use the full range. Then m = meta(lo), s = meta((hi - m) / (2^bits - 1)),
// c = clamp(round((x - m) / s)), meta = kv_meta_round.
// Robust to bad activations: NaN elements get code 0 and are ignored for the range; +-Inf and
// values beyond the fp16 range clamp to +-65504, so scale and minimum are always finite; a
// constant group gets s = 0 and decodes exactly to m (when m is representable in fp16).
// Returns the squared error of the decoded row (finite elements, +-Inf counted at +-65504).
double kv_quantize_ref(const float* x, int n, int bits, int group, uint8_t* codes, uint16_t* scale,
                       uint16_t* minimum);
// The same with the SIMD group loop (ops/kv_group_codes.h): what the store runs. The codes are
// those of the reference; the returned error may differ from it in its last bits (summation
// order), so a clip ratio could only flip between two trials of equal error to ~1e-15.
double kv_quantize(const float* x, int n, int bits, int group, uint8_t* codes, uint16_t* scale, uint16_t* minimum);

// Key centering chosen per row (kv/kv_store.h key_mean): a K row is stored either as H (k - mean)
// or as H k, whichever has the smaller squared error, and a centred row carries this flag, the
// sign bit, in every scale of the row (scales are >= 0, so the bit is otherwise unused). Readers
// add q . mean to the scores of flagged rows only. Why per row: on SmolLM2 centering shrinks most
// keys' range, but a few percent of rows (attention sinks and sink-like tokens, whose keys lie far
// from the mean) grow, and those rows take most of the attention (docs/kv_quality.md).
inline constexpr uint16_t kKvCentredFlag = 0x8000;

// Key channel weights (kv/kv_store.h key_weight): a quantized K row is stored as H (w * k) or
// H (w * (k - mean)), w > 0 per channel, and queries meet it as H (q / w): q . k is unchanged, but
// the code's error, spread evenly over the channels by the rotation, reaches the score as
// sum_j (q_j / w_j) e_j, so channels that the queries weigh heavily get finer steps. With
// E[q_j^2] = Q_j and E[(k_j - mean_j)^2] = K_j, w_j = (Q_j / K_j)^(1/4) minimises the expected
// squared score error (sum_j w_j^2 K_j)(sum_j Q_j / w_j^2) (Cauchy-Schwarz; engine/key_means.h).

// Quantizes one K row x[n] (clobbered: scratch) like kv_quantize_ref, after multiplying it by
// `weight` (if given) and rotating it with hadamard() if `rotate`. With a mean, also tries
// weight * (x - mean) and keeps the form with the smaller squared error (the Hadamard transform is
// orthonormal, so that error is the same in the weighted basis: with weights it is the
// query-weighted error the scores see); a centred row gets kKvCentredFlag in its scales. Returns
// whether the row is centred.
bool kv_quantize_key_ref(float* x, const float* mean, const float* weight, int n, int bits, int group, bool rotate,
                         uint8_t* codes, uint16_t* scale, uint16_t* minimum);
// The same with kv_quantize (SIMD): what the store runs.
bool kv_quantize_key(float* x, const float* mean, const float* weight, int n, int bits, int group, bool rotate,
                     uint8_t* codes, uint16_t* scale, uint16_t* minimum);

// The inverse of kv_quantize_key_ref's mapping on a decoded K row x[n], in place: rotate back
// (if `rotated`), divide by `weight` (if given), add `mean` (pass it only for a centred row).
void kv_key_row_to_model(float* x, int n, bool rotated, const float* weight, const float* mean);

// True if a K row x[n] is "sink-like": centring does not shrink it, i.e. the summed squared
// ranges (max - min per group) of H (w * (x - mean)) are at least those of H (w * x) (weight and
// rotation as the store applies them; weight may be null). The range is what sets a code's step,
// so these are the rows kv_quantize_key_ref mostly leaves uncentred: on SmolLM2 the attention
// sink and 0.1-5 % of other rows per layer, keys far from the mean that take much of the
// attention (policy/sink_policy.h).
bool kv_key_row_sink_like(const float* x, const float* mean, const float* weight, int n, int group, bool rotate);

// True if a row's scales carry kKvCentredFlag (test the first group's scale).
inline bool kv_row_centred(const uint16_t* scale) { return (scale[0] & kKvCentredFlag) != 0; }

// Inverse of kv_quantize_ref: out[i] = s * c + m (fp32 fused multiply-add). The scale's sign bit
// (kKvCentredFlag) is ignored: the output is the row as stored, centred or not.
void kv_dequantize_ref(const uint8_t* codes, int n, int group, const uint16_t* scale,
                       const uint16_t* minimum, float* out);

// The value a row has after being stored at `bits` and read back, in place; x: one head's row of
// n elements. Quantized widths: subtract `mean` (if given: key centering, kv/kv_store.h), multiply
// by `weight` (if given: key channel weights), rotate, quantize, dequantize, rotate back, divide
// by `weight`, add `mean`; with a mean the row is centred only where that lowers its error
// (kv_quantize_key, as the store codes it). bits 16: fp16 rounding only.
void kv_roundtrip(float* x, int n, int bits, int group, bool rotate, const float* mean = nullptr,
                  const float* weight = nullptr);

// True if n is a power of two in [1, 1024], the sizes hadamard() handles.
bool hadamard_supported(int n);

// In-place orthonormal Walsh-Hadamard transform (Sylvester order, scaled by 1/sqrt(n)), so it is
// its own inverse. n log2 n additions per row, run for every K/V row stored at 2-8 bits and every
// query over quantized keys. hadamard_ref is the plain butterfly loop (GCC's -O2 does not
// vectorize it; it was 2.6 % of an int4 evaluation); hadamard is the same butterflies on 4-lane
// vectors (ops/hadamard.cc), bit-identical to it: each output is computed by the same additions
// in the same order (tests/unit/kv_codec_test.cc checks equality).
void hadamard(float* x, int n);
void hadamard_ref(float* x, int n);

}  // namespace kvbits
