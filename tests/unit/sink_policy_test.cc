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
}

TEST(SinkPolicy, SessionStoresSinksAtFp16) {
  const testing::TinyPolicySession tiny;  // 2 layers, 100 prompt tokens
  const KvStats with = tiny.stats(std::make_shared<SinkPolicy>(parse_policy("int2"), 3));
  EXPECT_EQ(with.rows_per_class[static_cast<size_t>(kv_class_index({16, 16}))], 3 * 2);
  EXPECT_EQ(with.rows_per_class[static_cast<size_t>(kv_class_index({2, 2}))], 97 * 2);
  const KvStats without = tiny.stats(parse_policy("int2"));
  EXPECT_GT(with.effective_bits, without.effective_bits);  // sink rows and the per-token record count
}

}  // namespace
}  // namespace kvbits
