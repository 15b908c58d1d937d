#include "backend/chunk_lanes.h"

#include <string>

#include "util/error.h"

namespace kvbits {

ChunkLanes::ChunkLanes(int64_t n_chunks, int n_lanes) : lanes_(inline_), n_lanes_(n_lanes) {
  if (n_lanes < 1) throw Error("chunk lanes: need at least one lane, got " + std::to_string(n_lanes));
  if (n_chunks < 0 || n_chunks >= (int64_t{1} << 31)) {
    throw Error("chunk lanes: chunk count out of range: " + std::to_string(n_chunks));
  }
  if (n_lanes > kInlineLanes) {
    heap_ = std::make_unique<Lane[]>(static_cast<size_t>(n_lanes));
    lanes_ = heap_.get();
  }
  for (int l = 0; l < n_lanes; ++l) {
    const auto front = static_cast<uint32_t>(n_chunks * l / n_lanes);
    const auto back = static_cast<uint32_t>(n_chunks * (l + 1) / n_lanes);
    lanes_[l].range.store(pack(front, back), std::memory_order_relaxed);
  }
}

int64_t ChunkLanes::take(int lane, bool from_back) {
  std::atomic<uint64_t>& r = lanes_[lane].range;
  uint64_t cur = r.load(std::memory_order_relaxed);
  for (;;) {
    const auto [front, back] = unpack(cur);
    if (front >= back) return -1;
    const uint64_t rest = from_back ? pack(front, back - 1) : pack(front + 1, back);
    if (r.compare_exchange_weak(cur, rest, std::memory_order_relaxed)) return from_back ? back - 1 : front;
  }
}

int64_t ChunkLanes::claim(int lane) {
  if (const int64_t own = take(lane, false); own >= 0) return own;
  // Steal from the lane with the most chunks left; retry while any lane has one (a thief can
  // lose the race for a lane's last chunk and must then look again).
  for (;;) {
    int victim = -1;
    uint32_t most = 0;
    for (int l = 0; l < n_lanes_; ++l) {
      const auto [front, back] = unpack(lanes_[l].range.load(std::memory_order_relaxed));
      if (back > front && back - front > most) {
        most = back - front;
        victim = l;
      }
    }
    if (victim < 0) return -1;
    if (const int64_t stolen = take(victim, true); stolen >= 0) return stolen;
  }
}

}  // namespace kvbits
