#pragma once
// Measures the machine's sustained memory read bandwidth, for the roofline in `kvbits bench`.
#include <cstdint>

#include "backend/thread_pool.h"

namespace kvbits {

struct BandwidthOptions {
  // Buffer size. The default 1 GiB is beyond the last-level caches we run on, so it measures main
  // memory; a smaller buffer measures re-reading that many bytes, from whichever level holds them
  // (at least 1 MiB is used).
  uint64_t bytes = 1ull << 30;
  int repeats = 5;  // best of this many timed passes is reported
};

// Returns bytes per second read by all pool threads together (best timed pass). A timed pass reads
// the buffer as many times as it takes to read at least 64 MiB, so small buffers are not timed at
// the clock's granularity.
double measure_read_bandwidth(ThreadPool& pool, const BandwidthOptions& options);

}  // namespace kvbits
