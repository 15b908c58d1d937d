#include "tokenizer/tokenizer.h"

#include <algorithm>
#include <array>
#include <cstdio>

#include "tokenizer/byte_level.h"
#include "tokenizer/utf8.h"
#include "util/error.h"

namespace kvbits {
namespace {

// llama.cpp's llama_token_attr bits; kept as bits because llama.cpp ORs CONTROL into tokens it
// recognises by text, and the decode rules test combinations.
enum : uint16_t {
  kAttrUnknown = 1 << 0,
  kAttrUnused = 1 << 1,
  kAttrNormal = 1 << 2,
  kAttrControl = 1 << 3,
  kAttrUserDefined = 1 << 4,
  kAttrByte = 1 << 5,
};

uint16_t attr_of_type(int32_t type) {
  switch (static_cast<TokenType>(type)) {
    case TokenType::kUnknown: return kAttrUnknown;
    case TokenType::kUnused: return kAttrUnused;
    case TokenType::kNormal: return kAttrNormal;
    case TokenType::kControl: return kAttrControl;
    case TokenType::kUserDefined: return kAttrUserDefined;
    case TokenType::kByte: return kAttrByte;
    default: return 0;
  }
}

// Texts llama.cpp treats as end of generation (a subset of its list: the generic ones, not those
// of specific model families). It also forces them to control type.
constexpr std::array<std::string_view, 9> kEndOfGenerationTexts = {
    "<|eot_id|>", "<|im_end|>",    "<|end|>",         "<end_of_turn>",      "<|endoftext|>",
    "<|eom_id|>", "<EOT>",         "<|end_of_text|>", "<end_of_utterance>",
};

// What llama_token_to_piece(special = false) returns for a non-control token.
std::string piece_of(std::string_view text, uint16_t attr) {
  if (attr & kAttrUserDefined) return std::string(text);
  if (attr & kAttrNormal) {
    std::string out;
    out.reserve(text.size());
    for (const char32_t cp : utf8::decode(text)) {
      const int b = byte_level::byte_of_code_point(cp);
      if (b >= 0) {
        out.push_back(static_cast<char>(b));
        continue;
      }
      // A character outside the byte alphabet: llama.cpp writes this marker; reproduce it so
      // broken vocabularies decode identically.
      std::string utf;
      utf8::append(utf, cp);
      out += "[UNK_BYTE_0x";
      for (const char c : utf) {
        char hex[3];
        std::snprintf(hex, sizeof hex, "%02x", static_cast<unsigned>(static_cast<uint8_t>(c)));
        out += hex;
      }
      out += text;
      out += "]";
    }
    return out;
  }
  if (attr & kAttrByte) {  // "<0xXX>"
    if (text.size() == 6 && text.substr(0, 3) == "<0x" && text[5] == '>') {
      unsigned v = 0;
      if (std::sscanf(std::string(text.substr(3, 2)).c_str(), "%2x", &v) == 1) {
        return std::string(1, static_cast<char>(v));
      }
    }
    return {};
  }
  return {};  // unused / undefined tokens render as nothing
}

}  // namespace

// Symbols are the current pieces of one word, kept as a doubly linked list over a vector so a
// merge is O(1); candidate pairs wait in a binary heap ordered by (rank, left position).
struct Tokenizer::BpeScratch {
  struct Symbol {
    int32_t id;      // token id, -1 if the vocabulary has no token for these bytes
    uint32_t start;  // byte range in the word
    uint32_t len;    // 0 once merged into its left neighbour
    int32_t prev, next;
  };
  struct Pair {
    int32_t rank;
    int32_t left, right;
    uint32_t left_len, right_len;  // lengths when queued: symbols only grow, so equal = unchanged
    int32_t result;
  };
  // Heap order: lowest rank first, then leftmost, as llama.cpp's llm_bigram_bpe comparator.
  static bool later(const Pair& a, const Pair& b) {
    return a.rank > b.rank || (a.rank == b.rank && a.left > b.left);
  }
  std::vector<Symbol> symbols;
  std::vector<Pair> heap;
};

Tokenizer::Tokenizer(TokenizerData data) : data_(std::move(data)) {
  validate_tokenizer_data(data_);
  pre_ = *pre_tokenizer_from_name(data_.pre);
  const size_t n = data_.tokens.size();

  attrs_.resize(n, kAttrNormal);
  for (size_t i = 0; i < data_.token_types.size(); ++i) attrs_[i] = attr_of_type(data_.token_types[i]);

  token_to_id_.reserve(n);
  for (size_t i = 0; i < n; ++i) {
    token_to_id_.insert_or_assign(data_.tokens[i], static_cast<int32_t>(i));  // last duplicate wins, as in llama.cpp
  }

  if (data_.eos_id >= 0) end_of_generation_.push_back(data_.eos_id);
  for (const std::string_view text : kEndOfGenerationTexts) {
    if (const auto id = find_token(text)) {
      end_of_generation_.push_back(*id);
      attrs_[*id] |= kAttrControl;
    }
  }
  std::sort(end_of_generation_.begin(), end_of_generation_.end());
  end_of_generation_.erase(std::unique(end_of_generation_.begin(), end_of_generation_.end()), end_of_generation_.end());

  pieces_.resize(n);
  for (size_t i = 0; i < n; ++i) {
    if (!(attrs_[i] & (kAttrControl | kAttrUnknown))) pieces_[i] = piece_of(data_.tokens[i], attrs_[i]);
  }

  // Merges become (left id, right id) -> (rank, merged id). A merge whose sides are not both tokens
  // can never apply to token symbols, so it is dropped. The first occurrence of a pair keeps its rank.
  merges_.reserve(data_.merges.size());
  for (size_t rank = 0; rank < data_.merges.size(); ++rank) {
    const std::string& m = data_.merges[rank];
    const size_t space = m.size() > 1 ? m.find(' ', 1) : std::string::npos;
    if (space == std::string::npos) continue;
    const auto left = find_token(std::string_view(m).substr(0, space));
    const auto right = find_token(std::string_view(m).substr(space + 1));
    if (!left || !right) continue;
    std::string merged = m.substr(0, space) + m.substr(space + 1);
    const auto result = find_token(merged);
    const uint64_t key = (static_cast<uint64_t>(static_cast<uint32_t>(*left)) << 32) | static_cast<uint32_t>(*right);
    merges_.try_emplace(key, Merge{static_cast<int32_t>(rank), result.value_or(-1)});
  }

  for (int b = 0; b < 256; ++b) {
    std::string encoded;
    utf8::append(encoded, byte_level::code_point_of_byte(static_cast<uint8_t>(b)));
    byte_token_[b] = find_token(encoded).value_or(-1);
    raw_byte_token_[b] = find_token(std::string(1, static_cast<char>(b))).value_or(-1);
  }

  for (size_t i = 0; i < n; ++i) {
    const std::string& text = data_.tokens[i];
    // Empty or invalid texts can never be found in (valid) input text.
    if ((attrs_[i] & (kAttrControl | kAttrUserDefined | kAttrUnknown)) && !text.empty() && utf8::is_valid(text)) {
      special_.push_back(static_cast<int32_t>(i));
    }
  }
  std::stable_sort(special_.begin(), special_.end(), [&](int32_t a, int32_t b) {
    return data_.tokens[a].size() > data_.tokens[b].size();
  });
}

void Tokenizer::check_id(int32_t id) const {
  if (id < 0 || id >= vocab_size()) {
    throw Error("token id " + std::to_string(id) + " is out of range (vocabulary has " +
                std::to_string(vocab_size()) + " tokens)");
  }
}

bool Tokenizer::is_control(int32_t id) const {
  return id >= 0 && id < vocab_size() && (attrs_[id] & kAttrControl) != 0;
}

bool Tokenizer::is_end_of_generation(int32_t id) const {
  return std::binary_search(end_of_generation_.begin(), end_of_generation_.end(), id);
}

std::optional<int32_t> Tokenizer::find_token(std::string_view text) const {
  const auto it = token_to_id_.find(text);
  if (it == token_to_id_.end()) return std::nullopt;
  return it->second;
}

std::string_view Tokenizer::token_text(int32_t id) const {
  check_id(id);
  return data_.tokens[id];
}

std::string Tokenizer::token_bytes(int32_t id, bool render_special) const {
  check_id(id);
  if (attrs_[id] & (kAttrControl | kAttrUnknown)) return render_special ? data_.tokens[id] : std::string();
  return pieces_[id];
}

std::string Tokenizer::decode(std::span<const int32_t> ids, bool render_special) const {
  std::string out;
  for (const int32_t id : ids) {
    check_id(id);
    if (attrs_[id] & (kAttrControl | kAttrUnknown)) {
      if (render_special) out += data_.tokens[id];
    } else {
      out += pieces_[id];
    }
  }
  return out;
}

// llama.cpp's tokenizer_st_partition: for each special token, longest text first, split every
// raw fragment at each of its occurrences.
std::vector<Tokenizer::Fragment> Tokenizer::partition_special(std::string_view text, bool parse_special) const {
  std::vector<Fragment> fragments;
  if (text.empty()) return fragments;
  fragments.push_back({-1, 0, text.size()});
  std::vector<Fragment> next;
  for (const int32_t id : special_) {
    // Control and unknown tokens stay plain text unless asked; user-defined ones never do.
    if (!parse_special && (attrs_[id] & (kAttrControl | kAttrUnknown))) continue;
    const std::string_view needle = data_.tokens[id];
    next.clear();
    bool split = false;
    for (const Fragment& f : fragments) {
      if (f.token >= 0) {
        next.push_back(f);
        continue;
      }
      size_t pos = f.offset;
      const size_t end = f.offset + f.length;
      while (pos < end) {
        const size_t hit = text.substr(0, end).find(needle, pos);
        if (hit == std::string_view::npos) break;
        if (hit > pos) next.push_back({-1, pos, hit - pos});
        next.push_back({id, hit, needle.size()});
        pos = hit + needle.size();
        split = true;
      }
      if (pos < end) next.push_back({-1, pos, end - pos});
    }
    if (split) fragments.swap(next);
  }
  return fragments;
}

std::vector<int32_t> Tokenizer::encode(std::string_view text, bool parse_special) const {
  if (const size_t bad = utf8::find_invalid(text); bad != std::string_view::npos) {
    throw Error("prompt is not valid UTF-8 (byte offset " + std::to_string(bad) + ")");
  }
  std::vector<int32_t> out;
  out.reserve(text.size() / 3 + 4);
  BpeScratch scratch;
  for (const Fragment& f : partition_special(text, parse_special)) {
    if (f.token >= 0) {
      out.push_back(f.token);
      continue;
    }
    for (const std::string_view word : pre_tokenize(pre_, text.substr(f.offset, f.length))) {
      encode_word(word, scratch, out);
    }
  }
  return out;
}

void Tokenizer::encode_word(std::string_view word, BpeScratch& s, std::vector<int32_t>& out) const {
  using Symbol = BpeScratch::Symbol;
  using Pair = BpeScratch::Pair;
  auto& symbols = s.symbols;
  auto& heap = s.heap;
  symbols.clear();
  heap.clear();
  const int32_t n = static_cast<int32_t>(word.size());
  for (int32_t i = 0; i < n; ++i) {
    symbols.push_back(Symbol{byte_token_[static_cast<uint8_t>(word[i])], static_cast<uint32_t>(i), 1, i - 1,
                             i + 1 < n ? i + 1 : -1});
  }
  const auto queue_pair = [&](int32_t left, int32_t right) {
    if (left < 0 || right < 0) return;
    const Symbol& l = symbols[left];
    const Symbol& r = symbols[right];
    if (l.id < 0 || r.id < 0) return;
    const uint64_t key = (static_cast<uint64_t>(static_cast<uint32_t>(l.id)) << 32) | static_cast<uint32_t>(r.id);
    const auto it = merges_.find(key);
    if (it == merges_.end()) return;
    heap.push_back(Pair{it->second.rank, left, right, l.len, r.len, it->second.result});
    std::push_heap(heap.begin(), heap.end(), BpeScratch::later);
  };
  for (int32_t i = 0; i + 1 < n; ++i) queue_pair(i, i + 1);

  while (!heap.empty()) {
    std::pop_heap(heap.begin(), heap.end(), BpeScratch::later);
    const Pair p = heap.back();
    heap.pop_back();
    Symbol& l = symbols[p.left];
    Symbol& r = symbols[p.right];
    // Stale entry: one side has merged since it was queued.
    if (l.len == 0 || r.len == 0 || l.next != p.right || l.len != p.left_len || r.len != p.right_len) continue;
    l.id = p.result;
    l.len += r.len;
    r.len = 0;
    l.next = r.next;
    if (r.next >= 0) symbols[r.next].prev = p.left;
    queue_pair(l.prev, p.left);
    queue_pair(p.left, l.next);
  }

  for (int32_t i = 0; i >= 0 && i < n; i = symbols[i].next) {
    const Symbol& sym = symbols[i];
    if (sym.id >= 0) {
      out.push_back(sym.id);
      continue;
    }
    // No token for these bytes: like llama.cpp, fall back to tokens for the single bytes of their
    // byte-level text, skipping bytes that have none.
    for (uint32_t k = sym.start; k < sym.start + sym.len; ++k) {
      std::string encoded;
      utf8::append(encoded, byte_level::code_point_of_byte(static_cast<uint8_t>(word[k])));
      for (const char c : encoded) {
        const int32_t t = raw_byte_token_[static_cast<uint8_t>(c)];
        if (t >= 0) out.push_back(t);
      }
    }
  }
}

}  // namespace kvbits
