#pragma once
// Scores as lm-evaluation-harness defines them, with the standard errors of the project's
// protocol (docs/protocols.md, "Quantized-KV evaluation" and "Perplexity").
//
// Multiple choice: each choice's log-likelihood is the sum over the tokens of " " + choice of
// log p(token | context, earlier choice tokens), in nats. acc takes the argmax of the sums,
// acc_norm the argmax of sum / length, length = the choice text's Unicode code points (Python's
// len(choice), without the leading space). Ties go to the first index (numpy.argmax).
// Standard error of a proportion: sqrt(p (1 - p) / n) (lm-eval divides by n - 1; the difference
// is below 0.1 % of the error for n >= 500).
#include <cstdint>
#include <optional>
#include <span>
#include <string_view>
#include <vector>

namespace kvbits::eval {

// Unicode code points in valid UTF-8 text.
int64_t count_code_points(std::string_view text);

// One scored multiple-choice item.
struct McRecord {
  int64_t index = 0;            // global item index (position in the task file)
  int gold = 0;                 // index of the right choice
  std::vector<double> ll;       // [n_choices] summed log-likelihood, nats (finite, usually < 0)
  std::vector<int64_t> length;  // [n_choices] code points of each choice text (>= 1)
};

// Throws Error unless sizes match, there are >= 2 choices, gold is in range, every ll is finite
// and every length >= 1. `where` prefixes the message (e.g. a file name).
void validate(const McRecord& r, const std::string_view where);

// Index of the largest value, the first one on ties. `v` must be non-empty.
int argmax_first(std::span<const double> v);
int predict(const McRecord& r);       // argmax of ll
int predict_norm(const McRecord& r);  // argmax of ll / length
inline bool correct(const McRecord& r) { return predict(r) == r.gold; }
inline bool correct_norm(const McRecord& r) { return predict_norm(r) == r.gold; }

double binomial_stderr(double p, int64_t n);  // sqrt(p (1 - p) / n); NaN for n == 0

struct McMetrics {
  int64_t n = 0;
  double acc = 0, acc_stderr = 0;
  double acc_norm = 0, acc_norm_stderr = 0;
};
// Throws Error for no records.
McMetrics mc_metrics(std::span<const McRecord> records);

// Paired comparison of two runs over the same items: per item d = score_B - score_A (each 0 or 1);
// mean of d and its standard error sd(d) / sqrt(n), sd with n - 1 in the denominator (NaN for
// n < 2).
struct PairedDifference {
  int64_t n = 0;
  double mean = 0;
  double se = 0;
};
struct McPaired {
  int64_t n_only_a = 0, n_only_b = 0;  // items present in one run only (left out of the comparison)
  PairedDifference acc, acc_norm;      // B - A
};
// Matches items by global index. Throws Error if no item is in both, or an item's gold or
// number of choices differs between the runs (not the same data).
McPaired paired_mc(std::span<const McRecord> a, std::span<const McRecord> b);

// One perplexity window (W tokens of the text, scored chunk by chunk; docs/protocols.md).
struct PplWindow {
  int64_t index = 0;   // window number in the text
  double nll = 0;      // summed negative log-likelihood of its scored tokens, nats (>= 0)
  int64_t tokens = 0;  // scored tokens (>= 1)
  int64_t bytes = 0;   // UTF-8 bytes of the text those tokens cover (>= 0)
  // Sum over the scored tokens of KL(p_fp16 || p_policy) of the next-token distributions, nats,
  // when the run compared against an FP16-cache reference (eval --kl).
  std::optional<double> kl;
};
void validate(const PplWindow& w, std::string_view where);

struct PplMetrics {
  int64_t windows = 0;
  double nll = 0;  // total, nats
  int64_t tokens = 0;
  int64_t bytes = 0;
  double ppl = 0;            // exp(nll / tokens)
  double bits_per_byte = 0;  // nll / (ln 2 * bytes)
  std::optional<double> kl_per_token;  // sum kl / tokens, if every window has kl
};
// Throws Error for no windows.
PplMetrics ppl_metrics(std::span<const PplWindow> windows);

}  // namespace kvbits::eval
