// The KV page arena (kv/page_arena.h): pages back to back from the reserved region, zeroed and on
// 64-byte lines; released pages reused by size; operator new past the region's end; reset; and a
// region shared by several arenas (PageRegion): chunks of pages, taken from several threads.
// Leaks and stray writes show under scripts/sanitize.sh (PageArena* runs there).
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <set>
#include <thread>
#include <vector>

#include "kv/page_arena.h"

namespace kvbits {
namespace {

// Under AddressSanitizer the arena reserves no region (page_arena.h): the region tests skip.
#define SKIP_WITHOUT_REGION(arena) \
  if ((arena).region_size() == 0) GTEST_SKIP() << "no reserved region (AddressSanitizer build)"

bool all_zero(const uint8_t* p, size_t n) {
  return std::all_of(p, p + n, [](uint8_t b) { return b == 0; });
}

TEST(PageArena, PagesLieBackToBackInTheRegion) {
  PageArena arena(10 * 1024);
  SKIP_WITHOUT_REGION(arena);
  ASSERT_EQ(arena.region_size(), 10u * 1024);
  uint8_t* a = arena.allocate(1280);
  uint8_t* b = arena.allocate(2176);
  uint8_t* c = arena.allocate(1280);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(a) % PageArena::kAlign, 0u);
  EXPECT_EQ(b, a + 1280);
  EXPECT_EQ(c, b + 2176);
  EXPECT_EQ(arena.region_used(), 1280u + 2176 + 1280);
  EXPECT_TRUE(all_zero(a, 1280) && all_zero(b, 2176) && all_zero(c, 1280));
  std::memset(b, 0xAB, 2176);
  arena.release(b, 2176);
  // A page of another size does not take the hole; one of the same size does, zeroed again.
  uint8_t* d = arena.allocate(1280);
  EXPECT_EQ(d, c + 1280);
  uint8_t* e = arena.allocate(2176);
  EXPECT_EQ(e, b);
  EXPECT_TRUE(all_zero(e, 2176));
  arena.release(a, 1280);
  arena.release(c, 1280);
  arena.release(d, 1280);
  arena.release(e, 2176);
}

TEST(PageArena, FallsBackToTheHeapPastTheRegion) {
  PageArena arena(4096);
  SKIP_WITHOUT_REGION(arena);
  uint8_t* in = arena.allocate(3072);
  uint8_t* out = arena.allocate(3072);  // 1024 bytes left: from operator new
  EXPECT_EQ(arena.region_used(), 3072u);
  EXPECT_TRUE(out < in || out >= in + 4096);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(out) % PageArena::kAlign, 0u);
  EXPECT_TRUE(all_zero(out, 3072));
  std::memset(out, 1, 3072);
  std::memset(in, 1, 3072);
  arena.release(out, 3072);  // freed (a leak here fails the sanitizer run)
  uint8_t* more = arena.allocate(3072);
  EXPECT_TRUE(all_zero(more, 3072));
  arena.release(more, 3072);
  arena.release(in, 3072);
  uint8_t* again = arena.allocate(3072);  // the region's hole, zeroed
  EXPECT_EQ(again, in);
  EXPECT_TRUE(all_zero(again, 3072));
  arena.allocate(64);  // live at destruction: the destructor frees it
  arena.allocate(4096);
}

TEST(PageArena, WithoutARegionEveryPageComesFromTheHeap) {
  PageArena arena(0);
  EXPECT_EQ(arena.region_size(), 0u);
  uint8_t* a = arena.allocate(128);
  uint8_t* b = arena.allocate(128);
  EXPECT_NE(a, b);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(a) % PageArena::kAlign, 0u);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(b) % PageArena::kAlign, 0u);
  EXPECT_TRUE(all_zero(a, 128) && all_zero(b, 128));
  arena.release(a, 128);
  EXPECT_EQ(arena.region_used(), 0u);
}

TEST(PageArena, ResetStartsOverFromTheRegionsStart) {
  PageArena arena(64 * 1024);
  SKIP_WITHOUT_REGION(arena);
  uint8_t* first = arena.allocate(8192);
  std::memset(first, 7, 8192);
  std::memset(arena.allocate(8192), 7, 8192);
  arena.allocate(64 * 1024);  // past the region: freed by reset
  arena.reset();
  EXPECT_EQ(arena.region_used(), 0u);
  uint8_t* again = arena.allocate(16384);
  EXPECT_EQ(again, first);
  EXPECT_TRUE(all_zero(again, 16384));
}

