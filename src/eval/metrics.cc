#include "eval/metrics.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>
#include <string>

#include "util/error.h"

namespace kvbits::eval {

int64_t count_code_points(std::string_view text) {
  // Every code point has exactly one byte that is not a continuation byte (10xxxxxx).
  return std::count_if(text.begin(), text.end(), [](char c) { return (static_cast<uint8_t>(c) & 0xC0) != 0x80; });
}

void validate(const McRecord& r, std::string_view where) {
  const std::string at = std::string(where) + ": item " + std::to_string(r.index) + ": ";
  if (r.index < 0) throw Error(at + "negative index");
  if (r.ll.size() < 2) throw Error(at + std::to_string(r.ll.size()) + " choice(s), need at least 2");
  if (r.length.size() != r.ll.size()) {
    throw Error(at + std::to_string(r.ll.size()) + " log-likelihoods but " + std::to_string(r.length.size()) +
                " lengths");
  }
  if (r.gold < 0 || r.gold >= static_cast<int>(r.ll.size())) throw Error(at + "gold " + std::to_string(r.gold) + " out of range");
  for (double x : r.ll) {
    if (!std::isfinite(x)) throw Error(at + "log-likelihood is not finite");
  }
  for (int64_t len : r.length) {
    if (len < 1) throw Error(at + "choice length " + std::to_string(len) + " (must be >= 1)");
  }
}

int argmax_first(std::span<const double> v) {
  int best = 0;
  for (size_t i = 1; i < v.size(); ++i) {
    if (v[i] > v[static_cast<size_t>(best)]) best = static_cast<int>(i);
  }
  return best;
}

int predict(const McRecord& r) { return argmax_first(r.ll); }

int predict_norm(const McRecord& r) {
  std::vector<double> norm(r.ll.size());
  for (size_t i = 0; i < norm.size(); ++i) norm[i] = r.ll[i] / static_cast<double>(r.length[i]);
  return argmax_first(norm);
}

double binomial_stderr(double p, int64_t n) {
  if (n <= 0) return std::numeric_limits<double>::quiet_NaN();
  return std::sqrt(p * (1.0 - p) / static_cast<double>(n));
}

McMetrics mc_metrics(std::span<const McRecord> records) {
  if (records.empty()) throw Error("no scored items");
  McMetrics m;
  m.n = static_cast<int64_t>(records.size());
  int64_t hits = 0, hits_norm = 0;
  for (const McRecord& r : records) {
    hits += correct(r);
    hits_norm += correct_norm(r);
  }
  m.acc = static_cast<double>(hits) / static_cast<double>(m.n);
  m.acc_norm = static_cast<double>(hits_norm) / static_cast<double>(m.n);
  m.acc_stderr = binomial_stderr(m.acc, m.n);
  m.acc_norm_stderr = binomial_stderr(m.acc_norm, m.n);
  return m;
}

namespace {
PairedDifference paired(const std::vector<double>& d) {
  PairedDifference p;
  p.n = static_cast<int64_t>(d.size());
  double sum = 0;
  for (double x : d) sum += x;
  p.mean = sum / static_cast<double>(p.n);
  if (p.n < 2) {
    p.se = std::numeric_limits<double>::quiet_NaN();
    return p;
  }
  double ss = 0;
  for (double x : d) ss += (x - p.mean) * (x - p.mean);
  p.se = std::sqrt(ss / static_cast<double>(p.n - 1)) / std::sqrt(static_cast<double>(p.n));
  return p;
}
}  // namespace

McPaired paired_mc(std::span<const McRecord> a, std::span<const McRecord> b) {
  std::map<int64_t, const McRecord*> by_index;
  for (const McRecord& r : a) by_index[r.index] = &r;
  McPaired out;
  std::vector<double> d_acc, d_norm;
  for (const McRecord& rb : b) {
    const auto it = by_index.find(rb.index);
    if (it == by_index.end()) {
      ++out.n_only_b;
      continue;
    }
    const McRecord& ra = *it->second;
    if (ra.gold != rb.gold || ra.ll.size() != rb.ll.size()) {
      throw Error("item " + std::to_string(rb.index) + " differs between the two runs (gold or number of choices): "
                  "not the same data");
    }
    d_acc.push_back(static_cast<double>(correct(rb)) - static_cast<double>(correct(ra)));
    d_norm.push_back(static_cast<double>(correct_norm(rb)) - static_cast<double>(correct_norm(ra)));
  }
  if (d_acc.empty()) throw Error("the two runs have no item in common");
  out.n_only_a = static_cast<int64_t>(a.size()) - static_cast<int64_t>(d_acc.size());
  out.acc = paired(d_acc);
  out.acc_norm = paired(d_norm);
  return out;
}

void validate(const PplWindow& w, std::string_view where) {
  const std::string at = std::string(where) + ": window " + std::to_string(w.index) + ": ";
  if (w.index < 0) throw Error(at + "negative index");
  if (!std::isfinite(w.nll) || w.nll < 0) throw Error(at + "nll must be finite and >= 0");
  if (w.tokens < 1) throw Error(at + "tokens must be >= 1");
  if (w.bytes < 0) throw Error(at + "bytes must be >= 0");
  if (w.kl && (!std::isfinite(*w.kl) || *w.kl < -1e-6 * static_cast<double>(w.tokens))) {
    throw Error(at + "kl must be finite and >= 0");
  }
}

PplMetrics ppl_metrics(std::span<const PplWindow> windows) {
  if (windows.empty()) throw Error("no scored windows");
  PplMetrics m;
  m.windows = static_cast<int64_t>(windows.size());
  double kl = 0.0;
  bool all_kl = true;
  for (const PplWindow& w : windows) {
    m.nll += w.nll;
    m.tokens += w.tokens;
    m.bytes += w.bytes;
    all_kl = all_kl && w.kl.has_value();
    kl += w.kl.value_or(0.0);
  }
  if (all_kl) m.kl_per_token = kl / static_cast<double>(m.tokens);
  m.ppl = std::exp(m.nll / static_cast<double>(m.tokens));
  m.bits_per_byte = m.bytes > 0 ? m.nll / (std::log(2.0) * static_cast<double>(m.bytes))
                                : std::numeric_limits<double>::quiet_NaN();
  return m;
}

}  // namespace kvbits::eval
