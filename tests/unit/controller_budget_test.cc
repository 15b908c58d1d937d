// Budget control (policy/budget_control.h) on synthetic score streams, the oracle's knapsack
// against brute force, and the learned and oracle policies through a Session on the tiny
// synthetic model: the run's effective bits (as the store counts them) meet the target within
// +-0.1, a controller for another model and a budget below the cheapest class are refused.
#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "controller_test_util.h"
#include "engine/session.h"
#include "gguf_test_util.h"
#include "model/synthetic_model.h"
#include "policy/learned_policy.h"
#include "policy/oracle_policy.h"
#include "policy/sink_policy.h"
#include "util/error.h"

namespace kvbits {
namespace {

const std::vector<double> kBits{2.54, 4.54, 8.54, 16.04};

std::vector<float> random_scores(size_t n, uint64_t seed, float shift) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  std::vector<float> s(n * 4);
  for (size_t i = 0; i < n; ++i) {
    const float level = nd(rng);  // per-token importance shared by the classes
    for (int j = 0; j < 4; ++j) s[i * 4 + j] = shift + level * static_cast<float>(j) * 0.5f + 0.3f * nd(rng);
  }
  return s;
}

TEST(BudgetControl, MeetsTheTargetOnASyntheticStream) {
  const std::vector<float> calib = random_scores(3000, 1, 0.0f);
  // The stream at run time is shifted (another task): the offline lambda alone is off.
  const std::vector<float> stream = random_scores(4000, 2, 0.0f);
  for (double target : {2.6, 2.75, 3.0, 3.5, 4.0, 5.0, 8.0, 12.0, 16.0}) {
    const double l0 = calibrate_lambda(calib, kBits, target);
    for (double miscalibration : {0.0, 0.3, -0.3}) {
      BudgetController bc(kBits, target, l0 + miscalibration, 0.02);
      double max_err_late = 0.0;
      for (size_t i = 0; i < 4000; ++i) {
        bc.choose(std::span<const float>(stream).subspan(i * 4, 4));
        if (i >= 400) max_err_late = std::max(max_err_late, std::abs(bc.average_bits() - target));
      }
      EXPECT_LE(std::abs(bc.average_bits() - target), 0.1) << "target " << target << " miscal " << miscalibration;
      EXPECT_LE(max_err_late, 0.25) << "target " << target << " miscal " << miscalibration;
    }
  }
}

TEST(BudgetControl, GuardHoldsTheBudgetWithoutCalibration) {
  const std::vector<float> stream = random_scores(4000, 5, 0.0f);
  for (double target : {2.6, 3.0, 6.0, 12.0}) {
    for (double lambda0 : {-5.0, 0.0, 5.0}) {
      BudgetController bc(kBits, target, lambda0, /*gain=*/0.0, /*slack=*/32.0);
      for (size_t i = 0; i < 4000; ++i) bc.choose(std::span<const float>(stream).subspan(i * 4, 4));
      EXPECT_LE(std::abs(bc.average_bits() - target), (32.0 + 16.0) / 4000) << target << " " << lambda0;
    }
  }
}

TEST(BudgetControl, CalibrationIsMonotone) {
  const std::vector<float> s = random_scores(2000, 3, 0.0f);
  double prev = INFINITY;
  for (double b = 2.6; b < 16; b += 0.7) {
    const double l = calibrate_lambda(s, kBits, b);
    EXPECT_LE(l, prev + 1e-9);
    EXPECT_NEAR(mean_bits_at(s, kBits, l), b, 0.05);
    prev = l;
  }
}

TEST(OracleKnapsack, MatchesBruteForce) {
  std::mt19937_64 rng(4);
  std::uniform_real_distribution<double> u(0.0, 1.0);
  for (int trial = 0; trial < 50; ++trial) {
    const size_t n = 5;
    std::vector<std::vector<double>> d(n, std::vector<double>(4));
    for (auto& row : d) {
      // Convex, decreasing damage in the bits (as measured damage is, roughly).
      const double a = u(rng) * 2;
      row = {a, a * 0.1 * u(rng), a * 0.005 * u(rng), 0.0};
    }
    const double allowance = kBits[0] * n + u(rng) * 12.0;
    const std::vector<int> got = knapsack_widths(d, kBits, allowance);
    double got_bits = 0, got_dmg = 0;
    for (size_t i = 0; i < n; ++i) {
      got_bits += kBits[static_cast<size_t>(got[i])];
      got_dmg += d[i][static_cast<size_t>(got[i])];
    }
    EXPECT_LE(got_bits, allowance + 1e-9);
    double best = INFINITY;
    for (int code = 0; code < 1024; ++code) {
      double b = 0, dm = 0;
      for (size_t i = 0; i < n; ++i) {
        const int j = (code >> (2 * i)) & 3;
        b += kBits[static_cast<size_t>(j)];
        dm += d[i][static_cast<size_t>(j)];
      }
      if (b <= allowance + 1e-9) best = std::min(best, dm);
    }
    // Greedy on the convex hulls is optimal up to the one item it cannot fit: allow the damage
    // of a single largest step.
    double slack = 0;
    for (const auto& row : d) slack = std::max(slack, row[0] - row[1]);
    EXPECT_LE(got_dmg, best + slack + 1e-9);
  }
}

class PolicySession : public ::testing::Test {
 protected:
  void SetUp() override {
    path_ = dir_.file("tiny.gguf");
    write_synthetic_model(SyntheticModelOptions{}, path_);
    model_ = LlamaModel::load(path_);
  }
  std::vector<int32_t> tokens(int n, int salt) const {
    std::vector<int32_t> t(static_cast<size_t>(n));
    for (int i = 0; i < n; ++i) t[i] = (i * 37 + salt * 101 + 11) % model_->config().vocab_size;
    return t;
  }
  std::string controller_path(const LlamaConfig& cfg) {
    const std::string p = dir_.file("ctl.json");
    write_controller(testing::make_test_controller(cfg), p);
    return p;
  }
  testing::TempDir dir_;
  std::string path_;
  std::unique_ptr<LlamaModel> model_;
};

// Effective bits of class p in the tiny model's store (head_dim 16: metadata and the per-token
// record cost more than in SmolLM2).
double tiny_bits(const LlamaConfig& c, KvPrecision p) {
  KvStoreOptions kv;
  kv.per_token_record = true;
  return class_effective_bits(c, kv, p);
}

TEST_F(PolicySession, LearnedMeetsTheBudgetOverARun) {
  const std::string ctl = controller_path(model_->config());
  const LlamaConfig& c = model_->config();
  const double b2 = tiny_bits(c, {2, 2}), b4 = tiny_bits(c, {4, 4}), b8 = tiny_bits(c, {8, 8});
  for (double target : {b2 + 0.3, 0.5 * (b2 + b4), b4 + 1.0, b8 + 2.0}) {
    PolicyOptions po;
    po.budget_bits = target;
    std::shared_ptr<PrecisionPolicy> policy = parse_policy("learned:" + ctl, po);
    EXPECT_EQ(policy->budget_bits(), target);
    EXPECT_EQ(policy->family(), "learned:ctl");
    SessionOptions so;
    so.context = 128;
    so.threads = 1;
    so.policy = policy;
    Session s(*model_, so);
    const double stored = testing::stored_average_bits(s, 12, [&](int item) { return tokens(40 + item, item); });
    EXPECT_NEAR(stored, target, 0.1) << "target " << target;
    const nlohmann::json p = policy->parameters();
    EXPECT_NEAR(p["decided_average_bits"].get<double>(), stored, 1e-6);
  }
}

// An FP16 sink on 20-token contexts adds ~0.6 bits per context; the learned policy is charged
// for it (PrecisionPolicy::charge) and the run still averages the target.
TEST_F(PolicySession, LearnedWithSinksStillMeetsTheBudget) {
  const std::string ctl = controller_path(model_->config());
  const LlamaConfig& c = model_->config();
  const double target = 0.5 * (tiny_bits(c, {2, 2}) + tiny_bits(c, {4, 4}));
  auto inner = parse_policy("learned:" + ctl + "@" + std::to_string(target));
  auto policy = std::make_shared<SinkPolicy>(std::move(inner), 1);
  SessionOptions so;
  so.context = 64;
  so.threads = 1;
  so.policy = policy;
  Session s(*model_, so);
  const double stored = testing::stored_average_bits(s, 40, [&](int item) { return tokens(20, item); });
  EXPECT_NEAR(stored, target, 0.1);
  EXPECT_NEAR(policy->parameters()["decided_average_bits"].get<double>(), stored, 1e-6);
}

TEST_F(PolicySession, LearnedRefusesAnotherModelAndUnreachableBudgets) {
  LlamaConfig other = model_->config();
  other.n_layers += 1;
  const std::string ctl = controller_path(other);
  SessionOptions so;
  so.context = 64;
  so.policy = parse_policy("learned:" + ctl + "@3");
  try {
    Session s(*model_, so);
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("trained for"), std::string::npos) << e.what();
  }
  const std::string good = controller_path(model_->config());
  so.policy = parse_policy("learned:" + good + "@2.1");  // below int2, which costs > 2.25 bits in any shape
  try {
    Session s(*model_, so);
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("below the cheapest class"), std::string::npos) << e.what();
  }
  EXPECT_THROW(parse_policy("learned:" + good + "@1.5"), Error);
  EXPECT_THROW(parse_policy("learned:" + good + "@17"), Error);
  EXPECT_THROW(parse_policy("learned:" + good + "@abc"), Error);
  EXPECT_THROW(parse_policy("learned:" + dir_.file("missing.json")), Error);
  PolicyOptions po;
  po.budget_bits = 3.0;
  EXPECT_THROW(parse_policy("int4", po), Error);  // fixed widths take no budget
  EXPECT_THROW(parse_policy("learned:" + good + "@4", po), Error);  // two different budgets
  EXPECT_NO_THROW(parse_policy("learned:" + good + "@3", po));
}

