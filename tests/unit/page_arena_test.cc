// The KV page arena (kv/page_arena.h): pages back to back from the reserved region, zeroed and on
// 64-byte lines; released pages reused by size; operator new past the region's end; reset.
// Leaks and stray writes show under scripts/sanitize.sh (PageArena* runs there).
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
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

}  // namespace
}  // namespace kvbits
