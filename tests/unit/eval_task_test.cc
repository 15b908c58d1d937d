#include "eval/task.h"

#include <gtest/gtest.h>

#include "eval_test_util.h"

namespace kvbits::eval {
namespace {
using testing::error_of;
using testing::TempDir;
using testing::write_file;

TEST(EvalTask, DataDirPrecedence) {
  EXPECT_EQ(resolve_data_dir("/flag", "/env", "/root").path, "/flag");
  EXPECT_EQ(resolve_data_dir("/flag", "/env", "/root").origin, "--data");
  EXPECT_EQ(resolve_data_dir("", "/env", "/root").path, "/env");
  EXPECT_EQ(resolve_data_dir("", "/env", "/root").origin, "KVBITS_DATA");
  EXPECT_EQ(resolve_data_dir("", "", "/root").path, "/root/../shared/data");
  EXPECT_EQ(resolve_data_dir("", nullptr, "/root").origin, "default ../shared/data");
}

TEST(EvalTask, NamesAndFiles) {
  TempDir dir;
  for (const char* f : {"hellaswag_val_full.txt", "arc_easy_test.jsonl", "arc_easy_dev.jsonl", "arc_challenge_train.jsonl",
                        "openbookqa_test.jsonl", "wikitext2_test.raw", "mine.jsonl"}) {
    write_file(dir / f, "x");
  }
  const DataDir dd{dir.path(), "--data"};
  EXPECT_EQ(parse_task("hellaswag", dd).format, TaskFormat::kHellaswag);
  EXPECT_EQ(parse_task("arc_easy", dd).file, dir / "arc_easy_test.jsonl");
  EXPECT_EQ(parse_task("arc_easy:test", dd).name, "arc_easy");
  EXPECT_EQ(parse_task("arc_easy:dev", dd).name, "arc_easy:dev");
  EXPECT_EQ(parse_task("arc_easy:dev", dd).file, dir / "arc_easy_dev.jsonl");
  EXPECT_EQ(parse_task("arc_challenge:train", dd).format, TaskFormat::kArc);
  EXPECT_EQ(parse_task("openbookqa", dd).format, TaskFormat::kMcJsonl);
  EXPECT_EQ(parse_task("wikitext2", dd).kind, TaskKind::kPerplexity);
  const TaskSpec mc = parse_task("mc:" + (dir / "mine.jsonl").string(), dd);
  EXPECT_EQ(mc.name, "mc:mine.jsonl");
  EXPECT_EQ(mc.file, dir / "mine.jsonl");
  EXPECT_EQ(parse_task("mc:mine.jsonl", dd).file, dir / "mine.jsonl");  // relative: found in the data dir
  const TaskSpec text = parse_task("text:" + (dir / "wikitext2_test.raw").string(), dd);
  EXPECT_EQ(text.name, "text:wikitext2_test.raw");
  EXPECT_EQ(text.kind, TaskKind::kPerplexity);
  EXPECT_EQ(text.format, TaskFormat::kText);
  EXPECT_EQ(parse_task("text:mine.jsonl", dd).file, dir / "mine.jsonl");
}

TEST(EvalTask, Errors) {
  TempDir dir;
  const DataDir dd{dir.path(), "KVBITS_DATA"};
  EXPECT_EQ(error_of([&] { parse_task("hellaswagg", dd); }),
            "unknown task 'hellaswagg' (tasks: " + task_names_help() + ")");
  EXPECT_EQ(error_of([&] { parse_task("arc_easy:val", dd); }), "task 'arc_easy:val': unknown split 'val' (test, dev, train)");
  EXPECT_NE(error_of([&] { parse_task("openbookqa:dev", dd); }).find("unknown task"), std::string::npos);
  EXPECT_EQ(error_of([&] { parse_task("hellaswag", dd); }),
            "hellaswag: data file " + (dir / "hellaswag_val_full.txt").string() + " does not exist (data directory " +
                dir.path().string() + " from KVBITS_DATA)");
  EXPECT_EQ(error_of([&] { parse_task("mc:", dd); }), "task 'mc:': no file given (mc:FILE)");
  EXPECT_NE(error_of([&] { parse_task("mc:nothing.jsonl", dd); }).find("nothing.jsonl does not exist"), std::string::npos);
  EXPECT_EQ(error_of([&] { parse_task("text:", dd); }), "task 'text:': no file given (text:FILE)");
  EXPECT_NE(error_of([&] { parse_task("text:none.txt", dd); }).find("none.txt does not exist"), std::string::npos);
  EXPECT_NE(error_of([&] { parse_task("text:" + dir.path().string(), dd); }).find("is not a regular file"), std::string::npos);
  EXPECT_EQ(parse_task_kind("perplexity"), TaskKind::kPerplexity);
  EXPECT_THROW(parse_task_kind("regression"), Error);
}

TEST(EvalTask, LoadDispatch) {
  TempDir dir;
  write_file(dir / "openbookqa_test.jsonl", R"({"query": "q", "choices": ["a", "b"], "gold": 1})" "\nnot json\n");
  write_file(dir / "wikitext2_test.raw", "some text\n");
  const DataDir dd{dir.path(), "--data"};
  const TaskData obqa = load_task(parse_task("openbookqa", dd), {.skip_bad = true});
  EXPECT_EQ(obqa.items.size(), 1u);
  EXPECT_EQ(obqa.skipped.size(), 1u);
  EXPECT_EQ(load_task(parse_task("wikitext2", dd)).text, "some text\n");
  EXPECT_THROW(load_task(parse_task("openbookqa", dd)), Error);
}

// Every real task file of ../shared/data (or $KVBITS_DATA): item counts and a few spot checks.
TEST(EvalTask, RealSharedData) {
  const std::filesystem::path data = testing::shared_data_dir();
  if (!std::filesystem::exists(data / "hellaswag_val_full.txt")) GTEST_SKIP() << "no shared data at " << data;
  const DataDir dd{data, "test"};
  const auto load = [&](const char* name) { return load_task(parse_task(name, dd)); };

  const TaskData hs = load("hellaswag");
  ASSERT_EQ(hs.items.size(), 10042u);
  EXPECT_EQ(hs.items[0].context, "Roof shingle removal: A man is sitting on a roof. he");
  EXPECT_EQ(hs.items[0].gold, 3);
  EXPECT_EQ(hs.items[0].choices[3], "starts pulling up roofing on a roof.");
  EXPECT_EQ(hs.items.back().line, 60247);
  EXPECT_EQ(hs.items.back().gold, 2);

  const TaskData easy = load("arc_easy");
  ASSERT_EQ(easy.items.size(), 2376u);
  EXPECT_EQ(easy.items[0].id, "Mercury_417466");
  EXPECT_EQ(easy.items[0].context,
            "Question: Which statement best explains why photosynthesis is the foundation of most food webs?\nAnswer:");
  EXPECT_EQ(easy.items[0].choices[0], "Sunlight is the source of energy for nearly all ecosystems.");
  EXPECT_EQ(easy.items[0].gold, 0);
  size_t n3 = 0, n5 = 0;
  for (const McItem& it : easy.items) n3 += it.choices.size() == 3, n5 += it.choices.size() == 5;
  EXPECT_EQ(n3, 7u);
  EXPECT_EQ(n5, 4u);
  EXPECT_EQ(load("arc_easy:dev").items.size(), 570u);
  EXPECT_EQ(load("arc_easy:train").items.size(), 2251u);

  EXPECT_EQ(load("arc_challenge").items.size(), 1170u);
  EXPECT_EQ(load("arc_challenge:dev").items.size(), 299u);
  EXPECT_EQ(load("arc_challenge:train").items.size(), 1119u);

  const TaskData obqa = load("openbookqa");
  ASSERT_EQ(obqa.items.size(), 500u);
  EXPECT_EQ(obqa.items[2].context, "Predators eat");
  EXPECT_EQ(obqa.items[2].choices, (std::vector<std::string>{"lions", "humans", "bunnies", "grass"}));
  EXPECT_EQ(obqa.items[2].gold, 2);

  const TaskData wiki = load("wikitext2");
  EXPECT_EQ(wiki.text.size(), 1287656u);
  EXPECT_EQ(wiki.text.rfind(" = Robert Boulter = \n", 0), 0u);
}

}  // namespace
}  // namespace kvbits::eval
