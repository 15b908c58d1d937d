// split_decode_pages: tasks cover every page in order, one a thread (fewer when there are fewer
// pages), and each holds its share of the tokens to within a page (the lanes of
// backend/chunk_lanes.h start even); empty pages go along.
#include "ops/decode_split.h"

#include <gtest/gtest.h>

#include <algorithm>
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

TEST(DecodeSplit, DepthNotAMultipleOfThePageStaysEven) {
  // Depth 8192 + 32 in 64-token pages on 2 threads: two tasks of 64-65 pages.
  std::vector<int> t(128, 64);
  t.push_back(32);
  const auto tokens = task_tokens(pages_of(t), 2);
  ASSERT_EQ(tokens.size(), 2u);
  for (const int64_t x : tokens) EXPECT_NEAR(static_cast<double>(x), 8224.0 / 2, 32.0);
}

TEST(DecodeSplit, OneTaskAThreadEachWithinAPageOfItsShare) {
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
      if (n_pages > threads) {
        // Pages enough for every thread: one task each, each within a page of its share (each
        // cut within half a page of its place).
        EXPECT_EQ(tokens.size(), static_cast<size_t>(threads));
        const double share = static_cast<double>(total) / threads;
        for (const int64_t x : tokens) EXPECT_LE(std::abs(static_cast<double>(x) - share), 64.0);
      } else {
        // Fewer pages than threads: at most one task a page.
        EXPECT_LE(tokens.size(), static_cast<size_t>(n_pages));
      }
    }
  }
}

TEST(DecodeSplit, EveryPageIsInTheTaskOfItsMidpoint) {
  // The rule of decode_split.h: page p in task min(n - 1, floor((tokens before p + half of p's
  // own) * n / total)), n = threads; checked page by page on random caches (empty pages, partial
  // pages, more threads than pages).
  std::mt19937 rng(11);
  for (int it = 0; it < 2000; ++it) {
    const int threads = 1 + static_cast<int>(rng() % 20);
    std::vector<int> t(rng() % 300);
    for (int& x : t) x = rng() % 5 == 0 ? 0 : 1 + static_cast<int>(rng() % 64);
    const std::vector<KvPageRef> pages = pages_of(t);
    std::vector<int64_t> parts;
    split_decode_pages(pages, threads, parts);
    int64_t total = 0;
    for (const int x : t) total += x;
    if (total == 0) {
      EXPECT_TRUE(parts.empty());
      continue;
    }
    // Tasks as numbered by the rule; each part must hold one task number's pages, in order.
    std::vector<int64_t> task_of(t.size());
    int64_t before = 0;
    for (size_t p = 0; p < t.size(); ++p) {
      task_of[p] = std::min<int64_t>(threads - 1, (2 * before + t[p]) * threads / (2 * total));
      before += t[p];
    }
    ASSERT_FALSE(parts.empty());
    for (size_t i = 0; i + 1 < parts.size(); i += 2) {
      for (int64_t p = parts[i]; p < parts[i + 1]; ++p) {
        EXPECT_EQ(task_of[static_cast<size_t>(p)], task_of[static_cast<size_t>(parts[i])]) << "page " << p;
      }
      if (i > 0) EXPECT_GT(task_of[static_cast<size_t>(parts[i])], task_of[static_cast<size_t>(parts[i - 2])]);
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
  ASSERT_EQ(tokens.size(), 2u);  // 63 pages, 4,032 tokens: a task a thread of ~2,016
  for (const int64_t x : tokens) EXPECT_NEAR(static_cast<double>(x), 2016.0, 64.0);
}

TEST(DecodeSplit, SmallCachesGetATaskAThreadOrAPage) {
  // 300 tokens on 2 threads: two tasks of ~150.
  const auto two = task_tokens(pages_of({64, 64, 64, 64, 44}), 2);
  ASSERT_EQ(two.size(), 2u);
  for (const int64_t x : two) EXPECT_NEAR(static_cast<double>(x), 150.0, 64.0);
  // One page: one task, whatever the threads; three pages on 8 threads: a task a page.
  EXPECT_EQ(task_tokens(pages_of({17}), 4).size(), 1u);
  EXPECT_EQ(task_tokens(pages_of({64, 64, 9}), 8).size(), 3u);
}

}  // namespace
}  // namespace kvbits
