#include "policy/controller_file.h"

#include <charconv>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <sstream>

#include "util/error.h"

namespace kvbits {

using nlohmann::json;

ControllerModel controller_model(const LlamaConfig& c) {
  ControllerModel m;
  m.architecture = c.architecture;
  m.name = c.name;
  m.n_layers = c.n_layers;
  m.n_kv_heads = c.n_kv_heads;
  m.head_dim = c.head_dim;
  m.kv_dim = c.kv_dim();
  m.vocab_size = c.vocab_size;
  return m;
}

namespace {
std::string describe(const std::string& arch, int layers, int kv_heads, int head_dim, int vocab) {
  return arch + " with " + std::to_string(layers) + " layers, " + std::to_string(kv_heads) + " KV heads of " +
         std::to_string(head_dim) + " and a vocabulary of " + std::to_string(vocab);
}
}  // namespace

void check_controller_model(const ControllerModel& t, const LlamaConfig& c, const std::string& where) {
  if (t.architecture != c.architecture || t.n_layers != c.n_layers || t.n_kv_heads != c.n_kv_heads ||
      t.head_dim != c.head_dim || t.kv_dim != c.kv_dim() || t.vocab_size != c.vocab_size) {
    throw Error(where + ": the controller was trained for " +
                describe(t.architecture, t.n_layers, t.n_kv_heads, t.head_dim, t.vocab_size) +
                (t.name.empty() ? "" : " (" + t.name + ")") + ", not for this model (" +
                describe(c.architecture, c.n_layers, c.n_kv_heads, c.head_dim, c.vocab_size) + ")");
  }
}

double BudgetTable::lambda_for(double target) const {
  if (bits.empty()) return 0.0;
  if (target <= bits.front()) return lambda.front();
  if (target >= bits.back()) return lambda.back();
  size_t i = 1;
  while (bits[i] < target) ++i;
  const double f = (target - bits[i - 1]) / (bits[i] - bits[i - 1]);
  return lambda[i - 1] + f * (lambda[i] - lambda[i - 1]);
}

// --- reading --------------------------------------------------------------------------------

namespace {

class Reader {
 public:
  explicit Reader(std::string where) : where_(std::move(where)) {}

  [[noreturn]] void fail(const std::string& field, const std::string& problem) const {
    throw Error(where_ + ": field '" + field + "' " + problem);
  }
  const json& member(const json& obj, const std::string& key, const std::string& field) const {
    if (!obj.is_object()) fail(field, "is not an object");
    const auto it = obj.find(key);
    if (it == obj.end()) fail(field.empty() ? key : field + "." + key, "is missing");
    return *it;
  }
  std::string str(const json& obj, const std::string& key, const std::string& parent = "") const {
    const std::string f = parent.empty() ? key : parent + "." + key;
    const json& v = member(obj, key, parent);
    if (!v.is_string()) fail(f, "must be a string");
    return v.get<std::string>();
  }
  int integer(const json& obj, const std::string& key, const std::string& parent, int lo, int hi) const {
    const std::string f = parent.empty() ? key : parent + "." + key;
    const json& v = member(obj, key, parent);
    if (!v.is_number_integer()) fail(f, "must be an integer");
    const int64_t x = v.get<int64_t>();
    if (x < lo || x > hi) fail(f, "is " + std::to_string(x) + ", outside [" + std::to_string(lo) + ", " + std::to_string(hi) + "]");
    return static_cast<int>(x);
  }
  double number(const json& v, const std::string& f) const {
    if (!v.is_number()) fail(f, "must be a number");
    const double x = v.get<double>();
    if (!std::isfinite(x)) fail(f, "is not finite");
    return x;
  }
  double number(const json& obj, const std::string& key, const std::string& parent) const {
    return number(member(obj, key, parent), parent.empty() ? key : parent + "." + key);
  }
  const json& array(const json& obj, const std::string& key, const std::string& parent) const {
    const json& v = member(obj, key, parent);
    if (!v.is_array()) fail(parent.empty() ? key : parent + "." + key, "must be an array");
    return v;
  }
  // A numeric array of exactly n finite floats (n < 0: any length).
  std::vector<float> floats(const json& obj, const std::string& key, const std::string& parent, int64_t n) const {
    const std::string f = parent + "." + key;
    const json& a = array(obj, key, parent);
    if (n >= 0 && static_cast<int64_t>(a.size()) != n) {
      fail(f, "has " + std::to_string(a.size()) + " numbers, expected " + std::to_string(n));
    }
    std::vector<float> out;
    out.reserve(a.size());
    for (size_t i = 0; i < a.size(); ++i) {
      const std::string fi = f + "[" + std::to_string(i) + "]";
      if (!a[i].is_number()) fail(fi, "must be a number");
      const double x = a[i].get<double>();
      const float y = static_cast<float>(x);
      if (!std::isfinite(x) || !std::isfinite(y)) fail(fi, "is not finite");
      out.push_back(y);
    }
    return out;
  }
  std::vector<double> doubles(const json& obj, const std::string& key, const std::string& parent) const {
    const json& a = array(obj, key, parent);
    std::vector<double> out;
    for (size_t i = 0; i < a.size(); ++i) out.push_back(number(a[i], parent + "." + key + "[" + std::to_string(i) + "]"));
    return out;
  }
  const std::string& where() const { return where_; }

