// `layers:` policy: parsing (repeats, K/V pairs, errors), canonical spec, per-layer decisions, the
// layer-count check at bind, and a session on the tiny model storing each layer at its width.
#include "policy/layer_policy.h"

#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "engine/session.h"
#include "policy_test_util.h"
#include "util/error.h"

namespace kvbits {
namespace {

std::string error_of(const std::string& spec) {
  try {
    (void)parse_policy(spec);
  } catch (const Error& e) {
    return e.what();
  }
  ADD_FAILURE() << spec << ": expected an error";
  return "";
}

TEST(LayerPolicy, ParsesRepeatsAndPairs) {
  const LayerPolicy p("int4x2,int4/int2,fp16,int2x3", 0);
  const std::vector<KvPrecision> want = {{4, 4}, {4, 4}, {4, 2}, {16, 16}, {2, 2}, {2, 2}, {2, 2}};
  EXPECT_EQ(p.widths(), want);
  EXPECT_EQ(p.spec(), "layers:int4x2,int4/int2,fp16,int2x3");
  EXPECT_EQ(p.floor(), (KvPrecision{2, 2}));
  // Runs are merged in the canonical spec, and it parses back to the same widths.
  const LayerPolicy q("int8,int8,int2", 0);
  EXPECT_EQ(q.spec(), "layers:int8x2,int2");
  EXPECT_EQ(LayerPolicy(q.spec().substr(7), 0).widths(), q.widths());
  EXPECT_EQ(parse_policy("layers:int4x2")->spec(), "layers:int4x2");
}

TEST(LayerPolicy, DecidesPerLayer) {
  LayerPolicy p("int8,int2,int4/int2", 0);
  std::vector<TokenInfo> tokens(5);
  std::vector<KvPrecision> out(tokens.size() * 3);
  p.decide(tokens, 3, out);
  for (size_t i = 0; i < tokens.size(); ++i) {
    EXPECT_EQ(out[i * 3 + 0], (KvPrecision{8, 8}));
    EXPECT_EQ(out[i * 3 + 1], (KvPrecision{2, 2}));
    EXPECT_EQ(out[i * 3 + 2], (KvPrecision{4, 2}));
  }
}

TEST(LayerPolicy, MalformedListsRefused) {
  EXPECT_NE(error_of("layers:").find("one width per layer"), std::string::npos);
  EXPECT_NE(error_of("layers:int4,,int2").find("empty entry"), std::string::npos);
  EXPECT_NE(error_of("layers:int4x0").find("repeat count"), std::string::npos);
  EXPECT_NE(error_of("layers:int4x").find("repeat count"), std::string::npos);
  EXPECT_NE(error_of("layers:int4x2y").find("repeat count"), std::string::npos);
  EXPECT_NE(error_of("layers:int4x99999").find("repeat count"), std::string::npos);
  EXPECT_NE(error_of("layers:int3").find("int3"), std::string::npos);
  EXPECT_NE(error_of("layers:int4,").find("empty entry"), std::string::npos);
}

TEST(LayerPolicy, SessionStoresEachLayerAtItsWidth) {
  const testing::TinyPolicySession tiny;  // 2 layers, 100 prompt tokens
  const auto stats_of = [&](const std::string& spec) { return tiny.stats(parse_policy(spec)); };
  const KvStats mixed = stats_of("layers:int8,int2");
  EXPECT_EQ(mixed.window_tokens, 0);
  EXPECT_EQ(mixed.rows_per_class[static_cast<size_t>(kv_class_index({8, 8}))], 100);
  EXPECT_EQ(mixed.rows_per_class[static_cast<size_t>(kv_class_index({2, 2}))], 100);
  // The bytes are those of the two static caches averaged (no per-token record: a layer's tokens
  // share one width).
  const KvStats int8 = stats_of("int8"), int2 = stats_of("int2");
  EXPECT_NEAR(mixed.committed_k_bits, (int8.committed_k_bits + int2.committed_k_bits) / 2, 1e-9);
  EXPECT_NEAR(mixed.committed_v_bits, (int8.committed_v_bits + int2.committed_v_bits) / 2, 1e-9);
  EXPECT_NEAR(mixed.effective_bits, (int8.effective_bits + int2.effective_bits) / 2, 1e-9);

  SessionOptions bad;
  bad.policy = parse_policy("layers:int4x3");
  try {
    Session session(tiny.model(), bad);
    ADD_FAILURE() << "a 3-layer list bound to a 2-layer model";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("names 3 layers but the model has 2"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace kvbits