TEST_F(PolicySession, OracleMeetsTheBudgetAndProtectsDamagingTokens) {
  EXPECT_EQ(parse_policy("oracle:h4@6")->spec(), "oracle:h4@6");
  // A budget halfway between int2 and int4 in this shape: the knapsack must mix widths.
  const LlamaConfig& c = model_->config();
  const double target = 0.5 * (tiny_bits(c, {2, 2}) + tiny_bits(c, {4, 4}));
  auto policy = std::shared_ptr<PrecisionPolicy>(parse_policy("oracle:h4@" + std::to_string(target)));
  SessionOptions so;
  so.context = 64;
  so.threads = 1;
  so.policy = policy;
  Session s(*model_, so);
  s.prefill(tokens(30, 1));
  const KvStats st = s.kv().stats();
  EXPECT_NEAR(st.effective_bits, target, 0.2);  // one context: discreteness of 30 tokens
  EXPECT_GT(st.rows_per_class[kv_class_index({2, 2})], 0);
  EXPECT_GT(st.rows_per_class[kv_class_index({4, 2})] + st.rows_per_class[kv_class_index({4, 4})] +
                st.rows_per_class[kv_class_index({8, 8})],
            0);
  EXPECT_THROW(parse_policy("oracle"), Error);  // needs a budget
  EXPECT_THROW(parse_policy("oracle:h0@3"), Error);
}

}  // namespace
}  // namespace kvbits
