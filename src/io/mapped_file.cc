#include "io/mapped_file.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
#include <utility>

#include "util/error.h"

namespace kvbits {
namespace {

// Closes a file descriptor on scope exit; the mapping keeps the file alive after close.
struct FdCloser {
  int fd;
  ~FdCloser() {
    if (fd >= 0) ::close(fd);
  }
};

}  // namespace

MappedFile MappedFile::open(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw Error(path + ": cannot open: " + std::strerror(errno));
  FdCloser closer{fd};
  struct stat st {};
  if (::fstat(fd, &st) != 0) throw Error(path + ": cannot stat: " + std::strerror(errno));
  if (!S_ISREG(st.st_mode)) throw Error(path + ": not a regular file");
  const size_t size = static_cast<size_t>(st.st_size);
  if (size == 0) return MappedFile(nullptr, 0);
  void* p = ::mmap(nullptr, size, PROT_READ, MAP_PRIVATE, fd, 0);
  if (p == MAP_FAILED) throw Error(path + ": cannot mmap: " + std::strerror(errno));
  return MappedFile(static_cast<const uint8_t*>(p), size);
}

MappedFile::MappedFile(MappedFile&& other) noexcept
    : data_(std::exchange(other.data_, nullptr)), size_(std::exchange(other.size_, 0)) {}

MappedFile& MappedFile::operator=(MappedFile&& other) noexcept {
  if (this != &other) {
    reset();
    data_ = std::exchange(other.data_, nullptr);
    size_ = std::exchange(other.size_, 0);
  }
  return *this;
}

MappedFile::~MappedFile() { reset(); }

void MappedFile::reset() noexcept {
  if (data_ != nullptr) ::munmap(const_cast<uint8_t*>(data_), size_);
  data_ = nullptr;
  size_ = 0;
}

void release_mapped_pages(const void* data, size_t size) noexcept {
  const uintptr_t page = static_cast<uintptr_t>(sysconf(_SC_PAGESIZE));
  const uintptr_t begin = (reinterpret_cast<uintptr_t>(data) + page - 1) / page * page;
  const uintptr_t end = (reinterpret_cast<uintptr_t>(data) + size) / page * page;
  if (end > begin) madvise(reinterpret_cast<void*>(begin), end - begin, MADV_DONTNEED);
}

void MunmapDeleter::operator()(uint8_t* p) const noexcept {
  if (p != nullptr) ::munmap(p, size);
}

namespace {

// `size` bytes (a multiple of align) of anonymous memory mapped with `flags`, starting on an
// `align` boundary: when align exceeds the 4 KiB page, align bytes more are mapped and the
// unaligned head and the tail unmapped. nullptr on failure, errno as mmap left it.
void* map_aligned(size_t size, size_t align, int flags) noexcept {
  const size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
  const size_t extra = align > page ? align : 0;
  void* raw = ::mmap(nullptr, size + extra, PROT_READ | PROT_WRITE, flags, -1, 0);
  if (raw == MAP_FAILED) return nullptr;
  const uintptr_t begin = reinterpret_cast<uintptr_t>(raw);
  const uintptr_t aligned = (begin + align - 1) / align * align;
  if (extra > 0) {
    if (aligned > begin) ::munmap(raw, aligned - begin);
    if (begin + extra > aligned) ::munmap(reinterpret_cast<void*>(aligned + size), begin + extra - aligned);
  }
  return reinterpret_cast<void*>(aligned);
}

}  // namespace

HugePageBuffer allocate_huge_page_buffer(size_t bytes) {
  const size_t size = (std::max<size_t>(bytes, 1) + kHugePageBytes - 1) / kHugePageBytes * kHugePageBytes;
  void* p = map_aligned(size, kHugePageBytes, MAP_PRIVATE | MAP_ANONYMOUS);
  if (p == nullptr) {
    throw Error("cannot map " + std::to_string(size >> 20) + " MiB of memory: " + std::strerror(errno));
  }
#ifdef MADV_HUGEPAGE
  madvise(p, size, MADV_HUGEPAGE);  // a hint; failure is harmless
#endif
  return HugePageBuffer(static_cast<uint8_t*>(p), MunmapDeleter{size});
}

ReservedRegion reserve_memory_region(size_t bytes, bool huge_pages) noexcept {
  const size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
  const size_t align = huge_pages ? std::max(page, kHugePageBytes) : page;
  const size_t size = (std::max<size_t>(bytes, 1) + align - 1) / align * align;
  void* region = map_aligned(size, align, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE);
  if (region == nullptr) return ReservedRegion(nullptr, MunmapDeleter{0});
#if defined(MADV_HUGEPAGE) && defined(MADV_NOHUGEPAGE)
  madvise(region, size, huge_pages ? MADV_HUGEPAGE : MADV_NOHUGEPAGE);  // a hint; failure is harmless
#endif
  return ReservedRegion(static_cast<uint8_t*>(region), MunmapDeleter{size});
}

bool transparent_huge_pages_available() noexcept {
  std::FILE* f = std::fopen("/sys/kernel/mm/transparent_hugepage/enabled", "r");
  if (f == nullptr) return false;
  char line[128] = {};
  const bool read = std::fgets(line, sizeof line, f) != nullptr;
  std::fclose(f);
  // The mode in use is the bracketed one: "always [madvise] never".
  return read && (std::strstr(line, "[always]") != nullptr || std::strstr(line, "[madvise]") != nullptr);
}

std::optional<size_t> parse_smaps_huge_page_bytes(std::string_view smaps, uintptr_t begin, uintptr_t end) {
  // Each mapping starts with a line "start-end perms offset dev inode [path]" (hex addresses),
  // followed by "Key:   value kB" lines, AnonHugePages among them.
  bool any = false, inside = false;
  size_t total = 0;
  while (!smaps.empty()) {
    const size_t eol = smaps.find('\n');
    const std::string_view line = smaps.substr(0, eol);
    smaps = eol == std::string_view::npos ? std::string_view{} : smaps.substr(eol + 1);
    const size_t dash = line.find('-');
    const size_t space = line.find(' ');
    if (dash != std::string_view::npos && space != std::string_view::npos && dash < space &&
        line.find(':') > space) {  // a mapping's header (its key lines have ':' before any space)
      const std::string lo(line.substr(0, dash)), hi(line.substr(dash + 1, space - dash - 1));
      char* stop = nullptr;
      const uintptr_t a = std::strtoull(lo.c_str(), &stop, 16);
      const bool ok_a = stop != lo.c_str() && *stop == '\0';
      const uintptr_t b = std::strtoull(hi.c_str(), &stop, 16);
      const bool ok_b = stop != hi.c_str() && *stop == '\0';
      inside = ok_a && ok_b && a < end && b > begin;
      any = any || inside;
      continue;
    }
    constexpr std::string_view kKey = "AnonHugePages:";
    if (inside && line.substr(0, kKey.size()) == kKey) {
      total += static_cast<size_t>(std::strtoull(std::string(line.substr(kKey.size())).c_str(), nullptr, 10)) * 1024;
    }
  }
  if (!any) return std::nullopt;
  return std::min<size_t>(total, end - begin);
}

std::optional<size_t> huge_page_bytes(const void* data, size_t size) noexcept {
  try {
    std::ifstream in("/proc/self/smaps");
    if (!in) return std::nullopt;
    std::ostringstream text;
    text << in.rdbuf();
    const uintptr_t begin = reinterpret_cast<uintptr_t>(data);
    return parse_smaps_huge_page_bytes(text.str(), begin, begin + size);
  } catch (...) {  // allocation failure while reading: no figure rather than no program
    return std::nullopt;
  }
}

}  // namespace kvbits
