#pragma once
// Pre-tokenizers of byte-level BPE vocabularies: split text into "words" that BPE then encodes
// independently. Each kind reproduces the regex list llama.cpp applies for the GGUF
// `tokenizer.ggml.pre` name, with hand-written matchers over code points (no std::regex):
//
//   gpt2:    's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
//   smollm:  \p{N}  (every digit on its own), then the gpt2 expression within each piece
//   default: [\p{P}\$\+<=>\^~\|]+, then gpt2, then \p{N}+, then [0-9][0-9][0-9]
//
// Each expression splits every piece produced by the previous one; text between matches stays a
// piece of its own. The contractions are matched lowercase only, as in llama.cpp (and GPT-2).
#include <optional>
#include <string_view>
#include <vector>

namespace kvbits {

enum class PreTokenizerKind { kGpt2, kSmollm, kDefault };

// Maps a `tokenizer.ggml.pre` value to its kind (several names share one regex list in llama.cpp;
// an empty name means "default", as there). nullopt for names we do not implement.
std::optional<PreTokenizerKind> pre_tokenizer_from_name(std::string_view name);
// For error messages: the names pre_tokenizer_from_name accepts.
std::string_view supported_pre_tokenizer_names();

// Splits valid UTF-8 `text` (callers validate) into consecutive non-empty pieces that cover it.
std::vector<std::string_view> pre_tokenize(PreTokenizerKind kind, std::string_view text);

}  // namespace kvbits
