#include "engine/sampler.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <optional>
#include <string>

#include "ops/logit_scan.h"
#include "util/error.h"

namespace kvbits {
namespace {

constexpr float kNegInf = -std::numeric_limits<float>::infinity();

std::string fmt(float v) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%g", static_cast<double>(v));
  return buf;
}

// The rank order behind every filter: higher logit first, ties by lower id. It is a strict total
// order, so each filter keeps a set that does not depend on how a standard library implements
// partition or heaps. Top-k, top-p and min-p each keep a *prefix* of this order, so a filter can be
// expressed as "keep everything that ranks at or before this boundary candidate", applied with a
// stable pass that leaves the survivors in token id order (the canonical visiting order).
template <typename C>
bool ranks_before(const C& a, const C& b) {
  return a.logit > b.logit || (a.logit == b.logit && a.id < b.id);
}

// The k-th best candidate of c (k < c.size()). A heap holding the k best seen so far, worst on top:
// on a 49152-token row almost every candidate loses to the worst with a single comparison, so this
// is one cheap pass instead of nth_element's several over an array of structs.
template <typename C>
C kth_best(std::span<const C> c, size_t k, std::vector<C>& heap) {
  const auto cmp = ranks_before<C>;  // as a heap "less": the front is the worst-ranked
  heap.assign(c.begin(), c.begin() + static_cast<std::ptrdiff_t>(k));
  std::make_heap(heap.begin(), heap.end(), cmp);
  for (size_t i = k; i < c.size(); ++i) {
    if (!ranks_before(c[i], heap.front())) continue;
    std::pop_heap(heap.begin(), heap.end(), cmp);
    heap.back() = c[i];
    std::push_heap(heap.begin(), heap.end(), cmp);
  }
  return heap.front();
}

// The last candidate of the shortest rank-ordered prefix whose weight reaches target (top-p's
// boundary), or nullopt if no prefix short of everything does. A quickselect on probability mass:
// partition around a pivot, keep the side that holds the crossing point. Expected O(n), where sorting
// would be O(n log n) and top-p without top-k may keep thousands of tokens. Reorders c.
template <typename C>
std::optional<C> top_p_boundary(std::span<C> c, double target) {
  const auto cmp = ranks_before<C>;
  size_t lo = 0, hi = c.size();
  double before = 0.0;  // weight of everything ranked before c[lo..hi)
  while (hi - lo > 32) {
    // Median of three, moved to hi - 1, keeps already-ordered input from going quadratic.
    size_t a = lo, b = lo + (hi - lo) / 2, d = hi - 1;
    if (cmp(c[b], c[a])) std::swap(a, b);
    if (cmp(c[d], c[b])) std::swap(b, d);
    if (cmp(c[b], c[a])) std::swap(a, b);
    std::swap(c[b], c[hi - 1]);
    const C pivot = c[hi - 1];
    const auto split = std::partition(c.begin() + static_cast<std::ptrdiff_t>(lo),
                                      c.begin() + static_cast<std::ptrdiff_t>(hi - 1),
                                      [&](const C& x) { return cmp(x, pivot); });
    const size_t mid = static_cast<size_t>(split - c.begin());
    std::swap(c[mid], c[hi - 1]);  // [lo, mid) rank before the pivot, (mid, hi) after
    double mass = 0.0;
    for (size_t i = lo; i < mid; ++i) mass += c[i].weight;
    if (before + mass >= target) {
      hi = mid;  // non-empty: before < target, so mass > 0
    } else if (before + mass + c[mid].weight >= target) {
      return c[mid];
    } else {
      before += mass + c[mid].weight;
      lo = mid + 1;
    }
  }
  std::sort(c.begin() + static_cast<std::ptrdiff_t>(lo), c.begin() + static_cast<std::ptrdiff_t>(hi),
            cmp);
  for (size_t i = lo; i < hi; ++i) {
    before += c[i].weight;
    if (before >= target) return c[i];
  }
  return std::nullopt;  // rounding kept the sum just under target: keep everything
}

// Keeps, in their current order, the candidates ranked at or before boundary.
template <typename C>
std::span<C> keep_through(std::span<C> c, const C& boundary) {
  const auto end = std::remove_if(c.begin(), c.end(),
                                  [&](const C& x) { return ranks_before(boundary, x); });
  return c.first(static_cast<size_t>(end - c.begin()));
}

}  // namespace

