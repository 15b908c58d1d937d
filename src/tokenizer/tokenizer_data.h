#pragma once
// The vocabulary of a byte-level BPE tokenizer as a GGUF file stores it (`tokenizer.ggml.*`),
// kept as plain data so tests and fuzzers can build small ones by hand.
#include <cstdint>
#include <string>
#include <vector>

namespace kvbits {

class GgufFile;

// Values of `tokenizer.ggml.token_type` (llama.cpp's llama_token_type).
enum class TokenType : int32_t {
  kUndefined = 0,
  kNormal = 1,
  kUnknown = 2,
  kControl = 3,      // e.g. <|im_start|>: matched in text only with parse_special
  kUserDefined = 4,  // matched in text always, rendered as its text
  kUnused = 5,
  kByte = 6,         // <0xXX>
};

struct TokenizerData {
  std::string model;                 // tokenizer.ggml.model; only "gpt2" (byte-level BPE)
  std::string pre;                   // tokenizer.ggml.pre; see pre_tokenizer.h for the names
  std::vector<std::string> tokens;   // [vocab_size] token texts in the byte-level alphabet
  std::vector<int32_t> token_types;  // [vocab_size] TokenType values; empty = all normal
  std::vector<std::string> merges;   // "left right", in rank order (first = merged first)
  int32_t bos_id = -1, eos_id = -1, unk_id = -1, pad_id = -1;  // -1: none
  bool add_bos = false;
  std::string chat_template;         // tokenizer.chat_template, may be empty
};

// Reads the tokenizer.ggml.* keys and validates them (see validate_tokenizer_data).
// Throws Error naming the file and the problem.
TokenizerData tokenizer_data_from_gguf(const GgufFile& file);

// Checks what the tokenizer relies on: a supported model and pre-tokenizer, a non-empty vocabulary,
// one type per token with a known value, special ids in range. Throws Error.
void validate_tokenizer_data(const TokenizerData& data);

}  // namespace kvbits
