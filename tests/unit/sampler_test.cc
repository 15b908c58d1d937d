#include "engine/sampler.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <functional>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "util/error.h"

namespace kvbits {
namespace {

constexpr float kInf = std::numeric_limits<float>::infinity();
constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();

// Options with every filter off: plain softmax sampling at the given temperature.
SamplerOptions plain(float temperature, uint64_t seed = 1) {
  SamplerOptions o;
  o.temperature = temperature;
  o.top_k = 0;
  o.top_p = 1.0f;
  o.min_p = 0.0f;
  o.repeat_penalty = 1.0f;
  o.seed = seed;
  return o;
}

// Deterministic pseudo-random logits shaped like a model's (roughly N(0, 3)).
std::vector<float> random_logits(size_t n, uint32_t seed) {
  std::mt19937 gen(seed);
  std::vector<float> v(n);
  for (float& x : v) x = static_cast<float>((static_cast<double>(gen()) / 4294967296.0 - 0.5) * 10.0);
  return v;
}

// sample() treats its argument as scratch, so every draw gets a fresh copy.
int32_t draw(Sampler& s, const std::vector<float>& logits) {
  std::vector<float> scratch = logits;
  return s.sample(scratch);
}

std::vector<int> histogram(Sampler& s, const std::vector<float>& logits, int draws) {
  std::vector<int> counts(logits.size(), 0);
  for (int i = 0; i < draws; ++i) ++counts[static_cast<size_t>(draw(s, logits))];
  return counts;
}

std::vector<double> softmax(const std::vector<float>& logits, double temperature) {
  double mx = -std::numeric_limits<double>::infinity();
  for (float l : logits) mx = std::max(mx, static_cast<double>(l));
  std::vector<double> p(logits.size());
  double z = 0.0;
  for (size_t i = 0; i < logits.size(); ++i) z += p[i] = std::exp((logits[i] - mx) / temperature);
  for (double& x : p) x /= z;
  return p;
}

// Each count is Binomial(n, p_i): mean n*p_i, standard deviation sqrt(n*p_i*(1-p_i)). A correct
// sampler lands outside 5 standard deviations with probability ~6e-7 per token, so the test does not
// depend on the particular seed; a biased one (e.g. 2 points off at p = 0.3 over 20000 draws, about
// 6 sd) fails. Tokens with p = 0 must never appear.
void expect_matches(const std::vector<int>& counts, const std::vector<double>& p, int n) {
  ASSERT_EQ(counts.size(), p.size());
  for (size_t i = 0; i < p.size(); ++i) {
    const double mean = n * p[i];
    const double sd = std::sqrt(n * p[i] * (1.0 - p[i]));
    if (p[i] == 0.0) {
      EXPECT_EQ(counts[i], 0) << "token " << i;
    } else {
      EXPECT_NEAR(counts[i], mean, 5.0 * sd) << "token " << i << " p=" << p[i];
    }
  }
}

TEST(SamplerArgmax, TiesGoToLowestIndexAndNaNIsSkipped) {
  EXPECT_EQ(argmax(std::vector<float>{1.0f, 3.0f, 3.0f, 2.0f}), 1);
  EXPECT_EQ(argmax(std::vector<float>{kNaN, 0.5f, kNaN, 0.7f}), 3);
  EXPECT_EQ(argmax(std::vector<float>{kNaN, -kInf, -kInf}), 1);
  EXPECT_EQ(argmax(std::vector<float>{-kInf, -kInf}), 0);
  EXPECT_EQ(argmax(std::vector<float>{4.0f}), 0);
  EXPECT_THROW(argmax(std::vector<float>{kNaN, kNaN}), Error);
  EXPECT_THROW(argmax(std::vector<float>{}), Error);
}

TEST(Sampler, GreedyEqualsArgmax) {
  Sampler s(plain(0.0f));
  for (uint32_t row = 0; row < 20; ++row) {
    const std::vector<float> logits = random_logits(1000, row);
    EXPECT_EQ(draw(s, logits), argmax(logits));
  }
  // Greedy ignores top-k/top-p/min-p entirely.
  SamplerOptions o;
  o.temperature = 0.0f;
  Sampler d(o);
  const std::vector<float> logits = random_logits(1000, 99);
  EXPECT_EQ(draw(d, logits), argmax(logits));
}

TEST(Sampler, SameSeedSameSequenceDifferentSeedDifferent) {
  const std::vector<float> logits = random_logits(100, 7);
  auto run = [&](uint64_t seed) {
    SamplerOptions o;  // defaults: top-k 40, top-p 0.95, min-p 0.05
    o.temperature = 1.5f;
    o.seed = seed;
    Sampler s(o);
    std::vector<int32_t> out;
    for (int i = 0; i < 200; ++i) out.push_back(draw(s, logits));
    return out;
  };
  const std::vector<int32_t> a = run(42);
  EXPECT_EQ(a, run(42));
  EXPECT_NE(a, run(43));

  // reset() re-seeds: the sequence starts over.
  SamplerOptions o;
  o.temperature = 1.5f;
  o.seed = 42;
  Sampler s(o);
  for (int i = 0; i < 50; ++i) draw(s, logits);
  s.reset();
  std::vector<int32_t> again;
  for (int i = 0; i < 200; ++i) again.push_back(draw(s, logits));
  EXPECT_EQ(a, again);
}

TEST(Sampler, TopK1EqualsGreedyOnFullVocab) {
  SamplerOptions o = plain(1.0f, 5);
  o.top_k = 1;
  Sampler s(o);
  for (uint32_t row = 0; row < 10; ++row) {
    std::vector<float> logits = random_logits(49152, 100 + row);
    logits[123] = logits[77] = 100.0f;  // a tie at the top: greedy takes the lower id
    EXPECT_EQ(draw(s, logits), 77);
    logits[123] = logits[77] = 0.0f;
    EXPECT_EQ(draw(s, logits), argmax(logits));
  }
}

TEST(Sampler, FrequenciesMatchSoftmax) {
  const std::vector<float> logits = {1.0f, 2.0f, 0.5f, -1.0f, 3.0f, 0.0f, -kInf, 2.5f};
  constexpr int kDraws = 20000;
  for (const float t : {1.0f, 0.7f, 2.0f}) {
    SCOPED_TRACE(t);
    Sampler s(plain(t, 12345));
    expect_matches(histogram(s, logits, kDraws), softmax(logits, t), kDraws);
  }
}

TEST(Sampler, TopKRenormalisesOverTheKBest) {
  const std::vector<float> logits = {1.0f, 2.0f, 0.5f, -1.0f, 3.0f, 0.0f, 2.5f};
  SamplerOptions o = plain(0.8f, 777);
  o.top_k = 3;  // keeps ids 4, 6, 1
  Sampler s(o);
  constexpr int kDraws = 20000;
  std::vector<float> kept(logits.size(), -kInf);
  for (int id : {1, 4, 6}) kept[static_cast<size_t>(id)] = logits[static_cast<size_t>(id)];
  expect_matches(histogram(s, logits, kDraws), softmax(kept, 0.8), kDraws);
}

// Logits whose softmax is exactly {0.5, 0.3, 0.15, 0.05}.
std::vector<float> four_tokens() {
  return {std::log(0.5f), std::log(0.3f), std::log(0.15f), std::log(0.05f)};
}

TEST(Sampler, TopPExcludesTheTail) {
  // Cumulative 0.5, 0.8, 0.95, 1.0: top_p = 0.75 keeps the first two (the crossing token is kept).
  SamplerOptions o = plain(1.0f, 3);
  o.top_p = 0.75f;
  Sampler s(o);
  const std::vector<int> counts = histogram(s, four_tokens(), 5000);
  EXPECT_GT(counts[0], 0);
  EXPECT_GT(counts[1], 0);
  EXPECT_EQ(counts[2], 0);
  EXPECT_EQ(counts[3], 0);
  // Kept tokens are renormalised: 0.5/0.8 and 0.3/0.8.
  expect_matches(counts, {0.625, 0.375, 0.0, 0.0}, 5000);
}

TEST(Sampler, TopPCutsInsideALargeTie) {
  // 1000 equal logits: top_p = 0.5 needs 500 tokens, found by several rounds of the mass quickselect
  // (not just its small-range sort); ties rank by id, so exactly ids 0..499 are kept.
  const std::vector<float> logits(1000, 0.25f);
  SamplerOptions o = plain(1.0f, 9);
  o.top_p = 0.5f;
  Sampler s(o);
  const std::vector<int> counts = histogram(s, logits, 4000);
  int inside = 0, outside = 0;
  for (size_t i = 0; i < counts.size(); ++i) (i < 500 ? inside : outside) += counts[i];
  EXPECT_EQ(outside, 0);
  EXPECT_EQ(inside, 4000);
  EXPECT_GT(counts[0], 0);
  EXPECT_GT(counts[499], 0);
}

TEST(Sampler, TopPMatchesASortingReference) {
  // Reference: sort by (logit desc, id asc), keep the shortest prefix reaching top_p of the mass.
  // A huge temperature makes the survivors nearly uniform, so draws land all over the kept set,
  // including next to the boundary, and any token past the boundary would show up.
  const std::vector<float> logits = random_logits(8192, 55);
  std::vector<int32_t> order(logits.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = static_cast<int32_t>(i);
  std::sort(order.begin(), order.end(), [&](int32_t a, int32_t b) {
    const float la = logits[static_cast<size_t>(a)], lb = logits[static_cast<size_t>(b)];
    return la > lb || (la == lb && a < b);
  });
  const std::vector<double> p = softmax(logits, 1.0);
  std::vector<int> rank(logits.size());
  size_t keep = 0;
  double cumulative = 0.0;
  for (size_t r = 0; r < order.size(); ++r) rank[static_cast<size_t>(order[r])] = static_cast<int>(r);
  while (cumulative < 0.9) cumulative += p[static_cast<size_t>(order[keep++])];
  ASSERT_GT(keep, 100u);  // the interesting case: a boundary deep in the vocabulary

  SamplerOptions o = plain(1000.0f, 21);
  o.top_p = 0.9f;
  Sampler s(o);
  int near_boundary = 0;
  for (int i = 0; i < 500; ++i) {
    const int r = rank[static_cast<size_t>(draw(s, logits))];
    ASSERT_LT(r, static_cast<int>(keep));
    near_boundary += r >= static_cast<int>(keep * 9 / 10);
  }
  EXPECT_GT(near_boundary, 0);
}

TEST(Sampler, MinPExcludesTokensBelowFractionOfMax) {
  // p_max = 0.5; min_p = 0.2 keeps p >= 0.1: tokens 0..2, not token 3 (0.05).
  SamplerOptions o = plain(1.0f, 4);
  o.min_p = 0.2f;
  Sampler s(o);
  const std::vector<int> counts = histogram(s, four_tokens(), 5000);
  EXPECT_EQ(counts[3], 0);
  expect_matches(counts, {0.5 / 0.95, 0.3 / 0.95, 0.15 / 0.95, 0.0}, 5000);
}

TEST(Sampler, FiltersJudgeTheUntemperedDistribution) {
  // llama.cpp order: top-p/min-p see temperature-1 probabilities; a high temperature afterwards
  // flattens the survivors but cannot bring excluded tokens back.
  SamplerOptions o = plain(5.0f, 8);
  o.top_p = 0.75f;
  Sampler s(o);
  const std::vector<int> counts = histogram(s, four_tokens(), 5000);
  EXPECT_EQ(counts[2] + counts[3], 0);
}

TEST(Sampler, RepeatPenaltyChangesArgmax) {
  SamplerOptions o = plain(0.0f);
  o.repeat_penalty = 1.1f;
  Sampler s(o);
  // Positive logit divided: 2.0 / 1.1 = 1.82 < 1.9.
  EXPECT_EQ(draw(s, {2.0f, 1.9f}), 0);
  s.accept(0);
  EXPECT_EQ(draw(s, {2.0f, 1.9f}), 1);
  // Negative logit multiplied: -1.0 * 1.1 = -1.1 < -1.05.
  EXPECT_EQ(draw(s, {-1.0f, -1.05f}), 1);
  // Penalised once however often the token repeats: 2.0 / 1.1 = 1.82 > 1.7, but / 1.1^3 would not be.
  s.accept(0);
  s.accept(0);
  EXPECT_EQ(draw(s, {2.0f, 1.7f}), 0);
  // Ids beyond this row's vocabulary are ignored rather than written out of bounds.
  s.accept(1000);
  EXPECT_EQ(draw(s, {2.0f, 1.9f}), 1);
  // reset() forgets the history.
  s.reset();
  EXPECT_EQ(draw(s, {2.0f, 1.9f}), 0);
}

TEST(Sampler, RepeatPenaltyOnlyLooksAtTheWindow) {
  SamplerOptions o = plain(0.0f);
  o.repeat_penalty = 1.5f;
  o.repeat_last_n = 2;
  Sampler s(o);
  s.accept(0);
  EXPECT_EQ(draw(s, {2.0f, 1.9f, 0.0f}), 1);
  s.accept(2);
  EXPECT_EQ(draw(s, {2.0f, 1.9f, 0.0f}), 1);  // window {0, 2}
  s.accept(2);
  EXPECT_EQ(draw(s, {2.0f, 1.9f, 0.0f}), 0);  // window {2, 2}: token 0 has left it

  o.repeat_last_n = 0;  // no window: no penalty
  Sampler none(o);
  none.accept(0);
  EXPECT_EQ(draw(none, {2.0f, 1.9f}), 0);
}

TEST(Sampler, InvalidOptionsThrow) {
  auto with = [](auto&& edit) {
    SamplerOptions o;
    edit(o);
    return o;
  };
  EXPECT_NO_THROW(validate(SamplerOptions{}));
  EXPECT_NO_THROW(validate(with([](SamplerOptions& o) { o.temperature = 0.0f; })));
  EXPECT_NO_THROW(validate(with([](SamplerOptions& o) { o.top_p = 1.0f; o.min_p = 1.0f; o.top_k = -3; })));
  EXPECT_THROW(validate(with([](SamplerOptions& o) { o.temperature = -0.1f; })), Error);
  EXPECT_THROW(validate(with([](SamplerOptions& o) { o.temperature = kNaN; })), Error);
  EXPECT_THROW(validate(with([](SamplerOptions& o) { o.temperature = kInf; })), Error);
  EXPECT_THROW(validate(with([](SamplerOptions& o) { o.top_p = 0.0f; })), Error);
  EXPECT_THROW(validate(with([](SamplerOptions& o) { o.top_p = 1.01f; })), Error);
  EXPECT_THROW(validate(with([](SamplerOptions& o) { o.top_p = kNaN; })), Error);
  EXPECT_THROW(validate(with([](SamplerOptions& o) { o.min_p = -0.01f; })), Error);
  EXPECT_THROW(validate(with([](SamplerOptions& o) { o.min_p = 1.5f; })), Error);
  EXPECT_THROW(validate(with([](SamplerOptions& o) { o.repeat_penalty = 0.0f; })), Error);
  EXPECT_THROW(validate(with([](SamplerOptions& o) { o.repeat_penalty = -1.0f; })), Error);
  EXPECT_THROW(validate(with([](SamplerOptions& o) { o.repeat_last_n = -1; })), Error);
  EXPECT_THROW(Sampler(with([](SamplerOptions& o) { o.top_p = 2.0f; })), Error);
  try {
    validate(with([](SamplerOptions& o) { o.min_p = 2.0f; }));
    FAIL();
  } catch (const Error& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("min_p"), std::string::npos) << what;
    EXPECT_EQ(what.find('\n'), std::string::npos) << what;
  }
}

TEST(Sampler, DegenerateRows) {
  SamplerOptions o;  // defaults, sampling
  Sampler s(o);
  // Vocabulary of one.
  EXPECT_EQ(draw(s, {-3.0f}), 0);
  // -inf and NaN are never drawn, whatever the temperature.
  o = plain(100.0f, 11);
  Sampler hot(o);
  const std::vector<float> holes = {-kInf, 0.0f, kNaN, 0.0f, -kInf};
  const std::vector<int> counts = histogram(hot, holes, 2000);
  EXPECT_EQ(counts[0] + counts[2] + counts[4], 0);
  EXPECT_GT(counts[1], 0);
  EXPECT_GT(counts[3], 0);
  // All-equal logits: uniform.
  const std::vector<float> flat(8, 1.5f);
  expect_matches(histogram(hot, flat, 8000), std::vector<double>(8, 0.125), 8000);
  // +inf wins outright, shared uniformly among the +inf tokens.
  const std::vector<int> inf_counts = histogram(hot, {kInf, 1e30f, kInf, kNaN}, 2000);
  EXPECT_EQ(inf_counts[1] + inf_counts[3], 0);
  EXPECT_GT(inf_counts[0], 0);
  EXPECT_GT(inf_counts[2], 0);
  EXPECT_EQ(draw(s, {1.0f, kInf}), 1);
  // Nothing samplable: a clear error rather than a made-up token.
  EXPECT_THROW(draw(hot, {kNaN, -kInf}), Error);
  EXPECT_THROW(draw(hot, {}), Error);
  Sampler greedy(plain(0.0f));
  EXPECT_THROW(draw(greedy, {kNaN, kNaN}), Error);
  EXPECT_EQ(draw(greedy, {kNaN, -1.0f}), 1);
}

TEST(Sampler, DefaultChainOnFullVocabStaysInTopK) {
  // The default chain on a realistic vocabulary only ever returns one of the top_k best ids.
  SamplerOptions o;
  o.temperature = 1.0f;
  o.top_k = 40;
  o.top_p = 1.0f;
  o.min_p = 0.0f;
  o.seed = 2024;
  Sampler s(o);
  const std::vector<float> logits = random_logits(49152, 31);
  std::vector<float> sorted = logits;
  std::nth_element(sorted.begin(), sorted.begin() + 39, sorted.end(), std::greater<float>());
  const float kth = sorted[39];
  for (int i = 0; i < 200; ++i) EXPECT_GE(logits[static_cast<size_t>(draw(s, logits))], kth);
}

TEST(Sampler, TopKBoundGivesTheSameDrawsAsTheKBestAlone) {
  // The sampler turns only logits >= a bound into candidates when top-k is on (sampler.cc). The
  // reference row keeps the k best by (logit, then lower id) and sets the rest to -inf, and is
  // sampled without top-k: its candidates are exactly the top-k set. Same seed, same draws.
  // Top-p and min-p are off and the temperature high, so every token of the top-k set has a
  // visible probability and a wrong set changes the draws (checked by breaking the widening and
  // the bisection in turn). Rows: uniform logits (the first bound already holds thousands); 60
  // tokens in [0.5, 5.5] in steps of 0.5 (ties at the k-th value) among 2940 in [-4.2, -3.8] (for
  // k = 70 and 100 the bound widens past the 60, then bisects back); 30 finite values among -inf
  // (for k = 40, 70 and 100 the bound widens to the lowest float).
  std::vector<std::vector<float>> rows;
  rows.push_back(random_logits(49152, 5));
  std::vector<float> clustered = random_logits(3000, 6);
  for (size_t i = 0; i < clustered.size(); ++i) {
    clustered[i] = i % 50 == 7 ? std::round(clustered[i] + 5.0f) * 0.5f + 0.5f : clustered[i] * 0.04f - 4.0f;
  }
  rows.push_back(clustered);
  std::vector<float> sparse(1000, -kInf);
  for (size_t i = 0; i < 30; ++i) sparse[i * 31] = static_cast<float>(i % 7);
  rows.push_back(sparse);
  for (const int k : {1, 5, 40, 70, 100}) {
    for (size_t r = 0; r < rows.size(); ++r) {
      const std::vector<float>& row = rows[r];
      std::vector<size_t> order(row.size());
      for (size_t i = 0; i < order.size(); ++i) order[i] = i;
      std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return row[a] > row[b]; });
      std::vector<float> kept(row.size(), -kInf);
      for (size_t i = 0; i < std::min<size_t>(static_cast<size_t>(k), order.size()); ++i) {
        kept[order[i]] = row[order[i]];
      }
      const SamplerOptions plain_options = plain(2.0f, 99 + static_cast<uint64_t>(r));
      SamplerOptions o = plain_options;
      o.top_k = k;
      Sampler with_bound(o), reference(plain_options);  // the reference row needs no top-k
      for (int i = 0; i < 400; ++i) {
        ASSERT_EQ(draw(with_bound, row), draw(reference, kept)) << "k " << k << " row " << r << " draw " << i;
      }
    }
  }
}

}  // namespace
}  // namespace kvbits
