// allocate_huge_page_buffer (io/mapped_file.h): 2 MiB-aligned, zero-filled, writable over the
// whole requested size, any size from 0 up; freeing it (the deleter's munmap) leaves nothing
// behind that a second allocation trips over. Whether the kernel backs it with huge pages is a
// hint we cannot require (THP may be off), so it is not checked; what the kernel gave is read
// from smaps (huge_page_bytes), whose parser is checked on a fixed text.
#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <optional>

#include "io/mapped_file.h"

namespace kvbits {
namespace {

TEST(HugePageBuffer, AlignedZeroedAndWritableForAnySize) {
  for (size_t bytes : {size_t{0}, size_t{1}, size_t{4095}, size_t{2} << 20, (size_t{5} << 20) + 17}) {
    HugePageBuffer buf = allocate_huge_page_buffer(bytes);
    ASSERT_NE(buf.get(), nullptr) << bytes;
    EXPECT_EQ(reinterpret_cast<uintptr_t>(buf.get()) % (uintptr_t{2} << 20), 0u) << bytes;
    EXPECT_GE(buf.get_deleter().size, bytes);
    for (size_t i = 0; i < bytes; i += 4096) {
      EXPECT_EQ(buf[i], 0) << bytes << " at " << i;
      buf[i] = static_cast<uint8_t>(i);
    }
    if (bytes > 0) {
      EXPECT_EQ(buf[bytes - 1], (bytes - 1) % 4096 == 0 ? static_cast<uint8_t>(bytes - 1) : 0);
      buf[bytes - 1] = 0xab;
    }
  }
}

// Two mappings as /proc/self/smaps shows them (trimmed): a huge-page one with 4 MiB of huge
// pages, a plain one with none; a third line of keys only.
constexpr const char* kSmaps =
    "7f0000000000-7f0000600000 rw-p 00000000 00:00 0 \n"
    "Size:               6144 kB\n"
    "AnonHugePages:      4096 kB\n"
    "VmFlags: rd wr mr mw me ac sd hg\n"
    "7f0000600000-7f0000700000 rw-p 00000000 00:00 0                          [heap-like]\n"
    "Size:               1024 kB\n"
    "AnonHugePages:         0 kB\n"
    "THPeligible:    1\n";

TEST(HugePageBytes, SumsTheMappingsOverlappingTheRangeFromSmaps) {
  const uintptr_t a = 0x7f0000000000, b = 0x7f0000600000, c = 0x7f0000700000;
  EXPECT_EQ(parse_smaps_huge_page_bytes(kSmaps, a, b), std::optional<size_t>(size_t{4} << 20));
  EXPECT_EQ(parse_smaps_huge_page_bytes(kSmaps, a, c), std::optional<size_t>(size_t{4} << 20));
  EXPECT_EQ(parse_smaps_huge_page_bytes(kSmaps, b, c), std::optional<size_t>(0));
  // A range inside the first mapping: its mapping's count, at most the range's size.
  EXPECT_EQ(parse_smaps_huge_page_bytes(kSmaps, a + 4096, a + 8192), std::optional<size_t>(4096));
  EXPECT_EQ(parse_smaps_huge_page_bytes(kSmaps, c, c + 4096), std::nullopt);  // no mapping there
  EXPECT_EQ(parse_smaps_huge_page_bytes("", a, b), std::nullopt);
  EXPECT_EQ(parse_smaps_huge_page_bytes("garbage-line\nAnonHugePages: 12 kB\n", a, b), std::nullopt);
}

TEST(HugePageBytes, ReadsThisProcessesMappings) {
  const size_t bytes = size_t{4} << 20;
  HugePageBuffer buf = allocate_huge_page_buffer(bytes);
  std::memset(buf.get(), 1, bytes);
  const std::optional<size_t> huge = huge_page_bytes(buf.get(), bytes);
#if defined(__linux__)
  ASSERT_TRUE(huge.has_value());  // the buffer's own mapping is in smaps
#endif
  if (huge) EXPECT_LE(*huge, bytes);
}

}  // namespace
}  // namespace kvbits
