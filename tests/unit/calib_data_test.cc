// Calibration data for `kvbits train` (train/calib_data.h): formats, refusals before any work
// (no files, missing, empty, test splits, no usable text), and sequence packing.
#include <gtest/gtest.h>

#include <fstream>

#include "gguf_test_util.h"
#include "io/gguf.h"
#include "model/synthetic_model.h"
#include "tokenizer/tokenizer_data.h"
#include "train/calib_data.h"
#include "util/error.h"

namespace kvbits {
namespace {

void write_text(const std::string& path, const std::string& text) {
  std::ofstream out(path);
  out << text;
}

void expect_error(const std::vector<std::filesystem::path>& files, const std::string& needle) {
  try {
    train::load_calibration(files);
    FAIL() << "no error for " << needle;
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
  }
}

TEST(CalibData, FormatsAndRefusals) {
  testing::TempDir dir;
  const std::string arc = dir.file("arc_easy_train.jsonl");
  write_text(arc,
             R"({"id": "q1", "question": {"stem": "What is 2+2?", "choices": [{"text": "3", "label": "A"}, {"text": "4", "label": "B"}]}, "answerKey": "B"})"
             "\n"
             R"({"id": "q2", "question": {"stem": "Sky colour?", "choices": [{"text": "blue", "label": "A"}, {"text": "green", "label": "B"}]}, "answerKey": "A"})"
             "\n");
  const std::string mc = dir.file("mine_dev.jsonl");
  write_text(mc, R"({"query": "Fire is", "choices": ["cold", "hot"], "gold": 1})" "\n");
  const std::string txt = dir.file("notes.txt");
  write_text(txt, "first line\n\n  \nsecond line\n");
  const train::CalibItems items = train::load_calibration({arc, mc, txt});
  ASSERT_EQ(items.texts.size(), 5u);
  EXPECT_EQ(items.texts[0], "Question: What is 2+2?\nAnswer: 4");
  EXPECT_EQ(items.texts[1], "Question: Sky colour?\nAnswer: blue");
  EXPECT_EQ(items.texts[2], "Fire is hot");
  EXPECT_EQ(items.texts[3], "first line");
  EXPECT_EQ(items.texts[4], "second line");
  ASSERT_EQ(items.sources.size(), 3u);

  expect_error({}, "at least one");
  expect_error({dir.file("nope.jsonl")}, "not found");
  write_text(dir.file("empty.txt"), "");
  expect_error({dir.file("empty.txt")}, "no usable calibration text");
  write_text(dir.file("blank.txt"), "\n  \n\t\n");
  expect_error({dir.file("blank.txt")}, "no usable calibration text");
  write_text(dir.file("other.jsonl"), R"({"text": "hello"})" "\n");
  expect_error({dir.file("other.jsonl")}, "no usable calibration text");
  write_text(dir.file("arc_easy_test.jsonl"), "x\n");
  expect_error({dir.file("arc_easy_test.jsonl")}, "evaluation split");
  write_text(dir.file("hellaswag_val_full.txt"), "x\n");
  expect_error({dir.file("hellaswag_val_full.txt")}, "evaluation split");
  // A bad file anywhere in the list fails the whole call.
  expect_error({arc, dir.file("empty.txt")}, "empty.txt");
}

TEST(CalibData, PacksWholeItemsIntoSequences) {
  testing::TempDir dir;
  const std::string path = dir.file("tiny.gguf");
  write_synthetic_model(SyntheticModelOptions{}, path);
  const GgufFile file = GgufFile::open(path);
  const Tokenizer tok(tokenizer_data_from_gguf(file));
  std::vector<std::string> texts;
  for (int i = 0; i < 40; ++i) texts.push_back("item number " + std::to_string(i) + " says hello world");
  train::PackOptions o;
  o.target_tokens = 40;
  o.max_tokens = 60;
  o.min_tokens = 10;
  const auto seqs = train::pack_sequences(tok, texts, o);
  ASSERT_GT(seqs.size(), 3u);
  for (const auto& s : seqs) {
    EXPECT_LE(static_cast<int64_t>(s.size()), o.max_tokens);
    EXPECT_GE(static_cast<int64_t>(s.size()), o.min_tokens);
  }
  EXPECT_EQ(train::pack_sequences(tok, texts, o), seqs) << "deterministic";
}

}  // namespace
}  // namespace kvbits
