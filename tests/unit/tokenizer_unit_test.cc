// Tokenizer layer without a model: a hand-made byte-level vocabulary exercises BPE merge order,
// special-token partitioning, UTF-8 validation, the pre-tokenizer's splits, streaming decoding and
// ChatML rendering. Agreement with llama.cpp on the real vocabulary is tested in
// tests/model/tokenizer_fixture_test.cc.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "tokenizer/byte_level.h"
#include "tokenizer/chat_template.h"
#include "tokenizer/pre_tokenizer.h"
#include "tokenizer/streaming_decoder.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/unicode_category.h"
#include "tokenizer/utf8.h"
#include "util/error.h"

namespace kvbits {
namespace {

// Byte-level text of raw bytes ("a b" -> "aĠb").
std::string enc(std::string_view raw) {
  std::string out;
  for (const char c : raw) utf8::append(out, byte_level::code_point_of_byte(static_cast<uint8_t>(c)));
  return out;
}

// Ids 0..255: the single bytes 0x00..0xFF. Then the extra tokens, then special tokens.
struct Vocab {
  TokenizerData data;
  int32_t add(std::string text, TokenType type = TokenType::kNormal) {
    data.tokens.push_back(std::move(text));
    data.token_types.push_back(static_cast<int32_t>(type));
    return static_cast<int32_t>(data.tokens.size() - 1);
  }
  // Adds the merge of two raw-byte strings and the merged token.
  int32_t merge(std::string_view left, std::string_view right) {
    data.merges.push_back(enc(left) + " " + enc(right));
    return add(enc(std::string(left) + std::string(right)));
  }
};

Vocab byte_vocab(std::string pre = "smollm") {
  Vocab v;
  v.data.model = "gpt2";
  v.data.pre = std::move(pre);
  for (int b = 0; b < 256; ++b) v.add(enc(std::string(1, static_cast<char>(b))));
  return v;
}

std::vector<int32_t> bytes_of(std::string_view s) {
  std::vector<int32_t> ids;
  for (const char c : s) ids.push_back(static_cast<uint8_t>(c));
  return ids;
}

TEST(TokenizerByteLevel, RoundTripsAllBytes) {
  for (int b = 0; b < 256; ++b) {
    EXPECT_EQ(byte_level::byte_of_code_point(byte_level::code_point_of_byte(static_cast<uint8_t>(b))), b);
  }
  EXPECT_EQ(byte_level::code_point_of_byte(' '), U'\u0120');
  EXPECT_EQ(byte_level::byte_of_code_point(0x144), -1);
  EXPECT_EQ(byte_level::byte_of_code_point(0x20), -1);  // a raw space is not in the alphabet
}

TEST(TokenizerBpe, LowestRankMergesFirst) {
  Vocab v = byte_vocab();
  const int32_t bc = v.merge("b", "c");
  const int32_t ab = v.merge("a", "b");
  Tokenizer t(v.data);
  // "b c" has rank 0, so it wins over "a b" even though "a b" is further left.
  EXPECT_EQ(t.encode("abc", false), (std::vector<int32_t>{'a', bc}));
  EXPECT_EQ(t.encode("ab", false), (std::vector<int32_t>{ab}));
}

TEST(TokenizerBpe, EqualRanksMergeLeftmostFirst) {
  Vocab v = byte_vocab();
  const int32_t aa = v.merge("a", "a");
  const int32_t aaaa = v.merge("aa", "aa");
  Tokenizer t(v.data);
  EXPECT_EQ(t.encode("aaa", false), (std::vector<int32_t>{aa, 'a'}));
  EXPECT_EQ(t.encode("aaaa", false), (std::vector<int32_t>{aaaa}));
  EXPECT_EQ(t.encode("aaaaa", false), (std::vector<int32_t>{aaaa, 'a'}));
}

TEST(TokenizerBpe, MergesChainAcrossRanks) {
  Vocab v = byte_vocab();
  v.merge("h", "e");
  v.merge("l", "l");
  const int32_t hell = v.merge("he", "ll");
  const int32_t hello = v.merge("hell", "o");
  const int32_t sp_w = v.merge(" ", "w");
  Tokenizer t(v.data);
  EXPECT_EQ(t.encode("hello", false), (std::vector<int32_t>{hello}));
  EXPECT_EQ(t.encode("hell", false), (std::vector<int32_t>{hell}));
  // Words are encoded separately: " w" merges, but "o" and " " never do.
  EXPECT_EQ(t.encode("hello wo", false), (std::vector<int32_t>{hello, sp_w, 'o'}));
}

TEST(TokenizerBpe, MultiByteCharactersAreBytes) {
  Vocab v = byte_vocab();
  const int32_t e_acute = v.merge("\xC3", "\xA9");  // é
  Tokenizer t(v.data);
  EXPECT_EQ(t.encode("\xC3\xA9t\xC3\xA9", false), (std::vector<int32_t>{e_acute, 't', e_acute}));
  EXPECT_EQ(t.encode("\xE2\x82\xAC", false), bytes_of("\xE2\x82\xAC"));  // € has no merges
  EXPECT_EQ(t.decode(t.encode("d\xC3\xA9j\xC3\xA0 vu", false)), "d\xC3\xA9j\xC3\xA0 vu");
}

TEST(TokenizerBpe, EmptyInput) {
  Tokenizer t(byte_vocab().data);
  EXPECT_TRUE(t.encode("", true).empty());
  EXPECT_EQ(t.decode({}), "");
}

TEST(TokenizerSpecial, ControlTokensOnlyWithParseSpecial) {
  Vocab v = byte_vocab();
  const int32_t start = v.add("<|im_start|>", TokenType::kControl);
  const int32_t end = v.add("<|im_end|>", TokenType::kControl);
  Tokenizer t(v.data);
  const std::string text = "<|im_start|>hi<|im_end|>";
  EXPECT_EQ(t.encode(text, true), (std::vector<int32_t>{start, 'h', 'i', end}));
  const auto plain = t.encode(text, false);
  EXPECT_EQ(t.decode(plain), text);
  EXPECT_EQ(plain.size(), text.size());  // only byte tokens: nothing merges in this vocabulary
  // Control tokens decode to nothing unless asked for.
  EXPECT_EQ(t.decode(t.encode(text, true)), "hi");
  EXPECT_EQ(t.decode(t.encode(text, true), /*render_special=*/true), text);
  EXPECT_EQ(t.token_bytes(start), "");
  EXPECT_EQ(t.token_bytes(start, true), "<|im_start|>");
  EXPECT_EQ(t.token_text(start), "<|im_start|>");
  EXPECT_TRUE(t.is_control(start));
  EXPECT_FALSE(t.is_control('a'));
}

TEST(TokenizerSpecial, UserDefinedTokensAlwaysMatchAndRender) {
  Vocab v = byte_vocab();
  const int32_t tool = v.add("<tool>", TokenType::kUserDefined);
  Tokenizer t(v.data);
  EXPECT_EQ(t.encode("a<tool>b", false), (std::vector<int32_t>{'a', tool, 'b'}));
  EXPECT_EQ(t.decode(t.encode("a<tool>b", false)), "a<tool>b");
}

TEST(TokenizerSpecial, LongestTokenIsSplitOutFirst) {
  Vocab v = byte_vocab();
  const int32_t shorter = v.add("<a>", TokenType::kControl);
  const int32_t longer = v.add("<a><b>", TokenType::kControl);
  Tokenizer t(v.data);
  EXPECT_EQ(t.encode("<a><b><a>", true), (std::vector<int32_t>{longer, shorter}));
}

TEST(TokenizerSpecial, TextAroundSpecialTokensIsPreTokenizedSeparately) {
  Vocab v = byte_vocab();
  const int32_t sp_h = v.merge(" ", "h");
  const int32_t start = v.add("<|im_start|>", TokenType::kControl);
  Tokenizer t(v.data);
  // " h" merges in plain text, but not across a special token boundary.
  EXPECT_EQ(t.encode(" h", true), (std::vector<int32_t>{sp_h}));
  EXPECT_EQ(t.encode(" <|im_start|>h", true), (std::vector<int32_t>{' ', start, 'h'}));
}

TEST(TokenizerSpecial, EndOfGenerationAndLookup) {
  Vocab v = byte_vocab();
  const int32_t eot = v.add("<|endoftext|>", TokenType::kControl);
  const int32_t end = v.add("<|im_end|>", TokenType::kControl);
  const int32_t other = v.add("<|other|>", TokenType::kControl);
  v.data.eos_id = other;
  Tokenizer t(v.data);
  EXPECT_TRUE(t.is_end_of_generation(eot));
  EXPECT_TRUE(t.is_end_of_generation(end));
  EXPECT_TRUE(t.is_end_of_generation(other));
  EXPECT_FALSE(t.is_end_of_generation('a'));
  EXPECT_EQ(t.find_token("<|im_end|>"), end);
  EXPECT_EQ(t.find_token("nope"), std::nullopt);
  EXPECT_EQ(t.eos_id(), other);
  EXPECT_EQ(t.vocab_size(), 259);
}

TEST(TokenizerUtf8, RejectsInvalidPromptsWithOffset) {
  Tokenizer t(byte_vocab().data);
  const auto expect_error = [&](std::string_view s, std::string_view offset) {
    try {
      t.encode(s, false);
      ADD_FAILURE() << "no error for " << testing::PrintToString(std::string(s));
    } catch (const Error& e) {
      EXPECT_EQ(std::string(e.what()), "prompt is not valid UTF-8 (byte offset " + std::string(offset) + ")");
    }
  };
  expect_error("ab\xFF", "2");
  expect_error("\x80", "0");
  expect_error("ok\xC3", "2");               // truncated
  expect_error("x\xC0\xAF", "1");            // overlong '/'
  expect_error("xy\xED\xA0\x80", "2");       // surrogate U+D800
  expect_error("\xF4\x90\x80\x80", "0");     // above U+10FFFF
  expect_error("\xE2\x82", "0");             // truncated €
  EXPECT_NO_THROW(t.encode("\xF0\x9F\x98\x80 \xE2\x82\xAC", false));
}

TEST(TokenizerUtf8, ScanAndSanitize) {
  EXPECT_EQ(utf8::sequence_length('a'), 1);
  EXPECT_EQ(utf8::sequence_length(0xC3), 2);
  EXPECT_EQ(utf8::sequence_length(0xE2), 3);
  EXPECT_EQ(utf8::sequence_length(0xF0), 4);
  EXPECT_EQ(utf8::sequence_length(0x80), 0);
  EXPECT_EQ(utf8::sequence_length(0xC1), 0);
  EXPECT_EQ(utf8::sequence_length(0xF5), 0);
  EXPECT_EQ(utf8::decode("a\xC3\xA9\xF0\x9F\x98\x80"), (std::vector<char32_t>{U'a', U'\u00E9', U'\U0001F600'}));
  EXPECT_EQ(utf8::sanitize("a\xFF" "b"), "a\xEF\xBF\xBD" "b");
  // A truncated sequence is one maximal subpart: one replacement character.
  EXPECT_EQ(utf8::sanitize("\xE2\x82" "b"), "\xEF\xBF\xBD" "b");
  std::string s;
  utf8::append(s, U'\U0001F600');
  EXPECT_EQ(s, "\xF0\x9F\x98\x80");
}

TEST(TokenizerUnicode, Categories) {
  EXPECT_EQ(char_category(U'a'), CharCategory::kLetter);
  EXPECT_EQ(char_category(U'\u00E9'), CharCategory::kLetter);
  EXPECT_EQ(char_category(U'\u4E2D'), CharCategory::kLetter);      // 中
  EXPECT_EQ(char_category(U'\U00031350'), CharCategory::kLetter);  // CJK Ext. H (Unicode 15)
  EXPECT_EQ(char_category(U'\U0002EBF0'), CharCategory::kLetter);  // CJK Ext. I (Unicode 15.1)
  EXPECT_EQ(char_category(U'7'), CharCategory::kNumber);
  EXPECT_EQ(char_category(U'\u00B2'), CharCategory::kNumber);      // ²
  EXPECT_EQ(char_category(U'\u0663'), CharCategory::kNumber);      // Arabic-Indic 3
  EXPECT_EQ(char_category(U'\u0301'), CharCategory::kMark);
  EXPECT_EQ(char_category(U'!'), CharCategory::kPunctuation);
  EXPECT_EQ(char_category(U'$'), CharCategory::kSymbol);
  EXPECT_EQ(char_category(U'\U0001F600'), CharCategory::kSymbol);
  EXPECT_EQ(char_category(U'\u200D'), CharCategory::kOther);       // ZWJ (Cf)
  EXPECT_EQ(char_category(U'\u0378'), CharCategory::kUnassigned);
  EXPECT_EQ(char_category(0x10FFFF), CharCategory::kUnassigned);
  EXPECT_TRUE(is_unicode_whitespace(U'\u3000'));
  EXPECT_TRUE(is_unicode_whitespace(U'\u0085'));
  EXPECT_FALSE(is_unicode_whitespace(U'\u200B'));  // zero-width space is not White_Space
  EXPECT_FALSE(is_unicode_whitespace(0x1C));       // though Python's isspace() says so
}

std::vector<std::string> split(PreTokenizerKind kind, std::string_view s) {
  std::vector<std::string> out;
  for (const auto w : pre_tokenize(kind, s)) out.emplace_back(w);
  return out;
}
using Words = std::vector<std::string>;

TEST(TokenizerPreSplit, SmollmSplits) {
  const auto k = PreTokenizerKind::kSmollm;
  EXPECT_EQ(split(k, "Hello world"), (Words{"Hello", " world"}));
  EXPECT_EQ(split(k, "abc123"), (Words{"abc", "1", "2", "3"}));
  EXPECT_EQ(split(k, "x 12"), (Words{"x", " ", "1", "2"}));  // digits never take the space
  EXPECT_EQ(split(k, "I'm we'll they're"), (Words{"I", "'m", " we", "'ll", " they", "'re"}));
  EXPECT_EQ(split(k, "I'M"), (Words{"I", "'", "M"}));  // contractions are lowercase only
  EXPECT_EQ(split(k, "a  b"), (Words{"a", " ", " b"}));
  EXPECT_EQ(split(k, "a \n\n b"), (Words{"a", " \n\n", " b"}));
  EXPECT_EQ(split(k, "end  "), (Words{"end", "  "}));  // trailing spaces stay together
  EXPECT_EQ(split(k, "  "), (Words{"  "}));
  EXPECT_EQ(split(k, "...!? ok"), (Words{"...!?", " ok"}));
  EXPECT_EQ(split(k, " (x)"), (Words{" (", "x", ")"}));
  EXPECT_EQ(split(k, "caf\xC3\xA9 \xE4\xB8\xAD\xE6\x96\x87"), (Words{"caf\xC3\xA9", " \xE4\xB8\xAD\xE6\x96\x87"}));
  EXPECT_EQ(split(k, "x\xC2\xB2"), (Words{"x", "\xC2\xB2"}));  // ² is \p{N}
  EXPECT_EQ(split(k, "\tx"), (Words{"\t", "x"}));  // only ' ' prefixes a word
  EXPECT_TRUE(split(k, "").empty());
}

TEST(TokenizerPreSplit, Gpt2KeepsNumberRuns) {
  const auto k = PreTokenizerKind::kGpt2;
  EXPECT_EQ(split(k, "abc 12345"), (Words{"abc", " 12345"}));
  EXPECT_EQ(split(k, "x's"), (Words{"x", "'s"}));
}

TEST(TokenizerPreSplit, DefaultIsolatesPunctuationAndDigitTriples) {
  const auto k = PreTokenizerKind::kDefault;
  EXPECT_EQ(split(k, "a+b"), (Words{"a", "+", "b"}));
  EXPECT_EQ(split(k, "1234567"), (Words{"123", "456", "7"}));
}

TEST(TokenizerPreSplit, Names) {
  EXPECT_EQ(pre_tokenizer_from_name("smollm"), PreTokenizerKind::kSmollm);
  EXPECT_EQ(pre_tokenizer_from_name("gpt2"), PreTokenizerKind::kGpt2);
  EXPECT_EQ(pre_tokenizer_from_name(""), PreTokenizerKind::kDefault);
  EXPECT_EQ(pre_tokenizer_from_name("llama-bpe"), std::nullopt);
}

TEST(TokenizerValidation, RejectsBadData) {
  const auto message = [](const TokenizerData& d) {
    try {
      Tokenizer t(d);
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  Vocab v = byte_vocab();
  TokenizerData d = v.data;
  d.model = "llama";
  EXPECT_EQ(message(d), "unsupported tokenizer model 'llama' (only gpt2 byte-level BPE is implemented)");
  d = v.data;
  d.pre = "qwen2";
  EXPECT_NE(message(d).find("unsupported pre-tokenizer 'qwen2'"), std::string::npos);
  d = v.data;
  d.token_types.pop_back();
  EXPECT_EQ(message(d), "tokenizer has 256 tokens but 255 token types");
  d = v.data;
  d.eos_id = 256;
  EXPECT_EQ(message(d), "eos token id 256 is out of range (vocabulary has 256 tokens)");
  d = v.data;
  d.tokens.clear();
  d.token_types.clear();
  EXPECT_EQ(message(d), "tokenizer vocabulary is empty");
  d = v.data;
  d.token_types[3] = 9;
  EXPECT_EQ(message(d), "token 3 has unknown token type 9");
  Tokenizer t(v.data);
  EXPECT_THROW(t.decode(std::vector<int32_t>{256}), Error);
  EXPECT_THROW(t.token_text(-1), Error);
}

TEST(StreamingDecoder, HoldsBackSplitCharacters) {
  Tokenizer t(byte_vocab().data);
  StreamingDecoder dec(t);
  // "é€😀" fed one byte token at a time: characters appear only when complete.
  const std::string text = "\xC3\xA9\xE2\x82\xAC\xF0\x9F\x98\x80!";
  std::vector<std::string> outs;
  for (const int32_t id : bytes_of(text)) outs.push_back(dec.push(id));
  EXPECT_EQ(outs, (std::vector<std::string>{"", "\xC3\xA9", "", "", "\xE2\x82\xAC", "", "", "", "\xF0\x9F\x98\x80", "!"}));
  EXPECT_EQ(dec.flush(), "");
}

TEST(StreamingDecoder, ReplacesInvalidBytes) {
  Tokenizer t(byte_vocab().data);
  StreamingDecoder dec(t);
  EXPECT_EQ(dec.push(0xFF), "\xEF\xBF\xBD");
  EXPECT_EQ(dec.push(0xE2), "");
  EXPECT_EQ(dec.pending(), 1u);
  EXPECT_EQ(dec.push('a'), "\xEF\xBF\xBD" "a");  // the broken sequence ends at 'a'
  EXPECT_EQ(dec.push(0xF0), "");
  EXPECT_EQ(dec.push(0x9F), "");
  EXPECT_EQ(dec.flush(), "\xEF\xBF\xBD");  // incomplete tail at the end
  EXPECT_EQ(dec.pending(), 0u);
  EXPECT_EQ(dec.flush(), "");
}

TEST(StreamingDecoder, MatchesDecodeOnMergedTokens) {
  Vocab v = byte_vocab();
  v.merge("\xF0", "\x9F");
  v.merge("\x98", "\x80");
  v.add("<|im_end|>", TokenType::kControl);
  Tokenizer t(v.data);
  const std::string text = "a\xF0\x9F\x98\x80<|im_end|>b";
  const auto ids = t.encode(text, true);
  StreamingDecoder dec(t);
  std::string streamed;
  for (const int32_t id : ids) streamed += dec.push(id);
  streamed += dec.flush();
  EXPECT_EQ(streamed, t.decode(ids));
  EXPECT_EQ(streamed, "a\xF0\x9F\x98\x80" "b");
}

const char* kSmolTemplate =
    "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}"
    "{{ '<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face"
    "<|im_end|>\n' }}{% endif %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + "
    "'<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}"
    "{% endif %}";

TEST(ChatTemplate, SmolLmInsertsDefaultSystemPrompt) {
  const std::vector<ChatMessage> msgs = {{"user", "Hi!"}};
  EXPECT_EQ(apply_chat_template(kSmolTemplate, msgs, true),
            "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n"
            "<|im_start|>user\nHi!<|im_end|>\n<|im_start|>assistant\n");
  EXPECT_EQ(chatml_default_system_prompt(kSmolTemplate),
            "You are a helpful AI assistant named SmolLM, trained by Hugging Face");
}

TEST(ChatTemplate, ExplicitSystemAndNoGenerationPrompt) {
  const std::vector<ChatMessage> msgs = {{"system", "Be brief."}, {"user", "2+2?"}, {"assistant", "4"}};
  EXPECT_EQ(apply_chat_template(kSmolTemplate, msgs, false),
            "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\n2+2?<|im_end|>\n"
            "<|im_start|>assistant\n4<|im_end|>\n");
  EXPECT_EQ(apply_chat_template(kSmolTemplate, {}, false), "");
  EXPECT_EQ(apply_chat_template(kSmolTemplate, {}, true), "<|im_start|>assistant\n");
}

TEST(ChatTemplate, PlainChatMlHasNoDefaultSystem) {
  const char* plain =
      "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + "
      "'<|im_end|>' + '\\n'}}{% endfor %}";
  EXPECT_EQ(chatml_default_system_prompt(plain), std::nullopt);
  const std::vector<ChatMessage> msgs = {{"user", "x"}};
  EXPECT_EQ(apply_chat_template(plain, msgs, false), "<|im_start|>user\nx<|im_end|>\n");
  // Escaped newlines in the literal are understood too.
  EXPECT_EQ(chatml_default_system_prompt("'<|im_start|>system\\nBe nice.<|im_end|>\\n'"), "Be nice.");
}

TEST(ChatTemplate, RejectsOtherTemplates) {
  const std::vector<ChatMessage> msgs = {{"user", "x"}};
  try {
    apply_chat_template("{{ bos_token }}[INST] {{ message['content'] }} [/INST]", msgs, true);
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()), "unsupported chat template (only ChatML is implemented)");
  }
}

}  // namespace
}  // namespace kvbits
