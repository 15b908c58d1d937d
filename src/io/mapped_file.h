#pragma once
// Read-only memory mapping of a whole file (RAII, move-only).
//
// Ownership: MappedFile owns the mapping; bytes() is a view that stays valid until the MappedFile
// is destroyed or moved from. An empty file maps to an empty span (mmap refuses length 0).
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>

namespace kvbits {

class MappedFile {
 public:
  MappedFile() = default;
  // Maps `path` read-only. Throws Error("<path>: <problem>") if it cannot be opened, is not a
  // regular file, or cannot be mapped.
  static MappedFile open(const std::string& path);

  MappedFile(MappedFile&& other) noexcept;
  MappedFile& operator=(MappedFile&& other) noexcept;
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;
  ~MappedFile();

  std::span<const uint8_t> bytes() const { return {data_, size_}; }
  size_t size() const { return size_; }

 private:
  MappedFile(const uint8_t* data, size_t size) : data_(data), size_(size) {}
  void reset() noexcept;

  const uint8_t* data_ = nullptr;  // start of the mapping, nullptr when empty
  size_t size_ = 0;                // bytes mapped (= file size)
};

// Tells the OS that the mapped pages fully inside [data, data + size) will not be needed soon, so
// they leave this process's resident memory (a read-only file mapping re-reads them on access).
// Used after weights were repacked into memory of our own. Best effort: errors are ignored.
void release_mapped_pages(const void* data, size_t size) noexcept;

// The size of an x86-64 transparent huge page, which allocate_huge_page_buffer and
// reserve_memory_region(..., huge_pages) align and round to.
inline constexpr size_t kHugePageBytes = size_t{2} << 20;

// Anonymous, zero-filled memory aligned to 2 MiB and marked for transparent huge pages
// (MADV_HUGEPAGE: hosts whose THP mode is "madvise" give plain allocations 4 KiB pages). Decode
// streams ~100 MB of weights per token; with 4 KiB pages that is a TLB miss every 4 KiB, and the
// hardware prefetchers stop at every 4 KiB page boundary. Freed with munmap by its deleter.
struct MunmapDeleter {
  size_t size = 0;  // bytes mapped
  void operator()(uint8_t* p) const noexcept;
};
using HugePageBuffer = std::unique_ptr<uint8_t[], MunmapDeleter>;
using ReservedRegion = std::unique_ptr<uint8_t[], MunmapDeleter>;
// Throws Error when the memory cannot be mapped. Huge pages are a hint: without them (THP off,
// no contiguous memory) the buffer works the same on 4 KiB pages.
HugePageBuffer allocate_huge_page_buffer(size_t bytes);

// Anonymous, zero-filled address space of `bytes` (rounded up to 4 KiB pages), reserved but not
// committed: MAP_NORESERVE, so bytes never written take no memory. Without huge_pages it is
// advised MADV_NOHUGEPAGE, so that memory follows the bytes written 4 KiB at a time; with them
// it starts on a 2 MiB boundary and is advised MADV_HUGEPAGE, so that each 2 MiB range becomes
// one TLB entry, and resident whole at its first write. For stores that grow into a region sized
// for their worst case (the KV pages, kv/page_arena.h). Returns nullptr when the address space
// cannot be mapped (a 32-bit process, or strict overcommit accounting): callers fall back to
// ordinary allocations.
ReservedRegion reserve_memory_region(size_t bytes, bool huge_pages = false) noexcept;

// Whether the kernel gives transparent huge pages to memory advised MADV_HUGEPAGE: its THP mode
// (/sys/kernel/mm/transparent_hugepage/enabled) is "always" or "madvise". False when unknown.
bool transparent_huge_pages_available() noexcept;

// Bytes of the mappings that hold [data, data + size) which the kernel backs with transparent huge
// pages right now (AnonHugePages in /proc/self/smaps), at most `size`. The advice is a hint: with
// its free memory fragmented the kernel quietly gives 4 KiB pages instead, and a benchmark on them
// measures a different layout (kv/page_arena.h). An upper bound when the kernel has merged a
// neighbouring mapping with the same flags into ours (smaps counts per mapping). nullopt where
// smaps cannot be read (not Linux, no procfs).
std::optional<size_t> huge_page_bytes(const void* data, size_t size) noexcept;

// The parser behind it, for tests: the AnonHugePages (kB) of the mappings of an smaps text that
// overlap [begin, end), in bytes, at most end - begin; nullopt when no mapping overlaps.
std::optional<size_t> parse_smaps_huge_page_bytes(std::string_view smaps, uintptr_t begin, uintptr_t end);

}  // namespace kvbits