 private:
  std::string where_;
};

}  // namespace

ControllerFile controller_from_json(const json& doc, const std::string& where) {
  const Reader r(where);
  if (!doc.is_object()) throw Error(where + ": not a kvbits controller file (the JSON is not an object)");
  if (!doc.contains("format") || !doc["format"].is_string() || doc["format"].get<std::string>() != kControllerFormat) {
    throw Error(where + ": not a kvbits controller file (\"format\" is not \"" + kControllerFormat + "\")");
  }
  if (!doc.contains("format_version") || !doc["format_version"].is_number_integer()) {
    r.fail("format_version", "must be an integer");
  }
  const int64_t version = doc["format_version"].get<int64_t>();
  if (version != kControllerFormatVersion) {
    throw Error(where + ": controller format version " + std::to_string(version) +
                " is not supported (this kvbits reads version " + std::to_string(kControllerFormatVersion) + ")");
  }
  ControllerFile c;
  // model
  const json& m = r.member(doc, "model", "");
  c.model.architecture = r.str(m, "architecture", "model");
  if (m.contains("name") && m["name"].is_string()) c.model.name = m["name"].get<std::string>();
  c.model.n_layers = r.integer(m, "n_layers", "model", 1, 1 << 16);
  c.model.n_kv_heads = r.integer(m, "n_kv_heads", "model", 1, 1 << 16);
  c.model.head_dim = r.integer(m, "head_dim", "model", 1, 1 << 16);
  c.model.kv_dim = r.integer(m, "kv_dim", "model", 1, 1 << 24);
  c.model.vocab_size = r.integer(m, "vocab_size", "model", 1, 1 << 24);
  if (c.model.kv_dim != c.model.n_kv_heads * c.model.head_dim) r.fail("model.kv_dim", "is not n_kv_heads * head_dim");
  // classes
  const json& classes = r.array(doc, "classes", "");
  if (classes.size() < 2 || classes.size() > 16) r.fail("classes", "must list 2 to 16 classes");
  for (size_t i = 0; i < classes.size(); ++i) {
    const std::string f = "classes[" + std::to_string(i) + "]";
    if (!classes[i].is_string()) r.fail(f, "must be a string like \"int4\" or \"int8/int4\"");
    c.classes.push_back(parse_width_pair(classes[i].get<std::string>(), where + ": " + f));
  }
  // features
  const json& feats = r.array(doc, "features", "");
  if (feats.empty()) r.fail("features", "is empty");
  for (size_t i = 0; i < feats.size(); ++i) {
    const std::string f = "features[" + std::to_string(i) + "]";
    FeatureSpec s;
    try {
      s.feature = parse_feature(r.str(feats[i], "name", f));
      s.transform = parse_feature_transform(r.str(feats[i], "transform", f));
    } catch (const Error& e) {
      const std::string msg = e.what();
      if (msg.rfind(where, 0) == 0) throw;
      throw Error(where + ": " + f + ": " + msg);
    }
    s.mean = static_cast<float>(r.number(feats[i], "mean", f));
    s.std = static_cast<float>(r.number(feats[i], "std", f));
    if (!(s.std > 0.0f)) r.fail(f + ".std", "must be > 0");
    c.features.push_back(s);
  }
  // mlp
  const json& mj = r.member(doc, "mlp", "");
  MlpActivation act;
  try {
    act = parse_mlp_activation(r.str(mj, "activation", "mlp"));
  } catch (const Error& e) {
    const std::string msg = e.what();
    if (msg.rfind(where, 0) == 0) throw;
    throw Error(where + ": mlp.activation: " + msg);
  }
  const json& sizes_j = r.array(mj, "sizes", "mlp");
  std::vector<int> sizes;
  for (size_t i = 0; i < sizes_j.size(); ++i) {
    const std::string f = "mlp.sizes[" + std::to_string(i) + "]";
    if (!sizes_j[i].is_number_integer()) r.fail(f, "must be an integer");
    const int64_t s = sizes_j[i].get<int64_t>();
    if (s < 1 || s > 4096) r.fail(f, "is " + std::to_string(s) + ", outside [1, 4096]");
    sizes.push_back(static_cast<int>(s));
  }
  if (sizes.size() < 2) r.fail("mlp.sizes", "needs at least an input and an output size");
  if (sizes.front() != static_cast<int>(c.features.size())) {
    throw Error(where + ": the MLP takes " + std::to_string(sizes.front()) + " inputs but the file lists " +
                std::to_string(c.features.size()) + " features");
  }
  if (sizes.back() != static_cast<int>(c.classes.size())) {
    throw Error(where + ": the MLP gives " + std::to_string(sizes.back()) + " scores but the file lists " +
                std::to_string(c.classes.size()) + " classes");
  }
  c.mlp = Mlp(sizes, act);
  const json& layers = r.array(mj, "layers", "mlp");
  if (layers.size() != sizes.size() - 1) {
    r.fail("mlp.layers", "has " + std::to_string(layers.size()) + " layers, expected " + std::to_string(sizes.size() - 1));
  }
  for (size_t l = 0; l < layers.size(); ++l) {
    DenseLayer& d = c.mlp.layers()[l];
    const std::string f = "mlp.layers[" + std::to_string(l) + "]";
    d.w = r.floats(layers[l], "w", f, static_cast<int64_t>(d.in) * d.out);
    d.b = r.floats(layers[l], "b", f, d.out);
  }
  // rarity
  const json& rj = r.member(doc, "rarity", "");
  const int rv = r.integer(rj, "vocab_size", "rarity", 1, 1 << 24);
  if (rv != c.model.vocab_size) r.fail("rarity.vocab_size", "differs from model.vocab_size");
  const double alpha = r.number(rj, "alpha", "rarity");
  const json& ids_j = r.array(rj, "ids", "rarity");
  const json& counts_j = r.array(rj, "counts", "rarity");
  std::vector<int32_t> ids;
  std::vector<uint32_t> counts;
  for (size_t i = 0; i < ids_j.size(); ++i) {
    if (!ids_j[i].is_number_integer()) r.fail("rarity.ids[" + std::to_string(i) + "]", "must be an integer");
    const int64_t x = ids_j[i].get<int64_t>();
    if (x < 0 || x >= rv) r.fail("rarity.ids[" + std::to_string(i) + "]", "is outside the vocabulary");
    ids.push_back(static_cast<int32_t>(x));
  }
  for (size_t i = 0; i < counts_j.size(); ++i) {
    if (!counts_j[i].is_number_integer()) r.fail("rarity.counts[" + std::to_string(i) + "]", "must be an integer");
    const int64_t x = counts_j[i].get<int64_t>();
    if (x < 1 || x > 0xFFFFFFFFll) r.fail("rarity.counts[" + std::to_string(i) + "]", "must be >= 1");
    counts.push_back(static_cast<uint32_t>(x));
  }
  try {
    c.rarity = TokenFrequency(rv, alpha, std::move(ids), std::move(counts));
  } catch (const Error& e) {
    throw Error(where + ": " + e.what());
  }
  // budget
  const json& bj = r.member(doc, "budget", "");
  c.budget.class_bits = r.doubles(bj, "class_bits", "budget");
  if (c.budget.class_bits.size() != c.classes.size()) r.fail("budget.class_bits", "must give one number per class");
  c.budget.bits = r.doubles(bj, "bits", "budget");
  c.budget.lambda = r.doubles(bj, "lambda", "budget");
  if (c.budget.bits.empty() || c.budget.bits.size() != c.budget.lambda.size()) {
    r.fail("budget", "needs 'bits' and 'lambda' of the same, non-zero length");
  }
  for (size_t i = 1; i < c.budget.bits.size(); ++i) {
    if (!(c.budget.bits[i] > c.budget.bits[i - 1])) r.fail("budget.bits", "must be strictly ascending");
    if (c.budget.lambda[i] > c.budget.lambda[i - 1]) r.fail("budget.lambda", "must not increase with the bits");
  }
  c.budget.gain = r.number(bj, "gain", "budget");
  if (c.budget.gain < 0) r.fail("budget.gain", "must be >= 0");
  c.budget.default_bits = r.number(bj, "default_bits", "budget");
  if (doc.contains("training")) c.training = doc["training"];
  return c;
}

ControllerFile read_controller(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    std::error_code ec;
    const bool exists = std::filesystem::exists(path, ec);
    throw Error(path.string() + (exists ? ": cannot read the controller file" : ": controller file not found"));
  }
  std::stringstream ss;
  ss << in.rdbuf();
  const std::string text = ss.str();
  if (text.empty()) throw Error(path.string() + ": the controller file is empty");
  json doc;
  try {
    doc = json::parse(text);
  } catch (const json::parse_error& e) {
    throw Error(path.string() + ": not a valid controller file (truncated or not JSON: parse error at byte " +
                std::to_string(e.byte) + ")");
  }
  return controller_from_json(doc, path.string());
}

