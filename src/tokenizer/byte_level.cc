#include "tokenizer/byte_level.h"

#include <array>

namespace kvbits::byte_level {
namespace {

// Bytes that are printable in Latin-1 ('!'..'~', '¡'..'¬', '®'..'ÿ') keep their value.
constexpr bool is_printable(int b) {
  return (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
}

// The remaining bytes, in increasing order, take U+0100, U+0101, ...
constexpr std::array<char32_t, 256> make_table() {
  std::array<char32_t, 256> table{};
  char32_t next = 0x100;
  for (int b = 0; b < 256; ++b) table[b] = is_printable(b) ? static_cast<char32_t>(b) : next++;
  return table;
}

constexpr std::array<char32_t, 256> kByteToCodePoint = make_table();
static_assert(kByteToCodePoint[' '] == 0x120);   // 'Ġ', the familiar space marker
static_assert(kByteToCodePoint['\n'] == 0x10A);  // 'Ċ'
static_assert(kByteToCodePoint[0xAD] == 0x143);  // the last remapped byte

}  // namespace

char32_t code_point_of_byte(uint8_t byte) { return kByteToCodePoint[byte]; }

int byte_of_code_point(char32_t cp) {
  if (cp < 0x100) return is_printable(static_cast<int>(cp)) ? static_cast<int>(cp) : -1;
  if (cp > 0x143) return -1;
  // Walk the non-printable bytes in order; the table is tiny and this is not on a hot path
  // (decoding uses per-token pieces computed once).
  char32_t next = 0x100;
  for (int b = 0; b < 256; ++b) {
    if (is_printable(b)) continue;
    if (next == cp) return b;
    ++next;
  }
  return -1;
}

}  // namespace kvbits::byte_level
