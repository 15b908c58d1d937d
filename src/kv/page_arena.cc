#include "kv/page_arena.h"

#include <algorithm>
#include <cstring>
#include <new>

namespace kvbits {

#if defined(__SANITIZE_ADDRESS__)
#define KVBITS_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define KVBITS_ASAN 1
#endif
#endif

PageArena::PageArena(size_t reserve_bytes) {
#ifdef KVBITS_ASAN
  // Under AddressSanitizer every page is a heap allocation of its own, with redzones: in one
  // region a write past a page's end would land in the next page unseen.
  reserve_bytes = 0;
#endif
  if (reserve_bytes == 0) return;
  region_ = reserve_memory_region(reserve_bytes);
  if (region_) region_size_ = reserve_bytes;  // mmap's start is page-aligned, so 64-byte aligned
}

PageArena::~PageArena() { reset(); }

uint8_t* PageArena::allocate(size_t bytes) {
  uint8_t* page = nullptr;
  const auto it = std::find_if(free_.begin(), free_.end(), [&](const auto& f) { return f.first == bytes; });
  if (it != free_.end()) {
    page = it->second;
    *it = free_.back();
    free_.pop_back();
  } else if (region_ && region_size_ - used_ >= bytes) {
    page = region_.get() + used_;
    used_ += bytes;
  } else {
    page = static_cast<uint8_t*>(::operator new[](bytes, std::align_val_t{kAlign}));
    outside_.push_back(page);
  }
  // Zeroed: unused slots decode to 0. (Fresh region bytes already are; reused ones are not.)
  return static_cast<uint8_t*>(std::memset(page, 0, bytes));
}

void PageArena::release(uint8_t* page, size_t bytes) {
  if (page == nullptr) return;
  if (in_region(page)) {
    free_.emplace_back(bytes, page);
    return;
  }
  const auto it = std::find(outside_.begin(), outside_.end(), page);
  if (it != outside_.end()) {
    *it = outside_.back();
    outside_.pop_back();
  }
  ::operator delete[](page, std::align_val_t{kAlign});
}

void PageArena::reset() {
  for (uint8_t* page : outside_) ::operator delete[](page, std::align_val_t{kAlign});
  outside_.clear();
  free_.clear();
  if (used_ > 0) release_mapped_pages(region_.get(), used_);  // back to zero pages, memory returned
  used_ = 0;
}

}  // namespace kvbits
