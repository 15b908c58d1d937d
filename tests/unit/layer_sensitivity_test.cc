// Layer sensitivity files and the per-layer allocation (policy/layer_sensitivity.h) and the
// `alloc:FILE@BITS` policy: the dynamic program against brute force, file validation, and the
// policy on the tiny model (allocation at bind, budget met, wrong layer count, budget too low).
#include "policy/layer_sensitivity.h"

#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "engine/session.h"
#include "gguf_test_util.h"
#include "model/llama_model.h"
#include "model/synthetic_model.h"
#include "policy/layer_policy.h"
#include "util/error.h"

namespace kvbits {
namespace {

using nlohmann::json;

// Least damage over all class assignments with mean bits <= budget (exhaustive).
double brute_force(const std::vector<std::vector<double>>& kl, const std::vector<double>& bits, double budget) {
  const size_t c = bits.size(), n = kl[0].size();
  size_t combos = 1;
  for (size_t l = 0; l < n; ++l) combos *= c;
  double best = INFINITY;
  for (size_t code = 0; code < combos; ++code) {
    double d = 0.0, b = 0.0;
    size_t x = code;
    for (size_t l = 0; l < n; ++l, x /= c) {
      d += kl[x % c][l];
      b += bits[x % c];
    }
    if (b / static_cast<double>(n) <= budget + 1e-12) best = std::min(best, d);
  }
  return best;
}

TEST(LayerAllocation, MatchesBruteForce) {
  std::mt19937 rng(5);
  std::uniform_real_distribution<double> u(0.0, 1.0);
  const std::vector<double> bits = {2.25, 3.25, 4.25};
  for (int trial = 0; trial < 200; ++trial) {
    const size_t n = 1 + trial % 6;
    std::vector<std::vector<double>> kl(3, std::vector<double>(n));
    for (size_t l = 0; l < n; ++l) {
      kl[2][l] = 0.1 * u(rng);
      kl[1][l] = kl[2][l] + u(rng);
      kl[0][l] = kl[1][l] + 2.0 * u(rng);
    }
    const double budget = 2.25 + 2.0 * u(rng);
    const std::vector<int> pick = allocate_layers(kl, bits, budget);
    ASSERT_EQ(pick.size(), n);
    double d = 0.0, b = 0.0;
    for (size_t l = 0; l < n; ++l) {
      d += kl[static_cast<size_t>(pick[l])][l];
      b += bits[static_cast<size_t>(pick[l])];
    }
    EXPECT_LE(b / static_cast<double>(n), budget + 1e-9) << "trial " << trial;
    EXPECT_NEAR(d, brute_force(kl, bits, budget), 1e-12) << "trial " << trial;
  }
  EXPECT_THROW(allocate_layers({{1.0, 1.0}}, {2.25}, 2.0), Error);  // below the cheapest class
}

json valid_doc(int n_layers) {
  json kl = json::array();
  for (double scale : {1.0, 0.5}) {
    json row = json::array();
    for (int l = 0; l < n_layers; ++l) row.push_back(scale * (0.01 + 0.001 * l));
    kl.push_back(row);
  }
  return {{"format", "kvbits-layer-sensitivity"}, {"format_version", 1},
          {"model", {{"name", "tiny"}, {"n_layers", n_layers}}}, {"classes", {"int2", "int4"}}, {"kl", kl}};
}

std::string error_of(const json& doc) {
  try {
    (void)layer_sensitivity_from_json(doc, "f.json");
  } catch (const Error& e) {
    return e.what();
  }
  ADD_FAILURE() << "expected an error for " << doc.dump();
  return "";
}

TEST(LayerSensitivityFile, ValidatesEveryField) {
  const LayerSensitivity s = layer_sensitivity_from_json(valid_doc(3), "f.json");
  EXPECT_EQ(s.n_layers, 3);
  EXPECT_EQ(s.classes.size(), 2u);
  EXPECT_DOUBLE_EQ(s.kl[1][2], 0.5 * 0.012);
  json d = valid_doc(3);
  d["format"] = "kvbits-controller";
  EXPECT_NE(error_of(d).find("'format'"), std::string::npos);
  d = valid_doc(3);
  d["format_version"] = 2;
  EXPECT_NE(error_of(d).find("'format_version'"), std::string::npos);
  d = valid_doc(3);
  d["model"]["n_layers"] = 0;
  EXPECT_NE(error_of(d).find("'model.n_layers'"), std::string::npos);
  d = valid_doc(3);
  d["classes"] = {"int2", "int3"};
  EXPECT_NE(error_of(d).find("int3"), std::string::npos);
  d = valid_doc(3);
  d["kl"][1].erase(0);
  EXPECT_NE(error_of(d).find("'kl[1]'"), std::string::npos);
  d = valid_doc(3);
  d["kl"][0][1] = -1.0;
  EXPECT_NE(error_of(d).find("'kl[0][1]'"), std::string::npos);
  d = valid_doc(3);
  d["kl"].erase(1);
  EXPECT_NE(error_of(d).find("'kl'"), std::string::npos);
  EXPECT_NE(error_of(json::array()).find("JSON object"), std::string::npos);
}

TEST(LayerAllocPolicy, AllocatesAtBindOnTheTinyModel) {
  kvbits::testing::TempDir dir;
  const std::string model_path = dir.file("tiny.gguf");
  write_synthetic_model(SyntheticModelOptions{}, model_path);  // 2 layers
  const auto model = LlamaModel::load(model_path);
  const std::string file = dir.file("sens.json");
  json doc = valid_doc(2);
  doc["kl"][0] = {0.05, 0.01};  // int2 hurts layer 0 far more
  std::ofstream(file) << doc.dump();

  const auto session_widths = [&](const std::string& spec) {
    SessionOptions so;
    so.threads = 1;
    so.policy = parse_policy(spec);
    Session session(*model, so);
    const auto& p = dynamic_cast<const LayerPolicy&>(session.policy());
    return p.widths();
  };
  // Tiny model: head_dim 16 = one group, so int2 costs 3 and int4 5 effective bits. At 4 bits
  // one layer can be int4, and it goes to layer 0.
  const std::vector<KvPrecision> mid = session_widths("alloc:" + file + "@4");
  ASSERT_EQ(mid.size(), 2u);
  EXPECT_EQ(mid[0], (KvPrecision{4, 4}));
  EXPECT_EQ(mid[1], (KvPrecision{2, 2}));
  EXPECT_EQ(session_widths("alloc:" + file + "@16"), (std::vector<KvPrecision>{{4, 4}, {4, 4}}));
  const auto policy = parse_policy("alloc:" + file + "@3.5");
  EXPECT_EQ(policy->spec(), "alloc:sens@3.5");
  EXPECT_EQ(policy->family(), "alloc:sens");
  ASSERT_TRUE(policy->budget_bits().has_value());

  SessionOptions low;
  low.policy = parse_policy("alloc:" + file + "@2");
  EXPECT_THROW(Session(*model, low), Error);  // below int2's 2.25 (plus metadata) bits
  std::ofstream(file) << valid_doc(3).dump();
  SessionOptions wrong;
  wrong.policy = parse_policy("alloc:" + file + "@3");
  try {
    Session session(*model, wrong);
    ADD_FAILURE() << "3-layer sensitivity bound to a 2-layer model";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("3 layers"), std::string::npos) << e.what();
  }
  EXPECT_THROW(parse_policy("alloc:" + file), Error);  // no budget
  EXPECT_THROW(parse_policy("alloc:" + dir.file("missing.json") + "@3"), Error);
}

}  // namespace
}  // namespace kvbits
