#pragma once
// The inner loop of the KV codec (ops/kv_codec.h): one group's codes for a given scale and
// minimum, and the squared error of the decoded values. The store runs it up to 12 times per new
// row (6 clip ratios, plain and centred keys), so it has a Highway version; the scalar one is its
// reference, and tests/unit/kv_codec_test.cc compares them over many lengths, offsets and inputs
// (NaN, +-Inf, huge values included).
#include <cstdint>

namespace kvbits {

// For each i < n: NaN -> code 0 (not counted in the error); else vc = clamp(x[i], +-65504),
// c = clamp(round_half_even((vc - m) * inv), 0, levels), codes[i] = c, error += (fma(s, c, m) - vc)^2
// (the fma in fp32, as kv_dequantize_ref decodes; the difference and the sum in double).
// Requires finite m, s, inv. Returns the error.
double kv_group_codes_ref(const float* x, int n, int levels, float m, float s, float inv, uint8_t* codes);

// The same, vectorized. Codes are identical to the reference; the error is the same sum of the
// same terms in another order (equal to ~1e-15 relative; on targets without FMA the decoded
// values in it carry one more rounding).
double kv_group_codes(const float* x, int n, int levels, float m, float s, float inv, uint8_t* codes);

}  // namespace kvbits
