#pragma once
// Memory for the KV pages of one layer (kv/kv_store.h): pages handed out back to back from a
// reserved region, so a layer's pages lie in address order as the cache grows.
//
// Why: decode attention streams a layer's pages in order. As separate heap allocations the pages
// of all layers interleave (page p of layer 0, of layer 1, ..., then page p + 1), and the hardware
// prefetchers, which follow sequential addresses, restart at every page. Kernel benchmark
// (BM_AttentionDecodeLayers, 30 layers x 8192 tokens, 2 threads; docs/benchmarks.md, session 33):
// int4 2.39 -> 2.07 ms, int2 2.36 -> 2.04 ms with each layer's pages contiguous.
//
// Two ways to get the region:
//  * its own (PageArena(reserve_bytes)): address space for the layer's worst case on 4 KiB pages,
//    reserved but not committed (io/mapped_file.h reserve_memory_region), so only bytes written
//    take memory, 4 KiB at a time; the pages lie back to back in it.
//  * a share of one region for all of a store's layers (PageRegion) on 2 MiB transparent huge
//    pages: the arena takes chunks of up to 64 KiB of pages at a time, so a layer's pages are
//    contiguous within a chunk and the chunks of all layers share the huge pages. With 4 KiB pages
//    a decode step's attention walks ~6,600 of them at depth 8192 (int2, 30 layers), more than
//    the TLB holds (our reading: the host has no PMU to count the misses); on huge pages the
//    cache is a few dozen TLB entries. int2 at depth 8192, `bench`, 8 alternated pairs
//    (docs/benchmarks.md, session 48): decode 6.74 against 7.48 ms per token, attention inside
//    the steps 2.23 against 2.59 ms. Huge pages per layer would keep whole layers contiguous but
//    make up to 2 MiB per layer resident (int2 at depth 8192: ~60 MB for a 27 MB cache); shared,
//    the memory beyond the pages is at most one partly written huge page and one partly filled
//    chunk per layer.
//
// Released pages go to a free list per size and are reused first (demotion frees a page and
// allocates a narrower one); when the region is full, or could not be reserved, pages come from
// operator new like any allocation. Under AddressSanitizer there is no region: every page is a
// heap allocation with redzones, so a write past a page's end is caught (scripts/sanitize.sh).
// A PageArena is not thread-safe (the store allocates from one thread per layer); PageRegion's
// take() is, since the layers of a store commit in parallel.
#include <algorithm>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <utility>
#include <vector>

#include "io/mapped_file.h"

namespace kvbits {

// Address space shared by the page arenas of one store's layers, handed out in chunks back to back.
class PageRegion {
 public:
  // reserve_bytes of address space (0: none; take() then always fails), on transparent huge pages
  // when huge_pages (io/mapped_file.h reserve_memory_region; the size then rounded up to whole
  // 2 MiB pages).
  PageRegion(size_t reserve_bytes, bool huge_pages);
  PageRegion(const PageRegion&) = delete;
  PageRegion& operator=(const PageRegion&) = delete;

  // `bytes` (a multiple of 64) from a 64-byte boundary, zero unless written since the last
  // reset(); nullptr when fewer are left. Thread-safe.
  uint8_t* take(size_t bytes) noexcept;
  // Every chunk given back at once; the written memory is returned to the OS (whole huge pages,
  // so that the memory written next is on huge pages again: returning part of one splits it into
  // 4 KiB pages for good). No take() may run concurrently, and no page of it may be in use.
  void reset() noexcept;

  bool contains(const uint8_t* p) const { return region_ && p >= region_.get() && p < region_.get() + size_; }
  size_t size() const { return size_; }
  size_t used() const { return std::min(used_.load(std::memory_order_relaxed), size_); }
  bool huge_pages() const { return huge_pages_; }
  // Share of the written bytes (in whole 2 MiB pages) that the kernel backs with transparent huge
  // pages now, in [0, 1] (io/mapped_file.h huge_page_bytes); nullopt for a region not on huge
  // pages, before any take(), or where /proc/self/smaps cannot be read.
  std::optional<double> huge_page_share() const;

 private:
  // The bytes taken since reset(), in whole huge pages on a huge-page region: what reset() returns
  // to the OS and what huge_page_share() reads.
  size_t touched() const;

  ReservedRegion region_;
  size_t size_ = 0;
  bool huge_pages_ = false;
  std::atomic<size_t> used_{0};  // may run past size_ after failed takes (then capped)
};

class PageArena {
 public:
  static constexpr size_t kAlign = 64;  // every page starts on a cache line
  // Bytes per chunk taken from a shared region, at most (whole pages of the size being allocated,
  // at least one): 9 int2 pages at SmolLM2's shape (6.9 KB each), one FP16 page (49 KB). Chunks of
  // 8 int2 pages measured at least as fast as whole contiguous layers, both on huge pages (kernel
  // benchmark, session 48); each layer's partly filled chunk is memory beyond its pages.
  static constexpr size_t kChunkBytes = 64 * 1024;
  static size_t chunk_bytes(size_t page_bytes) { return std::max<size_t>(1, kChunkBytes / page_bytes) * page_bytes; }

  // A region of its own of reserve_bytes (0: none, every page from operator new).
  explicit PageArena(size_t reserve_bytes);
  // Chunks of chunk_bytes(page size) from `shared`, which must outlive the arena; reset() leaves
  // the shared region to its owner.
  explicit PageArena(PageRegion& shared);
  ~PageArena();
  PageArena(const PageArena&) = delete;
  PageArena& operator=(const PageArena&) = delete;

  // `bytes` zeroed bytes (a multiple of kAlign, > 0) from a 64-byte boundary. Throws std::bad_alloc
  // like operator new when memory runs out.
  uint8_t* allocate(size_t bytes);
  // Gives back a page from allocate() with its size.
  void release(uint8_t* page, size_t bytes);
  // Every page given back at once; a region of the arena's own returns its written memory to the
  // OS (a shared one is reset by its owner, after every arena on it).
  void reset();

  // Bytes of the region handed out as pages so far (since reset).
  size_t region_used() const { return used_; }
  // The region's size (shared or not; 0: none).
  size_t region_size() const { return region_ ? region_->size() : 0; }

 private:
  bool in_region(const uint8_t* p) const { return region_ && region_->contains(p); }

  std::unique_ptr<PageRegion> own_;  // the arena's own region, or nullptr
  PageRegion* region_ = nullptr;     // own_ or the shared one; nullptr: none
  uint8_t* chunk_ = nullptr;         // the unused rest of the current chunk
  size_t chunk_left_ = 0;
  size_t used_ = 0;
  std::vector<std::pair<size_t, uint8_t*>> free_;  // released pages: (bytes, start)
  std::vector<uint8_t*> outside_;                  // live pages from operator new
};

}  // namespace kvbits
