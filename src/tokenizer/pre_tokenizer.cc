#include "tokenizer/pre_tokenizer.h"

#include <cstdint>

#include "tokenizer/unicode_category.h"
#include "tokenizer/utf8.h"

namespace kvbits {
namespace {

// Per-code-point classes the expressions test; one byte each, computed once per call.
enum : uint8_t { kLetter = 1, kNumber = 2, kSpace = 4, kPunct = 8 };

uint8_t classify(char32_t cp) {
  if (is_unicode_whitespace(cp)) return kSpace;
  switch (char_category(cp)) {
    case CharCategory::kLetter: return kLetter;
    case CharCategory::kNumber: return kNumber;
    case CharCategory::kPunctuation: return kPunct;
    default: return 0;
  }
}

struct Text {
  std::vector<char32_t> cps;
  std::vector<uint8_t> cls;
};

// A split is a list of piece lengths in code points; pieces are consecutive.
using Pieces = std::vector<size_t>;

// The gpt2 expression, applied inside each piece [begin, end): lookahead and runs stop at the
// piece's end, exactly like llama.cpp's matcher (which treats positions outside the piece as
// "no character").
Pieces split_gpt2(const Text& t, const Pieces& in) {
  Pieces out;
  out.reserve(in.size() * 2);
  size_t begin = 0;
  for (const size_t len : in) {
    const size_t end = begin + len;
    const auto cls = [&](size_t i) -> uint8_t { return i < end ? t.cls[i] : 0; };
    // "Defined" means some character is there; every code point has a category in Unicode terms
    // (unassigned ones included), so only positions past the piece's end are undefined.
    const auto other = [&](size_t i) { return i < end && (t.cls[i] & (kLetter | kNumber | kSpace)) == 0; };
    size_t prev = begin;
    const auto emit = [&](size_t at) {
      if (at > prev) out.push_back(at - prev);
      prev = at;
    };
    size_t pos = begin;
    while (pos < end) {
      const char32_t c = t.cps[pos];
      if (c == '\'' && pos + 1 < end) {
        const char32_t n1 = t.cps[pos + 1];
        if (n1 == 's' || n1 == 't' || n1 == 'm' || n1 == 'd') {
          emit(pos += 2);
          continue;
        }
        if (pos + 2 < end) {
          const char32_t n2 = t.cps[pos + 2];
          if ((n1 == 'r' && n2 == 'e') || (n1 == 'v' && n2 == 'e') || (n1 == 'l' && n2 == 'l')) {
            emit(pos += 3);
            continue;
          }
        }
      }
      // " ?X+" alternatives: an optional leading space, then a run of one class.
      const size_t first = c == ' ' ? pos + 1 : pos;
      if (cls(first) & kLetter) {
        pos = first;
        while (cls(pos) & kLetter) ++pos;
        emit(pos);
        continue;
      }
      if (cls(first) & kNumber) {
        pos = first;
        while (cls(pos) & kNumber) ++pos;
        emit(pos);
        continue;
      }
      if (other(first)) {
        pos = first;
        while (other(pos)) ++pos;
        emit(pos);
        continue;
      }
      size_t spaces = 0;
      while (cls(pos + spaces) & kSpace) ++spaces;
      if (spaces > 1 && pos + spaces < end) {
        // \s+(?!\S): leave the last space to prefix the word that follows.
        emit(pos += spaces - 1);
        continue;
      }
      if (spaces > 0) {
        emit(pos += spaces);
        continue;
      }
      emit(++pos);  // unreachable for in-range text; kept to guarantee progress
    }
    begin = end;
  }
  return out;
}

// Splits each piece into matches of a simple expression and the text between them.
//   kOne:   a single code point satisfying `pred`           (\p{N})
//   kRun:   a maximal run of code points satisfying `pred`  ([...]+, \p{N}+)
//   kThree: exactly three consecutive ASCII digits           ([0-9][0-9][0-9])
enum class Match { kOne, kRun, kThree };

template <typename Pred>
Pieces isolate(const Text& t, const Pieces& in, Match mode, Pred pred) {
  Pieces out;
  out.reserve(in.size());
  size_t begin = 0;
  for (const size_t len : in) {
    const size_t end = begin + len;
    size_t gap = begin;  // start of the unmatched text before the next match
    size_t pos = begin;
    const auto take = [&](size_t match_end) {
      if (pos > gap) out.push_back(pos - gap);
      out.push_back(match_end - pos);
      pos = gap = match_end;
    };
    while (pos < end) {
      if (mode == Match::kThree) {
        const auto digit = [&](size_t i) { return t.cps[i] >= '0' && t.cps[i] <= '9'; };
        if (pos + 3 <= end && digit(pos) && digit(pos + 1) && digit(pos + 2)) {
          take(pos + 3);
        } else {
          ++pos;
        }
        continue;
      }
      if (!pred(pos)) {
        ++pos;
        continue;
      }
      size_t match_end = pos + 1;
      if (mode == Match::kRun) {
        while (match_end < end && pred(match_end)) ++match_end;
      }
      take(match_end);
    }
    if (end > gap) out.push_back(end - gap);
    begin = end;
  }
  return out;
}

}  // namespace

std::optional<PreTokenizerKind> pre_tokenizer_from_name(std::string_view name) {
  // Names llama.cpp maps to the same regex list and, for tokenization, to no other behaviour.
  if (name == "smollm" || name == "starcoder" || name == "refact" || name == "codeshell") {
    return PreTokenizerKind::kSmollm;
  }
  if (name == "gpt2" || name == "gpt-2" || name == "phi-2" || name == "mpt" || name == "olmo") {
    return PreTokenizerKind::kGpt2;
  }
  if (name.empty() || name == "default") return PreTokenizerKind::kDefault;
  return std::nullopt;
}

std::string_view supported_pre_tokenizer_names() {
  return "smollm, starcoder, refact, codeshell, gpt2, gpt-2, phi-2, mpt, olmo, default";
}

std::vector<std::string_view> pre_tokenize(PreTokenizerKind kind, std::string_view text) {
  std::vector<std::string_view> words;
  if (text.empty()) return words;
  Text t;
  t.cps = utf8::decode(text);
  t.cls.resize(t.cps.size());
  for (size_t i = 0; i < t.cps.size(); ++i) t.cls[i] = classify(t.cps[i]);

  const auto number = [&](size_t i) { return (t.cls[i] & kNumber) != 0; };
  Pieces pieces{t.cps.size()};
  switch (kind) {
    case PreTokenizerKind::kGpt2:
      pieces = split_gpt2(t, pieces);
      break;
    case PreTokenizerKind::kSmollm:
      pieces = isolate(t, pieces, Match::kOne, number);
      pieces = split_gpt2(t, pieces);
      break;
    case PreTokenizerKind::kDefault: {
      const auto punct = [&](size_t i) {
        const char32_t c = t.cps[i];
        return (t.cls[i] & kPunct) != 0 || c == '$' || c == '+' || c == '<' || c == '=' ||
               c == '>' || c == '^' || c == '~' || c == '|';
      };
      pieces = isolate(t, pieces, Match::kRun, punct);
      pieces = split_gpt2(t, pieces);
      pieces = isolate(t, pieces, Match::kRun, number);
      pieces = isolate(t, pieces, Match::kThree, number);
      break;
    }
  }

  // Code point counts back to byte ranges of the original text.
  words.reserve(pieces.size());
  size_t byte = 0;
  size_t cp = 0;
  for (const size_t len : pieces) {
    const size_t start = byte;
    for (size_t k = 0; k < len; ++k, ++cp) {
      const char32_t c = t.cps[cp];
      byte += c < 0x80 ? 1 : c < 0x800 ? 2 : c < 0x10000 ? 3 : 4;
    }
    words.push_back(text.substr(start, byte - start));
  }
  return words;
}

}  // namespace kvbits
