// The shipped controllers (controllers/smollm2-135m.json, smollm2-135m-ctx.json) on the real
// model: each loads for SmolLM2-135M, and a short evaluation run (ARC-Easy dev items, the
// protocol of kvbits eval) lands within +-0.1 of the budget in effective bits as the store counts
// them.
#include <gtest/gtest.h>

#include <filesystem>

#include "eval/runner.h"
#include "eval/task.h"
#include "model_test_util.h"
#include "policy/learned_policy.h"
#include "tokenizer/tokenizer_data.h"
#include "util/error.h"

namespace kvbits {
namespace {

std::filesystem::path source_dir() {
  return std::filesystem::path(KVBITS_FIXTURE_DIR).parent_path().parent_path();
}

class ShippedController : public ::testing::TestWithParam<const char*> {};

TEST_P(ShippedController, MeetsTheBudgetOnARealShortRun) {
  if (!testing::model_available()) GTEST_SKIP() << "model not found at " << testing::model_path();
  const std::filesystem::path ctl = source_dir() / "controllers" / GetParam();
  ASSERT_TRUE(std::filesystem::exists(ctl)) << ctl << " is part of the repository";
  const eval::DataDir data_dir = eval::resolve_data_dir("", std::getenv("KVBITS_DATA"), source_dir());
  eval::TaskSpec spec;
  try {
    spec = eval::parse_task("arc_easy:dev", data_dir);
  } catch (const Error&) {
    GTEST_SKIP() << "ARC-Easy dev not found (set KVBITS_DATA)";
  }
  const eval::TaskData data = eval::load_task(spec);
  const auto model = LlamaModel::load(testing::model_path());
  const Tokenizer tok(tokenizer_data_from_gguf(model->file()));
  for (double target : {2.75, 3.0, 4.0}) {
    PolicyOptions po;
    po.budget_bits = target;
    SessionOptions so;
    so.context = 1024;
    so.threads = 2;
    so.max_batch = 512;
    so.policy = parse_policy("learned:" + ctl.string(), po);
    Session session(*model, so);
    eval::RunnerOptions ro;
    ro.limit = 25;
    eval::RunResult r;
    eval::run_task(session, tok, data, ro, r, [](int64_t, int64_t, const std::string&) {});
    EXPECT_EQ(r.n(), 25);
    EXPECT_NEAR(r.kv.effective_bits, target, 0.1) << "target " << target;
    const nlohmann::json p = session.policy().parameters();
    const auto counts = p["class_counts"].get<std::vector<int64_t>>();
    int used = 0;
    for (int64_t c : counts) used += c > 0;
    EXPECT_GE(used, 2) << "a budget between classes mixes widths: " << p.dump();
  }
}

INSTANTIATE_TEST_SUITE_P(Files, ShippedController, ::testing::Values("smollm2-135m.json", "smollm2-135m-ctx.json"),
                         [](const ::testing::TestParamInfo<const char*>& info) {
                           return info.index == 0 ? std::string("original") : std::string("context_labels");
                         });

}  // namespace
}  // namespace kvbits
