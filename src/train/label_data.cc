#include "train/label_data.h"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <random>
#include <sstream>

#include "engine/damage_probe.h"
#include "util/error.h"

namespace kvbits::train {

namespace {

// Records what the session shows it; stores everything at fp16 (what it stores does not change the
// features of tokens prefilled in one chunk).
class RecordingPolicy : public PrecisionPolicy {
 public:
  std::string spec() const override { return "recording"; }
  nlohmann::json parameters() const override { return nlohmann::json::object(); }
  bool mixed() const override { return false; }
  KvPrecision floor() const override { return {16, 16}; }
  PolicyNeeds needs() const override { return {true, true}; }
  void decide(std::span<const TokenInfo> tokens, int, std::span<KvPrecision> out) override {
    seen.insert(seen.end(), tokens.begin(), tokens.end());
    std::fill(out.begin(), out.end(), KvPrecision{16, 16});
  }
  std::vector<TokenInfo> seen;
};

}  // namespace

std::vector<TokenInfo> token_features(const LlamaModel& model, std::span<const int32_t> tokens, int threads) {
  auto policy = std::make_shared<RecordingPolicy>();
  SessionOptions so;
  so.threads = threads;
  so.context = static_cast<int64_t>(tokens.size()) + 1;
  so.prefill_chunk = std::max<int64_t>(256, static_cast<int64_t>(tokens.size()));
  so.max_batch = so.prefill_chunk;
  so.activations = ActivationMode::kInt8;
  so.policy = policy;
  Session s(model, so);
  s.prefill(tokens);
  return policy->seen;
}

LabelData build_labels(const LlamaModel& model, const std::vector<std::vector<int32_t>>& sequences,
                       const LabelOptions& o, const std::function<void(int64_t, int64_t)>& progress) {
  if (sequences.empty()) throw Error("calibration: no token sequences to train on");
  const int32_t vocab = model.config().vocab_size;
  LabelData data;
  data.classes = o.classes;
  std::vector<int32_t> all;
  for (const auto& s : sequences) all.insert(all.end(), s.begin(), s.end());
  data.frequency = TokenFrequency::count(vocab, o.alpha, all);
  // Seeded order of sequences; probe whole sequences until max_tokens.
  std::vector<size_t> order(sequences.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::mt19937_64 rng(o.seed);
  for (size_t i = order.size(); i > 1; --i) std::swap(order[i - 1], order[static_cast<size_t>(rng() % i)]);
  std::vector<size_t> chosen;
  int64_t planned = 0;
  for (size_t i : order) {
    if (planned >= o.max_tokens && chosen.size() >= 2) break;  // two at least: one is held out
    chosen.push_back(i);
    planned += static_cast<int64_t>(sequences[i].size()) - 1;
  }
  if (o.classes.empty()) throw Error("calibration: no classes to label");
  DamageProbeOptions po;
  po.widths.clear();
  for (KvPrecision p : o.classes) {
    if (!(p == KvPrecision{16, 16})) po.widths.push_back(p);
  }
  po.horizon = o.horizon;
  po.threads = o.threads;
  po.group = o.group;
  po.rotation = o.rotation;
  po.center_keys = o.center_keys;
  po.weight_keys = o.weight_keys;
  po.activations = o.probe_activations;
  po.context = o.context;
  po.context_sinks = o.context_sinks;
  if (o.center_keys || o.weight_keys) {  // once, not once per probed sequence
    ThreadPool pool(o.threads);
    po.calibration = std::make_shared<const KeyCalibration>(measure_key_calibration(model, pool));
  }
  RunningFrequency running(vocab, o.alpha);
  int64_t done = 0;
  for (size_t k = 0; k < chosen.size(); ++k) {
    const std::vector<int32_t>& seq = sequences[chosen[k]];
    const std::vector<TokenInfo> info = token_features(model, seq, o.threads);
    const int64_t n = static_cast<int64_t>(seq.size());
    const std::vector<TokenDamage> dmg = probe_damage(model, seq, 0, n - 1, po);
    for (int64_t t = 0; t < n; ++t) {
      const float run = running.observe(seq[static_cast<size_t>(t)]);
      if (t == n - 1) break;
      TokenSample s;
      s.seq = static_cast<int32_t>(chosen[k]);
      s.position = static_cast<int32_t>(t);
      s.token = seq[static_cast<size_t>(t)];
      s.raw = raw_features(info[static_cast<size_t>(t)], data.frequency.rarity(s.token), run);
      const TokenDamage& d = dmg[static_cast<size_t>(t)];
      size_t w = 0;
      for (KvPrecision p : o.classes) s.damage.push_back(p == KvPrecision{16, 16} ? 0.0f : d.kl[w++]);
      data.samples.push_back(s);
    }
    done += n - 1;
    if (progress) progress(done, planned);
  }
  data.meta = {{"horizon", o.horizon},
               {"probe_activations", o.probe_activations == ActivationMode::kFloat ? "float" : "int8"},
               {"group", o.group},
               {"rotation", o.rotation == KvRotation::kNone ? "none" : o.rotation == KvRotation::kKeys ? "k" : "kv"},
               {"center_keys", o.center_keys},
               {"weight_keys", o.weight_keys},
               {"context", o.context ? width_pair_name(*o.context) : "fp16"},
               {"context_sinks", o.context_sinks},
               {"sequences", sequences.size()},
               {"probed_sequences", chosen.size()},
               {"corpus_tokens", all.size()},
               {"seed", o.seed},
               {"alpha", o.alpha}};
  return data;
}

// --- files ----------------------------------------------------------------------------------

namespace {
constexpr const char* kLabelFormat = "kvbits-controller-labels";
}

void save_labels(const LabelData& d, const std::filesystem::path& path) {
  nlohmann::json classes_json = nlohmann::json::array();
  for (KvPrecision p : d.classes) classes_json.push_back(width_pair_name(p));
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  if (!out) throw Error(path.string() + ": cannot write the label file");
  nlohmann::json head = {{"format", kLabelFormat},
                         {"format_version", 2},
                         {"meta", d.meta},
                         {"classes", classes_json},
                         {"rarity", {{"vocab_size", d.frequency.vocab()}, {"alpha", d.frequency.alpha()},
                                     {"ids", d.frequency.ids()}, {"counts", d.frequency.counts()}}}};
  std::string text = head.dump();
  text.pop_back();  // '}'
  text += ",\"samples\":[\n";
  char buf[64];
  for (size_t i = 0; i < d.samples.size(); ++i) {
    const TokenSample& s = d.samples[i];
    text += "[" + std::to_string(s.seq) + "," + std::to_string(s.position) + "," + std::to_string(s.token);
    for (float v : s.raw.v) {
      std::snprintf(buf, sizeof buf, ",%.9g", static_cast<double>(v));
      text += buf;
    }
    for (float v : s.damage) {
      std::snprintf(buf, sizeof buf, ",%.9g", static_cast<double>(v));
      text += buf;
    }
    text += i + 1 < d.samples.size() ? "],\n" : "]\n";
  }
  text += "]}\n";
  out << text;
  if (!out.flush()) throw Error(path.string() + ": cannot write the label file");
}

LabelData load_labels(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(path.string() + ": label file not found or unreadable");
  std::stringstream ss;
  ss << in.rdbuf();
  nlohmann::json doc;
  try {
    doc = nlohmann::json::parse(ss.str());
  } catch (const nlohmann::json::parse_error& e) {
    throw Error(path.string() + ": not a valid label file (parse error at byte " + std::to_string(e.byte) + ")");
  }
  const std::string where = path.string();
  try {
    if (!doc.is_object() || doc.value("format", "") != kLabelFormat) throw Error(where + ": not a kvbits label file");
    const int version = doc.value("format_version", 0);
    if (version != 1 && version != 2) throw Error(where + ": unsupported label file version");
    LabelData d;
    d.meta = doc.at("meta");
    // Version 1: D2, D4, D8 per row (K and V alike), fp16 implied.
    size_t stored = 3;
    if (version == 1) {
      d.classes = {{2, 2}, {4, 4}, {8, 8}, {16, 16}};
    } else {
      for (const auto& name : doc.at("classes")) d.classes.push_back(parse_width_pair(name.get<std::string>(), where + ": classes"));
      if (d.classes.size() < 2 || d.classes.size() > 16) throw Error(where + ": must list 2 to 16 classes");
      stored = d.classes.size();
    }
    const auto& r = doc.at("rarity");
    d.frequency = TokenFrequency(r.at("vocab_size").get<int32_t>(), r.at("alpha").get<double>(),
                                 r.at("ids").get<std::vector<int32_t>>(), r.at("counts").get<std::vector<uint32_t>>());
    for (const auto& row : doc.at("samples")) {
      if (!row.is_array() || row.size() != 3 + kFeatureKinds + stored) throw Error(where + ": a sample row has the wrong length");
      TokenSample s;
      s.seq = row[0].get<int32_t>();
      s.position = row[1].get<int32_t>();
      s.token = row[2].get<int32_t>();
      for (int f = 0; f < kFeatureKinds; ++f) s.raw.v[f] = row[3 + f].get<float>();
      for (size_t j = 0; j < stored; ++j) s.damage.push_back(row[3 + kFeatureKinds + j].get<float>());
      if (version == 1) s.damage.push_back(0.0f);
      for (float v : s.damage) {
        if (!std::isfinite(v) || v < 0) throw Error(where + ": a damage value is negative or not finite");
      }
      d.samples.push_back(s);
    }
    if (d.samples.empty()) throw Error(where + ": the label file holds no samples");
    return d;
  } catch (const nlohmann::json::exception& e) {
    throw Error(where + ": malformed label file (" + std::string(e.what()) + ")");
  }
}

}  // namespace kvbits::train
