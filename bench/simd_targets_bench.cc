// Not a benchmark: lets every benchmark of this binary run on the kernels a machine without
// AVX-512 gets (AVX2 and below: the portable attention path, the ymm matmul kernels).
//
//   KVBITS_BENCH_NO_AVX512=1 ./build/bench/kvbits_kernel_bench --benchmark_filter=Attention
//
// Highway then dispatches as on such a machine; results and labels name the target used.
#include <cstdlib>

#include "hwy/targets.h"

namespace kvbits {
namespace {

const bool kAvx512Disabled = [] {
  const char* v = std::getenv("KVBITS_BENCH_NO_AVX512");
  if (v == nullptr || *v == '\0' || *v == '0') return false;
  hwy::DisableTargets(HWY_AVX3 | HWY_AVX3_DL);
  return true;
}();

}  // namespace
}  // namespace kvbits
