#pragma once
// GPT-2's byte-to-unicode alphabet: byte-level BPE vocabularies store every byte as a printable
// code point (printable Latin-1 bytes map to themselves, the other 68 bytes to U+0100..U+0143), so
// a token's text is the concatenation of its bytes' code points.
#include <cstdint>

namespace kvbits::byte_level {

// Code point that stands for `byte` in vocabulary texts.
char32_t code_point_of_byte(uint8_t byte);

// Inverse: the byte a vocabulary code point stands for, or -1 if it is not in the alphabet.
int byte_of_code_point(char32_t cp);

}  // namespace kvbits::byte_level
