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

// Whether the x86 integer kernels that run on 256-bit vectors may use vpdpbusd (four u8 x s8
// products added to each 32-bit lane, one instruction) where plain AVX2 needs vpmaddubsw, a 16-bit
// add and, per segment, a vpmaddwd to widen (ops/attention_int_tiles-inl.h). vex: the AVX-VNNI
// form, for the AVX2 target (Intel Alder Lake and later client cores, Sapphire Rapids and later
// Xeons, AMD Zen 5); otherwise the EVEX form of AVX512-VNNI with AVX512-VL, for the AVX3 targets
// (Cascade Lake, Ice Lake and later, Zen 4 and later). Highway 1.0.3's AVX2 and AVX3 targets do
// not require either, so the kernels ask at run time. KVBITS_NO_VPDPBUSD=1 in the environment turns
// both off (tests of the plain path on a CPU that has them, A/B benchmarks). Checked once
// (thread-safe); later calls cost a load and a branch.
bool vpdpbusd_enabled(bool vex);

}  // namespace kvbits
