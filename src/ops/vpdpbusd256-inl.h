// vpdpbusd on 256-bit vectors for the int8 kernels of the x86 targets (ops/matmul.cc,
// ops/matmul_planar-inl.h, ops/attention_int_tiles-inl.h): on AVX2 and AVX3 where the CPU has it
// (backend/simd_targets.h vpdpbusd_enabled), on AVX3_DL always. Included per x86 target inside its namespace (no
// include guard on purpose).

// acc + the four u8 x s8 products of each 32-bit lane (u unsigned, s signed), added in 32 bits.
// The AVX2 target gets AVX-VNNI's VEX form ("x": ymm0-15, which VEX encodes), the AVX3 targets
// AVX512-VNNI's EVEX form. Inline assembly: Highway 1.0.3's targets do not enable "avxvnni" /
// "avx512vnni" for the intrinsics (AVX3_DL enables "avxvnni", whose 256-bit intrinsic is the VEX
// form that Zen 4 and Ice Lake lack: SIGILL on exactly the machines AVX3_DL is chosen for). s may
// stay in memory ("m").
HWY_INLINE __m256i Vpdpbusd256(__m256i acc, __m256i u, __m256i s) {
#if HWY_TARGET == HWY_AVX2
  asm("%{vex%} vpdpbusd %2, %1, %0" : "+x"(acc) : "x"(u), "xm"(s));
#else
  asm("%{evex%} vpdpbusd %2, %1, %0" : "+v"(acc) : "v"(u), "vm"(s));
#endif
  return acc;
}
