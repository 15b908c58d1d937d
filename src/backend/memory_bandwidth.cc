// Read-bandwidth probe: every thread streams its slice of a large buffer with SIMD loads.
#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "backend/memory_bandwidth.cc"
#include "hwy/foreach_target.h"  // IWYU pragma: keep
#include "hwy/aligned_allocator.h"
#include "hwy/highway.h"

#include <algorithm>
#include <chrono>
#include <cstring>
#include <memory>
#include <vector>

#include "backend/memory_bandwidth.h"

HWY_BEFORE_NAMESPACE();
namespace kvbits {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

// XOR of all words (the result is kept so the loads cannot be optimised away).
uint64_t ReadAll(const uint64_t* p, size_t n) {
  const hn::ScalableTag<uint64_t> d;
  const size_t N = hn::Lanes(d);
  auto a0 = hn::Zero(d), a1 = hn::Zero(d), a2 = hn::Zero(d), a3 = hn::Zero(d);
  size_t i = 0;
  for (; i + 4 * N <= n; i += 4 * N) {
    a0 = hn::Xor(a0, hn::Load(d, p + i));
    a1 = hn::Xor(a1, hn::Load(d, p + i + N));
    a2 = hn::Xor(a2, hn::Load(d, p + i + 2 * N));
    a3 = hn::Xor(a3, hn::Load(d, p + i + 3 * N));
  }
  const auto x = hn::Xor(hn::Xor(a0, a1), hn::Xor(a2, a3));
  uint64_t out = 0;
  for (size_t k = 0; k < N; ++k) out ^= hn::ExtractLane(x, k);
  for (; i < n; ++i) out ^= p[i];
  return out;
}

}  // namespace HWY_NAMESPACE
}  // namespace kvbits
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace kvbits {
HWY_EXPORT(ReadAll);

double measure_read_bandwidth(ThreadPool& pool, const BandwidthOptions& options) {
  const uint64_t bytes = std::max<uint64_t>(options.bytes, uint64_t{1} << 20);
  const size_t words = bytes / sizeof(uint64_t);
  const int64_t sweeps = static_cast<int64_t>(std::max<uint64_t>(1, (uint64_t{64} << 20) / bytes));
  auto buf = hwy::AllocateAligned<uint64_t>(words);
  for (size_t i = 0; i < words; ++i) buf[i] = i * 0x9e3779b97f4a7c15ull;
  const int64_t n_threads = pool.size();
  const size_t per = (words / static_cast<size_t>(n_threads)) & ~size_t{63};
  std::vector<uint64_t> sink(static_cast<size_t>(n_threads));
  double best = 0.0;
  for (int r = 0; r < options.repeats; ++r) {
    const auto t0 = std::chrono::steady_clock::now();
    pool.parallel_for(n_threads, [&](int64_t t, int) {
      for (int64_t k = 0; k < sweeps; ++k) {
        sink[static_cast<size_t>(t)] ^= HWY_DYNAMIC_DISPATCH(ReadAll)(buf.get() + t * per, per);
      }
    });
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    best = std::max(best, static_cast<double>(sweeps * per * n_threads * sizeof(uint64_t)) / s);
  }
  volatile uint64_t keep = 0;
  for (uint64_t v : sink) keep = keep ^ v;
  (void)keep;
  return best;
}

}  // namespace kvbits
#endif
