#pragma once
// Measures the machine's sustained memory read bandwidth, for the roofline in `kvbits bench`.
#include <cstdint>

#include "backend/thread_pool.h"

namespace kvbits {

struct BandwidthOptions {
  uint64_t bytes = 1ull << 30;  // buffer size; must exceed the last-level cache by far
  int repeats = 5;              // best of this many passes is reported
};

// Returns bytes per second read by all pool threads together (best pass).
double measure_read_bandwidth(ThreadPool& pool, const BandwidthOptions& options);

}  // namespace kvbits
