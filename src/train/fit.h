#pragma once
// Fitting the learned controller to measured damage (train/label_data.h) and evaluating it on
// held-out sequences.
//
// Targets. Per token and class j (the labels' classes, e.g. int2, int4/int2, int4, int8, fp16 —
// a K width and a V width each — in ascending bits_j from the store's layout):
//   D_j      measured damage; with int8-activation labels the noise floor of activation rounding
//            (median D_int8 over the training tokens) is subtracted from the quantized classes
//            (clamped at 0), so that fp16 is not preferred for noise alone; then made monotone:
//            a class whose K and V widths are both at least another's never counts as more
//            damaging than it;
//   q_j      soft labels  q_j ~ exp(-(D_j + mu bits_j) / T): the Gibbs distribution of the
//            per-token Lagrangian. With cross-entropy to q the optimal scores are
//            z_j = log E[exp(-D_j / T) | features] - mu bits_j / T + c, so `score - lambda bits`
//            ranks classes by (soft) expected damage for every lambda: one controller serves every
//            budget. mu is set so that the hard labels argmin_j D_j + mu bits_j average
//            `label_bits` (reporting held-out label accuracy needs some trade-off); T is
//            `temperature` times the median of D_cheapest - D_int4.
//   loss     alpha CE(q, p) + beta E_p[bits] + gamma E_p[D] (train/mlp_train.h).
// Held-out evaluation (sequences split by a seeded shuffle): label accuracy, and "damage at
// budget": for each budget B the multiplier is calibrated on the held-out scores so the tokens
// average B bits, and the mean measured damage of the chosen classes is compared with the
// oracle (the per-token Lagrangian on the measured damage, the best any policy can do at B),
// random assignment at B (the two classes bracketing B mixed), and every static class. Feature importance: the increase of that damage
// (at `importance_bits`) when one feature's column is permuted.
#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "policy/controller_file.h"
#include "train/label_data.h"
#include "train/mlp_train.h"

namespace kvbits::train {

struct FitOptions {
  std::vector<Feature> features;  // transforms: default_transform()
  std::vector<int> hidden{64, 64};
  MlpActivation activation = MlpActivation::kRelu;
  LossWeights loss{1.0, 0.0, 0.0};
  double temperature = 0.5;   // T = temperature * median(D_int2 - D_int4)
  double label_bits = 3.5;    // mu: hard labels average this many bits
  bool subtract_noise_floor = true;
  int epochs = 20;            // held-out loss rose after ~20 epochs on the shipped labels (docs/controller.md)
  int batch = 64;
  AdamOptions adam;
  uint64_t seed = 1;
  double holdout = 0.2;       // fraction of sequences held out
  std::vector<KvPrecision> classes;    // must equal the labels' classes, ascending in bits
  std::vector<double> class_bits;      // effective bits per class (class_effective_bits)
  double gain = 0.05;                  // kappa of the online correction
  double default_bits = 3.0;
  std::vector<double> report_bits{2.75, 3.0, 3.5, 4.0, 5.0};
  double importance_bits = 3.0;
  bool importance = true;
};

struct FitResult {
  ControllerFile controller;
  nlohmann::json report;  // also stored as controller.training (with the data summary added)
};

// Throws Error if there are too few samples or sequences to split, or inconsistent options.
FitResult fit_controller(const LabelData& data, const FitOptions& options, const ControllerModel& model);

// Mean measured damage when each token takes argmax_j score_j - lambda bits_j with lambda set so
// the tokens average `bits` (scores: [n][k]); also returns the achieved mean bits.
struct BudgetDamage {
  double damage = 0.0, bits = 0.0;
};
BudgetDamage damage_at_budget(const std::vector<float>& scores, const std::vector<std::vector<float>>& damage,
                              const std::vector<double>& class_bits, double bits);

}  // namespace kvbits::train
