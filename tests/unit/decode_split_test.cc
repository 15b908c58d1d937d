// split_decode_pages: tasks cover every page in order, their count is a multiple of the thread
// count, and each holds its share of the tokens to within a page (the lanes of
// backend/chunk_lanes.h start even); small caches get fewer, larger tasks; empty pages go along.
#include "ops/decode_split.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

namespace kvbits {
namespace {

std::vector<KvPageRef> pages_of(const std::vector<int>& tokens) {
  std::vector<KvPageRef> pages(tokens.size());
  for (size_t p = 0; p < tokens.size(); ++p) pages[p].n_tokens = tokens[p];
  return pages;
}

// Token counts of the tasks, after checking that the ranges tile [0, pages) in order.
std::vector<int64_t> task_tokens(const std::vector<KvPageRef>& pages, int threads) {
  std::vector<int64_t> parts;
  split_decode_pages(pages, threads, parts);
  std::vector<int64_t> tokens;
  int64_t next = 0;
  for (size_t i = 0; i + 1 < parts.size(); i += 2) {
    EXPECT_EQ(parts[i], next) << "task " << i / 2;
    EXPECT_LT(parts[i], parts[i + 1]) << "task " << i / 2;
    int64_t t = 0;
    for (int64_t p = parts[i]; p < parts[i + 1]; ++p) t += pages[static_cast<size_t>(p)].n_tokens;
    tokens.push_back(t);
    next = parts[i + 1];
  }
  EXPECT_EQ(parts.size() % 2, 0u);
  if (!parts.empty()) EXPECT_EQ(next, static_cast<int64_t>(pages.size()));
  return tokens;
}

TEST(DecodeSplit, DepthNotAMultipleOfTheTaskSizeStaysEven) {
  // Depth 8192 + 32 in 64-token pages: four tasks of 32-33 pages, not 4 x 2048 + one of 32 tokens.
  std::vector<int> t(128, 64);
  t.push_back(32);
  const auto tokens = task_tokens(pages_of(t), 2);
  ASSERT_EQ(tokens.size(), 4u);
  for (const int64_t x : tokens) EXPECT_NEAR(static_cast<double>(x), 8224.0 / 4, 64.0);
}

TEST(DecodeSplit, TaskCountIsAMultipleOfTheThreadsAndEachTaskIsWithinAPageOfItsShare) {
  std::mt19937 rng(7);
  for (const int threads : {1, 2, 3, 4, 8, 16}) {
    for (const int n_pages : {1, 2, 5, 17, 64, 129, 300, 1000}) {
      std::vector<int> t(static_cast<size_t>(n_pages), 64);
      t.back() = 1 + static_cast<int>(rng() % 64);  // the page being filled
      const auto tokens = task_tokens(pages_of(t), threads);
      SCOPED_TRACE(std::to_string(threads) + " threads, " + std::to_string(n_pages) + " pages");
      int64_t total = 0;
      for (const int x : t) total += x;
      int64_t sum = 0;
      for (const int64_t x : tokens) sum += x;
      EXPECT_EQ(sum, total);
      if (static_cast<int64_t>(tokens.size()) < n_pages) {
        // Pages enough for every task: the count is threads x k, and each task is within a page
        // of its share (each cut within half a page of its place).
        EXPECT_EQ(tokens.size() % static_cast<size_t>(threads), 0u);
        const double share = static_cast<double>(total) / static_cast<double>(tokens.size());
        for (const int64_t x : tokens) EXPECT_LE(std::abs(static_cast<double>(x) - share), 64.0);
      }
      // Tasks of about 2,048 tokens (within rounding to a multiple of the threads), never below
      // the minimum unless the cache itself is that small.
      if (total >= 2 * threads * 2048) {
        for (const int64_t x : tokens) {
          EXPECT_GE(x, 2048 * 2 / 3 - 64);
          EXPECT_LE(x, 2048 * 3 / 2 + 64);
        }
      }
    }
  }
}

TEST(DecodeSplit, EmptyPagesGoAlongAndAnEmptyCacheHasNoTasks) {
  std::vector<int64_t> parts;
  split_decode_pages(pages_of({0, 0, 0}), 2, parts);
  EXPECT_TRUE(parts.empty());
  split_decode_pages({}, 2, parts);
  EXPECT_TRUE(parts.empty());
  // Empty pages in front, inside and at the end (the store's layout views have them).
  std::vector<int> t = {0};
  for (int i = 0; i < 64; ++i) t.push_back(i == 30 ? 0 : 64);
  t.push_back(0);
  const auto tokens = task_tokens(pages_of(t), 2);
  ASSERT_EQ(tokens.size(), 4u);  // 63 pages, 4,032 tokens: two tasks a thread of ~1,008
  for (const int64_t x : tokens) EXPECT_NEAR(static_cast<double>(x), 1008.0, 64.0);
}

TEST(DecodeSplit, SmallCachesGetFewerLargerTasks) {
  // 300 tokens on 2 threads: tasks of >= 128 tokens, so 2, not 4.
  EXPECT_EQ(task_tokens(pages_of({64, 64, 64, 64, 44}), 2).size(), 2u);
  // One page: one task, whatever the threads.
  EXPECT_EQ(task_tokens(pages_of({17}), 4).size(), 1u);
}

}  // namespace
}  // namespace kvbits
