#include "eval/loaders.h"

#include <gtest/gtest.h>

#include "eval_test_util.h"

namespace kvbits::eval {
namespace {
using testing::error_of;
using testing::TempDir;
using testing::write_file;

std::string hellaswag_item(const std::string& ctx, const std::string& gold) {
  return ctx + "\n" + gold + "\nend one.\nend two.\nend three.\nend four.\n";
}

TEST(EvalLoaders, HellaswagParsesSixLineItems) {
  TempDir dir;
  const auto f = write_file(dir / "h.txt", hellaswag_item("Cooking: a man cuts", "2") + hellaswag_item("Golf: she", "0"));
  const McData d = load_hellaswag(f);
  ASSERT_EQ(d.items.size(), 2u);
  EXPECT_EQ(d.items[0].context, "Cooking: a man cuts");
  EXPECT_EQ(d.items[0].gold, 2);
  EXPECT_EQ(d.items[0].line, 1);
  EXPECT_EQ(d.items[1].line, 7);
  EXPECT_EQ(d.items[1].id, "1");
  EXPECT_EQ(d.items[1].choices, (std::vector<std::string>{"end one.", "end two.", "end three.", "end four."}));
  EXPECT_TRUE(d.skipped.empty());
}

TEST(EvalLoaders, HellaswagCrlfAndNoFinalNewline) {
  TempDir dir;
  const auto f = write_file(dir / "h.txt", "ctx\r\n1\r\na\r\nb\r\nc\r\nd");
  const McData d = load_hellaswag(f);
  ASSERT_EQ(d.items.size(), 1u);
  EXPECT_EQ(d.items[0].context, "ctx");
  EXPECT_EQ(d.items[0].choices[3], "d");
}

TEST(EvalLoaders, HellaswagBadItemsNameFileAndLine) {
  TempDir dir;
  const std::string good = hellaswag_item("ctx", "1");
  const auto truncated = write_file(dir / "t.txt", good + "ctx\n3\nonly one ending\n");
  EXPECT_EQ(error_of([&] { load_hellaswag(truncated); }), truncated.string() + ":7: truncated item: 3 of 6 lines");
  const auto bad_gold = write_file(dir / "g.txt", good + hellaswag_item("ctx", "4"));
  EXPECT_EQ(error_of([&] { load_hellaswag(bad_gold); }),
            bad_gold.string() + ":7: gold label (line 2 of the item) is '4', expected 0-3");
  const auto empty_ending = write_file(dir / "e.txt", "ctx\n0\na\n\nc\nd\n");
  EXPECT_NE(error_of([&] { load_hellaswag(empty_ending); }).find(":1: ending 2 (line 4 of the item) is empty"),
            std::string::npos);
  const auto bad_utf8 = write_file(dir / "u.txt", good + hellaswag_item("ctx \xff", "1"));
  EXPECT_NE(error_of([&] { load_hellaswag(bad_utf8); }).find(":7: context (line 1 of the item) is not valid UTF-8"),
            std::string::npos);
}

TEST(EvalLoaders, SkipBadCountsAndDrops) {
  TempDir dir;
  const auto f = write_file(dir / "h.txt", hellaswag_item("a", "1") + hellaswag_item("b", "x") +
                                               hellaswag_item("c", "3") + "d\n0\n");
  const McData d = load_hellaswag(f, {.skip_bad = true});
  ASSERT_EQ(d.items.size(), 2u);
  EXPECT_EQ(d.items[1].context, "c");
  EXPECT_EQ(d.items[1].id, "2");  // ids stay positions in the file
  ASSERT_EQ(d.skipped.size(), 2u);
  EXPECT_EQ(d.skipped[0].rfind(f.string() + ":7: ", 0), 0u);
  EXPECT_EQ(d.skipped[1].rfind(f.string() + ":19: truncated", 0), 0u);
}

const char* kArcLine =
    R"({"id": "Q1", "question": {"stem": "Which is hot?", "choices": [{"text": "ice", "label": "A"}, )"
    R"({"text": "fire", "label": "B"}, {"text": "snow", "label": "C"}]}, "answerKey": "B"})";

TEST(EvalLoaders, ArcContextChoicesAndGold) {
  TempDir dir;
  const std::string digits =
      R"({"id": "Q2", "question": {"stem": "Pick", "choices": [{"text": "a", "label": "1"}, {"text": "b", "label": "2"}, )"
      R"({"text": "c", "label": "3"}, {"text": "d", "label": "4"}, {"text": "e", "label": "5"}]}, "answerKey": "5"})";
  const auto f = write_file(dir / "arc.jsonl", std::string(kArcLine) + "\n\n" + digits + "\n");
  const McData d = load_arc_jsonl(f);
  ASSERT_EQ(d.items.size(), 2u);
  EXPECT_EQ(d.items[0].id, "Q1");
  EXPECT_EQ(d.items[0].context, "Question: Which is hot?\nAnswer:");
  EXPECT_EQ(d.items[0].choices, (std::vector<std::string>{"ice", "fire", "snow"}));
  EXPECT_EQ(d.items[0].gold, 1);
  EXPECT_EQ(d.items[1].line, 3);  // the blank line is skipped but counted
  EXPECT_EQ(d.items[1].choices.size(), 5u);
  EXPECT_EQ(d.items[1].gold, 4);
}

TEST(EvalLoaders, ArcErrors) {
  TempDir dir;
  const auto check = [&](const std::string& line, const std::string& expected) {
    const auto f = write_file(dir / "arc.jsonl", std::string(kArcLine) + "\n" + line + "\n");
    EXPECT_EQ(error_of([&] { load_arc_jsonl(f); }), f.string() + ":2: " + expected) << line;
  };
  check(R"({"question": {"stem": "x", "choices": [{"text": "a", "label": "A"}, {"text": "b", "label": "B"}]}, "answerKey": "C"})",
        "answerKey 'C' is not among the choice labels (A, B)");
  check(R"({"question": {"choices": []}, "answerKey": "A"})", "missing field \"question.stem\"");
  check(R"({"question": {"stem": "x", "choices": [{"text": "a", "label": "A"}]}, "answerKey": "A"})",
        "1 choice(s), need at least 2");
  check(R"({"question": {"stem": "x", "choices": [{"text": "a", "label": "A"}, {"text": "b", "label": "A"}]}, "answerKey": "A"})",
        "choice label 'A' appears twice");
  check(R"({"question": {"stem": "", "choices": []}, "answerKey": "A"})", "field \"question.stem\" is empty");
  check("[1, 2]", "expected a JSON object");
  EXPECT_NE(error_of([&] {
              load_arc_jsonl(write_file(dir / "bad.jsonl", "{\"question\": \n"));
            }).find("bad.jsonl:1: invalid JSON: "),
            std::string::npos);
  const std::string bad_utf8 = error_of([&] {
    load_arc_jsonl(write_file(dir / "u.jsonl", "{\"question\": {\"stem\": \"\xc3\x28\"}}\n"));
  });
  EXPECT_NE(bad_utf8.find("u.jsonl:1: invalid JSON"), std::string::npos) << bad_utf8;
  EXPECT_NE(bad_utf8.find("UTF-8"), std::string::npos) << bad_utf8;
}

TEST(EvalLoaders, GenericJsonl) {
  TempDir dir;
  const auto f = write_file(dir / "mc.jsonl", R"({"query": "Predators eat", "choices": ["lions", "bunnies"], "gold": 1})"
                                              "\r\n" R"({"id": 7, "query": "q", "choices": ["x", "y", "z"], "gold": 0})");
  const McData d = load_mc_jsonl(f);
  ASSERT_EQ(d.items.size(), 2u);
  EXPECT_EQ(d.items[0].context, "Predators eat");
  EXPECT_EQ(d.items[0].id, "1");  // no id: the line number
  EXPECT_EQ(d.items[0].gold, 1);
  EXPECT_EQ(d.items[1].id, "7");
  const auto check = [&](const std::string& line, const std::string& expected) {
    const auto g = write_file(dir / "g.jsonl", line + "\n");
    EXPECT_EQ(error_of([&] { load_mc_jsonl(g); }), g.string() + ":1: " + expected) << line;
  };
  check(R"({"query": "q", "choices": ["a", "b"], "gold": 2})", "gold 2 is out of range for 2 choices");
  check(R"({"query": "q", "choices": ["a", "b"], "gold": -1})", "gold -1 is out of range for 2 choices");
  check(R"({"query": "q", "choices": ["a", "b"], "gold": "1"})", "field \"gold\" is not an integer");
  check(R"({"query": "q", "choices": ["a"], "gold": 0})", "1 choice(s), need at least 2");
  check(R"({"query": "q", "choices": ["a", " "], "gold": 0})", "field \"choices[1]\" is empty");
  check(R"({"choices": ["a", "b"], "gold": 0})", "missing field \"query\"");
  check(R"({"query": "q", "choices": "ab", "gold": 0})", "field \"choices\" is not an array");
}

TEST(EvalLoaders, FileLevelErrors) {
  TempDir dir;
  const auto missing = dir / "nope.jsonl";
  EXPECT_EQ(error_of([&] { load_mc_jsonl(missing); }), missing.string() + ": cannot open (No such file or directory)");
  EXPECT_EQ(error_of([&] { load_mc_jsonl(dir.path()); }), dir.path().string() + ": is a directory, expected a data file");
  const auto empty = write_file(dir / "empty.jsonl", "\n\n");
  EXPECT_EQ(error_of([&] { load_mc_jsonl(empty); }), empty.string() + ": no items");
  const auto all_bad = write_file(dir / "bad.jsonl", "x\ny\n");
  EXPECT_EQ(error_of([&] { load_mc_jsonl(all_bad, {.skip_bad = true}); }), all_bad.string() + ": no items (all 2 were malformed)");
  EXPECT_EQ(error_of([&] { load_hellaswag(write_file(dir / "h.txt", "")); }), (dir / "h.txt").string() + ": no items");
}

TEST(EvalLoaders, Text) {
  TempDir dir;
  EXPECT_EQ(load_text(write_file(dir / "w.raw", " = Title = \nSome text .\n")), " = Title = \nSome text .\n");
  const auto bad = write_file(dir / "b.raw", "line one\nline two\nthree \xe2\x82\n");
  EXPECT_EQ(error_of([&] { load_text(bad); }), bad.string() + ":3: not valid UTF-8 (byte offset 24)");
  const auto blank = write_file(dir / "e.raw", "\n \n");
  EXPECT_EQ(error_of([&] { load_text(blank); }), blank.string() + ": empty text");
}

}  // namespace
}  // namespace kvbits::eval
