#include "backend/simd_targets.h"

#include "hwy/targets.h"

namespace kvbits {

void require_gfni_for_avx3_dl() {
  static const bool checked = [] {
#if defined(__x86_64__) || defined(__i386__)
    if (!__builtin_cpu_supports("gfni")) hwy::DisableTargets(HWY_AVX3_DL);
#endif
    return true;
  }();
  (void)checked;
}

}  // namespace kvbits
