#include "eval/metrics.h"

#include <gtest/gtest.h>

#include <cmath>

#include "eval_test_util.h"

namespace kvbits::eval {
namespace {

McRecord rec(int64_t index, int gold, std::vector<double> ll, std::vector<int64_t> len) {
  return McRecord{index, gold, std::move(ll), std::move(len)};
}

TEST(EvalMetrics, CodePoints) {
  EXPECT_EQ(count_code_points(""), 0);
  EXPECT_EQ(count_code_points("abc"), 3);
  EXPECT_EQ(count_code_points("caf\xc3\xa9"), 4);            // café
  EXPECT_EQ(count_code_points("\xe2\x82\xac" "1"), 2);       // €1
  EXPECT_EQ(count_code_points("\xf0\x9f\x98\x80!"), 2);      // emoji + !
}

TEST(EvalMetrics, ArgmaxTakesTheFirstOnTies) {
  EXPECT_EQ(argmax_first(std::vector<double>{-3, -1, -1, -2}), 1);
  EXPECT_EQ(argmax_first(std::vector<double>{-1}), 0);
  EXPECT_EQ(argmax_first(std::vector<double>{-2, -2}), 0);
}

TEST(EvalMetrics, AccAndAccNorm) {
  // Choice 0 wins on the sum, choice 1 per character.
  const McRecord r = rec(0, 1, {-4.0, -6.0}, {2, 12});
  EXPECT_EQ(predict(r), 0);
  EXPECT_EQ(predict_norm(r), 1);
  EXPECT_FALSE(correct(r));
  EXPECT_TRUE(correct_norm(r));
  const std::vector<McRecord> rs = {r, rec(1, 0, {-1, -2, -3}, {1, 1, 1}), rec(2, 2, {-1, -2, -3}, {1, 1, 1}),
                                    rec(3, 0, {-1, -1}, {1, 1})};
  const McMetrics m = mc_metrics(rs);
  EXPECT_EQ(m.n, 4);
  EXPECT_DOUBLE_EQ(m.acc, 0.5);       // items 1, 3 (tie -> first)
  EXPECT_DOUBLE_EQ(m.acc_norm, 0.75);  // items 0, 1, 3
  EXPECT_DOUBLE_EQ(m.acc_stderr, std::sqrt(0.25 / 4));
  EXPECT_DOUBLE_EQ(m.acc_norm_stderr, std::sqrt(0.75 * 0.25 / 4));
  EXPECT_THROW(mc_metrics({}), Error);
}

TEST(EvalMetrics, Validate) {
  EXPECT_NO_THROW(validate(rec(0, 1, {-1, -2}, {1, 1}), "f"));
  EXPECT_EQ(testing::error_of([] { validate(rec(4, 2, {-1, -2}, {1, 1}), "f.json"); }), "f.json: item 4: gold 2 out of range");
  EXPECT_THROW(validate(rec(0, 0, {-1}, {1}), "f"), Error);
  EXPECT_THROW(validate(rec(0, 0, {-1, -2}, {1}), "f"), Error);
  EXPECT_THROW(validate(rec(0, 0, {-1, NAN}, {1, 1}), "f"), Error);
  EXPECT_THROW(validate(rec(0, 0, {-1, -2}, {1, 0}), "f"), Error);
  EXPECT_THROW(validate(PplWindow{0, -1, 10, 10}, "f"), Error);
  EXPECT_THROW(validate(PplWindow{0, 1, 0, 10}, "f"), Error);
}

TEST(EvalMetrics, PairedDifference) {
  // A right on items 0, 1; B right on 1, 2, 3. d = (-1, 0, 1, 1), mean 0.25, sample sd sqrt(11/12).
  const auto right = [](int64_t i, bool ok) { return rec(i, 0, ok ? std::vector<double>{-1, -2} : std::vector<double>{-2, -1}, {1, 1}); };
  const std::vector<McRecord> a = {right(0, true), right(1, true), right(2, false), right(3, false), right(9, true)};
  const std::vector<McRecord> b = {right(3, true), right(2, true), right(1, true), right(0, false)};
  const McPaired p = paired_mc(a, b);
  EXPECT_EQ(p.acc.n, 4);
  EXPECT_EQ(p.n_only_a, 1);
  EXPECT_EQ(p.n_only_b, 0);
  EXPECT_DOUBLE_EQ(p.acc.mean, 0.25);
  EXPECT_NEAR(p.acc.se, std::sqrt(11.0 / 12.0) / 2.0, 1e-12);
  EXPECT_DOUBLE_EQ(p.acc_norm.mean, 0.25);
  // Same run against itself: no difference, zero error.
  const McPaired self = paired_mc(a, a);
  EXPECT_EQ(self.acc.mean, 0.0);
  EXPECT_EQ(self.acc.se, 0.0);
  EXPECT_TRUE(std::isnan(paired_mc(std::vector<McRecord>{a[0]}, std::vector<McRecord>{a[0]}).acc.se));
  EXPECT_THROW(paired_mc(a, std::vector<McRecord>{right(7, true)}), Error);                 // nothing in common
  EXPECT_THROW(paired_mc(a, std::vector<McRecord>{rec(0, 1, {-1, -2}, {1, 1})}), Error);  // gold differs
}

TEST(EvalMetrics, Perplexity) {
  const std::vector<PplWindow> w = {{0, 100.0, 50, 200}, {1, 60.0, 30, 120}};
  const PplMetrics m = ppl_metrics(w);
  EXPECT_EQ(m.windows, 2);
  EXPECT_EQ(m.tokens, 80);
  EXPECT_EQ(m.bytes, 320);
  EXPECT_DOUBLE_EQ(m.nll, 160.0);
  EXPECT_DOUBLE_EQ(m.ppl, std::exp(2.0));
  EXPECT_DOUBLE_EQ(m.bits_per_byte, 160.0 / (std::log(2.0) * 320));
  EXPECT_THROW(ppl_metrics({}), Error);
}

}  // namespace
}  // namespace kvbits::eval
