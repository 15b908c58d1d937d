#pragma once
// Byte-level BPE tokenizer (GGUF `tokenizer.ggml.model = "gpt2"`) that reproduces llama.cpp's
// llama_tokenize / llama_token_to_piece token for token.
//
// encode: (1) split out special tokens found verbatim in the text, longest token text first;
// control tokens only with parse_special, user-defined ones always; (2) pre-tokenize each
// remaining fragment into words (pre_tokenizer.h); (3) BPE-merge each word's bytes by merge rank,
// lowest rank first, leftmost first among equal ranks.
//
// decode: concatenation of the tokens' bytes. Control tokens (and the unknown token) decode to
// nothing by default, as llama-cpp-python's detokenize(special=False) does; with render_special
// they decode to their text (llama_token_to_piece with special=true). User-defined tokens always
// decode to their text. No space clean-up is applied (llama_token_to_piece applies none either).
//
// A Tokenizer is immutable after construction and safe to use from several threads.
#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "tokenizer/pre_tokenizer.h"
#include "tokenizer/tokenizer_data.h"

namespace kvbits {

class Tokenizer {
 public:
  // Validates `data` (validate_tokenizer_data) and builds the lookup tables. Throws Error.
  explicit Tokenizer(TokenizerData data);

  // Throws Error("prompt is not valid UTF-8 (byte offset N)") on invalid UTF-8.
  // Never adds bos; callers add it with prepend_bos().
  std::vector<int32_t> encode(std::string_view text, bool parse_special) const;
  // Inserts bos_id() at the front of ids where the model asks for it (add_bos() and a BOS id).
  void prepend_bos(std::vector<int32_t>& ids) const {
    if (add_bos() && bos_id() >= 0) ids.insert(ids.begin(), bos_id());
  }

  // Throws Error for an id outside [0, vocab_size()). The result may be invalid UTF-8 (a token
  // can end inside a character); StreamingDecoder handles that for incremental output.
  std::string decode(std::span<const int32_t> ids, bool render_special = false) const;

  std::string_view token_text(int32_t id) const;  // the vocabulary entry, as stored
  std::string token_bytes(int32_t id, bool render_special = false) const;  // what decode emits
  std::optional<int32_t> find_token(std::string_view text) const;  // exact vocabulary text

  int32_t vocab_size() const { return static_cast<int32_t>(data_.tokens.size()); }
  int32_t bos_id() const { return data_.bos_id; }
  int32_t eos_id() const { return data_.eos_id; }
  bool add_bos() const { return data_.add_bos; }
  bool is_control(int32_t id) const;
  // eos plus the tokens llama.cpp treats as end of generation by their text
  // (<|im_end|>, <|endoftext|>, <|eot_id|>, <|end|>, <end_of_turn>, ...).
  bool is_end_of_generation(int32_t id) const;
  const std::string& chat_template() const { return data_.chat_template; }

 private:
  struct Merge {
    int32_t rank;
    int32_t result;  // token id of the merged text, -1 if the vocabulary lacks it
  };
  struct Fragment {
    int32_t token;  // >= 0: a special token; -1: raw text [offset, offset + length)
    size_t offset, length;
  };

  void check_id(int32_t id) const;
  std::vector<Fragment> partition_special(std::string_view text, bool parse_special) const;
  struct BpeScratch;  // per-call work buffers, reused across words (tokenizer.cc)
  void encode_word(std::string_view word, BpeScratch& scratch, std::vector<int32_t>& out) const;

  TokenizerData data_;
  PreTokenizerKind pre_;
  std::vector<uint16_t> attrs_;        // [vocab] llama.cpp-style attribute bits (tokenizer.cc)
  std::vector<std::string> pieces_;    // [vocab] decoded bytes with render_special = false
  // Transparent hash: lookups by string_view without building a std::string.
  struct TextHash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };
  std::unordered_map<std::string, int32_t, TextHash, std::equal_to<>> token_to_id_;
  std::unordered_map<uint64_t, Merge> merges_;  // key: (left id << 32) | right id
  int32_t byte_token_[256];            // token of each byte's single-character text, or -1
  int32_t raw_byte_token_[256];        // token whose text is that one raw byte, or -1
  std::vector<int32_t> special_;       // partition candidates, longest text first
  std::vector<int32_t> end_of_generation_;  // sorted
};

}  // namespace kvbits
