#include "ops/kv_codec.h"

#include <algorithm>
#include <cmath>

#include "ops/kv_group_codes.h"
#include "util/half.h"

namespace kvbits {

namespace {
constexpr float kHalfMax = 65504.0f;
}  // namespace

bool valid_kv_bits(int bits) { return bits == 2 || bits == 4 || bits == 8 || bits == 16; }

uint16_t kv_meta_round(float x, int bits) {
  const uint16_t h = fp32_to_fp16(x);
  if (bits > 4) return h;
  const uint16_t sign = h & 0x8000u;
  uint32_t mag = h & 0x7fffu;
  mag = (mag + 0x7fu + ((mag >> 8) & 1u)) & 0xff00u;  // round to nearest even on the high byte
  if (mag >= 0x7c00u) mag = 0x7b00u;                  // saturate below infinity
  return static_cast<uint16_t>(sign | mag);
}

namespace {

// The next value below h (fp16 bits) in the metadata format of a `bits`-wide row, or h itself at
// the most negative finite value.
uint16_t meta_below(uint16_t h, int bits) {
  const uint16_t step = bits > 4 ? 1 : 0x100;
  const uint16_t max_mag = bits > 4 ? 0x7bff : 0x7b00;
  const uint16_t mag = h & 0x7fffu;
  if (h & 0x8000u) return mag >= max_mag ? h : static_cast<uint16_t>(h + step);  // more negative
  return mag == 0 ? static_cast<uint16_t>(0x8000u | step) : static_cast<uint16_t>(h - step);
}

// The group loop a row quantizer runs: kv_group_codes_ref (the reference) or kv_group_codes
// (SIMD, the store's).
using GroupCodesFn = double (*)(const float* x, int n, int levels, float m, float s, float inv, uint8_t* codes);

// Codes of one group for the range [lo, hi]; returns the squared error of the decoded values
// (finite elements only). lo <= hi, both finite.
double quantize_group(const float* x, int group, int bits, float lo, float hi, uint8_t* codes, uint16_t* s_out,
                      uint16_t* m_out, GroupCodesFn group_codes) {
  const int levels = (1 << bits) - 1;
  uint16_t m_h = kv_meta_round(lo, bits);
  // A narrow range far from zero can have its minimum rounded above hi; step it down to at most
  // lo so that the scale is never negative: its sign bit is the K rows' centring flag.
  for (int i = 0; i < 4 && fp16_to_fp32(m_h) > hi; ++i) m_h = meta_below(m_h, bits);
  const float m = fp16_to_fp32(m_h);
  // (hi - m) can reach 2 * 65504: compute the step in fp32, then clamp to fp16's range.
  const uint16_t s_h = kv_meta_round(std::min(std::max(0.0f, (hi - m) / static_cast<float>(levels)), kHalfMax), bits);  // +0, never -0
  const float s = fp16_to_fp32(s_h);
  const float inv = s > 0.0f ? 1.0f / s : 0.0f;
  *s_out = s_h;
  *m_out = m_h;
  return group_codes(x, group, levels, m, s, inv, codes);
}

// kv_quantize_ref's contract, with the given group loop.
double quantize_row(const float* x, int n, int bits, int group, uint8_t* codes, uint16_t* scale, uint16_t* minimum,
                    GroupCodesFn group_codes) {
  uint8_t trial[1024];
  double total = 0.0;
  for (int g = 0; g * group < n; ++g) {
    const float* xg = x + g * group;
    float lo = INFINITY, hi = -INFINITY;
    for (int i = 0; i < group; ++i) {
      if (std::isnan(xg[i])) continue;
      const float v = std::clamp(xg[i], -kHalfMax, kHalfMax);
      lo = std::min(lo, v);
      hi = std::max(hi, v);
    }
    if (lo > hi) lo = hi = 0.0f;  // all NaN
    double best = quantize_group(xg, group, bits, lo, hi, codes + g * group, &scale[g], &minimum[g], group_codes);
    if (bits > 4 || hi == lo) {
      total += best;
      continue;
    }
    const float centre = 0.5f * lo + 0.5f * hi, half = 0.5f * hi - 0.5f * lo;
    for (const float r : {0.9f, 0.8f, 0.7f, 0.6f, 0.5f}) {
      uint16_t s_h, m_h;
      const double err =
          quantize_group(xg, group, bits, centre - r * half, centre + r * half, trial, &s_h, &m_h, group_codes);
      if (err < best) {
        best = err;
        std::copy(trial, trial + group, codes + g * group);
        scale[g] = s_h;
        minimum[g] = m_h;
      }
    }
    total += best;
  }
  return total;
}

}  // namespace

double kv_quantize_ref(const float* x, int n, int bits, int group, uint8_t* codes, uint16_t* scale,
                       uint16_t* minimum) {
  return quantize_row(x, n, bits, group, codes, scale, minimum, kv_group_codes_ref);
}

double kv_quantize(const float* x, int n, int bits, int group, uint8_t* codes, uint16_t* scale, uint16_t* minimum) {
  return quantize_row(x, n, bits, group, codes, scale, minimum, kv_group_codes);
}

void kv_dequantize_ref(const uint8_t* codes, int n, int group, const uint16_t* scale,
                       const uint16_t* minimum, float* out) {
  for (int i = 0; i < n; ++i) {
    const int g = i / group;
    out[i] = std::fma(fp16_to_fp32(static_cast<uint16_t>(scale[g] & ~kKvCentredFlag)), static_cast<float>(codes[i]),
                      fp16_to_fp32(minimum[g]));
  }
}

namespace {
// dst[n] = H (weight * (x - mean)), each of mean, weight and H optional: the form a K row is coded
// in (dst may be x).
void key_row_coded_form(float* dst, const float* x, const float* mean, const float* weight, int n, bool rotate) {
  for (int i = 0; i < n; ++i) dst[i] = mean ? x[i] - mean[i] : x[i];
  if (weight) {
    for (int i = 0; i < n; ++i) dst[i] *= weight[i];
  }
  if (rotate) hadamard(dst, n);
}

// kv_quantize_key_ref's contract, with the given row quantizer.
bool quantize_key_row(float* x, const float* mean, const float* weight, int n, int bits, int group, bool rotate,
                      uint8_t* codes, uint16_t* scale, uint16_t* minimum, GroupCodesFn group_codes) {
  float centred[1024];
  if (mean) key_row_coded_form(centred, x, mean, weight, n, rotate);
  key_row_coded_form(x, x, nullptr, weight, n, rotate);
  const double plain_error = quantize_row(x, n, bits, group, codes, scale, minimum, group_codes);
  if (!mean) return false;
  uint8_t c_codes[1024];
  uint16_t c_scale[64], c_minimum[64];
  if (!(quantize_row(centred, n, bits, group, c_codes, c_scale, c_minimum, group_codes) < plain_error)) return false;
  const int groups = n / group;
  std::copy(c_codes, c_codes + n, codes);
  for (int g = 0; g < groups; ++g) {
    scale[g] = static_cast<uint16_t>(c_scale[g] | kKvCentredFlag);
    minimum[g] = c_minimum[g];
  }
  return true;
}
}  // namespace

bool kv_quantize_key_ref(float* x, const float* mean, const float* weight, int n, int bits, int group, bool rotate,
                         uint8_t* codes, uint16_t* scale, uint16_t* minimum) {
  return quantize_key_row(x, mean, weight, n, bits, group, rotate, codes, scale, minimum, kv_group_codes_ref);
}

bool kv_quantize_key(float* x, const float* mean, const float* weight, int n, int bits, int group, bool rotate,
                     uint8_t* codes, uint16_t* scale, uint16_t* minimum) {
  return quantize_key_row(x, mean, weight, n, bits, group, rotate, codes, scale, minimum, kv_group_codes);
}

void kv_roundtrip(float* x, int n, int bits, int group, bool rotate, const float* mean, const float* weight) {
  if (bits == 16) {
    for (int i = 0; i < n; ++i) x[i] = fp16_to_fp32(fp32_to_fp16(x[i]));
    return;
  }
  uint8_t codes[1024];
  uint16_t scale[64], minimum[64];
  const bool centred = kv_quantize_key(x, mean, weight, n, bits, group, rotate, codes, scale, minimum);
  kv_dequantize_ref(codes, n, group, scale, minimum, x);
  kv_key_row_to_model(x, n, rotate, weight, centred ? mean : nullptr);
}

void kv_key_row_to_model(float* x, int n, bool rotated, const float* weight, const float* mean) {
  if (rotated) hadamard(x, n);
  if (weight) {
    for (int i = 0; i < n; ++i) x[i] /= weight[i];
  }
  if (mean) {
    for (int i = 0; i < n; ++i) x[i] += mean[i];
  }
}

bool kv_key_row_sink_like(const float* x, const float* mean, const float* weight, int n, int group, bool rotate) {
  float plain[1024], centred[1024];
  key_row_coded_form(plain, x, nullptr, weight, n, rotate);
  key_row_coded_form(centred, x, mean, weight, n, rotate);
  double r_plain = 0.0, r_centred = 0.0;
  for (int g = 0; g * group < n; ++g) {
    const auto [p0, p1] = std::minmax_element(plain + g * group, plain + (g + 1) * group);
    const auto [c0, c1] = std::minmax_element(centred + g * group, centred + (g + 1) * group);
    r_plain += static_cast<double>(*p1 - *p0) * (*p1 - *p0);
    r_centred += static_cast<double>(*c1 - *c0) * (*c1 - *c0);
  }
  return r_centred >= r_plain;
}

bool hadamard_supported(int n) { return n >= 1 && n <= 1024 && (n & (n - 1)) == 0; }

void hadamard_ref(float* x, int n) {
  for (int h = 1; h < n; h *= 2) {
    for (int i = 0; i < n; i += 2 * h) {
      for (int j = i; j < i + h; ++j) {
        const float a = x[j], b = x[j + h];
        x[j] = a + b;
        x[j + h] = a - b;
      }
    }
  }
  const float norm = 1.0f / std::sqrt(static_cast<float>(n));
  for (int i = 0; i < n; ++i) x[i] *= norm;
}

}  // namespace kvbits
