// The tokenizer of the real SmolLM2 model against golden outputs of llama.cpp
// (tests/fixtures/tokenizer_cases.json, made by scripts/fixtures/make_tokenizer_fixtures.py):
// identical ids, identical decoded text, lossless round trips, and ChatML rendering identical to
// what jinja2 renders from the model's own template.
#include <gtest/gtest.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "io/gguf.h"
#include "tokenizer/chat_template.h"
#include "tokenizer/streaming_decoder.h"
#include "tokenizer/tokenizer.h"
#include "util/error.h"

namespace kvbits {
namespace {

using nlohmann::json;

std::string model_path() {
  const char* env = std::getenv("KVBITS_MODEL");
  return env && *env ? env : KVBITS_DEFAULT_MODEL;
}

json load_fixtures() {
  std::ifstream in(KVBITS_FIXTURE_DIR "/tokenizer_cases.json");
  if (!in) throw Error("cannot open " KVBITS_FIXTURE_DIR "/tokenizer_cases.json");
  return json::parse(in);
}

std::string from_hex(const std::string& hex) {
  std::string out;
  for (size_t i = 0; i + 1 < hex.size(); i += 2) out.push_back(static_cast<char>(std::stoi(hex.substr(i, 2), nullptr, 16)));
  return out;
}

class TokenizerFixture : public testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (!std::filesystem::exists(model_path())) return;
    GgufFile file = GgufFile::open(model_path());
    tokenizer_ = std::make_unique<Tokenizer>(tokenizer_data_from_gguf(file));
    fixtures_ = std::make_unique<json>(load_fixtures());
  }
  static void TearDownTestSuite() {
    tokenizer_.reset();
    fixtures_.reset();
  }
  void SetUp() override {
    if (!tokenizer_) GTEST_SKIP() << "model not found: " << model_path() << " (set KVBITS_MODEL)";
  }
  static std::unique_ptr<Tokenizer> tokenizer_;
  static std::unique_ptr<json> fixtures_;
};
std::unique_ptr<Tokenizer> TokenizerFixture::tokenizer_;
std::unique_ptr<json> TokenizerFixture::fixtures_;

TEST_F(TokenizerFixture, Metadata) {
  const Tokenizer& t = *tokenizer_;
  EXPECT_EQ(t.vocab_size(), 49152);
  EXPECT_EQ(t.bos_id(), 1);
  EXPECT_EQ(t.eos_id(), 2);
  EXPECT_FALSE(t.add_bos());
  EXPECT_EQ(t.find_token("<|im_start|>"), 1);
  EXPECT_EQ(t.find_token("<|im_end|>"), 2);
  EXPECT_TRUE(t.is_end_of_generation(0));  // <|endoftext|>
  EXPECT_TRUE(t.is_end_of_generation(2));  // <|im_end|>
  EXPECT_FALSE(t.is_end_of_generation(1));
  EXPECT_TRUE(t.is_control(1));
  EXPECT_EQ(t.token_bytes(2), "");
  EXPECT_EQ(t.token_bytes(2, true), "<|im_end|>");
}

TEST_F(TokenizerFixture, IdsAndDecodeMatchLlamaCpp) {
  const Tokenizer& t = *tokenizer_;
  const json& cases = (*fixtures_)["cases"];
  ASSERT_GE(cases.size(), 40u);
  int identical = 0;
  for (const json& c : cases) {
    const std::string name = c["name"];
    const std::string text = c["text"];
    const bool parse_special = c["parse_special"];
    const auto expected = c["ids"].get<std::vector<int32_t>>();
    const auto ids = t.encode(text, parse_special);
    EXPECT_EQ(ids, expected) << "case " << name;
    EXPECT_EQ(t.decode(expected), c["decoded"].get<std::string>()) << "case " << name;
    EXPECT_EQ(t.decode(expected, true), c["decoded_special"].get<std::string>()) << "case " << name;
    // Lossless: plain text comes back exactly; special tokens come back when rendered.
    EXPECT_EQ(t.decode(ids, /*render_special=*/parse_special), text) << "case " << name;
    identical += ids == expected;
  }
  EXPECT_EQ(identical, static_cast<int>(cases.size()));
}

TEST_F(TokenizerFixture, StreamingMatchesDecode) {
  const Tokenizer& t = *tokenizer_;
  for (const json& c : (*fixtures_)["cases"]) {
    const auto ids = c["ids"].get<std::vector<int32_t>>();
    StreamingDecoder dec(t);
    std::string streamed;
    for (const int32_t id : ids) streamed += dec.push(id);
    streamed += dec.flush();
    EXPECT_EQ(streamed, c["decoded"].get<std::string>()) << "case " << c["name"];
  }
}

TEST_F(TokenizerFixture, InvalidUtf8IsRejected) {
  for (const json& c : (*fixtures_)["invalid_utf8"]) {
    const std::string bytes = from_hex(c["hex"]);
    const std::string expected = "prompt is not valid UTF-8 (byte offset " + std::to_string(c["offset"].get<int>()) + ")";
    try {
      tokenizer_->encode(bytes, false);
      ADD_FAILURE() << "no error for " << c["hex"];
    } catch (const Error& e) {
      EXPECT_EQ(std::string(e.what()), expected) << c["hex"];
    }
  }
}

TEST_F(TokenizerFixture, ChatTemplateMatchesJinja) {
  const std::string& tmpl = tokenizer_->chat_template();
  ASSERT_FALSE(tmpl.empty());
  for (const json& c : (*fixtures_)["chat"]) {
    std::vector<ChatMessage> messages;
    for (const json& m : c["messages"]) messages.push_back({m["role"], m["content"]});
    EXPECT_EQ(apply_chat_template(tmpl, messages, c["add_generation_prompt"]), c["expected"].get<std::string>())
        << c.dump();
  }
}

TEST_F(TokenizerFixture, EncodesLargeTextQuickly) {
  // ~100 KB of varied text built from the fixtures: must stay far below a second.
  std::string text;
  while (text.size() < 100000) {
    for (const json& c : (*fixtures_)["cases"]) {
      if (!c["parse_special"]) text += c["text"].get<std::string>() + "\n";
    }
  }
  const auto start = std::chrono::steady_clock::now();
  const auto ids = tokenizer_->encode(text, false);
  const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
  EXPECT_EQ(tokenizer_->decode(ids), text);
  EXPECT_LT(ms, 1000.0) << text.size() << " bytes took " << ms << " ms";
  RecordProperty("encode_ms", std::to_string(ms));
}

}  // namespace
}  // namespace kvbits
