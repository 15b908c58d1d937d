#include "eval/report.h"

#include <gtest/gtest.h>

#include <unistd.h>

#include "eval/plot.h"
#include "eval_test_util.h"

namespace kvbits::eval {
namespace {
using testing::error_of;
using testing::TempDir;

// A multiple-choice result of `policy` on a 6-item task; item i is answered right iff right(i).
RunResult mc(const std::string& policy, std::optional<double> budget, double bits, ShardSpec shard,
             const std::function<bool(int64_t)>& right) {
  RunResult r;
  r.timestamp = "2025-01-01T00:00:00Z";
  r.model_path = "models/m.gguf";
  r.model_sha256 = std::string(64, 'b');
  r.policy.name = policy;
  r.policy.budget_bits = budget;
  r.task = "arc_easy";
  r.shard = shard;
  r.n_total = 6;
  r.kv = {bits, 100, 120, 50};
  r.decode_ms_per_token = 10.0 + bits;
  for (int64_t i = shard.index - 1; i < 6; i += shard.count) {
    // gold 1; choice 1 wins both on the sum and per character iff right.
    r.items.push_back({i, 1, right(i) ? std::vector<double>{-5, -1, -6} : std::vector<double>{-1, -5, -6}, {1, 1, 1}});
  }
  return r;
}

std::filesystem::path save(const TempDir& dir, const std::string& name, const RunResult& r) {
  ResultWriter w(dir / name);
  w.write(r);
  return w.path();
}

std::string slurp(const std::filesystem::path& p) {
  std::ifstream f(p);
  return std::string(std::istreambuf_iterator<char>(f), {});
}

struct Fixture {
  TempDir dir;
  std::vector<std::filesystem::path> files;
  Fixture() {
    const auto all = [](int64_t) { return true; };
    files.push_back(save(dir, "fp16.json", mc("fp16", std::nullopt, 16.0, {1, 1}, all)));
    // kivi@2 in two shards: right on items 0, 1, 2 (1/2 holds 0, 2, 4; 2/2 holds 1, 3, 5).
    const auto first_half = [](int64_t i) { return i < 3; };
    files.push_back(save(dir, "kivi2_s1.json", mc("kivi@2", 2.0, 2.25, {1, 2}, first_half)));
    files.push_back(save(dir, "kivi2_s2.json", mc("kivi@2", 2.0, 2.75, {2, 2}, first_half)));
    // kivi@4: only shard 1/2.
    files.push_back(save(dir, "kivi4_s1.json", mc("kivi@4", 4.0, 4.5, {1, 2}, all)));
    RunResult ppl = mc("fp16", std::nullopt, 16.0, {1, 1}, all);
    ppl.task = "wikitext2";
    ppl.kind = TaskKind::kPerplexity;
    ppl.items.clear();
    ppl.n_total = 2;
    ppl.windows = {{0, 1024.0, 512, 2048}, {1, 1024.0, 512, 2048}};
    files.push_back(save(dir, "fp16_wiki.json", ppl));
  }
};

TEST(EvalReport, MergesShardsAndWritesTablesAndPictures) {
  Fixture fx;
  ReportOptions options;
  options.out_dir = fx.dir / "out";
  options.pair = parse_pair("fp16,kivi@2");
  const ReportOutput out = run_report(fx.files, options);
  const std::string& md = out.markdown;
  EXPECT_EQ(slurp(fx.dir / "out" / "report.md"), md);

  // Rows ordered by family then budget; shards of kivi@2 merged into one complete run.
  const size_t fp16 = md.find("| fp16 |"), k2 = md.find("| kivi@2 |"), k4 = md.find("| kivi@4 |");
  ASSERT_NE(fp16, std::string::npos);
  ASSERT_NE(k2, std::string::npos);
  ASSERT_NE(k4, std::string::npos);
  EXPECT_LT(fp16, k2);
  EXPECT_LT(k2, k4);
  EXPECT_NE(md.find("| kivi@2 | 2.50 | 12.50 | 0.5000 ± 0.2041 | 0.5000 ± 0.2041 | 6 |"), std::string::npos) << md;
  EXPECT_NE(md.find("| fp16 | 16.00 | 26.00 | 1.0000 ± 0.0000 | 1.0000 ± 0.0000 | 6 | 7.389 | 0.7213 | 2 |"),
            std::string::npos) << md;
  EXPECT_NE(md.find("| kivi@4 | 4.50 | 14.50 | 1.0000 ± 0.0000 | 1.0000 ± 0.0000 | 3/6* | — | — | — |"), std::string::npos)
      << md;
  EXPECT_NE(md.find("* incomplete run"), std::string::npos);
  EXPECT_NE(md.find("Effective KV bits by task"), std::string::npos);
  // kivi@2 - fp16: d = -1 on items 3, 4, 5: mean -0.5, se = sd / sqrt(6) = sqrt(0.3) / sqrt(6).
  EXPECT_NE(md.find("| arc_easy | 6 | -0.5000 ± 0.2236 | -0.5000 ± 0.2236 |  |"), std::string::npos) << md;
  ASSERT_EQ(out.warnings.size() - (out.warnings.size() > 1 && out.warnings.back().find("gnuplot") != std::string::npos), 1u);
  EXPECT_EQ(out.warnings[0], "arc_easy / kivi@4: missing shard(s) 2/2 (3 of 6 items)");

  // Pictures: two metrics x two axes for arc_easy, none for the perplexity task.
  const std::string script = slurp(fx.dir / "out" / "plots.gp");
  EXPECT_NE(script.find("arc_easy_acc_vs_bits.svg"), std::string::npos);
  EXPECT_NE(script.find("arc_easy_acc_norm_vs_ms.svg"), std::string::npos);
  EXPECT_EQ(script.find("wikitext2"), std::string::npos);
  EXPECT_NE(script.find("title 'kivi'"), std::string::npos);  // one curve per family
  EXPECT_EQ(script.find("title 'kivi@2'"), std::string::npos);
  EXPECT_NE(script.find("set title 'arc_easy (n = 3-6): acc vs effective KV bits'"), std::string::npos);
  if (::access("/usr/bin/gnuplot", X_OK) == 0) {
    for (const char* f : {"arc_easy_acc_vs_bits.svg", "arc_easy_acc_vs_ms.svg", "arc_easy_acc_norm_vs_bits.svg",
                          "arc_easy_acc_norm_vs_ms.svg"}) {
      EXPECT_GT(std::filesystem::file_size(fx.dir / "out" / f), 1000u) << f;
      EXPECT_NE(slurp(fx.dir / "out" / f).find("<svg"), std::string::npos) << f;
    }
    EXPECT_NE(md.find("![arc_easy_acc_vs_bits](arc_easy_acc_vs_bits.svg)"), std::string::npos);
    EXPECT_FALSE(std::filesystem::exists(fx.dir / "out" / "plots.log"));
  }
}

TEST(EvalReport, MissingGnuplotIsAWarning) {
  Fixture fx;
  ReportOptions options;
  options.out_dir = fx.dir / "out";
  options.gnuplot = "kvbits-no-such-gnuplot";
  const ReportOutput out = run_report(fx.files, options);
  ASSERT_FALSE(out.warnings.empty());
  EXPECT_EQ(out.warnings.back().rfind("kvbits-no-such-gnuplot not found", 0), 0u) << out.warnings.back();
  EXPECT_TRUE(std::filesystem::exists(fx.dir / "out" / "report.md"));
}

TEST(EvalReport, OverlappingShardsAreAnError) {
  Fixture fx;
  // kivi@2 shard 1/2 again (another attempt) and a 1/3 shard that shares item 0.
  const auto again = save(fx.dir, "kivi2_s1_again.json", mc("kivi@2", 2.0, 2.25, {1, 2}, [](int64_t) { return true; }));
  EXPECT_EQ(error_of([&] { merge_result_files({fx.files[1], fx.files[2], again}); }),
            fx.files[1].string() + " (shard 1/2) and " + again.string() +
                " (shard 1/2) both hold item 0 of arc_easy / kivi@2: overlapping shards, pass each shard once");
  const auto third = save(fx.dir, "kivi2_t1.json", mc("kivi@2", 2.0, 2.25, {1, 3}, [](int64_t) { return true; }));
  EXPECT_NE(error_of([&] { merge_result_files({fx.files[2], fx.files[1], third}); }).find("overlapping shards"),
            std::string::npos);
  // The same file twice is read once.
  EXPECT_EQ(merge_result_files({fx.files[0], fx.files[0]}).runs.size(), 1u);
}

TEST(EvalReport, DifferentLimitIsNotAShard) {
  Fixture fx;
  RunResult r = mc("kivi@2", 2.0, 2.25, {2, 2}, [](int64_t) { return true; });
  r.n_total = 4;
  r.limit = 4;
  r.items.resize(2);
  const auto other = save(fx.dir, "limit.json", r);
  EXPECT_NE(error_of([&] { merge_result_files({fx.files[1], other}); }).find("not shards of one run"), std::string::npos);
}

TEST(EvalReport, MalformedFileIsAnErrorNamingIt) {
  Fixture fx;
  std::string text = slurp(fx.files[0]);
  const size_t at = text.find("\"name\": \"fp16\"");
  ASSERT_NE(at, std::string::npos);
  text.replace(at, 6, "\"nome\"");
  const auto broken = testing::write_file(fx.dir / "broken.json", text);
  ReportOptions options;
  options.out_dir = fx.dir / "o";
  EXPECT_EQ(error_of([&] { run_report({fx.files[1], broken}, options); }),
            broken.string() + ": field 'policy.name' missing");
  EXPECT_FALSE(std::filesystem::exists(fx.dir / "o"));
}

TEST(EvalReport, InterruptedShardIsFlagged) {
  Fixture fx;
  RunResult r = mc("kivi@4", 4.0, 4.5, {2, 2}, [](int64_t) { return true; });
  r.items.resize(1);
  r.complete = false;
  const auto partial = save(fx.dir, "kivi4_s2.json", r);
  const Merged m = merge_result_files({fx.files[3], partial});
  ASSERT_EQ(m.runs.size(), 1u);
  EXPECT_FALSE(m.runs[0].complete);
  EXPECT_EQ(m.runs[0].result.n(), 4);
  ASSERT_EQ(m.warnings.size(), 1u);
  EXPECT_EQ(m.warnings[0], partial.string() + ": interrupted run (complete = false), 1 items of shard 2/2");
  EXPECT_NEAR(m.runs[0].result.kv.effective_bits, 4.5, 1e-12);
  EXPECT_EQ(m.runs[0].result.kv.tokens, 100u);
}

TEST(EvalReport, PairArguments) {
  EXPECT_EQ(parse_pair("a,b").b, "b");
  EXPECT_THROW(parse_pair("a"), Error);
  EXPECT_THROW(parse_pair("a,"), Error);
  EXPECT_THROW(parse_pair("a,b,c"), Error);
  EXPECT_THROW(parse_pair("a,a"), Error);
  Fixture fx;
  ReportOptions options;
  options.out_dir = fx.dir / "o";
  options.pair = parse_pair("fp16,kivi@3");
  EXPECT_EQ(error_of([&] { run_report(fx.files, options); }),
            "--pair: no results for policy 'kivi@3' (policies: 'fp16', 'kivi@2', 'kivi@4')");
  EXPECT_FALSE(std::filesystem::exists(fx.dir / "o"));
}

TEST(EvalReport, UnwritableOutDir) {
  Fixture fx;
  const auto file = testing::write_file(fx.dir / "plain", "x");
  ReportOptions options;
  options.out_dir = file;
  EXPECT_NE(error_of([&] { run_report(fx.files, options); }).find("cannot create the report directory"),
            std::string::npos);
}

}  // namespace
}  // namespace kvbits::eval
