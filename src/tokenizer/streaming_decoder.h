#pragma once
// Incremental detokenizer for generation: a token can end in the middle of a multi-byte UTF-8
// character (byte-level BPE splits rare characters and emoji into several tokens), so printing
// each token's bytes as they come would print broken characters. StreamingDecoder holds back an
// incomplete character at the end until the next token completes it.
//
// The output is always valid UTF-8: byte sequences that can never become valid are replaced by
// U+FFFD as soon as they are seen (one per maximal invalid subpart), and flush() replaces an
// incomplete tail. For valid token streams the concatenated output equals Tokenizer::decode.
#include <cstdint>
#include <string>
#include <string_view>

namespace kvbits {

class Tokenizer;

class StreamingDecoder {
 public:
  // `tokenizer` must outlive the decoder.
  explicit StreamingDecoder(const Tokenizer& tokenizer, bool render_special = false);

  // Appends the token's bytes and returns the characters now complete (possibly empty).
  // Throws Error for an id outside the vocabulary.
  std::string push(int32_t id);
  // Feeds raw bytes directly (what push does after looking up the token).
  std::string push_bytes(std::string_view bytes);
  // Returns whatever is held back, an incomplete tail replaced by U+FFFD, and resets.
  std::string flush();
  // Bytes currently held back (0..3).
  size_t pending() const { return pending_.size(); }

 private:
  const Tokenizer* tokenizer_;
  bool render_special_;
  std::string pending_;  // an incomplete, so far valid, UTF-8 sequence
};

}  // namespace kvbits
