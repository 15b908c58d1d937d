// The controller's MLP: forward pass against a plain double-precision reference, the backward pass
// and the controller loss against numerical gradients, Adam on a small problem, and training
// determinism (same data and seed -> the same controller file, bit for bit).
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <random>

#include "policy/mlp.h"
#include "train/fit.h"
#include "train/label_data.h"
#include "train/mlp_train.h"
#include "util/error.h"

namespace kvbits {
namespace {

// y = W2 act(W1 x + b1) + b2 ... in double.
std::vector<double> reference_forward(const Mlp& mlp, const std::vector<double>& x) {
  std::vector<double> in = x;
  for (size_t l = 0; l < mlp.layers().size(); ++l) {
    const DenseLayer& d = mlp.layers()[l];
    std::vector<double> out(static_cast<size_t>(d.out));
    for (int o = 0; o < d.out; ++o) {
      double s = d.b[o];
      for (int i = 0; i < d.in; ++i) s += static_cast<double>(d.w[static_cast<size_t>(o) * d.in + i]) * in[i];
      if (l + 1 < mlp.layers().size()) {
        if (mlp.activation() == MlpActivation::kRelu) {
          s = s > 0 ? s : 0;
        } else {
          s = 0.5 * s * (1 + std::tanh(std::sqrt(2 / M_PI) * (s + 0.044715 * s * s * s)));
        }
      }
      out[o] = s;
    }
    in = out;
  }
  return in;
}

TEST(ControllerMlp, ForwardMatchesReference) {
  for (MlpActivation act : {MlpActivation::kRelu, MlpActivation::kGelu}) {
    Mlp mlp({9, 64, 64, 4}, act);
    mlp.init(3);
    for (DenseLayer& d : mlp.layers()) {
      for (size_t i = 0; i < d.b.size(); ++i) d.b[i] = 0.01f * static_cast<float>(i % 7) - 0.03f;
    }
    EXPECT_EQ(mlp.parameter_count(), 9u * 64 + 64 + 64 * 64 + 64 + 64 * 4 + 4);
    std::mt19937_64 rng(5);
    std::normal_distribution<double> nd;
    std::vector<float> scratch, out(4);
    for (int trial = 0; trial < 20; ++trial) {
      std::vector<double> x(9);
      std::vector<float> xf(9);
      for (int i = 0; i < 9; ++i) xf[i] = static_cast<float>(x[i] = nd(rng));
      for (int i = 0; i < 9; ++i) x[i] = xf[i];
      mlp.forward(xf.data(), out.data(), scratch);
      const std::vector<double> ref = reference_forward(mlp, x);
      for (int j = 0; j < 4; ++j) EXPECT_NEAR(out[j], ref[j], 1e-4 * (1 + std::abs(ref[j])));
    }
  }
  EXPECT_THROW(Mlp({3}, MlpActivation::kRelu), Error);
  EXPECT_THROW(Mlp({3, 0, 4}, MlpActivation::kRelu), Error);
}

// Loss of one sample as a function of the MLP's parameters (double accumulation where it matters).
double sample_loss(const Mlp& mlp, const std::vector<float>& x, const std::vector<float>& q,
                   const std::vector<double>& bits, const std::vector<float>& dmg, const train::LossWeights& w) {
  std::vector<float> z(4), dz(4), scratch;
  mlp.forward(x.data(), z.data(), scratch);
  return train::controller_loss(z, q, bits, dmg, w, dz);
}

TEST(ControllerMlp, BackpropMatchesNumericalGradient) {
  Mlp mlp({5, 7, 6, 4}, MlpActivation::kGelu);
  mlp.init(11);
  for (DenseLayer& d : mlp.layers()) {
    for (size_t i = 0; i < d.b.size(); ++i) d.b[i] = 0.05f * static_cast<float>(i % 5) - 0.1f;
  }
  const std::vector<float> x{0.5f, -1.2f, 0.3f, 2.0f, -0.7f};
  const std::vector<float> q{0.1f, 0.6f, 0.25f, 0.05f};
  const std::vector<double> bits{2.5, 4.5, 8.5, 16.0};
  const std::vector<float> dmg{0.8f, 0.1f, 0.01f, 0.0f};
  const train::LossWeights w{1.0, 0.02, 0.5};
  train::MlpBackprop bp(mlp);
  train::MlpGrad grad(mlp);
  std::vector<float> z(4), dz(4);
  bp.forward(x.data(), z.data());
  train::controller_loss(z, q, bits, dmg, w, dz);
  bp.backward(dz.data(), grad);
  const float h = 1e-3f;
  int checked = 0;
  for (size_t l = 0; l < mlp.layers().size(); ++l) {
    for (int is_b = 0; is_b < 2; ++is_b) {
      std::vector<float>& p = is_b ? mlp.layers()[l].b : mlp.layers()[l].w;
      const std::vector<float>& g = is_b ? grad.layers[l].b : grad.layers[l].w;
      for (size_t i = 0; i < p.size(); ++i) {
        const float keep = p[i];
        p[i] = keep + h;
        const double up = sample_loss(mlp, x, q, bits, dmg, w);
        p[i] = keep - h;
        const double down = sample_loss(mlp, x, q, bits, dmg, w);
        p[i] = keep;
        const double numeric = (up - down) / (2.0 * h);
        EXPECT_NEAR(g[i], numeric, 2e-3 + 2e-2 * std::abs(numeric)) << "layer " << l << (is_b ? " b[" : " w[") << i << "]";
        ++checked;
      }
    }
  }
  EXPECT_EQ(static_cast<size_t>(checked), mlp.parameter_count());
}

TEST(ControllerMlp, LossGradientInTheScores) {
  const std::vector<float> z{0.2f, -0.5f, 1.0f, 0.0f}, q{0.0f, 1.0f, 0.0f, 0.0f}, dmg{1.0f, 0.2f, 0.0f, 0.0f};
  const std::vector<double> bits{2.5, 4.5, 8.5, 16.0};
  const train::LossWeights w{0.7, 0.01, 0.3};
  std::vector<float> dz(4), tmp(4);
  train::controller_loss(z, q, bits, dmg, w, dz);
  for (int j = 0; j < 4; ++j) {
    std::vector<float> a = z, b = z;
    a[j] += 1e-3f;
    b[j] -= 1e-3f;
    const double numeric = (train::controller_loss(a, q, bits, dmg, w, tmp) - train::controller_loss(b, q, bits, dmg, w, tmp)) / 2e-3;
    EXPECT_NEAR(dz[j], numeric, 1e-3);
  }
}

TEST(ControllerMlp, AdamFitsASmallClassification) {
  // Class = which of 4 input coordinates is largest: learnable by a small MLP.
  Mlp mlp({4, 16, 4}, MlpActivation::kRelu);
  mlp.init(1);
  train::MlpBackprop bp(mlp);
  train::MlpGrad grad(mlp);
  train::AdamOptions ao;
  ao.lr = 1e-2;
  train::Adam adam(mlp, ao);
  std::mt19937_64 rng(2);
  std::normal_distribution<float> nd;
  const std::vector<double> bits{0, 0, 0, 0};
  const std::vector<float> dmg{0, 0, 0, 0};
  std::vector<float> z(4), dz(4);
  const auto sample = [&](std::vector<float>& x, std::vector<float>& q) {
    for (float& v : x) v = nd(rng);
    const int y = static_cast<int>(std::max_element(x.begin(), x.end()) - x.begin());
    std::fill(q.begin(), q.end(), 0.0f);
    q[static_cast<size_t>(y)] = 1.0f;
  };
  std::vector<float> x(4), q(4);
  for (int step = 0; step < 1500; ++step) {
    grad.zero();
    for (int b = 0; b < 16; ++b) {
      sample(x, q);
      bp.forward(x.data(), z.data());
      train::controller_loss(z, q, bits, dmg, {1, 0, 0}, dz);
      for (float& g : dz) g /= 16.0f;
      bp.backward(dz.data(), grad);
    }
    adam.step(mlp, grad);
  }
  int right = 0;
  std::vector<float> scratch;
  for (int i = 0; i < 500; ++i) {
    sample(x, q);
    mlp.forward(x.data(), z.data(), scratch);
    right += q[static_cast<size_t>(std::max_element(z.begin(), z.end()) - z.begin())] == 1.0f;
  }
  EXPECT_GT(right, 450);
}

// n_seq sequences of len synthetic tokens with the given classes: random token and entropy per
// token; `damage(info, t, rng)` may set more features and returns the damage per class.
template <typename DamageFn>
train::LabelData synthetic_data(std::vector<KvPrecision> classes, int n_seq, int len, uint64_t seed, DamageFn damage) {
  train::LabelData d;
  d.classes = std::move(classes);
  d.frequency = TokenFrequency(100, 0.5, {1, 2, 3}, {5, 5, 5});
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<float> u(0.0f, 1.0f);
  for (int s = 0; s < n_seq; ++s) {
    for (int t = 0; t < len; ++t) {
      train::TokenSample x;
      x.seq = s;
      x.position = t;
      x.token = static_cast<int32_t>(rng() % 100);
      TokenInfo info;
      info.position = t;
      info.entropy = 4.0f * u(rng);
      x.damage = damage(info, t, rng);
      x.raw = raw_features(info, d.frequency.rarity(x.token), 5.0f);
      d.samples.push_back(x);
    }
  }
  return d;
}

// Synthetic labels: damage at int2 grows with "entropy", the sink (position 0) is fragile.
train::LabelData synthetic_labels(int n_seq, int len, uint64_t seed) {
  return synthetic_data({{2, 2}, {4, 4}, {8, 8}, {16, 16}}, n_seq, len, seed,
                        [](TokenInfo& info, int t, std::mt19937_64& rng) {
                          std::uniform_real_distribution<float> u(0.0f, 1.0f);
                          info.confidence = u(rng);
                          const float d2 = 0.05f + 0.3f * info.entropy * info.entropy * (0.8f + 0.4f * u(rng)) +
                                           (t == 0 ? 5.0f : 0.0f);
                          return std::vector<float>{d2, 0.05f * d2, 0.003f * d2, 0.0f};
                        });
}

train::FitOptions small_fit_options() {
  train::FitOptions o;
  o.features = {Feature::kEntropy, Feature::kConfidence, Feature::kPosition};
  o.hidden = {16, 16};
  o.epochs = 20;
  o.classes = {{2, 2}, {4, 4}, {8, 8}, {16, 16}};
  o.class_bits = {2.54, 4.54, 8.54, 16.04};
  o.subtract_noise_floor = false;
  return o;
}

TEST(ControllerTraining, DeterministicAndBetterThanRandom) {
  const train::LabelData data = synthetic_labels(40, 30, 9);
  ControllerModel m;
  m.architecture = "llama";
  m.n_layers = 2;
  m.n_kv_heads = 1;
  m.head_dim = 16;
  m.kv_dim = 16;
  m.vocab_size = 100;
  const train::FitOptions o = small_fit_options();
  const train::FitResult a = train::fit_controller(data, o, m);
  const train::FitResult b = train::fit_controller(data, o, m);
  EXPECT_EQ(to_json(a.controller).dump(), to_json(b.controller).dump()) << "same data and seed, same file";
  train::FitOptions o2 = o;
  o2.seed = 2;
  const train::FitResult c = train::fit_controller(data, o2, m);
  EXPECT_NE(to_json(a.controller).dump(), to_json(c.controller).dump());
  // Held out: the learned ranking loses much less damage than a random mix at the same bits, and
  // entropy (which drives the damage here) matters most.
  for (const auto& row : a.report["heldout"]["damage_at_budget"]) {
    if (row["bits"].get<double>() > 4.0) continue;
    // At least half of the oracle's gain over a random mix.
    const double random = row["random_damage"].get<double>(), oracle = row["oracle_damage"].get<double>();
    EXPECT_LT(row["learned_damage"].get<double>(), random - 0.5 * (random - oracle)) << row.dump();
    EXPECT_NEAR(row["learned_bits"].get<double>(), row["bits"].get<double>(), 0.1);
  }
  const auto& imp = a.report["heldout"]["permutation_importance"];
  ASSERT_EQ(imp.size(), 3u);
  EXPECT_EQ(imp[0]["feature"], "entropy");
  EXPECT_GT(imp[0]["increase"].get<double>(), imp[1]["increase"].get<double>());
  EXPECT_GT(a.report["heldout"]["label_accuracy"].get<double>(), 0.5);
  // The budget table is monotone and spans the classes.
  const BudgetTable& t = a.controller.budget;
  EXPECT_NEAR(t.bits.front(), 2.54, 0.01);
  EXPECT_NEAR(t.bits.back(), 16.04, 0.01);
}

TEST(ControllerTraining, RefusesTooLittleData) {
  ControllerModel m;
  train::FitOptions o = small_fit_options();
  EXPECT_THROW(train::fit_controller(synthetic_labels(1, 20, 1), o, m), Error);  // < 50 samples
  EXPECT_THROW(train::fit_controller(synthetic_labels(1, 80, 1), o, m), Error);  // one sequence
}

TEST(ControllerTraining, RefusesClassesThatDoNotMatchTheLabels) {
  ControllerModel m;
  const train::LabelData data = synthetic_labels(10, 20, 1);
  train::FitOptions o = small_fit_options();
  o.classes = {{2, 2}, {4, 2}, {4, 4}, {16, 16}};
  EXPECT_THROW(train::fit_controller(data, o, m), Error);
  o = small_fit_options();
  o.class_bits = {2.54, 8.54, 4.54, 16.04};  // not ascending
  EXPECT_THROW(train::fit_controller(data, o, m), Error);
}

// K/V classes. Synthetic damage where keys are fragile on some tokens (driven by "entropy") and
// values never: the int4/int2 class (keys 4 bits) must take those tokens at a budget between
// int2 and int4/int2, and the learned assignment must beat a random mix of the bracketing classes.
// A class with both widths at least another's is never counted as more damaging (monotone).
TEST(ControllerTraining, SeparateKeyAndValueClasses) {
  const train::LabelData d = synthetic_data(
      {{2, 2}, {4, 2}, {4, 4}, {8, 8}, {16, 16}}, 40, 30, 3, [](TokenInfo& info, int t, std::mt19937_64&) {
        const float dk = 0.02f + 0.2f * info.entropy * info.entropy;  // key damage at 2 bits
        const float dv = 0.05f;                                        // value damage at 2 bits
        // k4/v4 measured (noisily) above k4/v2 on some tokens: the fit must clamp it.
        return std::vector<float>{dk + dv, 0.05f * dk + dv, (t % 7 == 0 ? 0.2f : 0.05f) * dk, 0.003f * dk, 0.0f};
      });
  ControllerModel m;
  train::FitOptions o = small_fit_options();
  o.classes = d.classes;
  o.class_bits = {2.29, 3.29, 4.29, 8.54, 16.04};
  o.report_bits = {2.75, 3.0};
  const train::FitResult r = train::fit_controller(d, o, m);
  ASSERT_EQ(r.controller.classes.size(), 5u);
  EXPECT_EQ(r.controller.classes[1], (KvPrecision{4, 2}));
  const auto& h = r.report["heldout"];
  for (const auto& row : h["damage_at_budget"]) {
    const double random = row["random_damage"].get<double>(), oracle = row["oracle_damage"].get<double>();
    EXPECT_LT(row["learned_damage"].get<double>(), random - 0.5 * (random - oracle)) << row.dump();
  }
  const auto& mean = r.report["labels"]["heldout_mean_damage"];
  EXPECT_GE(mean["int4/int2"].get<double>(), mean["int4"].get<double>()) << "dominance made the targets monotone";
  EXPECT_GT(mean["int2"].get<double>(), mean["int4/int2"].get<double>());
}

// Label files: version 2 (classes named) round-trips exactly; version 1 (D2, D4, D8) still loads.
TEST(ControllerTraining, LabelFilesRoundTrip) {
  const std::filesystem::path dir = std::filesystem::temp_directory_path() / "kvbits_label_test";
  std::filesystem::create_directories(dir);
  train::LabelData d = synthetic_labels(3, 20, 5);
  d.classes = {{2, 2}, {4, 2}, {4, 4}, {16, 16}};
  for (train::TokenSample& s : d.samples) s.damage = {s.damage[0], 0.5f * s.damage[0], s.damage[1], 0.0f};
  d.meta = {{"horizon", 16}};
  train::save_labels(d, dir / "v2.json");
  const train::LabelData back = train::load_labels(dir / "v2.json");
  ASSERT_EQ(back.classes, d.classes);
  ASSERT_EQ(back.samples.size(), d.samples.size());
  for (size_t i = 0; i < d.samples.size(); ++i) {
    EXPECT_EQ(back.samples[i].damage, d.samples[i].damage) << i;
    for (int f = 0; f < kFeatureKinds; ++f) EXPECT_EQ(back.samples[i].raw.v[f], d.samples[i].raw.v[f]) << i;
  }
  {
    std::ofstream v1(dir / "v1.json");
    v1 << R"({"format": "kvbits-controller-labels", "format_version": 1, "meta": {},
             "rarity": {"vocab_size": 100, "alpha": 0.5, "ids": [1], "counts": [3]},
             "samples": [[0, 0, 1, 1, 2, 3, 4, 5, 6, 7, 8, 9, 0.5, 0.1, 0.01]]})";
  }
  const train::LabelData old = train::load_labels(dir / "v1.json");
  ASSERT_EQ(old.classes.size(), 4u);
  EXPECT_EQ(old.classes[1], (KvPrecision{4, 4}));
  EXPECT_EQ(old.samples.at(0).damage, (std::vector<float>{0.5f, 0.1f, 0.01f, 0.0f}));
  {
    std::ofstream bad(dir / "bad.json");
    bad << R"({"format": "kvbits-controller-labels", "format_version": 2, "meta": {}, "classes": ["int2", "int3"],
             "rarity": {"vocab_size": 100, "alpha": 0.5, "ids": [1], "counts": [3]}, "samples": []})";
  }
  EXPECT_THROW(train::load_labels(dir / "bad.json"), Error);
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace kvbits