// --- writing --------------------------------------------------------------------------------

namespace {
// The float's shortest decimal form, as a JSON number (so files stay small and reload exactly).
json short_float(float x) {
  char buf[32];
  const auto res = std::to_chars(buf, buf + sizeof buf, x);
  *res.ptr = '\0';
  return json(std::strtod(buf, nullptr));
}
json floats_json(const std::vector<float>& v) {
  json a = json::array();
  for (float x : v) a.push_back(short_float(x));
  return a;
}
json doubles_json(const std::vector<double>& v) {
  json a = json::array();
  for (double x : v) a.push_back(short_float(static_cast<float>(x)));
  return a;
}
}  // namespace

json to_json(const ControllerFile& c) {
  json doc;
  doc["format"] = kControllerFormat;
  doc["format_version"] = kControllerFormatVersion;
  doc["model"] = {{"architecture", c.model.architecture}, {"name", c.model.name}, {"n_layers", c.model.n_layers},
                  {"n_kv_heads", c.model.n_kv_heads}, {"head_dim", c.model.head_dim}, {"kv_dim", c.model.kv_dim},
                  {"vocab_size", c.model.vocab_size}};
  json classes = json::array();
  for (KvPrecision p : c.classes) classes.push_back(width_pair_name(p));
  doc["classes"] = classes;
  json feats = json::array();
  for (const FeatureSpec& s : c.features) {
    feats.push_back({{"name", to_string(s.feature)}, {"transform", to_string(s.transform)},
                     {"mean", short_float(s.mean)}, {"std", short_float(s.std)}});
  }
  doc["features"] = feats;
  json layers = json::array();
  for (const DenseLayer& d : c.mlp.layers()) layers.push_back({{"w", floats_json(d.w)}, {"b", floats_json(d.b)}});
  doc["mlp"] = {{"activation", to_string(c.mlp.activation())}, {"sizes", c.mlp.sizes()}, {"layers", layers}};
  doc["rarity"] = {{"vocab_size", c.rarity.vocab()}, {"alpha", c.rarity.alpha()}, {"ids", c.rarity.ids()},
                   {"counts", c.rarity.counts()}};
  doc["budget"] = {{"class_bits", doubles_json(c.budget.class_bits)}, {"bits", doubles_json(c.budget.bits)},
                   {"lambda", doubles_json(c.budget.lambda)}, {"gain", c.budget.gain},
                   {"default_bits", c.budget.default_bits}};
  doc["training"] = c.training;
  return doc;
}

void write_controller(const ControllerFile& c, const std::filesystem::path& path) {
  const json doc = to_json(c);
  // One top-level key per line: small diffs, still compact.
  std::string text = "{\n";
  bool first = true;
  for (const char* key : {"format", "format_version", "model", "classes", "features", "budget", "training", "mlp", "rarity"}) {
    if (!first) text += ",\n";
    first = false;
    text += "  \"" + std::string(key) + "\": " + doc[key].dump();
  }
  text += "\n}\n";
  const std::filesystem::path tmp = path.string() + ".partial";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    if (!out) throw Error(path.string() + ": cannot write the controller file");
    out << text;
    if (!out.flush()) throw Error(path.string() + ": cannot write the controller file");
  }
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec);
  if (ec) throw Error(path.string() + ": cannot write the controller file: " + ec.message());
}

}  // namespace kvbits
