// Budget control across layers and tokens (policy/layer_token_budget.h) and the learned policy
// with a layer sensitivity file (`--kv-layers`, policy/learned_policy.h): with every multiplier 1
// the allocation is the Lagrangian one of the table, a larger multiplier never gets fewer bits in
// any layer, the run's average meets the target whatever the multipliers, the guard bounds the
// surplus, bad shapes and incompatible controllers are refused, and a session on the tiny model
// stores each layer at the widths the policy chose within the budget.
#include "policy/layer_token_budget.h"

#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <random>

#include "controller_test_util.h"
#include "engine/session.h"
#include "gguf_test_util.h"
#include "model/synthetic_model.h"
#include "policy/learned_policy.h"
#include "util/error.h"

namespace kvbits {
namespace {

// Classes int2, int4/int2, int2/int4, int4 as SmolLM2 costs them; damage falls with bits, and
// layers differ by a factor (some layers much more sensitive), as measured.
const std::vector<double> kBits{2.29, 3.29, 3.29, 4.29};

std::vector<std::vector<double>> table(int layers, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> u(0.2, 5.0);
  std::vector<std::vector<double>> kl(4, std::vector<double>(static_cast<size_t>(layers)));
  for (int l = 0; l < layers; ++l) {
    const double s = u(rng) * 0.004;
    kl[0][l] = s + 0.003;        // int2
    kl[1][l] = 0.3 * s + 0.003;  // keys at 4 bits recover most
    kl[2][l] = 0.8 * s + 0.003;  // values at 4 bits recover little
    kl[3][l] = 0.003;            // the floor
  }
  return kl;
}

TEST(LayerTokenBudget, UnitMultipliersGiveTheLagrangianAllocation) {
  const auto kl = table(30, 1);
  const LayerTokenBudget b(kl, kBits, 3.0);
  std::vector<int> got(30);
  const double bits = b.allocate(1.0, b.lambda0(), got);
  EXPECT_LE(bits, 3.0 + 1e-9);
  for (int l = 0; l < 30; ++l) {  // each layer minimises its own damage + lambda * bits
    double best = INFINITY;
    for (size_t c = 0; c < kBits.size(); ++c) best = std::min(best, kl[c][l] + b.lambda0() * kBits[c]);
    const size_t c = static_cast<size_t>(got[static_cast<size_t>(l)]);
    EXPECT_NEAR(kl[c][l] + b.lambda0() * kBits[c], best, 1e-15) << "layer " << l;
  }
  // lambda0 is the smallest multiplier meeting the target: a little less exceeds it.
  EXPECT_GT(b.allocate(1.0, b.lambda0() * (1 - 1e-6), got), 3.0);
  EXPECT_GT(b.gain(), 0.0);
}

TEST(LayerTokenBudget, MoreDamageNeverGetsFewerBits) {
  const auto kl = table(30, 2);
  const LayerTokenBudget b(kl, kBits, 3.0);
  std::vector<int> lo(30), hi(30);
  for (double a : {0.0, 0.1, 0.5, 1.0, 2.0, 8.0}) {
    const double bl = b.allocate(a, b.lambda0(), lo);
    const double bh = b.allocate(a * 1.7 + 0.05, b.lambda0(), hi);
    EXPECT_LE(bl, bh + 1e-12) << "a " << a;
    for (int l = 0; l < 30; ++l) EXPECT_LE(kBits[lo[l]], kBits[hi[l]]) << "a " << a << " layer " << l;
  }
  // a = 0: only the price counts, the cheapest class everywhere; lambda = 0: least damage, ties cheaper.
  EXPECT_NEAR(b.allocate(0.0, b.lambda0(), lo), 2.29, 1e-12);
  EXPECT_NEAR(b.allocate(1.0, 0.0, lo), 4.29, 1e-12);
}

TEST(LayerTokenBudget, MeetsTheTargetWhateverTheMultipliers) {
  const auto kl = table(30, 3);
  for (double target : {2.5, 3.0, 3.6, 4.2}) {
    for (double sigma : {0.0, 0.5, 1.5}) {
      LayerTokenBudget b(kl, kBits, target);
      std::mt19937_64 rng(17);
      // Log-normal multipliers whose mean is not 1 (the calibration is off on purpose for sigma > 0).
      std::normal_distribution<double> nd(0.3, sigma);
      std::vector<int> out(30);
      for (int t = 0; t < 2000; ++t) b.choose(std::exp(nd(rng)), out);
      EXPECT_NEAR(b.average_bits(), target, 0.02) << "target " << target << " sigma " << sigma;
    }
  }
}

TEST(LayerTokenBudget, GuardBoundsTheSurplus) {
  const auto kl = table(8, 4);
  LayerTokenBudget b(kl, kBits, 3.0, /*kappa=*/0.0, /*slack=*/4.0);  // no integral action at all
  std::vector<int> out(8);
  for (int t = 0; t < 500; ++t) b.choose(t % 2 ? 1e6 : 50.0, out);  // every token wants int4
  EXPECT_GT(b.guarded(), 0);
  EXPECT_LE(std::abs(b.average_bits() - 3.0) * 500, 4.0 + 2.0 + 1e-9);
}

TEST(LayerTokenBudget, RefusesBadShapes) {
  auto kl = table(4, 5);
  EXPECT_THROW(LayerTokenBudget(kl, {2.29, 3.29, 4.29}, 3.0), Error);
  auto ragged = kl;
  ragged[1].pop_back();
  EXPECT_THROW(LayerTokenBudget(ragged, kBits, 3.0), Error);
  auto nan = kl;
  nan[2][1] = NAN;
  EXPECT_THROW(LayerTokenBudget(nan, kBits, 3.0), Error);
  EXPECT_THROW(LayerTokenBudget({}, {}, 3.0), Error);
}

class LearnedLayers : public ::testing::Test {
 protected:
  void SetUp() override {
    path_ = dir_.file("tiny.gguf");
    write_synthetic_model(SyntheticModelOptions{}, path_);
    model_ = LlamaModel::load(path_);
  }
  std::string controller(bool with_labels) {
    ControllerFile c = testing::make_test_controller(model_->config());
    if (with_labels) {
      c.training["labels"] = {{"temperature", 0.2},
                              {"mu", 0.05},
                              {"heldout_mean_damage", {{"int2", 0.5}, {"int4", 0.05}}}};
    }
    const std::string p = dir_.file(with_labels ? "ctl.json" : "bare.json");
    write_controller(c, p);
    return p;
  }
  std::string layers(int n) {
    const auto kl = table(n, 6);
    const nlohmann::json doc = {{"format", "kvbits-layer-sensitivity"},
                                {"format_version", 1},
                                {"model", {{"name", "tiny"}, {"n_layers", n}}},
                                {"classes", {"int2", "int4/int2", "int2/int4", "int4"}},
                                {"kl", kl}};
    const std::string p = dir_.file("layers" + std::to_string(n) + ".json");
    std::ofstream(p) << doc.dump();
    return p;
  }
  testing::TempDir dir_;
  std::string path_;
  std::unique_ptr<LlamaModel> model_;
};

TEST_F(LearnedLayers, SessionStoresPerLayerWidthsWithinTheBudget) {
  const LlamaConfig& c = model_->config();
  PolicyOptions po;
  po.layers = layers(c.n_layers);
  std::shared_ptr<PrecisionPolicy> policy = parse_policy("learned:" + controller(true) + "@3.5", po);
  EXPECT_EQ(policy->family(), "learned:ctl+layers:layers" + std::to_string(c.n_layers));
  EXPECT_EQ(policy->floor(), (KvPrecision{2, 2}));
  SessionOptions so;
  so.context = 128;
  so.threads = 1;
  so.policy = policy;
  Session s(*model_, so);
  const double stored = testing::stored_average_bits(s, 10, [&](int item) {
    std::vector<int32_t> t(static_cast<size_t>(50 + item));
    for (size_t i = 0; i < t.size(); ++i) t[i] = static_cast<int32_t>((i * 37 + item * 101 + 11) % c.vocab_size);
    return t;
  });
  // The tiny model's head_dim 16 makes class bits differ from SmolLM2's; the target still holds.
  EXPECT_NEAR(stored, 3.5, 0.1);
  const nlohmann::json p = policy->parameters();
  EXPECT_NEAR(p["decided_average_bits"].get<double>(), stored, 1e-6);
  const auto rows = p["layer_class_rows"].get<std::vector<int64_t>>();
  int used = 0;
  for (int64_t r : rows) used += r > 0;
  EXPECT_GE(used, 2);  // a mix of classes, not one width everywhere
}

TEST_F(LearnedLayers, RefusesWhatCannotWork) {
  const LlamaConfig& c = model_->config();
  PolicyOptions po;
  po.layers = layers(c.n_layers);
  try {  // a controller without the label summary cannot estimate damage
    (void)parse_policy("learned:" + controller(false) + "@3", po);
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("labels.temperature"), std::string::npos) << e.what();
  }
  EXPECT_THROW(parse_policy("int4", po), Error);  // only learned policies take --kv-layers
  EXPECT_THROW(parse_policy("alloc:" + *po.layers + "@3", po), Error);
  po.layers = dir_.file("missing.json");
  EXPECT_THROW(parse_policy("learned:" + controller(true) + "@3", po), Error);
  po.layers = layers(c.n_layers + 1);  // measured on another depth: refused when bound
  SessionOptions so;
  so.context = 64;
  so.policy = parse_policy("learned:" + controller(true) + "@4", po);
  try {
    Session s(*model_, so);
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("layers"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace kvbits
