// libFuzzer target for the tokenizer layer: arbitrary bytes as prompts and as token ids.
//
// Checks, for each of the three pre-tokenizers: encode never crashes; invalid UTF-8 raises
// kvbits::Error and nothing else; valid text round-trips exactly through decode; StreamingDecoder
// reproduces decode for encoded ids and always emits valid UTF-8 for arbitrary ids.
//
// Needs: src/tokenizer/*.cc (byte_level, chat_template, pre_tokenizer, streaming_decoder,
// tokenizer, tokenizer_data, unicode_category, unicode_tables, utf8) and, for tokenizer_data.cc's
// GGUF reader, src/io/gguf*.cc + src/io/mapped_file.cc (or link kvbits_core).
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "tokenizer/byte_level.h"
#include "tokenizer/chat_template.h"
#include "tokenizer/streaming_decoder.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/utf8.h"
#include "util/error.h"

namespace {

using kvbits::Tokenizer;
using kvbits::TokenizerData;
using kvbits::TokenType;

std::string enc(std::string_view raw) {
  std::string out;
  for (const char c : raw) kvbits::utf8::append(out, kvbits::byte_level::code_point_of_byte(static_cast<uint8_t>(c)));
  return out;
}

// All 256 bytes, some merges (including multi-byte characters and a chain), and special tokens
// of every kind, so the fuzzer reaches merging, partitioning and fallback paths.
TokenizerData make_data(const char* pre) {
  TokenizerData d;
  d.model = "gpt2";
  d.pre = pre;
  const auto add = [&](std::string text, TokenType type) {
    d.tokens.push_back(std::move(text));
    d.token_types.push_back(static_cast<int32_t>(type));
  };
  for (int b = 0; b < 256; ++b) add(enc(std::string(1, static_cast<char>(b))), TokenType::kNormal);
  const char* pairs[][2] = {{"h", "e"}, {"l", "l"}, {"he", "ll"}, {"hell", "o"}, {" ", "w"}, {" ", " "},
                            {"  ", "  "}, {"\xC3", "\xA9"}, {"\xF0", "\x9F"}, {"1", "2"}, {"'", "s"},
                            {"\n", "\n"}, {"a", "a"}, {"aa", "aa"}};
  for (const auto& p : pairs) {
    d.merges.push_back(enc(p[0]) + " " + enc(p[1]));
    add(enc(std::string(p[0]) + p[1]), TokenType::kNormal);
  }
  d.merges.push_back("x");        // malformed merge: ignored
  d.merges.push_back("zz q");     // sides that are not tokens: ignored
  d.bos_id = static_cast<int32_t>(d.tokens.size());
  add("<|im_start|>", TokenType::kControl);
  d.eos_id = static_cast<int32_t>(d.tokens.size());
  add("<|im_end|>", TokenType::kControl);
  add("<|endoftext|>", TokenType::kControl);
  add("<tool>", TokenType::kUserDefined);
  add("<unk>", TokenType::kUnknown);
  add("<0x41>", TokenType::kByte);
  add("", TokenType::kControl);   // empty special text must not loop
  add("unused", TokenType::kUnused);
  d.chat_template = "{{ '<|im_start|>system\nDefault<|im_end|>\n' }}";
  return d;
}

struct Harness {
  Tokenizer smollm{make_data("smollm")};
  Tokenizer gpt2{make_data("gpt2")};
  Tokenizer fallback{make_data("default")};
};

void check(bool ok) {
  if (!ok) __builtin_trap();
}

void run(const Tokenizer& t, std::string_view text) {
  const bool valid = kvbits::utf8::is_valid(text);
  for (const bool parse_special : {false, true}) {
    std::vector<int32_t> ids;
    try {
      ids = t.encode(text, parse_special);
    } catch (const kvbits::Error&) {
      check(!valid);
      continue;
    }
    check(valid);
    const std::string decoded = t.decode(ids, parse_special);
    check(decoded == text);
    kvbits::StreamingDecoder stream(t, parse_special);
    std::string streamed;
    for (const int32_t id : ids) streamed += stream.push(id);
    streamed += stream.flush();
    check(streamed == decoded);
  }
  // Arbitrary ids: the streamed output must always be valid UTF-8.
  kvbits::StreamingDecoder stream(t);
  std::string streamed;
  for (const char c : text) streamed += stream.push(static_cast<uint8_t>(c) % t.vocab_size());
  streamed += stream.flush();
  check(kvbits::utf8::is_valid(streamed));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const Harness* harness = new Harness();  // built once; immutable afterwards
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  run(harness->smollm, text);
  run(harness->gpt2, text);
  run(harness->fallback, text);
  if (kvbits::utf8::is_valid(text)) {
    const kvbits::ChatMessage messages[] = {{"user", std::string(text)}};
    const std::string prompt = kvbits::apply_chat_template(harness->smollm.chat_template(), messages, true);
    check(prompt.find(text) != std::string::npos);
  }
  return 0;
}