void validate(const SamplerOptions& o) {
  // Comparisons are written so that NaN fails them.
  if (!(o.temperature >= 0.0f) || !std::isfinite(o.temperature)) {
    throw Error("sampler: temperature must be a finite number >= 0 (0 = greedy), got " +
                fmt(o.temperature));
  }
  if (!(o.top_p > 0.0f && o.top_p <= 1.0f)) {
    throw Error("sampler: top_p must be in (0, 1] (1 = disabled), got " + fmt(o.top_p));
  }
  if (!(o.min_p >= 0.0f && o.min_p <= 1.0f)) {
    throw Error("sampler: min_p must be in [0, 1] (0 = disabled), got " + fmt(o.min_p));
  }
  if (!(o.repeat_penalty > 0.0f) || !std::isfinite(o.repeat_penalty)) {
    throw Error("sampler: repeat_penalty must be a finite number > 0 (1 = disabled), got " +
                fmt(o.repeat_penalty));
  }
  if (o.repeat_last_n < 0) {
    throw Error("sampler: repeat_last_n must be >= 0, got " + std::to_string(o.repeat_last_n));
  }
}

int32_t argmax(std::span<const float> logits) {
  if (logits.empty()) throw Error("argmax: empty logits");
  const int64_t best = max_index(logits);  // ops/logit_scan.h: lowest index among ties, NaN skipped
  if (best < 0) throw Error("argmax: every logit is NaN");
  return static_cast<int32_t>(best);
}

Sampler::Sampler(const SamplerOptions& options) : options_(options) {
  validate(options_);
  history_.reserve(static_cast<size_t>(options_.repeat_last_n));
  reset();
}

void Sampler::reset() {
  rng_.seed(options_.seed);
  history_.clear();
  history_next_ = 0;
}

void Sampler::accept(int32_t token) {
  const size_t window = static_cast<size_t>(options_.repeat_last_n);
  if (window == 0) return;
  if (history_.size() < window) {
    history_.push_back(token);
  } else {
    history_[history_next_] = token;
    history_next_ = (history_next_ + 1) % window;
  }
}

double Sampler::uniform01() {
  // Top 53 bits of one 64-bit output, scaled by 2^-53: every value k * 2^-53 for k in [0, 2^53)
  // is equally likely, and the result is exactly representable, so it is the same everywhere.
  return static_cast<double>(rng_() >> 11) * 0x1.0p-53;
}

void Sampler::apply_repeat_penalty(std::span<float> logits) {
  if (options_.repeat_penalty == 1.0f || history_.empty()) return;
  // Like llama.cpp, a token is penalised once however often it occurs in the window.
  window_.assign(history_.begin(), history_.end());
  std::sort(window_.begin(), window_.end());
  window_.erase(std::unique(window_.begin(), window_.end()), window_.end());
  const float penalty = options_.repeat_penalty;
  for (const int32_t token : window_) {
    // Ids outside this row's vocabulary (a caller mixing vocabularies) cannot be penalised.
    if (token < 0 || static_cast<size_t>(token) >= logits.size()) continue;
    float& l = logits[static_cast<size_t>(token)];
    // Dividing a negative logit would *raise* it, so negative logits are multiplied instead.
    l = l <= 0.0f ? l * penalty : l / penalty;
  }
}

