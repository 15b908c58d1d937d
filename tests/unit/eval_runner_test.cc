// eval::run_task with several workers (item-parallel sessions) on the tiny synthetic model: the
// records must be bit-identical to one worker's (every item starts from an empty cache and a
// static policy has no running state), in ascending index, with the same KV totals; an error in
// one worker's item reaches the caller.
#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "engine/session.h"
#include "eval/runner.h"
#include "eval/task.h"
#include "gguf_test_util.h"
#include "io/gguf.h"
#include "model/llama_model.h"
#include "model/synthetic_model.h"
#include "policy/precision_policy.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/tokenizer_data.h"
#include "util/error.h"

namespace kvbits {
namespace {

class EvalRunnerWorkers : public ::testing::Test {
 protected:
  void SetUp() override {
    path_ = dir_.file("tiny.gguf");
    write_synthetic_model(SyntheticModelOptions{}, path_);
    model_ = LlamaModel::load(path_);
    tok_ = std::make_unique<Tokenizer>(tokenizer_data_from_gguf(model_->file()));
  }

  // n workers, each a 1-thread session with its own int4 policy (and an FP16 reference if kl).
  eval::RunResult run(const eval::TaskData& data, size_t n_workers, bool kl, const eval::RunnerOptions& o = {}) {
    std::vector<std::unique_ptr<Session>> sessions;
    std::vector<eval::RunnerWorker> workers;
    for (size_t w = 0; w < n_workers; ++w) {
      SessionOptions so;
      so.threads = 1;
      so.policy = parse_policy("int4");
      sessions.push_back(std::make_unique<Session>(*model_, so));
      Session* ref = nullptr;
      if (kl) {
        SessionOptions ro;
        ro.threads = 1;
        sessions.push_back(std::make_unique<Session>(*model_, ro));
        ref = sessions.back().get();
      }
      workers.push_back({sessions[sessions.size() - (kl ? 2 : 1)].get(), ref});
    }
    eval::RunResult r;
    eval::run_task(workers, *tok_, data, o, r, [](int64_t, int64_t, const std::string&) {});
    return r;
  }

  static eval::TaskData mc_task(int n_items) {
    eval::TaskData data;
    data.spec.name = "mc";
    data.spec.kind = eval::TaskKind::kMultipleChoice;
    for (int i = 0; i < n_items; ++i) {
      eval::McItem it;
      it.id = "item" + std::to_string(i);
      it.context = "Question " + std::to_string(i) + ": which word follows the number " + std::string(static_cast<size_t>(i % 7), 'x') + "?";
      it.choices = {"alpha", "beta gamma", "delta " + std::to_string(i * 13), "e"};
      it.gold = i % 4;
      data.items.push_back(it);
    }
    return data;
  }

  kvbits::testing::TempDir dir_;
  std::string path_;
  std::unique_ptr<LlamaModel> model_;
  std::unique_ptr<Tokenizer> tok_;
};

TEST_F(EvalRunnerWorkers, MultipleChoiceIdenticalToOneWorker) {
  const eval::TaskData data = mc_task(11);  // not a multiple of the worker counts
  const eval::RunResult one = run(data, 1, false);
  for (size_t n : {2u, 3u, 16u}) {  // 16 > items: the extra workers idle
    const eval::RunResult many = run(data, n, false);
    EXPECT_TRUE(many.complete);
    ASSERT_EQ(many.items.size(), one.items.size()) << n << " workers";
    for (size_t i = 0; i < one.items.size(); ++i) {
      EXPECT_EQ(many.items[i].index, static_cast<int64_t>(i));
      EXPECT_EQ(many.items[i].ll, one.items[i].ll) << "item " << i << ", " << n << " workers";
      EXPECT_EQ(many.items[i].length, one.items[i].length);
    }
    EXPECT_EQ(many.kv.kv_bytes, one.kv.kv_bytes);
    EXPECT_EQ(many.kv.tokens, one.kv.tokens);
    EXPECT_DOUBLE_EQ(many.kv.effective_bits, one.kv.effective_bits);
  }
}

TEST_F(EvalRunnerWorkers, PerplexityWithKlIdenticalToOneWorker) {
  eval::TaskData data;
  data.spec.name = "text";
  data.spec.kind = eval::TaskKind::kPerplexity;
  for (int i = 0; i < 40; ++i) data.text += "Line " + std::to_string(i) + " of a short text, repeated with changes.\n";
  eval::RunnerOptions o;
  o.ppl_window = 64;
  o.ppl_chunk = 16;
  const eval::RunResult one = run(data, 1, true, o);
  const eval::RunResult two = run(data, 2, true, o);
  ASSERT_GT(one.windows.size(), 4u);
  ASSERT_EQ(two.windows.size(), one.windows.size());
  for (size_t w = 0; w < one.windows.size(); ++w) {
    EXPECT_EQ(two.windows[w].index, static_cast<int64_t>(w));
    EXPECT_EQ(two.windows[w].nll, one.windows[w].nll) << "window " << w;
    ASSERT_TRUE(two.windows[w].kl.has_value());
    EXPECT_EQ(*two.windows[w].kl, *one.windows[w].kl) << "window " << w;
    EXPECT_GT(*one.windows[w].kl, 0.0) << "int4 against the FP16 reference";
    EXPECT_EQ(two.windows[w].tokens, one.windows[w].tokens);
  }
  EXPECT_EQ(two.kv.kv_bytes, one.kv.kv_bytes);
}

TEST_F(EvalRunnerWorkers, ShardAndLimitRespected) {
  const eval::TaskData data = mc_task(10);
  eval::RunnerOptions o;
  o.limit = 9;
  o.shard = {2, 3};  // items 1, 4, 7
  const eval::RunResult r = run(data, 2, false, o);
  ASSERT_EQ(r.items.size(), 3u);
  EXPECT_EQ(r.items[0].index, 1);
  EXPECT_EQ(r.items[1].index, 4);
  EXPECT_EQ(r.items[2].index, 7);
  EXPECT_EQ(r.n_total, 9);
  EXPECT_TRUE(r.complete);
}

TEST_F(EvalRunnerWorkers, ErrorInOneWorkerReachesTheCaller) {
  eval::TaskData data = mc_task(8);
  // Item 5 (worker 1 of 2) overflows the tiny model's 512-token context.
  data.items[5].context = std::string(2000, 'z');
  try {
    run(data, 2, false);
    ADD_FAILURE() << "expected a context overflow";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("context"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace kvbits
