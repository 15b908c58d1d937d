#include "tokenizer/utf8.h"

namespace kvbits::utf8 {

int sequence_length(uint8_t lead) {
  if (lead < 0x80) return 1;
  if (lead < 0xC2) return 0;  // continuation byte or overlong 2-byte lead
  if (lead < 0xE0) return 2;
  if (lead < 0xF0) return 3;
  if (lead < 0xF5) return 4;
  return 0;
}

Scan scan(std::string_view s, size_t pos) {
  const auto byte = [&](size_t i) { return static_cast<uint8_t>(s[i]); };
  const uint8_t lead = byte(pos);
  const int n = sequence_length(lead);
  if (n == 0) return {Scan::Kind::kInvalid, 1, 0};
  if (n == 1) return {Scan::Kind::kComplete, 1, lead};
  // The second byte's range depends on the lead: this is where overlong forms, surrogates and
  // values above U+10FFFF are excluded.
  uint8_t lo = 0x80, hi = 0xBF;
  if (lead == 0xE0) lo = 0xA0;
  if (lead == 0xED) hi = 0x9F;
  if (lead == 0xF0) lo = 0x90;
  if (lead == 0xF4) hi = 0x8F;
  char32_t cp = lead & (0x7F >> n);
  for (int i = 1; i < n; ++i) {
    if (pos + i >= s.size()) return {Scan::Kind::kIncomplete, i, 0};
    const uint8_t b = byte(pos + i);
    const bool ok = i == 1 ? (b >= lo && b <= hi) : (b >= 0x80 && b <= 0xBF);
    if (!ok) return {Scan::Kind::kInvalid, i, 0};
    cp = (cp << 6) | (b & 0x3F);
  }
  return {Scan::Kind::kComplete, n, cp};
}

size_t find_invalid(std::string_view s) {
  size_t pos = 0;
  while (pos < s.size()) {
    if (static_cast<uint8_t>(s[pos]) < 0x80) {  // fast path for ASCII
      ++pos;
      continue;
    }
    const Scan r = scan(s, pos);
    if (r.kind != Scan::Kind::kComplete) return pos;
    pos += r.length;
  }
  return std::string_view::npos;
}

std::vector<char32_t> decode(std::string_view s) {
  std::vector<char32_t> out;
  out.reserve(s.size());
  size_t pos = 0;
  while (pos < s.size()) {
    const Scan r = scan(s, pos);
    if (r.kind == Scan::Kind::kComplete) {
      out.push_back(r.code_point);
      pos += r.length;
    } else {
      out.push_back(kReplacementChar);
      ++pos;
    }
  }
  return out;
}

void append(std::string& out, char32_t cp) {
  if (cp < 0x80) {
    out.push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out.push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out.push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out.push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

std::string sanitize(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  size_t pos = 0;
  while (pos < s.size()) {
    const Scan r = scan(s, pos);
    if (r.kind == Scan::Kind::kComplete) {
      out.append(s.substr(pos, r.length));
    } else {
      out.append(kReplacementUtf8);
    }
    pos += r.length;
  }
  return out;
}

}  // namespace kvbits::utf8
