#include "tokenizer/unicode_category.h"

#include <algorithm>

namespace kvbits {

CharCategory char_category(char32_t cp) {
  // ASCII dominates real text; answer it without the binary search.
  if (cp < 0x80) {
    if ((cp | 0x20) >= 'a' && (cp | 0x20) <= 'z') return CharCategory::kLetter;
    if (cp >= '0' && cp <= '9') return CharCategory::kNumber;
  }
  if (cp >= 0x110000) return CharCategory::kUnassigned;
  using unicode_detail::kCategoryRanges;
  const uint32_t* end = kCategoryRanges + unicode_detail::kCategoryRangesSize;
  // First entry whose start is > cp, then step back: the range containing cp.
  const uint32_t key = (static_cast<uint32_t>(cp) << 4) | 0xF;
  const uint32_t* it = std::upper_bound(kCategoryRanges, end, key);
  return static_cast<CharCategory>(it[-1] & 0xF);
}

bool is_unicode_whitespace(char32_t cp) {
  if (cp < 0x80) return cp == ' ' || (cp >= 0x09 && cp <= 0x0D);
  const uint32_t* begin = unicode_detail::kWhiteSpace;
  const uint32_t* end = begin + unicode_detail::kWhiteSpaceSize;
  return std::binary_search(begin, end, static_cast<uint32_t>(cp));
}

}  // namespace kvbits
