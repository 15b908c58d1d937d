#include "eval/result_file.h"

#include <gtest/gtest.h>

#include <sys/stat.h>

#include "eval_test_util.h"

namespace kvbits::eval {
namespace {
using nlohmann::json;
using testing::error_of;
using testing::TempDir;
using testing::write_file;

RunResult mc_result() {
  RunResult r;
  r.timestamp = "2025-01-02T03:04:05Z";
  r.model_path = "models/m.gguf";
  r.model_sha256 = std::string(64, 'a');
  r.policy.name = "kivi@2";
  r.policy.budget_bits = 2.0;
  r.policy.params = {{"bits", 2}, {"group", 32}, {"residual", 0}};
  r.task = "arc_easy";
  r.data_file = "/data/arc_easy_test.jsonl";
  r.shard = {2, 3};
  r.limit = 7;
  r.n_total = 7;
  r.kv = {2.5, 1000, 1200, 400};
  r.decode_ms_per_token = 11.5;
  r.wall_seconds = 3.25;
  r.items = {{1, 0, {-1.5, -2.25}, {3, 4}}, {4, 0, {-3, -2, -1}, {1, 2, 3}}};
  return r;
}

TEST(EvalResultFile, RoundTripMultipleChoice) {
  const RunResult r = mc_result();
  const json doc = json::parse(serialize(r));
  EXPECT_EQ(doc["format"], "kvbits-eval-result");
  EXPECT_EQ(doc["kvbits"]["version"], r.kvbits_version);
  EXPECT_EQ(doc["policy"]["family"], "kivi");
  EXPECT_EQ(doc["n"], 2);
  EXPECT_DOUBLE_EQ(doc["metrics"]["acc"].get<double>(), 0.5);
  EXPECT_DOUBLE_EQ(doc["metrics"]["acc_norm"].get<double>(), 0.5);
  EXPECT_DOUBLE_EQ(doc["metrics"]["acc_stderr"].get<double>(), 0.5 / std::sqrt(2.0));
  EXPECT_EQ(doc["items"][1]["len"], json::array({1, 2, 3}));
  const RunResult back = from_json(doc, "x.json");
  EXPECT_EQ(back.policy.params, r.policy.params);
  EXPECT_EQ(back.policy.budget_bits, 2.0);
  EXPECT_EQ(back.shard, r.shard);
  EXPECT_EQ(back.kv.kv_bytes_allocated, 1200u);
  EXPECT_EQ(back.decode_ms_per_token, 11.5);
  ASSERT_EQ(back.items.size(), 2u);
  EXPECT_EQ(back.items[1].ll, r.items[1].ll);
  EXPECT_EQ(back.items[1].length, r.items[1].length);
  EXPECT_EQ(serialize(back), serialize(r));
}

TEST(EvalResultFile, RoundTripPerplexityAndNulls) {
  RunResult r = mc_result();
  r.kind = TaskKind::kPerplexity;
  r.task = "wikitext2";
  r.items.clear();
  r.windows = {{1, 1000.5, 512, 2100}, {4, 900.25, 512, 2000}};
  r.decode_ms_per_token.reset();
  r.policy.budget_bits.reset();
  const json doc = to_json(r);
  EXPECT_TRUE(doc["decode_ms_per_token"].is_null());
  EXPECT_TRUE(doc["policy"]["budget_bits"].is_null());
  EXPECT_EQ(doc["metrics"]["tokens"], 1024);
  EXPECT_FALSE(doc.contains("items"));
  const RunResult back = from_json(doc, "p.json");
  EXPECT_FALSE(back.decode_ms_per_token);
  ASSERT_EQ(back.windows.size(), 2u);
  EXPECT_EQ(back.windows[0].nll, 1000.5);
}

TEST(EvalResultFile, InterruptedWithNoItems) {
  RunResult r = mc_result();
  r.items.clear();
  r.complete = false;
  const json doc = to_json(r);
  EXPECT_TRUE(doc["metrics"].is_null());
  EXPECT_EQ(from_json(doc, "x").n(), 0);
  r.complete = true;
  EXPECT_EQ(error_of([&] { from_json(to_json(r), "x.json"); }), "x.json: field 'items' is empty in a complete result");
}

// Each malformation gives one line naming the file and the field.
TEST(EvalResultFile, ValidationErrors) {
  const json good = to_json(mc_result());
  const auto err = [&](const std::function<void(json&)>& edit) {
    json doc = good;
    edit(doc);
    return error_of([&] { from_json(doc, "r.json"); });
  };
  EXPECT_EQ(err([](json& d) { d["policy"].erase("name"); }), "r.json: field 'policy.name' missing");
  EXPECT_EQ(err([](json& d) { d.erase("kv"); }), "r.json: field 'kv' missing");
  EXPECT_EQ(err([](json& d) { d["n_total"] = "7"; }), "r.json: field 'n_total' is not an integer");
  EXPECT_EQ(err([](json& d) { d["complete"] = 1; }), "r.json: field 'complete' is not true or false");
  EXPECT_EQ(err([](json& d) { d["policy"]["params"] = 3; }), "r.json: field 'policy.params' is not an object");
  EXPECT_EQ(err([](json& d) { d["task"]["kind"] = "x"; }),
            "r.json: field 'task.kind' is wrong: unknown task kind 'x' (multiple_choice, perplexity)");
  EXPECT_EQ(err([](json& d) { d["shard"]["index"] = 4; }), "r.json: field 'shard.index' is above shard.count");
  EXPECT_EQ(err([](json& d) { d["n"] = 3; }), "r.json: field 'n' is 3 but there are 2 records");
  EXPECT_EQ(err([](json& d) { d["items"][0]["ll"] = json::array({-1, "x"}); }), "r.json: field 'items[0].ll' holds a non-number");
  EXPECT_EQ(err([](json& d) { d["items"][0].erase("gold"); }), "r.json: field 'items[0].gold' missing");
  EXPECT_EQ(err([](json& d) { d["items"][1]["index"] = 1; }), "r.json: record with index 1 appears twice");
  EXPECT_EQ(err([](json& d) { d["items"][1]["index"] = 5; }), "r.json: record with index 5 does not belong to shard 2/3");
  EXPECT_EQ(err([](json& d) { d["items"][1]["index"] = 7; }), "r.json: record with index 7 is not below n_total 7");
  EXPECT_EQ(err([](json& d) { d["items"][1]["gold"] = 3; }), "r.json: item 4: gold 3 out of range");
  EXPECT_EQ(err([](json& d) { d.erase("format"); }), "r.json: not a kvbits result file (field 'format' is not \"kvbits-eval-result\")");
  EXPECT_EQ(err([](json& d) { d["format_version"] = 2; }), "r.json: format_version 2 is newer than this kvbits reads (1)");
  EXPECT_EQ(err([](json& d) { d = json::array(); }), "r.json: the document is not an object");
}

TEST(EvalResultFile, ReadErrorsNameTheFile) {
  TempDir dir;
  const auto bad = write_file(dir / "bad.json", "{\"format\": ");
  EXPECT_EQ(error_of([&] { read_result(bad); }).rfind(bad.string() + ": invalid JSON: ", 0), 0u);
  EXPECT_EQ(error_of([&] { read_result(dir / "none.json"); }), (dir / "none.json").string() + ": cannot open (No such file or directory)");
  EXPECT_EQ(error_of([&] { read_result(dir.path()); }), dir.path().string() + ": is a directory, expected a result file");
}

TEST(EvalResultFile, WriterChecksThePathFirstAndReplacesAtomically) {
  TempDir dir;
  const auto out = dir / "r.json";
  {
    ResultWriter w(out);
    EXPECT_TRUE(std::filesystem::exists(dir / "r.json.partial"));  // reserved before the run
    EXPECT_FALSE(std::filesystem::exists(out));
    RunResult r = mc_result();
    r.timestamp.clear();
    w.write(r);
    EXPECT_FALSE(std::filesystem::exists(dir / "r.json.partial"));
    const RunResult back = read_result(out);
    EXPECT_EQ(back.timestamp.size(), 20u);  // filled in: YYYY-MM-DDTHH:MM:SSZ
    r.complete = false;                     // e.g. after Ctrl-C: write again
    w.write(r);
    EXPECT_FALSE(read_result(out).complete);
  }
  {
    ResultWriter unused(dir / "never.json");
  }
  EXPECT_FALSE(std::filesystem::exists(dir / "never.json.partial"));  // cleaned up
  EXPECT_FALSE(std::filesystem::exists(dir / "never.json"));

  const auto no_dir = dir / "missing" / "r.json";
  EXPECT_EQ(error_of([&] { ResultWriter w(no_dir); }),
            no_dir.string() + ": cannot write the result file (" + no_dir.string() + ".partial: No such file or directory)");
  EXPECT_EQ(error_of([&] { ResultWriter w(dir.path()); }),
            dir.path().string() + ": is a directory, cannot write the result file there");
  if (::geteuid() != 0) {  // root ignores permissions
    const auto ro = dir / "ro";
    std::filesystem::create_directory(ro);
    ::chmod(ro.c_str(), 0555);
    EXPECT_THROW(ResultWriter w(ro / "r.json"), Error);
    ::chmod(ro.c_str(), 0755);
  }
}

TEST(EvalResultFile, PolicyFamily) {
  PolicyInfo p;
  p.name = "learned@2.5";
  EXPECT_EQ(policy_family(p), "learned");
  p.family = "learned-v2";
  EXPECT_EQ(policy_family(p), "learned-v2");
  p = PolicyInfo{};
  p.name = "fp16";
  EXPECT_EQ(policy_family(p), "fp16");
}

}  // namespace
}  // namespace kvbits::eval
