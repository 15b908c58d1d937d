#include "policy/oracle_policy.h"

#include <algorithm>
#include <cstdio>

#include "policy/learned_policy.h"
#include "util/error.h"

namespace kvbits {

OraclePolicy::OraclePolicy(double target, int64_t horizon, int64_t residual) : target_(target), horizon_(horizon) {
  residual_ = residual;
  check_budget_bits(target, "oracle");
  if (horizon < 1) throw Error("oracle: the horizon must be >= 1 token");
}

std::string OraclePolicy::spec() const {
  char buf[64];
  if (horizon_ == 16) std::snprintf(buf, sizeof buf, "oracle@%g", target_);
  else std::snprintf(buf, sizeof buf, "oracle:h%lld@%g", static_cast<long long>(horizon_), target_);
  return buf;
}

nlohmann::json OraclePolicy::parameters() const {
  return {{"target_bits", target_}, {"horizon", horizon_}, {"residual", residual_},
          {"class_bits", class_bits_}, {"decided_tokens", decided_},
          {"decided_average_bits", decided_ ? bits_sum_ / static_cast<double>(decided_) : 0.0}};
}

void OraclePolicy::bind(const PolicyBinding& b) {
  if (!b.config || !b.kv || !b.damage) throw Error("oracle: bound without a model or a damage probe");
  damage_ = b.damage;
  class_bits_.clear();
  for (KvPrecision p : kOracleClasses) class_bits_.push_back(class_effective_bits(*b.config, *b.kv, p));
  for (size_t j = 1; j < class_bits_.size(); ++j) {
    if (!(class_bits_[j] > class_bits_[j - 1])) throw Error("oracle: its classes are not in ascending order of bits in this store");
  }
  check_budget_reachable(target_, *b.config, *b.kv, kOracleClasses[0], "oracle");
}

std::vector<int> knapsack_widths(const std::vector<std::vector<double>>& damage, const std::vector<double>& bits,
                                 double allowance) {
  const size_t n = damage.size(), k = bits.size();
  std::vector<int> choice(n, 0);
  double spent = bits[0] * static_cast<double>(n);
  // Upgrade steps along each token's lower convex hull of (bits, damage): decreasing damage saved
  // per bit within a token, so a global sort by that ratio keeps each token's steps in order.
  struct Step {
    double ratio;
    size_t token;
    int from, to;
  };
  std::vector<Step> steps;
  for (size_t i = 0; i < n; ++i) {
    int cur = 0;
    while (cur + 1 < static_cast<int>(k)) {
      int best = -1;
      double best_ratio = -1.0;
      for (int j = cur + 1; j < static_cast<int>(k); ++j) {
        const double r = (damage[i][cur] - damage[i][j]) / (bits[j] - bits[cur]);
        if (r > best_ratio) {
          best_ratio = r;
          best = j;
        }
      }
      if (best_ratio <= 0.0) break;  // no class above saves any damage
      steps.push_back({best_ratio, i, cur, best});
      cur = best;
    }
  }
  std::stable_sort(steps.begin(), steps.end(), [](const Step& a, const Step& b) { return a.ratio > b.ratio; });
  std::vector<bool> frozen(n, false);
  for (const Step& s : steps) {
    if (frozen[s.token] || choice[s.token] != s.from) continue;
    const double extra = bits[s.to] - bits[s.from];
    if (spent + extra > allowance + 1e-9) {
      frozen[s.token] = true;  // its later steps are worth less per bit than this one
      continue;
    }
    spent += extra;
    choice[s.token] = s.to;
  }
  return choice;
}

void OraclePolicy::decide(std::span<const TokenInfo> tokens, int n_layers, std::span<KvPrecision> out) {
  if (tokens.empty()) return;
  if (!damage_) throw Error("oracle: decide() before bind()");
  const int64_t first = tokens.front().position;
  if (first == 0 || first != static_cast<int64_t>(history_.size())) history_.clear();
  const int64_t offset = first - static_cast<int64_t>(history_.size());  // 0 unless resynchronised
  for (const TokenInfo& t : tokens) history_.push_back(t.token);
  const int64_t n = static_cast<int64_t>(history_.size());
  const int64_t begin = first - offset, end = n;  // positions of these tokens in history_
  constexpr size_t k = kOracleClasses.size(), probed = k - 1;  // the last class, fp16, has damage 0
  std::vector<std::vector<double>> dmg(static_cast<size_t>(end - begin), std::vector<double>(k, 0.0));
  if (end - 1 > begin) {
    const std::vector<std::vector<float>> d =
        damage_(history_, begin, end - 1, horizon_, std::span<const KvPrecision>(kOracleClasses.data(), probed));
    for (int64_t t = begin; t < end - 1; ++t) {
      const int64_t followers = std::min(horizon_, n - 1 - t);
      const double scale = static_cast<double>(horizon_) / static_cast<double>(followers);
      for (size_t j = 0; j < probed; ++j) dmg[static_cast<size_t>(t - begin)][j] = scale * d[static_cast<size_t>(t - begin)].at(j);
    }
  }
  // The last token has no follower: the largest damage of the batch (it is kept wide first).
  std::vector<double>& last = dmg.back();
  for (size_t i = 0; i + 1 < dmg.size(); ++i) {
    for (size_t j = 0; j < probed; ++j) last[j] = std::max(last[j], dmg[i][j]);
  }
  if (dmg.size() == 1) {
    for (size_t j = 0; j < probed; ++j) last[j] = 1.0 / static_cast<double>(1 << j);  // wider, less damage
  }
  // Damage is non-increasing in the width by construction of the choice (a wider class that
  // measured worse is never picked: the hull step needs a positive saving).
  const double count = static_cast<double>(tokens.size());
  const double allowance = std::clamp(target_ * count - surplus_, class_bits_.front() * count, class_bits_.back() * count);
  const std::vector<int> choice = knapsack_widths(dmg, class_bits_, allowance);
  for (size_t i = 0; i < tokens.size(); ++i) {
    const double b = class_bits_[static_cast<size_t>(choice[i])];
    surplus_ += b - target_;
    bits_sum_ += b;
    ++decided_;
    std::fill_n(out.begin() + static_cast<ptrdiff_t>(i) * n_layers, n_layers, kOracleClasses[static_cast<size_t>(choice[i])]);
  }
}

}  // namespace kvbits
