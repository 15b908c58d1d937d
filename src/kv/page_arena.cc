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

PageRegion::PageRegion(size_t reserve_bytes, bool huge_pages) {
#ifdef KVBITS_ASAN
  // Under AddressSanitizer every page is a heap allocation of its own, with redzones: in one
  // region a write past a page's end would land in the next page unseen.
  reserve_bytes = 0;
#endif
  if (reserve_bytes == 0) return;
  // Whole huge pages, as mapped: reset() then never returns part of one.
  if (huge_pages) reserve_bytes = (reserve_bytes + kHugePageBytes - 1) / kHugePageBytes * kHugePageBytes;
  region_ = reserve_memory_region(reserve_bytes, huge_pages);
  if (region_) {
    size_ = reserve_bytes;  // the mapping's start is page-aligned, so 64-byte aligned
    huge_pages_ = huge_pages;
  }
}

uint8_t* PageRegion::take(size_t bytes) noexcept {
  if (!region_ || bytes > size_) return nullptr;
  const size_t at = used_.fetch_add(bytes, std::memory_order_relaxed);
  if (at > size_ - bytes) return nullptr;  // past the end: nothing taken (used_ is capped)
  return region_.get() + at;
}

size_t PageRegion::touched() const {
  const size_t used = this->used();
  // Whole huge pages (size_ is a whole number of them too).
  return huge_pages_ ? std::min((used + kHugePageBytes - 1) / kHugePageBytes * kHugePageBytes, size_) : used;
}

void PageRegion::reset() noexcept {
  // Back to zero pages, memory returned.
  if (const size_t touched = this->touched(); touched > 0) release_mapped_pages(region_.get(), touched);
  used_.store(0, std::memory_order_relaxed);
}

std::optional<double> PageRegion::huge_page_share() const {
  const size_t touched = this->touched();
  if (!huge_pages_ || touched == 0) return std::nullopt;
  const std::optional<size_t> huge = huge_page_bytes(region_.get(), touched);
  if (!huge) return std::nullopt;
  return std::min(1.0, static_cast<double>(*huge) / static_cast<double>(touched));
}

PageArena::PageArena(size_t reserve_bytes) {
  own_ = std::make_unique<PageRegion>(reserve_bytes, /*huge_pages=*/false);
  if (own_->size() > 0) region_ = own_.get();
}

PageArena::PageArena(PageRegion& shared) {
  if (shared.size() > 0) region_ = &shared;
}

PageArena::~PageArena() { reset(); }

uint8_t* PageArena::allocate(size_t bytes) {
  uint8_t* page = nullptr;
  const auto it = std::find_if(free_.begin(), free_.end(), [&](const auto& f) { return f.first == bytes; });
  if (it != free_.end()) {
    page = it->second;
    *it = free_.back();
    free_.pop_back();
  } else {
    if (chunk_left_ < bytes && region_) {
      // A region of the arena's own is one chunk; a shared one gives chunk_bytes(bytes) at a time,
      // or one page from what is left. (The current chunk's rest, too small, stays unused until
      // reset.)
      uint8_t* chunk = nullptr;
      size_t size = 0;
      if (own_) {
        size = region_->size() - region_->used();
        chunk = size >= bytes ? region_->take(size) : nullptr;
      } else {
        size = chunk_bytes(bytes);
        chunk = region_->take(size);
        if (!chunk) chunk = region_->take(size = bytes);
      }
      if (chunk) {
        chunk_ = chunk;
        chunk_left_ = size;
      }
    }
    if (chunk_left_ >= bytes) {
      page = chunk_;
      chunk_ += bytes;
      chunk_left_ -= bytes;
      used_ += bytes;
    } else {
      page = static_cast<uint8_t*>(::operator new[](bytes, std::align_val_t{kAlign}));
      outside_.push_back(page);
    }
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
  chunk_ = nullptr;
  chunk_left_ = 0;
  used_ = 0;
  if (own_) own_->reset();
}

}  // namespace kvbits
