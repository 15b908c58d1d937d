// The controller file (policy/controller_file.h): a round trip keeps every weight bit for bit,
// and every kind of malformed or incompatible file is one clear Error naming the file.
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

#include "controller_test_util.h"
#include "gguf_test_util.h"
#include "policy/controller_file.h"
#include "util/error.h"

namespace kvbits {
namespace {

LlamaConfig test_config() {
  LlamaConfig c;
  c.architecture = "llama";
  c.name = "test";
  c.n_layers = 2;
  c.d_model = 64;
  c.n_heads = 4;
  c.n_kv_heads = 2;
  c.head_dim = 16;
  c.vocab_size = 300;
  c.context_length = 256;
  return c;
}

std::string read_text(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void write_text(const std::string& path, const std::string& text) {
  std::ofstream out(path);
  out << text;
}

// Expects read_controller to throw an Error whose message contains `needle` and the path.
void expect_read_error(const std::string& path, const std::string& needle) {
  try {
    read_controller(path);
    FAIL() << "no error for " << needle;
  } catch (const Error& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find(needle), std::string::npos) << msg;
    EXPECT_NE(msg.find(path), std::string::npos) << msg;
    EXPECT_EQ(msg.find('\n'), std::string::npos) << "one line: " << msg;
  }
}

TEST(ControllerFile, RoundTripKeepsEveryWeight) {
  testing::TempDir dir;
  const ControllerFile c = testing::make_test_controller(test_config());
  const std::string path = dir.file("c.json");
  write_controller(c, path);
  const ControllerFile r = read_controller(path);
  EXPECT_EQ(r.model.n_layers, 2);
  EXPECT_EQ(r.model.kv_dim, 32);
  ASSERT_EQ(r.classes.size(), 4u);
  EXPECT_EQ(r.classes[1], (KvPrecision{4, 4}));
  ASSERT_EQ(r.features.size(), 3u);
  EXPECT_EQ(r.features[2].feature, Feature::kPosition);
  EXPECT_EQ(r.features[2].transform, FeatureTransform::kLog1p);
  EXPECT_EQ(r.features[1].mean, 2.0f);
  ASSERT_EQ(r.mlp.sizes(), c.mlp.sizes());
  EXPECT_EQ(r.mlp.activation(), MlpActivation::kGelu);
  for (size_t l = 0; l < c.mlp.layers().size(); ++l) {
    EXPECT_EQ(r.mlp.layers()[l].w, c.mlp.layers()[l].w) << "weights reload bit for bit";
    EXPECT_EQ(r.mlp.layers()[l].b, c.mlp.layers()[l].b);
  }
  EXPECT_EQ(r.rarity.ids(), c.rarity.ids());
  EXPECT_EQ(r.rarity.counts(), c.rarity.counts());
  EXPECT_FLOAT_EQ(r.rarity.rarity(5), c.rarity.rarity(5));
  EXPECT_FLOAT_EQ(r.rarity.rarity(200), c.rarity.rarity(200));  // unseen: the smoothed default
  ASSERT_EQ(r.budget.bits.size(), c.budget.bits.size());
  for (size_t i = 0; i < c.budget.bits.size(); ++i) {
    EXPECT_NEAR(r.budget.bits[i], c.budget.bits[i], 1e-5);
    EXPECT_NEAR(r.budget.lambda[i], c.budget.lambda[i], 1e-5 * (1 + std::abs(c.budget.lambda[i])));
  }
  EXPECT_EQ(r.training["note"], "test controller");
  // A second round trip is exact.
  const std::string path2 = dir.file("c2.json");
  write_controller(r, path2);
  EXPECT_EQ(read_text(path), read_text(path2));
  // The MLP computes the same scores.
  std::vector<float> x{0.3f, -1.0f, 2.0f}, a(4), b(4), scratch;
  c.mlp.forward(x.data(), a.data(), scratch);
  r.mlp.forward(x.data(), b.data(), scratch);
  EXPECT_EQ(a, b);
}

TEST(ControllerFile, MalformedFilesAreOneLineErrors) {
  testing::TempDir dir;
  const ControllerFile c = testing::make_test_controller(test_config());
  const std::string good = dir.file("good.json");
  write_controller(c, good);
  const std::string text = read_text(good);
  const nlohmann::json doc = nlohmann::json::parse(text);
  const auto variant = [&](const std::string& name, const std::function<void(nlohmann::json&)>& edit) {
    nlohmann::json d = doc;
    edit(d);
    const std::string p = dir.file(name);
    write_text(p, d.dump());
    return p;
  };

  expect_read_error(dir.file("missing.json"), "not found");
  write_text(dir.file("empty.json"), "");
  expect_read_error(dir.file("empty.json"), "empty");
  write_text(dir.file("truncated.json"), text.substr(0, text.size() / 2));
  expect_read_error(dir.file("truncated.json"), "truncated");
  write_text(dir.file("notjson.json"), "hello");
  expect_read_error(dir.file("notjson.json"), "not a valid controller file");
  expect_read_error(variant("format.json", [](auto& d) { d["format"] = "something-else"; }), "not a kvbits controller");
  expect_read_error(variant("version.json", [](auto& d) { d["format_version"] = 99; }), "version 99 is not supported");
  expect_read_error(variant("nofeat.json", [](auto& d) { d["features"].erase(0); }), "takes 3 inputs but the file lists 2 features");
  expect_read_error(variant("unknownfeat.json", [](auto& d) { d["features"][0]["name"] = "magic"; }), "unknown feature 'magic'");
  expect_read_error(variant("transform.json", [](auto& d) { d["features"][0]["transform"] = "sqrt"; }), "unknown feature transform");
  expect_read_error(variant("std.json", [](auto& d) { d["features"][1]["std"] = 0.0; }), "features[1].std");
  expect_read_error(variant("inf.json", [](auto& d) { d["mlp"]["layers"][1]["w"][3] = 1e300; }), "mlp.layers[1].w[3]' is not finite");
  expect_read_error(variant("shortw.json", [](auto& d) { d["mlp"]["layers"][0]["w"].erase(0); }), "expected 24");
  expect_read_error(variant("classes.json", [](auto& d) { d["classes"].erase(3); }), "gives 4 scores but the file lists 3 classes");
  expect_read_error(variant("badclass.json", [](auto& d) { d["classes"][0] = "int3"; }), "not a KV width");
  expect_read_error(variant("act.json", [](auto& d) { d["mlp"]["activation"] = "tanh"; }), "unknown activation");
  expect_read_error(variant("nomodel.json", [](auto& d) { d.erase("model"); }), "'model' is missing");
  expect_read_error(variant("kvdim.json", [](auto& d) { d["model"]["kv_dim"] = 33; }), "kv_dim");
  expect_read_error(variant("lambda.json", [](auto& d) { d["budget"]["lambda"][1] = 1e6; }), "must not increase");
  expect_read_error(variant("bits.json", [](auto& d) { d["budget"]["bits"][1] = 0.0; }), "strictly ascending");
  expect_read_error(variant("rarity.json", [](auto& d) { d["rarity"]["ids"][0] = 100000; }), "outside the vocabulary");
  expect_read_error(variant("counts.json", [](auto& d) { d["rarity"]["counts"].erase(0); }), "ids but");
  expect_read_error(variant("vocab.json", [](auto& d) { d["rarity"]["vocab_size"] = 10; }), "rarity.vocab_size");
}

TEST(ControllerFile, RefusesAnotherModel) {
  const LlamaConfig cfg = test_config();
  const ControllerFile c = testing::make_test_controller(cfg);
  EXPECT_NO_THROW(check_controller_model(c.model, cfg, "c.json"));
  LlamaConfig other = cfg;
  other.n_layers = 3;
  try {
    check_controller_model(c.model, other, "c.json");
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("trained for llama with 2 layers"), std::string::npos) << e.what();
  }
  other = cfg;
  other.vocab_size = 301;
  EXPECT_THROW(check_controller_model(c.model, other, "c.json"), Error);
}

TEST(ControllerFile, BudgetTableInterpolates) {
  BudgetTable t;
  t.bits = {3.0, 4.0, 6.0};
  t.lambda = {1.0, 0.5, 0.1};
  EXPECT_DOUBLE_EQ(t.lambda_for(2.0), 1.0);
  EXPECT_DOUBLE_EQ(t.lambda_for(3.5), 0.75);
  EXPECT_DOUBLE_EQ(t.lambda_for(5.0), 0.3);
  EXPECT_DOUBLE_EQ(t.lambda_for(9.0), 0.1);
}

TEST(TokenFrequency, SmoothedRarityAndRunningCounts) {
  const TokenFrequency f(10, 1.0, {2, 7}, {6, 2});  // total 8, denominator 8 + 10 = 18
  EXPECT_NEAR(f.rarity(2), -std::log(7.0 / 18.0), 1e-6);
  EXPECT_NEAR(f.rarity(7), -std::log(3.0 / 18.0), 1e-6);
  EXPECT_NEAR(f.rarity(0), -std::log(1.0 / 18.0), 1e-6);
  const std::vector<int32_t> toks{3, 3, 4};
  const TokenFrequency g = TokenFrequency::count(10, 1.0, toks);
  EXPECT_EQ(g.ids(), (std::vector<int32_t>{3, 4}));
  EXPECT_EQ(g.counts(), (std::vector<uint32_t>{2, 1}));
  EXPECT_THROW(TokenFrequency(10, 1.0, {7, 2}, {1, 1}), Error);   // not ascending
  EXPECT_THROW(TokenFrequency(10, 1.0, {2}, {0}), Error);         // zero count
  EXPECT_THROW(TokenFrequency(10, 0.0, {}, {}), Error);           // alpha 0
  RunningFrequency r(10, 1.0);
  EXPECT_NEAR(r.observe(3), -std::log(1.0 / 10.0), 1e-6);  // nothing seen yet
  EXPECT_NEAR(r.observe(3), -std::log(2.0 / 11.0), 1e-6);  // seen once among 1
  EXPECT_NEAR(r.observe(4), -std::log(1.0 / 12.0), 1e-6);
}

TEST(ControllerFeatures, NeedsAndNormalisation) {
  const std::vector<FeatureSpec> a{{Feature::kRarity, FeatureTransform::kNone, 0, 1},
                                   {Feature::kPosition, FeatureTransform::kLog1p, 1, 2}};
  EXPECT_FALSE(needs_of(a).logits);
  EXPECT_FALSE(needs_of(a).attention);
  const std::vector<FeatureSpec> b{{Feature::kEntropy, FeatureTransform::kNone, 0, 1},
                                   {Feature::kAttnVariance, FeatureTransform::kLog, 0, 1}};
  EXPECT_TRUE(needs_of(b).logits);
  EXPECT_TRUE(needs_of(b).attention);
  TokenInfo t;
  t.position = 7;
  t.entropy = 2.5f;
  const RawFeatures raw = raw_features(t, 4.0f, 5.0f);
  float x[2];
  feature_vector(a, raw, x);
  EXPECT_FLOAT_EQ(x[0], 4.0f);
  EXPECT_NEAR(x[1], (std::log(8.0) - 1.0) / 2.0, 1e-6);
  EXPECT_EQ(parse_feature("attn_received"), Feature::kAttnReceived);
  EXPECT_THROW(parse_feature("nope"), Error);
}

}  // namespace
}  // namespace kvbits
