#include "ops/quant_blocks.h"

#include <cmath>

#include "util/half.h"

namespace kvbits {

void quantize_row_q4_0_ref(const float* x, BlockQ4_0* y, int64_t n) {
  for (int64_t b = 0; b < n / kBlockElems; ++b) {
    const float* xb = x + b * kBlockElems;
    float amax = 0.0f, max = 0.0f;  // value with the largest magnitude, sign kept
    for (int j = 0; j < kBlockElems; ++j) {
      if (std::fabs(xb[j]) > amax) {
        amax = std::fabs(xb[j]);
        max = xb[j];
      }
    }
    const float d = max / -8.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    y[b].d = fp32_to_fp16(d);
    for (int j = 0; j < 16; ++j) {
      const float x0 = xb[j] * id, x1 = xb[j + 16] * id;
      int q0 = static_cast<int>(x0 + 8.5f), q1 = static_cast<int>(x1 + 8.5f);
      q0 = q0 > 15 ? 15 : (q0 < 0 ? 0 : q0);
      q1 = q1 > 15 ? 15 : (q1 < 0 ? 0 : q1);
      y[b].qs[j] = static_cast<uint8_t>(q0 | (q1 << 4));
    }
  }
}

void quantize_row_q4_1_ref(const float* x, BlockQ4_1* y, int64_t n) {
  for (int64_t b = 0; b < n / kBlockElems; ++b) {
    const float* xb = x + b * kBlockElems;
    float lo = xb[0], hi = xb[0];
    for (int j = 1; j < kBlockElems; ++j) {
      lo = std::fmin(lo, xb[j]);
      hi = std::fmax(hi, xb[j]);
    }
    const float d = (hi - lo) / 15.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    y[b].d = fp32_to_fp16(d);
    y[b].m = fp32_to_fp16(lo);
    for (int j = 0; j < 16; ++j) {
      int q0 = static_cast<int>((xb[j] - lo) * id + 0.5f);
      int q1 = static_cast<int>((xb[j + 16] - lo) * id + 0.5f);
      q0 = q0 > 15 ? 15 : (q0 < 0 ? 0 : q0);
      q1 = q1 > 15 ? 15 : (q1 < 0 ? 0 : q1);
      y[b].qs[j] = static_cast<uint8_t>(q0 | (q1 << 4));
    }
  }
}

void quantize_row_q8_0_ref(const float* x, BlockQ8_0* y, int64_t n) {
  for (int64_t b = 0; b < n / kBlockElems; ++b) {
    const float* xb = x + b * kBlockElems;
    float amax = 0.0f;
    for (int j = 0; j < kBlockElems; ++j) amax = std::fmax(amax, std::fabs(xb[j]));
    const float d = amax / 127.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    y[b].d = fp32_to_fp16(d);
    for (int j = 0; j < kBlockElems; ++j) y[b].qs[j] = static_cast<int8_t>(std::nearbyint(xb[j] * id));
  }
}

void quantize_row_q8_1_ref(const float* x, BlockQ8_1* y, int64_t n) {
  for (int64_t b = 0; b < n / kBlockElems; ++b) {
    const float* xb = x + b * kBlockElems;
    float amax = 0.0f;
    for (int j = 0; j < kBlockElems; ++j) amax = std::fmax(amax, std::fabs(xb[j]));
    const float d = amax / 127.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    int sum = 0;
    for (int j = 0; j < kBlockElems; ++j) {
      const int q = static_cast<int>(std::nearbyint(xb[j] * id));
      y[b].qs[j] = static_cast<int8_t>(q);
      sum += q;
    }
    y[b].d = fp32_to_fp16(d);
    y[b].s = fp32_to_fp16(static_cast<float>(sum) * d);
  }
}

void quantize_activation_blocks_ref(const float* x, int64_t n_blocks, int8_t* qs, float* d, int32_t* isum,
                                    float* ds) {
  for (int64_t b = 0; b < n_blocks; ++b) {
    const float* xb = x + b * kBlockElems;
    float amax = 0.0f;
    for (int j = 0; j < kBlockElems; ++j) amax = std::fmax(amax, std::fabs(xb[j]));
    // Same rounding as ggml's quantize_row_q8_1: q = round(x * 127 / amax), d stored as fp16.
    const float db = amax / 127.0f;
    const float id = amax != 0.0f ? 127.0f / amax : 0.0f;
    int8_t* q = qs + b * kBlockElems;
    int32_t sum = 0;
    for (int j = 0; j < kBlockElems; ++j) {
      const float v = std::nearbyint(xb[j] * id);
      // NaN/Inf activations would be UB to convert; they only arise from a broken model,
      // and map to 0 here rather than to garbage.
      const int qi = std::isfinite(v) ? static_cast<int>(v) : 0;
      q[j] = static_cast<int8_t>(qi);
      sum += qi;
    }
    d[b] = fp16_to_fp32(fp32_to_fp16(db));
    isum[b] = sum;
    ds[b] = d[b] * static_cast<float>(sum);
  }
}

void dequantize_row_q4_0_ref(const BlockQ4_0* x, float* y, int64_t n) {
  for (int64_t b = 0; b < n / kBlockElems; ++b) {
    const float d = fp16_to_fp32(x[b].d);
    for (int j = 0; j < 16; ++j) {
      y[b * kBlockElems + j] = d * static_cast<float>((x[b].qs[j] & 0x0f) - 8);
      y[b * kBlockElems + j + 16] = d * static_cast<float>((x[b].qs[j] >> 4) - 8);
    }
  }
}

void dequantize_row_q4_1_ref(const BlockQ4_1* x, float* y, int64_t n) {
  for (int64_t b = 0; b < n / kBlockElems; ++b) {
    const float d = fp16_to_fp32(x[b].d), m = fp16_to_fp32(x[b].m);
    for (int j = 0; j < 16; ++j) {
      y[b * kBlockElems + j] = d * static_cast<float>(x[b].qs[j] & 0x0f) + m;
      y[b * kBlockElems + j + 16] = d * static_cast<float>(x[b].qs[j] >> 4) + m;
    }
  }
}

void dequantize_row_q8_0_ref(const BlockQ8_0* x, float* y, int64_t n) {
  for (int64_t b = 0; b < n / kBlockElems; ++b) {
    const float d = fp16_to_fp32(x[b].d);
    for (int j = 0; j < kBlockElems; ++j) y[b * kBlockElems + j] = d * static_cast<float>(x[b].qs[j]);
  }
}

void dequantize_row_q8_1_ref(const BlockQ8_1* x, float* y, int64_t n) {
  for (int64_t b = 0; b < n / kBlockElems; ++b) {
    const float d = fp16_to_fp32(x[b].d);
    for (int j = 0; j < kBlockElems; ++j) y[b * kBlockElems + j] = d * static_cast<float>(x[b].qs[j]);
  }
}

}  // namespace kvbits