TEST(PageRegion, AHugePageRegionStartsOnA2MiBBoundary) {
  PageRegion region(5 << 20, /*huge_pages=*/true);
  if (region.size() == 0) GTEST_SKIP() << "no reserved region (AddressSanitizer build)";
  EXPECT_TRUE(region.huge_pages());
  uint8_t* first = region.take(64);
  ASSERT_NE(first, nullptr);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(first) % (2 << 20), 0u);
  EXPECT_EQ(region.size(), 6u << 20);  // whole huge pages
  EXPECT_EQ(region.take(region.size()), nullptr);  // more than is left
  EXPECT_EQ(region.take(64), nullptr);              // and nothing after a failed take
  EXPECT_LE(region.used(), region.size());
}

TEST(PageArena, ArenasOnASharedRegionTakeChunksOfPages) {
  PageRegion region(1 << 20, /*huge_pages=*/true);
  if (region.size() == 0) GTEST_SKIP() << "no reserved region (AddressSanitizer build)";
  PageArena a(region), b(region);
  constexpr size_t kPage = 8192, kChunk = PageArena::kChunkBytes;  // 8 pages a chunk
  static_assert(kChunk == 8 * kPage);
  EXPECT_EQ(PageArena::chunk_bytes(kPage), kChunk);
  EXPECT_EQ(PageArena::chunk_bytes(6912), 9u * 6912);   // an int2 page of SmolLM2: 9 a chunk
  EXPECT_EQ(PageArena::chunk_bytes(49152), 49152u);     // an FP16 page: 1
  EXPECT_EQ(PageArena::chunk_bytes(100000), 100000u);   // larger than a chunk: 1
  uint8_t* a0 = a.allocate(kPage);
  uint8_t* b0 = b.allocate(kPage);
  EXPECT_EQ(b0, a0 + kChunk);  // b's chunk follows a's
  std::vector<uint8_t*> pages{a0};
  for (size_t i = 1; i < 8; ++i) pages.push_back(a.allocate(kPage));
  for (size_t i = 0; i < pages.size(); ++i) EXPECT_EQ(pages[i], a0 + i * kPage);  // back to back
  uint8_t* a8 = a.allocate(kPage);  // a's second chunk, after b's first
  EXPECT_EQ(a8, b0 + kChunk);
  EXPECT_EQ(a.region_used(), 9 * kPage);
  EXPECT_EQ(region.used(), 3 * kChunk);
  std::memset(a8, 5, kPage);
  a.release(a8, kPage);
  EXPECT_EQ(a.allocate(kPage), a8);  // reused, zeroed
  EXPECT_TRUE(all_zero(a8, kPage));
  // Larger pages fill the chunk's rest while they fit, then take a chunk of their own size.
  EXPECT_EQ(a.allocate(4 * kPage), a8 + kPage);
  EXPECT_EQ(a.allocate(4 * kPage), b0 + 2 * kChunk);  // 3 pages were left
  EXPECT_EQ(region.used(), 3 * kChunk + PageArena::chunk_bytes(4 * kPage));
}

TEST(PageArena, ASharedRegionResetReturnsItsMemoryAndStartsOver) {
  PageRegion region(4 << 20, /*huge_pages=*/true);
  if (region.size() == 0) GTEST_SKIP() << "no reserved region (AddressSanitizer build)";
  uint8_t* first = nullptr;
  {
    PageArena a(region);
    first = a.allocate(4096);
    for (int i = 0; i < 600; ++i) std::memset(a.allocate(4096), 9, 4096);  // past the first 2 MiB
    uint8_t* outside = a.allocate(8 << 20);  // larger than the region: from the heap
    EXPECT_FALSE(region.contains(outside));
    a.reset();
    EXPECT_EQ(a.region_used(), 0u);
  }
  region.reset();
  EXPECT_EQ(region.used(), 0u);
  PageArena b(region);
  uint8_t* again = b.allocate(4096);
  EXPECT_EQ(again, first);
  EXPECT_TRUE(all_zero(first, 601 * 4096));  // the written memory went back: zero pages again
}

TEST(PageRegion, TakesFromSeveralThreadsNeverOverlap) {
  PageRegion region(8 << 20, /*huge_pages=*/false);
  if (region.size() == 0) GTEST_SKIP() << "no reserved region (AddressSanitizer build)";
  constexpr int kThreads = 4, kTakes = 3000;  // 4 x 3000 x 1 KiB > 8 MiB: some fail
  std::vector<std::vector<uint8_t*>> got(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kTakes; ++i) {
        if (uint8_t* p = region.take(1024)) got[t].push_back(p);
      }
    });
  }
  for (auto& th : threads) th.join();
  std::set<uint8_t*> all;
  for (const auto& g : got) all.insert(g.begin(), g.end());
  EXPECT_EQ(all.size(), (8u << 20) / 1024);  // every KiB of the region exactly once
  for (uint8_t* p : all) EXPECT_TRUE(region.contains(p) && region.contains(p + 1023));
}

}  // namespace
}  // namespace kvbits
