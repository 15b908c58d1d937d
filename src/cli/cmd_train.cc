// `kvbits train -m MODEL --calib FILES --out controllers/NAME.json`: fits the learned precision
// controller (policy/learned_policy.h) to measured damage on calibration text (train/dev splits
// only), and writes the controller file with its training report.
//
// Order of work, so that mistakes surface in seconds: the output path is checked, the calibration
// files are read and validated (test splits and files without usable text are refused), then the
// model is loaded; features and damage labels are measured (the slow part: --tokens bounds it),
// the MLP is fitted, the budget table calibrated and the file written. --save-labels keeps the
// measured samples; --labels re-fits from them without probing (hyper-parameter studies).
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "cli/commands.h"
#include "cli/common.h"
#include "policy/learned_policy.h"
#include "train/calib_data.h"
#include "train/fit.h"
#include "train/label_data.h"
#include "util/error.h"

namespace kvbits::cli {

namespace {

struct TrainFlags {
  ModelFlags model;
  std::vector<std::string> calib;
  std::string out;
  std::string labels_in, labels_out;
  int64_t tokens = 2000;
  int64_t horizon = 16;
  std::string probe_activations = "int8";
  int64_t seq_tokens = 192;
  std::string features = "rarity,entropy,confidence,surprisal,attn_variance,attn_concentration,position";
  std::string hidden = "64,64";
  std::string activation = "relu";
  int epochs = 20;  // held-out damage was no better at 40 or 60 (docs/controller.md)
  int batch = 64;
  double lr = 3e-3;
  double weight_decay = 1e-4;
  uint64_t seed = 1;
  double holdout = 0.2;
  double alpha = 1.0, beta = 0.0, gamma = 0.0;
  double temperature = 0.5;
  double label_bits = 3.5;
  int group = 64;
  std::string center = "on";
  std::string key_weight = "on";
  std::string report_json;
  // The other tokens' class while a token is probed: fp16 (the token alone) or, e.g., int4/int2
  // (its marginal damage in a quantized context), with the first N positions kept FP16.
  std::string probe_context = "fp16";
  int64_t probe_sinks = 0;
  // Classes the controller chooses from (K width / V width). int4/int2 is there because keys need
  // more bits than values (docs/results.md: at 3.25 bits it halves the KL of a token-level mix).
  std::string classes = "int2,int4/int2,int4,int8,fp16";
};

std::vector<std::string> split_commas(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream ss(s);
  std::string item;
  while (std::getline(ss, item, ',')) {
    if (!item.empty()) out.push_back(item);
  }
  return out;
}

std::vector<int> parse_hidden(const std::string& s) {
  std::vector<int> out;
  for (const std::string& item : split_commas(s)) {
    char* end = nullptr;
    const long v = std::strtol(item.c_str(), &end, 10);
    if (end != item.c_str() + item.size() || v < 1 || v > 1024) throw Error("--hidden: '" + item + "' is not a layer size");
    out.push_back(static_cast<int>(v));
  }
  return out;
}

void progress_line(int64_t done, int64_t total, std::chrono::steady_clock::time_point t0) {
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const double per = done > 0 ? s / static_cast<double>(done) : 0.0;
  std::fprintf(stderr, "\rtrain: labelled %lld/%lld tokens, %.2f s/token, ETA %.0f s   ", static_cast<long long>(done),
               static_cast<long long>(total), per, per * static_cast<double>(std::max<int64_t>(0, total - done)));
  std::fflush(stderr);
}

int train_command(const TrainFlags& f) {
  using clock = std::chrono::steady_clock;
  const auto t0 = clock::now();
  // Flags and paths first.
  train::FitOptions fo;
  for (const std::string& name : split_commas(f.features)) fo.features.push_back(parse_feature(name));
  if (fo.features.empty()) throw Error("--features: give at least one feature");
  fo.hidden = parse_hidden(f.hidden);
  fo.activation = parse_mlp_activation(f.activation);
  fo.epochs = f.epochs;
  fo.batch = f.batch;
  fo.adam.lr = f.lr;
  fo.adam.weight_decay = f.weight_decay;
  fo.seed = f.seed;
  fo.holdout = f.holdout;
  fo.loss = {f.alpha, f.beta, f.gamma};
  fo.temperature = f.temperature;
  fo.label_bits = f.label_bits;
  const std::filesystem::path out(f.out);
  if (out.has_parent_path()) {
    std::error_code ec;
    std::filesystem::create_directories(out.parent_path(), ec);
    if (ec) throw Error(out.parent_path().string() + ": cannot create the output directory: " + ec.message());
  }
  {
    std::ofstream probe(out.string() + ".partial");
    if (!probe) throw Error(f.out + ": cannot write the controller file here");
  }
  std::filesystem::remove(out.string() + ".partial");
  std::vector<KvPrecision> classes;
  for (const std::string& name : split_commas(f.classes)) {
    const KvPrecision p = parse_width_pair(name, "--classes");
    if (std::find(classes.begin(), classes.end(), p) != classes.end()) throw Error("--classes: '" + name + "' is listed twice");
    classes.push_back(p);
  }
  if (classes.size() < 2 || classes.size() > 16) throw Error("--classes: give 2 to 16 classes");
  const KvPrecision probe_context = parse_width_pair(f.probe_context, "--probe-context");
  // Calibration data (read and checked before the model loads).
  train::CalibItems items;
  if (f.labels_in.empty()) {
    if (f.calib.empty()) throw Error("--calib: give calibration files (train/dev splits), or --labels FILE");
    std::vector<std::filesystem::path> files(f.calib.begin(), f.calib.end());
    items = train::load_calibration(files);
  }
  LoadedModel m = load_model(f.model);
  const LlamaConfig& c = m.model->config();
  KvStoreOptions kv;
  kv.group = f.group;
  kv.per_token_record = true;
  // Classes in ascending order of what they cost in this store.
  const auto sort_classes = [&](std::vector<KvPrecision> v) {
    std::stable_sort(v.begin(), v.end(), [&](KvPrecision a, KvPrecision b) {
      return class_effective_bits(c, kv, a) < class_effective_bits(c, kv, b);
    });
    return v;
  };
  classes = sort_classes(classes);

  train::LabelData data;
  nlohmann::json data_summary;
  if (!f.labels_in.empty()) {
    data = train::load_labels(f.labels_in);
    if (data.frequency.vocab() != c.vocab_size) throw Error(f.labels_in + ": labels were measured with another vocabulary");
    if (sort_classes(data.classes) != data.classes) throw Error(f.labels_in + ": classes are not in ascending order of bits");
    data_summary = {{"labels_file", f.labels_in}, {"meta", data.meta}};
    std::fprintf(stderr, "train: %zu labelled tokens from %s\n", data.samples.size(), f.labels_in.c_str());
  } else {
    train::PackOptions po;
    po.target_tokens = f.seq_tokens;
    po.max_tokens = std::max<int64_t>(f.seq_tokens + 64, f.seq_tokens);
    const auto seqs = train::pack_sequences(*m.tokenizer, items.texts, po);
    if (seqs.empty()) throw Error("--calib: the files hold too little text to make one sequence");
    train::LabelOptions lo;
    lo.horizon = f.horizon;
    lo.probe_activations = f.probe_activations == "float" ? ActivationMode::kFloat : ActivationMode::kInt8;
    lo.threads = f.model.threads;
    lo.group = f.group;
    lo.center_keys = f.center == "on";
    lo.weight_keys = f.key_weight == "on";
    if (!(probe_context == KvPrecision{16, 16})) lo.context = probe_context;
    lo.context_sinks = f.probe_sinks;
    lo.max_tokens = f.tokens;
    lo.seed = f.seed;
    lo.classes = classes;
    std::fprintf(stderr, "train: %zu calibration items -> %zu sequences; labelling about %lld tokens (horizon %lld, %s)\n",
                 items.texts.size(), seqs.size(), static_cast<long long>(f.tokens), static_cast<long long>(f.horizon),
                 f.probe_activations.c_str());
    const auto tl = clock::now();
    data = train::build_labels(*m.model, seqs, lo, [&](int64_t done, int64_t total) { progress_line(done, total, tl); });
    std::fprintf(stderr, "\n");
    if (!f.labels_out.empty()) train::save_labels(data, f.labels_out);
    data_summary = {{"files", items.sources}, {"meta", data.meta}, {"labelled_tokens", data.samples.size()},
                    {"label_seconds", std::chrono::duration<double>(clock::now() - tl).count()}};
  }
  fo.classes = data.classes;  // with --labels: the classes the file measured
  for (KvPrecision p : fo.classes) fo.class_bits.push_back(class_effective_bits(c, kv, p));
  train::FitResult r = train::fit_controller(data, fo, controller_model(c));
  r.report["data"] = data_summary;
  r.report["data"].erase("label_seconds");  // wall time stays out of the file (same seed, same file)
  r.controller.training = r.report;
  write_controller(r.controller, out);
  if (!f.report_json.empty()) {
    std::ofstream rep(f.report_json);
    rep << r.report.dump(2) << "\n";
  }
  const nlohmann::json& h = r.report["heldout"];
  std::printf("controller\t%s\n", f.out.c_str());
  std::printf("parameters\t%zu\n", r.controller.mlp.parameter_count());
  std::printf("held-out label accuracy\t%.4f (%lld tokens)\n", h["label_accuracy"].get<double>(),
              static_cast<long long>(r.report["samples"]["heldout_tokens"].get<int64_t>()));
  for (const auto& b : h["damage_at_budget"]) {
    std::printf("held-out damage at %.2f bits\tlearned %.4f\toracle %.4f\trandom %.4f\n", b["bits"].get<double>(),
                b["learned_damage"].get<double>(), b["oracle_damage"].get<double>(), b["random_damage"].get<double>());
  }
  for (const auto& imp : h["permutation_importance"]) {
    std::printf("importance %s\t%+.3f\n", imp["feature"].get<std::string>().c_str(), imp["increase"].get<double>());
  }
  std::printf("wall seconds\t%.1f\n", std::chrono::duration<double>(clock::now() - t0).count());
  return 0;
}

}  // namespace

Runner add_train_command(CLI::App& cmd) {
  auto f = std::make_shared<TrainFlags>();
  add_model_flags(cmd, f->model);
  cmd.add_option("--calib", f->calib, "calibration files (train/dev splits: ARC jsonl, generic MC jsonl, text)");
  cmd.add_option("-o,--out", f->out, "controller file to write, e.g. controllers/NAME.json")->required();
  cmd.add_option("--labels", f->labels_in, "fit from a label file saved earlier (no probing)");
  cmd.add_option("--save-labels", f->labels_out, "also write the measured samples to this file");
  cmd.add_option("--tokens", f->tokens, "tokens to label with measured damage (cost: one forward of --horizon per class)")
      ->check(CLI::Range(int64_t{50}, int64_t{1} << 30));
  cmd.add_option("--horizon", f->horizon, "following tokens whose KL makes a token's damage")->check(CLI::Range(int64_t{1}, int64_t{256}));
  cmd.add_option("--probe-activations", f->probe_activations, "int8 (fast) or float (no rounding noise, ~3x slower)")
      ->check(CLI::IsMember({"int8", "float"}));
  cmd.add_option("--seq-tokens", f->seq_tokens, "calibration sequence length")->check(CLI::Range(int64_t{16}, int64_t{2048}));
  cmd.add_option("--features", f->features, "comma-separated features (policy/controller_features.h)");
  cmd.add_option("--hidden", f->hidden, "hidden layer sizes, e.g. 64,64");
  cmd.add_option("--activation", f->activation, "relu or gelu")->check(CLI::IsMember({"relu", "gelu"}));
  cmd.add_option("--epochs", f->epochs, "passes over the training tokens")->check(CLI::Range(1, 100000));
  cmd.add_option("--batch", f->batch, "tokens per Adam step")->check(CLI::Range(1, 1 << 20));
  cmd.add_option("--lr", f->lr, "Adam learning rate")->check(CLI::Range(1e-7, 1.0));
  cmd.add_option("--weight-decay", f->weight_decay, "decoupled weight decay")->check(CLI::Range(0.0, 1.0));
  cmd.add_option("--seed", f->seed, "seed of the split, initialisation and sample order");
  cmd.add_option("--holdout", f->holdout, "fraction of sequences held out for the report")->check(CLI::Range(0.05, 0.9));
  cmd.add_option("--alpha", f->alpha, "weight of cross-entropy to the damage labels")->check(CLI::Range(0.0, 1e6));
  cmd.add_option("--beta", f->beta, "weight of expected bits")->check(CLI::Range(0.0, 1e6));
  cmd.add_option("--gamma", f->gamma, "weight of expected damage")->check(CLI::Range(0.0, 1e6));
  cmd.add_option("--temperature", f->temperature, "soft-label temperature, in medians of D(int2) - D(int4)")
      ->check(CLI::Range(1e-4, 1e4));
  cmd.add_option("--label-bits", f->label_bits, "hard labels' average bits (sets the label trade-off mu)")
      ->check(CLI::Range(2.0, 16.0));
  cmd.add_option("--kv-group", f->group, "KV group size the class costs are computed for")->check(CLI::Range(16, 1024));
  cmd.add_option("--probe-context", f->probe_context,
                 "the other tokens' width while a token is probed: fp16 (the token alone) or e.g. int4/int2 (its damage in a quantized context)");
  cmd.add_option("--probe-sinks", f->probe_sinks, "with --probe-context: the first N positions stay FP16 (as --kv-sinks)")
      ->check(CLI::Range(int64_t{0}, int64_t{1} << 30));
  cmd.add_option("--kv-center", f->center, "key centering when measuring damage, as --kv-center at run time: on, off")
      ->check(CLI::IsMember({"on", "off"}));
  cmd.add_option("--kv-key-weight", f->key_weight, "key channel weights when measuring damage, as --kv-key-weight at run time: on, off")
      ->check(CLI::IsMember({"on", "off"}));
  cmd.add_option("--report-json", f->report_json, "also write the training report here");
  cmd.add_option("--classes", f->classes,
                 "widths to choose from, K/V pairs allowed (each costs one probe per token; ignored with --labels)");
  return [f] { return train_command(*f); };
}

}  // namespace kvbits::cli