int32_t Sampler::sample(std::span<float> logits) {
  if (logits.empty()) throw Error("sampler: empty logits");
  apply_repeat_penalty(logits);

  // NaN -> -inf; find the maximum. A +inf logit makes every finite token's probability exactly 0
  // (and exp(inf - inf) would be NaN), so in that case the +inf tokens become 0 and the rest -inf:
  // the limit distribution, uniform over the +inf tokens.
  float max_logit = clear_nan_max(logits);  // ops/logit_scan.h
  if (max_logit == kNegInf) {
    throw Error("sampler: every logit is NaN or -inf, nothing can be sampled (vocab " +
                std::to_string(logits.size()) + ")");
  }
  if (std::isinf(max_logit)) {
    for (float& l : logits) l = std::isinf(l) && l > 0.0f ? 0.0f : kNegInf;
    max_logit = 0.0f;
  }

  if (options_.temperature == 0.0f) return argmax(logits);

  // Candidates in token id order; -inf tokens have probability 0 and are dropped now. Every filter
  // below keeps the id order, so sums and the final draw visit tokens in the same order everywhere.
  // With top-k on, only logits >= a bound that at least k logits reach can be among the k best,
  // so only those become candidates: the k best and their ranks are the same as over the whole
  // row (the k-th best is >= the bound), and the row is scanned by vector kernels instead of a
  // struct per token (~140 -> ~20 µs per draw over 49152 logits, docs/benchmarks.md). The bound
  // starts 1 below the maximum and widens 4-fold until k logits reach it, then is bisected while
  // more than 4 k do (a few counting passes of ~3 µs on real rows; at most ~65 on rows with fewer
  // than k finite logits). Otherwise it is the lowest finite float: every token but the -inf ones.
  float bound = std::numeric_limits<float>::lowest();
  if (options_.top_k > 0 && static_cast<size_t>(options_.top_k) < logits.size()) {
    const int64_t k = options_.top_k;
    float lo = 0.0f, hi = 1.0f;  // distances below the maximum; lo: the last one fewer than k reached
    for (;; lo = hi, hi *= 4.0f) {
      const float t = max_logit - hi;
      if (!(t > std::numeric_limits<float>::lowest())) break;  // keep every finite token
      int64_t n = count_at_least(logits, t);
      if (n < k) continue;
      bound = t;
      for (int i = 0; i < 8 && n > 4 * k; ++i) {
        const float mid = lo + 0.5f * (hi - lo);
        const float tm = max_logit - mid;
        const int64_t nm = count_at_least(logits, tm);
        if (nm >= k) {
          hi = mid;
          bound = tm;
          n = nm;
        } else {
          lo = mid;
        }
      }
      break;
    }
  }
  indices_at_least(logits, bound, ids_);
  candidates_.clear();
  for (const int32_t i : ids_) candidates_.push_back({logits[static_cast<size_t>(i)], 0.0f, i});
  std::span<Candidate> c(candidates_);
  // The best candidate survives every filter (top-k keeps it, top-p keeps at least one token, min-p
  // keeps p_max), so max_logit stays the maximum of the set and is the softmax shift throughout.

  if (options_.top_k > 0 && static_cast<size_t>(options_.top_k) < c.size()) {
    const Candidate kth = kth_best<Candidate>(c, static_cast<size_t>(options_.top_k), scratch_);
    c = keep_through(c, kth);
  }

  // Top-p on the temperature-1 distribution of the current set: keep the smallest rank-ordered
  // prefix whose probability reaches top_p (the token that crosses the line is kept).
  if (options_.top_p < 1.0f && c.size() > 1) {
    double z = 0.0;
    for (Candidate& x : c) {
      x.weight = std::exp(x.logit - max_logit);
      z += x.weight;
    }
    scratch_.assign(c.begin(), c.end());  // the selection reorders; c keeps its id order
    const std::optional<Candidate> last =
        top_p_boundary<Candidate>(scratch_, static_cast<double>(options_.top_p) * z);
    if (last) c = keep_through(c, *last);
  }

  // Min-p: p >= min_p * p_max  <=>  logit >= max_logit + log(min_p); no exp needed.
  if (options_.min_p > 0.0f) {
    const float threshold = max_logit + std::log(options_.min_p);
    const auto kept_end = std::remove_if(c.begin(), c.end(),
                                         [&](const Candidate& x) { return x.logit < threshold; });
    c = c.first(static_cast<size_t>(kept_end - c.begin()));
  }

  // Temperature, softmax (unnormalised: the draw scales by the total instead), draw.
  const double inv_t = 1.0 / static_cast<double>(options_.temperature);
  double total = 0.0;
  for (Candidate& x : c) {
    x.weight = static_cast<float>(std::exp((static_cast<double>(x.logit) - max_logit) * inv_t));
    total += x.weight;
  }
  const double u = uniform01() * total;
  double cumulative = 0.0;
  // The maximum is in the set with weight exp(0) = 1, so the loop always sets this.
  int32_t last_positive = c.front().id;
  for (const Candidate& x : c) {
    if (x.weight <= 0.0f) continue;  // underflowed to 0: never drawn
    cumulative += x.weight;
    last_positive = x.id;
    if (u < cumulative) return x.id;
  }
  // Only reachable through rounding when u lands within an ulp of the total.
  return last_positive;
}

}  // namespace kvbits
