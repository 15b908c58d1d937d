// allocate_huge_page_buffer (io/mapped_file.h): 2 MiB-aligned, zero-filled, writable over the
// whole requested size, any size from 0 up; freeing it (the deleter's munmap) leaves nothing
// behind that a second allocation trips over. Whether the kernel backs it with huge pages is a
// hint we cannot require (THP may be off), so it is not checked.
#include <gtest/gtest.h>

#include <cstdint>

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

}  // namespace
}  // namespace kvbits
