#pragma once
// Small per-token ops of the Llama block, O(d) per token. At -O2 GCC vectorizes none of these
// loops (reductions, std::exp, possible aliasing), and scalar they were ~5 % of an evaluation's
// time (perf, 2026-12-03), so rms_norm, swiglu and add_in_place are Highway kernels, each with a
// scalar *_ref (tests/unit/elementwise_test.cc compares them over lengths and offsets).
#include <cstdint>

namespace kvbits {

// out[i] = x[i] / sqrt(mean(x^2) + eps) * weight[i], for one row of n.
void rms_norm(const float* x, const float* weight, int64_t n, float eps, float* out);
void rms_norm_ref(const float* x, const float* weight, int64_t n, float eps, float* out);

// Rotary embedding in place on one token's heads, llama.cpp's "normal" rope (GGUF llama files
// store Q/K rows permuted for it): pairs (2i, 2i+1) rotate by pos * theta_base^(-2i/rot_dim).
// x: [n_heads, head_dim]; only the first rot_dim dims of each head rotate.
void rope_normal(float* x, int n_heads, int head_dim, int rot_dim, int64_t pos, float theta_base);
// rope_normal in two steps, so a forward pass computes each position's angles once for all layers
// and for both Q and K (3,840 sin/cos calls per token for SmolLM2-135M before) — bit-identical.
// cos_sin[rot_dim]: cos and sin of pair i's angle at [2i] and [2i + 1].
void rope_angles(int64_t pos, int rot_dim, float theta_base, float* cos_sin);
void rope_apply(float* x, int n_heads, int head_dim, int rot_dim, const float* cos_sin);

// gate[i] = silu(gate[i]) * up[i]
void swiglu(float* gate, const float* up, int64_t n);
void swiglu_ref(float* gate, const float* up, int64_t n);

void add_in_place(float* x, const float* y, int64_t n);

// log-softmax of logits[n] into out[n] (double accumulation).
void log_softmax(const float* logits, int64_t n, float* out);

}  // namespace kvbits
