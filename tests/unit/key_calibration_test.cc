// engine/key_means.h on the tiny synthetic model: the key mean and channel weights have the
// store's shape, the weights obey their normalisation and clamp, the measurement is
// deterministic, and ForwardOptions::query_power (the weights' query statistics) skips position 0
// and sums the same whether the tokens come in one call or two.
#include <cmath>
#include <vector>

#include <gtest/gtest.h>

#include "engine/key_means.h"
#include "kv/kv_store.h"
#include "policy_test_util.h"

namespace kvbits {
namespace {

TEST(KeyCalibration, ShapesNormalisationAndDeterminism) {
  const testing::TinyPolicySession tiny;
  const LlamaModel& model = tiny.model();
  const LlamaConfig& c = model.config();
  ThreadPool pool(1);
  const KeyCalibration a = measure_key_calibration(model, pool);
  const size_t size = static_cast<size_t>(c.n_layers) * c.kv_dim();
  ASSERT_EQ(a.mean.size(), size);
  ASSERT_EQ(a.weight.size(), size);
  for (int l = 0; l < c.n_layers; ++l) {
    for (int h = 0; h < c.n_kv_heads; ++h) {
      const float* w = a.weight.data() + static_cast<size_t>(l) * c.kv_dim() + h * c.head_dim;
      double log_sum = 0.0;
      bool clamped = false, varied = false;
      for (int j = 0; j < c.head_dim; ++j) {
        ASSERT_TRUE(std::isfinite(w[j]));
        ASSERT_GE(w[j], 1.0f / 16);
        ASSERT_LE(w[j], 16.0f);
        clamped |= w[j] == 1.0f / 16 || w[j] == 16.0f;
        varied |= std::fabs(w[j] - w[0]) > 1e-3f;
        log_sum += std::log(w[j]);
      }
      EXPECT_TRUE(varied) << "layer " << l << " head " << h;  // random weights: channels differ
      if (!clamped) EXPECT_NEAR(log_sum / c.head_dim, 0.0, 1e-5) << "layer " << l << " head " << h;
    }
  }
  const KeyCalibration b = measure_key_calibration(model, pool);
  EXPECT_EQ(a.mean, b.mean);
  EXPECT_EQ(a.weight, b.weight);
}

TEST(KeyCalibration, QueryPowerSkipsPositionZeroAndAddsAcrossCalls) {
  const testing::TinyPolicySession tiny;
  const LlamaModel& model = tiny.model();
  const LlamaConfig& c = model.config();
  ThreadPool pool(1);
  std::vector<int32_t> ids;
  for (int i = 0; i < 24; ++i) ids.push_back(5 + (i * 29) % 200);
  auto run = [&](std::vector<std::span<const int32_t>> calls) {
    KvStoreOptions o;
    o.capacity = 64;
    o.max_chunk = 64;
    o.residual = 64;
    o.floor = {16, 16};
    KvStore store(c, o);
    ForwardScratch scratch;
    std::vector<float> logits;
    std::vector<double> power;
    ForwardOptions fo;
    fo.query_power = &power;
    for (std::span<const int32_t> t : calls) model.forward({t, {}, {}}, store, LogitsFor::kNone, logits, pool, scratch, fo);
    return power;
  };
  const std::span<const int32_t> all(ids);
  const std::vector<double> one = run({all});
  const std::vector<double> two = run({all.subspan(0, 9), all.subspan(9)});
  const std::vector<double> first = run({all.subspan(0, 1)});
  ASSERT_EQ(one.size(), static_cast<size_t>(c.n_layers) * c.n_heads * c.head_dim);
  ASSERT_EQ(two.size(), one.size());
  double total = 0.0;
  for (size_t i = 0; i < one.size(); ++i) {
    ASSERT_NEAR(two[i], one[i], 1e-3 * (1.0 + one[i]));  // int8 activations: rows quantized alike
    total += one[i];
  }
  EXPECT_GT(total, 0.0);
  for (double x : first) ASSERT_EQ(x, 0.0);  // position 0 only: nothing counted
}

}  // namespace
}  // namespace kvbits
