// Chunks of work dealt to per-thread lanes, with stealing: each lane takes its own contiguous run
// of chunks front to back, then takes chunks from the back of the lane with the most left.
//
// Why (decode attention, ops/attention.cc): a chunk is a range of KV pages with its own softmax
// state, and the states are merged in chunk order, so which thread runs a chunk never changes
// the result. A shared counter dealt the chunks alternately (thread A pages 0-31, B 32-63, A
// 64-95, ...), so each chunk a thread took started on memory its prefetchers had not followed;
// in a lane a thread's next chunk is the pages right after its last (each layer's pages lie back
// to back, kv/page_arena.h). 30 layers at depth 8192, 2 threads, the two schedules alternated
// pass by pass in one process: 3-9 % less time (docs/benchmarks.md, session 45). Stealing keeps
// a slower thread (a shared host's vCPUs differ by up to ~50 % for minutes) from holding the
// others up by more than a chunk.
//
// Thread safety: construct on one thread before the workers start (the pool's hand-off orders
// it); claim() from any thread. One per parallel loop, on the caller's stack.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>

namespace kvbits {

class ChunkLanes {
 public:
  // Chunks [0, n_chunks) in n_lanes lanes: lane l owns [l * n / L, (l + 1) * n / L) at the start.
  // n_chunks < 2^31; n_lanes >= 1 (up to kInlineLanes without a heap allocation). Throws Error
  // on counts out of range.
  ChunkLanes(int64_t n_chunks, int n_lanes);
  ChunkLanes(const ChunkLanes&) = delete;
  ChunkLanes& operator=(const ChunkLanes&) = delete;

  // The next chunk for lane `lane`: the front of its own run, else the back of the lane with the
  // most chunks left; -1 when every chunk has been taken. Each chunk is returned exactly once.
  int64_t claim(int lane);

  int lanes() const { return n_lanes_; }

  static constexpr int kInlineLanes = 8;

 private:
  // front (low 32 bits) and back (high 32 bits) of a lane's remaining run [front, back), in one
  // word so that its owner's claim from the front and a thief's from the back cannot both take
  // the last chunk. One per 64-byte line: lanes are claimed from different cores.
  struct alignas(64) Lane {
    std::atomic<uint64_t> range{0};
  };
  static uint64_t pack(uint32_t front, uint32_t back) { return uint64_t{back} << 32 | front; }
  struct Run {
    uint32_t front, back;
  };
  static Run unpack(uint64_t range) { return {static_cast<uint32_t>(range), static_cast<uint32_t>(range >> 32)}; }
  // Takes the front (or back) chunk of `lane`'s run; -1 when the run is empty.
  int64_t take(int lane, bool from_back);

  Lane inline_[kInlineLanes];
  std::unique_ptr<Lane[]> heap_;  // more lanes than kInlineLanes
  Lane* lanes_;
  int n_lanes_;
};

}  // namespace kvbits
