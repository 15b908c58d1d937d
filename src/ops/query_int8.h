#pragma once
// A decode / prefill query's forms for the attention kernels (ops/attention.cc prepare_queries):
// each head scaled and divided by the key channel weights, each group rounded to int8 for the
// integer kernels. Highway code, dispatched per target.
#include <cstdint>

namespace kvbits {

// x[0, n) (n a multiple of 16: groups are multiples of 16, so of every target's lanes) rounded to
// int8 against its largest magnitude: qi = round(x inv) with inv = 127 / amax (0 for an all-zero
// group), ties to even as std::nearbyint, and when qi2 is set the residuals
// qi2 = round((x inv - qi) 254), within +-127 because x inv - qi is exact and within +-1/2. Writes
// amax and the sum of x (in lane order: it may differ from a sequential sum in its last bits).
void quantize_query_group(const float* x, int n, int8_t* qi, int8_t* qi2, float* amax, float* sum);

// One query head's float forms: qf[i] = x[i] * scale, qr[i] = qf[i] / weight[i] (weight nullptr:
// qr = qf), each exactly the scalar expression's value (IEEE products and quotients are
// correctly rounded, in any vector width).
void scale_query(const float* x, int n, float scale, const float* weight, float* qf, float* qr);

}  // namespace kvbits
