// measure_read_bandwidth: a finite, positive figure for any buffer size and thread count,
// including buffers far below the 1 MiB floor (which once would have given a zero-length slice
// per thread and a division by zero). The figure itself is a benchmark, not checked here.
#include "backend/memory_bandwidth.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>

namespace kvbits {
namespace {

TEST(MemoryBandwidth, FinitePositiveForAnySizeAndThreadCount) {
  for (int n_threads : {1, 2, 3}) {
    ThreadPool pool(n_threads);
    for (uint64_t bytes : {uint64_t{0}, uint64_t{1000}, uint64_t{1} << 20, (uint64_t{3} << 20) + 8}) {
      BandwidthOptions options;
      options.bytes = bytes;
      options.repeats = 2;
      const double bw = measure_read_bandwidth(pool, options);
      EXPECT_TRUE(std::isfinite(bw) && bw > 0.0) << bytes << " bytes, " << n_threads << " threads: " << bw;
    }
  }
}

}  // namespace
}  // namespace kvbits
