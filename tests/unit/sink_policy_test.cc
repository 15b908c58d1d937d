// `--kv-sinks N` (policy/sink_policy.h): the first N positions at FP16 in every layer on top of any
// policy; names, forwarded properties, errors, and a session on the tiny model storing them.
#include "policy/sink_policy.h"

#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "policy_test_util.h"
#include "util/error.h"

namespace kvbits {
namespace {

TEST(SinkPolicy, FirstPositionsAtFp16InEveryLayer) {
  SinkPolicy p(parse_policy("int4/int2"), 2);
  EXPECT_EQ(p.spec(), "int4/int2+sinks:2");
  EXPECT_EQ(p.family(), "int4/int2+sinks:2");
  EXPECT_TRUE(p.mixed());
  EXPECT_EQ(p.floor(), (KvPrecision{4, 2}));
  EXPECT_EQ(p.parameters().at("sinks"), 2);
  const int n_layers = 3;
  // Two calls, as the session commits: positions 0-2, then 3-4 (none of them sinks).
  for (const std::vector<int64_t>& positions : {std::vector<int64_t>{0, 1, 2}, std::vector<int64_t>{3, 4}}) {
    std::vector<TokenInfo> tokens(positions.size());
    for (size_t i = 0; i < tokens.size(); ++i) tokens[i].position = positions[i];
    std::vector<KvPrecision> out(tokens.size() * n_layers);
    p.decide(tokens, n_layers, out);
    for (size_t i = 0; i < tokens.size(); ++i) {
      const KvPrecision want = positions[i] < 2 ? KvPrecision{16, 16} : KvPrecision{4, 2};
      for (int l = 0; l < n_layers; ++l) EXPECT_EQ(out[i * n_layers + l], want) << "position " << positions[i];
    }
  }
}

// --kv-sinklike WIDTH: rows flagged sink-like in a layer get at least WIDTH there (component-wise,
// never lower than the inner policy's width), other rows and layers the inner width.
TEST(SinkPolicy, SinkLikeRowsGetAtLeastTheirWidth) {
  SinkPolicy p(parse_policy("int8/int2"), 1, KvPrecision{4, 4});
  EXPECT_EQ(p.spec(), "int8/int2+sinks:1+sinklike:int4");
  EXPECT_TRUE(p.needs().key_geometry);
  EXPECT_FALSE(SinkPolicy(parse_policy("int2"), 1).needs().key_geometry);
  EXPECT_EQ(p.parameters().at("sink_like_width"), "int4");
  const int n_layers = 3;
  std::vector<TokenInfo> tokens(3);
  for (size_t i = 0; i < tokens.size(); ++i) tokens[i].position = static_cast<int64_t>(i);
  tokens[0].sink_like_layers = 0b010;  // position 0 is a sink anyway: fp16 everywhere
  tokens[1].sink_like_layers = 0b101;
  tokens[2].sink_like_layers = 0;
  std::vector<KvPrecision> out(tokens.size() * n_layers);
  p.decide(tokens, n_layers, out);
  for (int l = 0; l < n_layers; ++l) {
    EXPECT_EQ(out[0 * n_layers + l], (KvPrecision{16, 16}));
    EXPECT_EQ(out[1 * n_layers + l], (l == 1 ? KvPrecision{8, 2} : KvPrecision{8, 4})) << l;
    EXPECT_EQ(out[2 * n_layers + l], (KvPrecision{8, 2})) << l;
  }
}

TEST(SinkPolicy, ForwardsResidualAndBudget) {
  PolicyOptions o;
  o.residual = 7;
  const SinkPolicy kivi(parse_policy("kivi:2", o), 1);
  EXPECT_EQ(kivi.residual(), 7);
  EXPECT_FALSE(kivi.budget_bits().has_value());
}

TEST(SinkPolicy, RefusesBadArguments) {
  EXPECT_THROW(SinkPolicy(parse_policy("int2"), 0), Error);
  EXPECT_THROW(SinkPolicy(nullptr, 1), Error);
  EXPECT_THROW(SinkPolicy(parse_policy("int2"), -1, KvPrecision{4, 4}), Error);
  EXPECT_NO_THROW(SinkPolicy(parse_policy("int2"), 0, KvPrecision{4, 4}));
}

TEST(SinkPolicy, SessionStoresSinksAtFp16) {
  const testing::TinyPolicySession tiny;  // 2 layers, 100 prompt tokens
  const KvStats with = tiny.stats(std::make_shared<SinkPolicy>(parse_policy("int2"), 3));
  EXPECT_EQ(with.rows_per_class[static_cast<size_t>(kv_class_index({16, 16}))], 3 * 2);
  EXPECT_EQ(with.rows_per_class[static_cast<size_t>(kv_class_index({2, 2}))], 97 * 2);
  const KvStats without = tiny.stats(parse_policy("int2"));
  EXPECT_GT(with.effective_bits, without.effective_bits);  // sink rows and the per-token record count
}

// The session computes the flags (PolicyNeeds::key_geometry) from the store's window rows: some
// rows of the tiny model are promoted, not all, and they cost bits.
TEST(SinkPolicy, SessionPromotesSinkLikeRows) {
  const testing::TinyPolicySession tiny;  // 2 layers, 100 prompt tokens
  const KvStats with = tiny.stats(std::make_shared<SinkPolicy>(parse_policy("int2"), 0, KvPrecision{16, 16}));
  const int64_t promoted = with.rows_per_class[static_cast<size_t>(kv_class_index({16, 16}))];
  EXPECT_GT(promoted, 0);
  EXPECT_LT(promoted, 100 * 2);
  EXPECT_EQ(with.rows_per_class[static_cast<size_t>(kv_class_index({2, 2}))], 100 * 2 - promoted);
}

}  // namespace
}  // namespace kvbits
