#include "backend/simd_targets.h"

#include <cstdlib>

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

bool vpdpbusd_enabled(bool vex) {
  static const int forms = [] {  // bit 0: VEX, bit 1: EVEX
#if defined(__x86_64__) || defined(__i386__)
    const char* off = std::getenv("KVBITS_NO_VPDPBUSD");
    if (off != nullptr && *off != '\0' && *off != '0') return 0;
    return (__builtin_cpu_supports("avxvnni") ? 1 : 0) |
           (__builtin_cpu_supports("avx512vnni") && __builtin_cpu_supports("avx512vl") ? 2 : 0);
#else
    return 0;
#endif
  }();
  return (forms & (vex ? 1 : 2)) != 0;
}

}  // namespace kvbits
