#pragma once
// The calling thread's floating-point environment for the attention kernels: flush-to-zero (FTZ)
// and denormals-are-zero (DAZ) in MXCSR while a FlushDenormalsScope lives, the previous MXCSR
// restored when it ends. A subnormal result or operand costs an x86 core a microcode assist:
// vscalefps with a subnormal result took ~165 cycles against ~4 on the Emerald Rapids host
// (session 49, docs/benchmarks.md), and the VNNI kernels' full steps leave such lanes unmasked
// (Exp2PsCoarseFull, ops/attention_vnni-inl.h). With FTZ they are 0, as with a mask.
// Values below 2^-126 (~1.2e-38) become 0: in the softmax that is a weight 2^-126 below the step's
// largest. Other architectures: no change (their kernels have no unmasked form).
#if defined(__x86_64__) || defined(__i386__)
#include <xmmintrin.h>
#endif

namespace kvbits {

class FlushDenormalsScope {
 public:
  FlushDenormalsScope() {
#if defined(__x86_64__) || defined(__i386__)
    saved_ = _mm_getcsr();
    _mm_setcsr(saved_ | kFlushToZero | kDenormalsAreZero);
#endif
  }
  ~FlushDenormalsScope() {
#if defined(__x86_64__) || defined(__i386__)
    _mm_setcsr(saved_);
#endif
  }
  FlushDenormalsScope(const FlushDenormalsScope&) = delete;
  FlushDenormalsScope& operator=(const FlushDenormalsScope&) = delete;

 private:
  static constexpr unsigned kFlushToZero = 1u << 15;      // MXCSR.FTZ
  static constexpr unsigned kDenormalsAreZero = 1u << 6;  // MXCSR.DAZ
  unsigned saved_ = 0;
};

}  // namespace kvbits
