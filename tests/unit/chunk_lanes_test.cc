// ChunkLanes: each lane takes its own run front to back, then steals from the back of the lane
// with the most left; every chunk is claimed exactly once, also by racing threads; bad counts are
// errors.
#include "backend/chunk_lanes.h"

#include <gtest/gtest.h>

#include <atomic>
#include <cstdint>
#include <thread>
#include <vector>

#include "util/error.h"

namespace kvbits {
namespace {

std::vector<int64_t> drain(ChunkLanes& lanes, int lane) {
  std::vector<int64_t> got;
  for (int64_t c; (c = lanes.claim(lane)) >= 0;) got.push_back(c);
  return got;
}

TEST(ChunkLanes, OneLaneTakesEveryChunkInOrder) {
  ChunkLanes lanes(5, 1);
  EXPECT_EQ(lanes.lanes(), 1);
  EXPECT_EQ(drain(lanes, 0), (std::vector<int64_t>{0, 1, 2, 3, 4}));
  EXPECT_EQ(lanes.claim(0), -1);
}

TEST(ChunkLanes, OwnRunFrontToBackThenStealsFromTheBackOfTheFullestLane) {
  // 10 chunks in 3 lanes: [0, 3), [3, 6), [6, 10).
  ChunkLanes lanes(10, 3);
  EXPECT_EQ(lanes.claim(0), 0);
  EXPECT_EQ(lanes.claim(0), 1);
  EXPECT_EQ(lanes.claim(2), 6);
  EXPECT_EQ(lanes.claim(0), 2);
  // Lane 0's run is done; lane 1 has 3 left, lane 2 has 3 (7, 8, 9): the first fullest, lane 1.
  EXPECT_EQ(lanes.claim(0), 5);
  // Now lane 2 (3 left) is the fullest.
  EXPECT_EQ(lanes.claim(0), 9);
  EXPECT_EQ(lanes.claim(1), 3);
  EXPECT_EQ(lanes.claim(1), 4);
  EXPECT_EQ(lanes.claim(1), 8);  // stolen from lane 2, whose own front is 7
  EXPECT_EQ(lanes.claim(2), 7);
  for (int l = 0; l < 3; ++l) EXPECT_EQ(lanes.claim(l), -1);
}

TEST(ChunkLanes, MoreLanesThanChunksAndMoreThanTheInlineLanes) {
  for (const int n_lanes : {1, 3, ChunkLanes::kInlineLanes, ChunkLanes::kInlineLanes + 1, 40}) {
    for (const int64_t n_chunks : {0, 1, 2, 7, 100}) {
      ChunkLanes lanes(n_chunks, n_lanes);
      std::vector<int> seen(static_cast<size_t>(n_chunks), 0);
      for (int l = n_lanes - 1; l >= 0; --l) {  // the last lane first: it steals from the others
        for (const int64_t c : drain(lanes, l)) {
          ASSERT_GE(c, 0);
          ASSERT_LT(c, n_chunks);
          ++seen[static_cast<size_t>(c)];
        }
      }
      for (int64_t c = 0; c < n_chunks; ++c) {
        EXPECT_EQ(seen[static_cast<size_t>(c)], 1) << n_lanes << " lanes, " << n_chunks << " chunks, chunk " << c;
      }
    }
  }
}

TEST(ChunkLanes, RacingThreadsClaimEveryChunkExactlyOnce) {
  // Threads that claim their own lane and steal at once; repeated so that the races for a lane's
  // last chunk (owner from the front, thieves from the back) happen many times.
  for (int round = 0; round < 200; ++round) {
    const int n_lanes = 2 + round % 5;
    const int64_t n_chunks = 1 + round * 7 % 97;
    ChunkLanes lanes(n_chunks, n_lanes);
    std::vector<std::atomic<int>> seen(static_cast<size_t>(n_chunks));
    std::atomic<int> bad{0};
    std::vector<std::thread> threads;
    for (int l = 0; l < n_lanes; ++l) {
      threads.emplace_back([&, l] {
        for (int64_t c; (c = lanes.claim(l)) >= 0;) {
          if (c >= n_chunks) bad.fetch_add(1);
          else seen[static_cast<size_t>(c)].fetch_add(1);
        }
      });
    }
    for (auto& t : threads) t.join();
    ASSERT_EQ(bad.load(), 0);
    for (int64_t c = 0; c < n_chunks; ++c) {
      ASSERT_EQ(seen[static_cast<size_t>(c)].load(), 1) << "round " << round << ", chunk " << c;
    }
  }
}

TEST(ChunkLanes, BadCountsAreErrors) {
  EXPECT_THROW(ChunkLanes(4, 0), Error);
  EXPECT_THROW(ChunkLanes(-1, 2), Error);
  EXPECT_THROW(ChunkLanes(int64_t{1} << 31, 2), Error);
}

}  // namespace
}  // namespace kvbits
