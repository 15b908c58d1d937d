#pragma once
// Memory for the KV pages of one layer (kv/kv_store.h): pages handed out back to back from one
// reserved region, so a layer's pages lie in address order as the cache grows.
//
// Why: decode attention streams a layer's pages in order. As separate heap allocations the pages
// of all layers interleave (page p of layer 0, of layer 1, ..., then page p + 1), and the hardware
// prefetchers, which follow sequential addresses, restart at every page. Kernel benchmark
// (BM_AttentionDecodeLayers, 30 layers x 8192 tokens, 2 threads; docs/benchmarks.md, session 33):
// int4 2.39 -> 2.07 ms, int2 2.36 -> 2.04 ms with each layer's pages contiguous.
//
// The region is address space sized for the layer's worst case (every token at 16 bits), reserved
// but not committed (io/mapped_file.h reserve_memory_region): only bytes written take memory, 4 KiB
// at a time. Released pages go to a free list per size and are reused first (demotion frees a
// page and allocates a narrower one); when the region is full, or could not be reserved, pages come
// from operator new like any allocation. Under AddressSanitizer there is no region: every page is
// a heap allocation with redzones, so a write past a page's end is caught (scripts/sanitize.sh).
// Not thread-safe: the store allocates from one thread per layer.
#include <cstddef>
#include <cstdint>
#include <utility>
#include <vector>

#include "io/mapped_file.h"

namespace kvbits {

class PageArena {
 public:
  static constexpr size_t kAlign = 64;  // every page starts on a cache line
  // reserve_bytes: the region's size (0: none, every page from operator new).
  explicit PageArena(size_t reserve_bytes);
  ~PageArena();
  PageArena(const PageArena&) = delete;
  PageArena& operator=(const PageArena&) = delete;

  // `bytes` zeroed bytes (a multiple of kAlign, > 0) from a 64-byte boundary. Throws std::bad_alloc
  // like operator new when memory runs out.
  uint8_t* allocate(size_t bytes);
  // Gives back a page from allocate() with its size.
  void release(uint8_t* page, size_t bytes);
  // Every page given back at once; the region's written memory is returned to the OS.
  void reset();

  // Bytes of the region handed out so far (its high-water mark since reset).
  size_t region_used() const { return used_; }
  size_t region_size() const { return region_size_; }

 private:
  bool in_region(const uint8_t* p) const { return region_ && p >= region_.get() && p < region_.get() + region_size_; }

  ReservedRegion region_;
  size_t region_size_ = 0;
  size_t used_ = 0;
  std::vector<std::pair<size_t, uint8_t*>> free_;  // released pages: (bytes, start)
  std::vector<uint8_t*> outside_;                  // live pages from operator new
};

}  // namespace kvbits
