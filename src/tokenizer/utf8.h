#pragma once
// Strict UTF-8 (RFC 3629): no overlong forms, no surrogates, nothing above U+10FFFF.
//
// The tokenizer rejects invalid prompts instead of silently replacing bytes (llama.cpp maps bad
// bytes to U+FFFD, which makes two different prompts tokenize the same), so the encoder validates
// first and the pre-tokenizer can then decode without checks.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace kvbits::utf8 {

inline constexpr char32_t kReplacementChar = 0xFFFD;
inline constexpr std::string_view kReplacementUtf8 = "\xEF\xBF\xBD";

// Sequence length announced by a leading byte: 1..4, or 0 for a byte that never starts a valid
// sequence (continuation bytes 0x80..0xBF, 0xC0, 0xC1, 0xF5..0xFF).
int sequence_length(uint8_t lead);

// Result of examining the bytes at one position.
struct Scan {
  enum class Kind { kComplete, kIncomplete, kInvalid };
  Kind kind;
  // kComplete: the sequence length. kIncomplete: bytes present, all a valid prefix (the text ends
  // inside the character). kInvalid: length of the maximal valid prefix before the bad byte, at
  // least 1 (the Unicode "maximal subpart" that one U+FFFD replaces).
  int length;
  char32_t code_point;  // kComplete only
};
Scan scan(std::string_view s, size_t pos);

// Byte offset of the first invalid or truncated sequence, or std::string_view::npos if `s` is
// valid UTF-8.
size_t find_invalid(std::string_view s);
inline bool is_valid(std::string_view s) { return find_invalid(s) == std::string_view::npos; }

// Decodes valid UTF-8 (check with is_valid first; invalid bytes decode as U+FFFD, one per byte).
std::vector<char32_t> decode(std::string_view s);

// Appends the encoding of `cp` (must be <= U+10FFFF and not a surrogate).
void append(std::string& out, char32_t cp);

// Replaces every invalid sequence with U+FFFD (maximal-subpart policy, as Python's
// bytes.decode(errors="replace") and the WHATWG decoder do). Valid input comes back unchanged.
std::string sanitize(std::string_view s);

}  // namespace kvbits::utf8
