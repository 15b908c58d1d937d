#include "eval/shard.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <set>

#include "eval_test_util.h"

namespace kvbits::eval {
namespace {
using testing::error_of;

TEST(EvalShard, Parse) {
  EXPECT_EQ(parse_shard("1/1"), (ShardSpec{1, 1}));
  EXPECT_EQ(parse_shard("3/4"), (ShardSpec{3, 4}));
  EXPECT_EQ(to_string(ShardSpec{2, 8}), "2/8");
  EXPECT_EQ(error_of([] { parse_shard("0/4"); }), "--shard '0/4': shard index out of range (1-based: 1..4)");
  EXPECT_EQ(error_of([] { parse_shard("5/4"); }), "--shard '5/4': shard index out of range (1-based: 1..4)");
  EXPECT_EQ(error_of([] { parse_shard("1/0"); }), "--shard '1/0': the number of shards must be at least 1");
  for (const char* bad : {"", "1", "1/", "/4", "a/4", "1/4x", " 1/4", "1/-4", "1.0/4", "-1/4"}) {
    EXPECT_THROW(parse_shard(bad), Error) << bad;
  }
}

TEST(EvalShard, ShardsPartitionTheLimitedItems) {
  for (int64_t n : {1, 7, 100}) {
    for (int64_t limit : {0, 1, 5, 1000}) {
      for (int64_t count : {1, 2, 3, 4}) {
        const int64_t total = limited_count(n, limit);
        if (count > total) continue;
        std::set<int64_t> seen;
        size_t sum = 0;
        for (int64_t i = 1; i <= count; ++i) {
          const std::vector<int64_t> s = select_items(n, limit, {i, count});
          EXPECT_TRUE(std::is_sorted(s.begin(), s.end()));
          sum += s.size();
          seen.insert(s.begin(), s.end());
        }
        EXPECT_EQ(sum, static_cast<size_t>(total));
        EXPECT_EQ(seen.size(), static_cast<size_t>(total));
        if (!seen.empty()) {
          EXPECT_EQ(*seen.rbegin(), total - 1);
        }
      }
    }
  }
}

TEST(EvalShard, StridedAndLimitFirst) {
  EXPECT_EQ(select_items(10, 0, {2, 3}), (std::vector<int64_t>{1, 4, 7}));
  EXPECT_EQ(select_items(10, 5, {1, 2}), (std::vector<int64_t>{0, 2, 4}));
  EXPECT_EQ(select_items(10, 0, {1, 1}).size(), 10u);
  EXPECT_EQ(error_of([] { select_items(3, 0, {5, 8}); }), "shard 5/8 is empty: only 3 item(s) to share");
  EXPECT_EQ(error_of([] { select_items(3, -1, {1, 1}); }), "--limit -1: must be >= 0 (0: all items)");
}

}  // namespace
}  // namespace kvbits::eval
