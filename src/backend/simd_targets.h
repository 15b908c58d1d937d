#pragma once
// The SIMD targets the kernels may dispatch to, beyond what Highway checks.

namespace kvbits {

// Our AVX3_DL kernels (ops/matmul_planar-inl.h, ops/attention_vnni-inl.h) use GFNI's
// vgf2p8affineqb to unpack 2- and 4-bit codes. Highway 1.0.3 picks AVX3_DL without checking GFNI
// (later Highway versions require it there); every core we know with AVX3_DL's features has it
// (Ice Lake and later, Zen 4 and later), but on one without it this disables AVX3_DL so that
// dispatch falls back to AVX3. Call before dispatching to those kernels; the check runs once
// (thread-safe), later calls cost a load and a branch.
void require_gfni_for_avx3_dl();

}  // namespace kvbits
