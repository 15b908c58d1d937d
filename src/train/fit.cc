#include "train/fit.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <random>
#include <set>

#include "policy/budget_control.h"
#include "util/error.h"

namespace kvbits::train {

using nlohmann::json;

namespace {

double median(std::vector<double> v) {
  if (v.empty()) return 0.0;
  std::sort(v.begin(), v.end());
  return v.size() % 2 ? v[v.size() / 2] : 0.5 * (v[v.size() / 2 - 1] + v[v.size() / 2]);
}

// Hard label: argmin_j D_j + mu bits_j.
int hard_label(const std::vector<float>& d, const std::vector<double>& bits, double mu) {
  int best = 0;
  for (int j = 1; j < static_cast<int>(bits.size()); ++j) {
    if (d[j] + mu * bits[j] < d[best] + mu * bits[best]) best = j;
  }
  return best;
}

double mean_label_bits(const std::vector<std::vector<float>>& d, const std::vector<double>& bits, double mu) {
  double s = 0.0;
  for (const auto& x : d) s += bits[static_cast<size_t>(hard_label(x, bits, mu))];
  return d.empty() ? 0.0 : s / static_cast<double>(d.size());
}

// mu such that hard labels average `target` bits (mean bits falls as mu grows).
double label_mu(const std::vector<std::vector<float>>& d, const std::vector<double>& bits, double target) {
  double lo = 0.0, hi = 1.0;
  for (int i = 0; i < 60 && mean_label_bits(d, bits, hi) > target; ++i) hi *= 2.0;
  for (int i = 0; i < 60; ++i) {
    const double mid = 0.5 * (lo + hi);
    if (mean_label_bits(d, bits, mid) > target) lo = mid;
    else hi = mid;
  }
  return 0.5 * (lo + hi);
}

struct Matrix {
  size_t rows = 0, cols = 0;
  std::vector<float> v;
  float* row(size_t i) { return v.data() + i * cols; }
  const float* row(size_t i) const { return v.data() + i * cols; }
};

std::vector<float> predict(const Mlp& mlp, const Matrix& x) {
  std::vector<float> out(x.rows * static_cast<size_t>(mlp.n_out()));
  std::vector<float> scratch;
  for (size_t i = 0; i < x.rows; ++i) mlp.forward(x.row(i), out.data() + i * mlp.n_out(), scratch);
  return out;
}

double mean_damage_of(const std::vector<float>& scores, const std::vector<std::vector<float>>& d,
                      const std::vector<double>& bits, double lambda, double* mean_bits) {
  const size_t k = bits.size();
  const BudgetController probe(bits, bits.front(), 0.0, 0.0);
  double dmg = 0.0, b = 0.0;
  for (size_t i = 0; i < d.size(); ++i) {
    const int j = probe.argmax_at(std::span<const float>(scores).subspan(i * k, k), lambda);
    dmg += d[i][static_cast<size_t>(j)];
    b += bits[static_cast<size_t>(j)];
  }
  if (mean_bits) *mean_bits = b / static_cast<double>(d.size());
  return dmg / static_cast<double>(d.size());
}

// Damage of mixing the two classes that bracket `bits` at random (no information).
double random_damage(const std::vector<std::vector<float>>& d, const std::vector<double>& bits, double b) {
  std::vector<double> mean(bits.size(), 0.0);
  for (const auto& x : d) {
    for (size_t j = 0; j < bits.size(); ++j) mean[j] += x[j] / static_cast<double>(d.size());
  }
  if (b <= bits.front()) return mean.front();
  for (size_t j = 1; j < bits.size(); ++j) {
    if (b <= bits[j]) {
      const double f = (b - bits[j - 1]) / (bits[j] - bits[j - 1]);
      return (1 - f) * mean[j - 1] + f * mean[j];
    }
  }
  return mean.back();
}

}  // namespace

BudgetDamage damage_at_budget(const std::vector<float>& scores, const std::vector<std::vector<float>>& damage,
                              const std::vector<double>& class_bits, double bits) {
  BudgetDamage r;
  if (damage.empty()) return r;
  const double lambda = calibrate_lambda(scores, class_bits, bits);
  r.damage = mean_damage_of(scores, damage, class_bits, lambda, &r.bits);
  return r;
}

FitResult fit_controller(const LabelData& data, const FitOptions& o, const ControllerModel& model) {
  const size_t k = o.classes.size();
  if (k < 2 || o.class_bits.size() != k) throw Error("train: give at least two classes, each with its bits");
  if (o.classes != data.classes) throw Error("train: the classes to fit differ from the classes the labels measured");
  for (size_t j = 1; j < k; ++j) {
    if (!(o.class_bits[j] > o.class_bits[j - 1])) throw Error("train: classes must cost strictly ascending bits (two classes of equal cost?)");
  }
  for (const TokenSample& s : data.samples) {
    if (s.damage.size() != k) throw Error("train: a labelled token has " + std::to_string(s.damage.size()) + " damages for " + std::to_string(k) + " classes");
  }
  // Reference classes: int8 (its median damage is the probe's noise floor) and the pair whose
  // damage gap sets the soft-label temperature (the cheapest class against int4, else the next).
  const auto find = [&](KvPrecision p) -> int {
    for (size_t j = 0; j < k; ++j) if (o.classes[j] == p) return static_cast<int>(j);
    return -1;
  };
  const int j8 = find({8, 8});
  const int j4 = find({4, 4}) > 0 ? find({4, 4}) : 1;
  if (o.features.empty()) throw Error("train: no features selected");
  if (data.samples.size() < 50) {
    throw Error("train: only " + std::to_string(data.samples.size()) + " labelled tokens; need at least 50");
  }
  // Split by sequence (seeded).
  std::vector<int32_t> seqs;
  for (const TokenSample& s : data.samples) seqs.push_back(s.seq);
  std::sort(seqs.begin(), seqs.end());
  seqs.erase(std::unique(seqs.begin(), seqs.end()), seqs.end());
  if (seqs.size() < 2) throw Error("train: need at least two calibration sequences to hold one out");
  std::mt19937_64 rng(o.seed);
  for (size_t i = seqs.size(); i > 1; --i) std::swap(seqs[i - 1], seqs[static_cast<size_t>(rng() % i)]);
  const size_t n_hold = std::clamp<size_t>(static_cast<size_t>(std::lround(o.holdout * seqs.size())), 1, seqs.size() - 1);
  const std::set<int32_t> held(seqs.begin(), seqs.begin() + static_cast<ptrdiff_t>(n_hold));
  std::vector<const TokenSample*> tr, te;
  for (const TokenSample& s : data.samples) (held.count(s.seq) ? te : tr).push_back(&s);

  // Damage targets (noise floor removed).
  double floor = 0.0;
  if (o.subtract_noise_floor && j8 >= 0) {
    std::vector<double> d8;
    for (const TokenSample* s : tr) d8.push_back(s->damage[static_cast<size_t>(j8)]);
    floor = median(d8);
  }
  // Class j dominates class i when both its widths are at least i's: it never counts as more
  // damaging. Classes with larger k_bits + v_bits come first so chains of dominance propagate.
  std::vector<size_t> by_width(k);
  std::iota(by_width.begin(), by_width.end(), size_t{0});
  std::stable_sort(by_width.begin(), by_width.end(), [&](size_t a, size_t b) {
    return o.classes[a].k_bits + o.classes[a].v_bits > o.classes[b].k_bits + o.classes[b].v_bits;
  });
  const auto dominates = [&](size_t j, size_t i) {
    return j != i && o.classes[j].k_bits >= o.classes[i].k_bits && o.classes[j].v_bits >= o.classes[i].v_bits;
  };
  const auto targets = [&](const std::vector<const TokenSample*>& v) {
    std::vector<std::vector<float>> d;
    for (const TokenSample* s : v) {
      std::vector<float> x = s->damage;
      for (size_t j = 0; j < k; ++j) {
        x[j] = o.classes[j] == KvPrecision{16, 16} ? 0.0f : static_cast<float>(std::max(0.0, x[j] - floor));
      }
      for (size_t i : by_width) {
        for (size_t j = 0; j < k; ++j) {
          if (dominates(j, i)) x[i] = std::max(x[i], x[j]);
        }
      }
      d.push_back(std::move(x));
    }
    return d;
  };
  const std::vector<std::vector<float>> d_tr = targets(tr), d_te = targets(te);
  std::vector<double> gap;
  for (const auto& x : d_tr) gap.push_back(x[0] - x[static_cast<size_t>(j4)]);
  const double temperature = std::max(1e-6, o.temperature * median(gap));
  const double mu = label_mu(d_tr, o.class_bits, o.label_bits);

  // Features: transform, normalise with training statistics.
  std::vector<FeatureSpec> specs;
  for (Feature f : o.features) {
    FeatureSpec s;
    s.feature = f;
    s.transform = default_transform(f);
    double sum = 0.0, sq = 0.0;
    for (const TokenSample* t : tr) {
      const double x = transform_feature(s.transform, t->raw.v[static_cast<int>(f)]);
      sum += x;
      sq += x * x;
    }
    const double n = static_cast<double>(tr.size());
    const double mean = sum / n, var = std::max(0.0, sq / n - mean * mean);
    s.mean = static_cast<float>(mean);
    s.std = static_cast<float>(var > 1e-12 ? std::sqrt(var) : 1.0);
    specs.push_back(s);
  }
  const auto matrix = [&](const std::vector<const TokenSample*>& v) {
    Matrix m;
    m.rows = v.size();
    m.cols = specs.size();
    m.v.resize(m.rows * m.cols);
    for (size_t i = 0; i < v.size(); ++i) feature_vector(specs, v[i]->raw, m.row(i));
    return m;
  };
  const Matrix x_tr = matrix(tr), x_te = matrix(te);
  // Soft labels.
  const auto soft = [&](const std::vector<std::vector<float>>& d) {
    std::vector<float> q(d.size() * k);
    std::vector<double> e(k);
    for (size_t i = 0; i < d.size(); ++i) {
      double mx = -INFINITY, sum = 0.0;
      for (size_t j = 0; j < k; ++j) mx = std::max(mx, e[j] = -(d[i][j] + mu * o.class_bits[j]) / temperature);
      for (size_t j = 0; j < k; ++j) sum += (e[j] = std::exp(e[j] - mx));
      for (size_t j = 0; j < k; ++j) q[i * k + j] = static_cast<float>(e[j] / sum);
    }
    return q;
  };
  const std::vector<float> q_tr = soft(d_tr), q_te = soft(d_te);

  // Model and training loop.
  std::vector<int> sizes{static_cast<int>(specs.size())};
  sizes.insert(sizes.end(), o.hidden.begin(), o.hidden.end());
  sizes.push_back(static_cast<int>(k));
  Mlp mlp(sizes, o.activation);
  if (mlp.parameter_count() > 20000) {
    throw Error("train: the MLP would have " + std::to_string(mlp.parameter_count()) + " parameters (limit 20000)");
  }
  mlp.init(o.seed);
  MlpBackprop bp(mlp);
  MlpGrad grad(mlp);
  Adam adam(mlp, o.adam);
  std::vector<size_t> order(tr.size());
  std::iota(order.begin(), order.end(), size_t{0});
  std::vector<float> z(k), dz(k);
  const auto loss_of = [&](const Matrix& x, const std::vector<float>& q, const std::vector<std::vector<float>>& d) {
    const std::vector<float> s = predict(mlp, x);
    double total = 0.0;
    for (size_t i = 0; i < x.rows; ++i) {
      total += controller_loss(std::span<const float>(s).subspan(i * k, k), std::span<const float>(q).subspan(i * k, k),
                               o.class_bits, d[i], o.loss, dz);
    }
    return total / static_cast<double>(x.rows);
  };
  json curve = json::array();
  for (int epoch = 0; epoch < o.epochs; ++epoch) {
    for (size_t i = order.size(); i > 1; --i) std::swap(order[i - 1], order[static_cast<size_t>(rng() % i)]);
    for (size_t b0 = 0; b0 < order.size(); b0 += static_cast<size_t>(o.batch)) {
      const size_t b1 = std::min(order.size(), b0 + static_cast<size_t>(o.batch));
      grad.zero();
      for (size_t bi = b0; bi < b1; ++bi) {
        const size_t i = order[bi];
        bp.forward(x_tr.row(i), z.data());
        controller_loss(z, std::span<const float>(q_tr).subspan(i * k, k), o.class_bits, d_tr[i], o.loss, dz);
        const float scale = 1.0f / static_cast<float>(b1 - b0);
        for (float& g : dz) g *= scale;
        bp.backward(dz.data(), grad);
      }
      adam.step(mlp, grad);
    }
    if ((epoch + 1) % std::max(1, o.epochs / 6) == 0 || epoch + 1 == o.epochs) {
      curve.push_back({{"epoch", epoch + 1}, {"train_loss", loss_of(x_tr, q_tr, d_tr)}, {"heldout_loss", loss_of(x_te, q_te, d_te)}});
    }
  }

  // Budget table on the training tokens.
  const std::vector<float> s_tr = predict(mlp, x_tr), s_te = predict(mlp, x_te);
  BudgetTable table;
  table.class_bits = o.class_bits;
  const double bmin = *std::min_element(o.class_bits.begin(), o.class_bits.end());
  const double bmax = *std::max_element(o.class_bits.begin(), o.class_bits.end());
  std::vector<double> grid;
  for (double b = std::ceil(bmin * 10.0) / 10.0; b < bmax; b += 0.1) grid.push_back(b);
  grid.push_back(bmax);
  if (grid.front() > bmin) grid.insert(grid.begin(), bmin);
  double prev = INFINITY;
  for (double b : grid) {
    double l = calibrate_lambda(s_tr, o.class_bits, b);
    l = std::min(l, prev);  // non-increasing
    prev = l;
    table.bits.push_back(static_cast<float>(b));
    table.lambda.push_back(static_cast<float>(l));
  }
  // The stored table is rounded to float: keep it strictly ascending / non-increasing after that.
  for (size_t i = 1; i < table.bits.size(); ++i) {
    if (static_cast<float>(table.bits[i]) <= static_cast<float>(table.bits[i - 1])) table.bits[i] = std::nextafter(static_cast<float>(table.bits[i - 1]), 1e9f);
    if (static_cast<float>(table.lambda[i]) > static_cast<float>(table.lambda[i - 1])) table.lambda[i] = static_cast<float>(table.lambda[i - 1]);
  }
  table.gain = o.gain;
  table.default_bits = o.default_bits;

  // Held-out evaluation.
  json report;
  int right = 0;
  std::vector<int64_t> label_hist(k, 0), pred_hist(k, 0);
  {
    const double lbits = mean_label_bits(d_te, o.class_bits, mu);
    const double lam = calibrate_lambda(s_te, o.class_bits, lbits);
    const BudgetController probe(o.class_bits, bmin, 0.0, 0.0);
    for (size_t i = 0; i < d_te.size(); ++i) {
      const int y = hard_label(d_te[i], o.class_bits, mu);
      const int p = probe.argmax_at(std::span<const float>(s_te).subspan(i * k, k), lam);
      right += y == p;
      ++label_hist[static_cast<size_t>(y)];
      ++pred_hist[static_cast<size_t>(p)];
    }
  }
  const double accuracy = static_cast<double>(right) / static_cast<double>(d_te.size());
  std::vector<float> oracle_scores(d_te.size() * k);
  for (size_t i = 0; i < d_te.size(); ++i) {
    for (size_t j = 0; j < k; ++j) oracle_scores[i * k + j] = -d_te[i][j];
  }
  json budgets = json::array();
  for (double b : o.report_bits) {
    if (b < bmin || b > bmax) continue;
    const BudgetDamage l = damage_at_budget(s_te, d_te, o.class_bits, b);
    const BudgetDamage orc = damage_at_budget(oracle_scores, d_te, o.class_bits, b);
    budgets.push_back({{"bits", b}, {"learned_damage", l.damage}, {"learned_bits", l.bits},
                       {"oracle_damage", orc.damage}, {"random_damage", random_damage(d_te, o.class_bits, b)}});
  }
  std::vector<double> mean_d(k, 0.0);
  for (const auto& x : d_te) {
    for (size_t j = 0; j < k; ++j) mean_d[j] += x[j] / static_cast<double>(d_te.size());
  }
  json importance = json::array();
  if (o.importance) {
    const double base = damage_at_budget(s_te, d_te, o.class_bits, o.importance_bits).damage;
    for (size_t f = 0; f < specs.size(); ++f) {
      Matrix xp = x_te;
      std::vector<size_t> perm(xp.rows);
      std::iota(perm.begin(), perm.end(), size_t{0});
      std::mt19937_64 prng(o.seed + 1000 + f);
      for (size_t i = perm.size(); i > 1; --i) std::swap(perm[i - 1], perm[static_cast<size_t>(prng() % i)]);
      for (size_t i = 0; i < xp.rows; ++i) xp.row(i)[f] = x_te.row(perm[i])[f];
      const double d = damage_at_budget(predict(mlp, xp), d_te, o.class_bits, o.importance_bits).damage;
      importance.push_back({{"feature", to_string(specs[f].feature)}, {"damage", d},
                            {"increase", base > 0 ? d / base - 1.0 : 0.0}});
    }
  }
  json feats = json::array(), class_names = json::array(), mean_by_class = json::object();
  for (size_t j = 0; j < k; ++j) {
    class_names.push_back(width_pair_name(o.classes[j]));
    mean_by_class[width_pair_name(o.classes[j])] = mean_d[j];
  }
  for (const FeatureSpec& s : specs) feats.push_back(to_string(s.feature));
  report = {
      {"samples", {{"train_tokens", tr.size()}, {"heldout_tokens", te.size()},
                   {"train_sequences", seqs.size() - n_hold}, {"heldout_sequences", n_hold}}},
      {"labels", {{"noise_floor_subtracted", floor}, {"temperature", temperature}, {"mu", mu},
                  {"label_bits", o.label_bits}, {"heldout_label_histogram", label_hist},
                  {"classes", class_names}, {"heldout_mean_damage", mean_by_class}}},
      {"model", {{"features", feats}, {"sizes", sizes}, {"activation", to_string(o.activation)},
                 {"parameters", mlp.parameter_count()}}},
      {"optimiser", {{"loss", {{"alpha", o.loss.alpha}, {"beta", o.loss.beta}, {"gamma", o.loss.gamma}}},
                     {"adam", {{"lr", o.adam.lr}, {"beta1", o.adam.beta1}, {"beta2", o.adam.beta2},
                               {"weight_decay", o.adam.weight_decay}}},
                     {"epochs", o.epochs}, {"batch", o.batch}, {"seed", o.seed}, {"curve", curve}}},
      {"heldout", {{"label_accuracy", accuracy}, {"prediction_histogram", pred_hist},
                   {"loss", loss_of(x_te, q_te, d_te)}, {"damage_at_budget", budgets},
                   {"permutation_importance_at_bits", o.importance_bits}, {"permutation_importance", importance}}}};

  FitResult r;
  r.controller.model = model;
  r.controller.classes = o.classes;
  r.controller.features = specs;
  r.controller.mlp = std::move(mlp);
  r.controller.rarity = data.frequency;
  r.controller.budget = table;
  r.report = report;
  return r;
}

}  // namespace kvbits::train
