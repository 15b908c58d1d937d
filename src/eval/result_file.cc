#include "eval/result_file.h"

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <fstream>
#include <set>
#include <sstream>

#include "tokenizer/utf8.h"
#include "util/error.h"
#include "util/version.h"

namespace kvbits::eval {
namespace fs = std::filesystem;
using nlohmann::json;

std::string policy_family(const PolicyInfo& policy) {
  if (!policy.family.empty()) return policy.family;
  return policy.name.substr(0, policy.name.find('@'));
}

RunResult::RunResult() : kvbits_version(kVersion), kvbits_commit(kGitCommit) {}

std::string utc_timestamp() {
  const std::time_t now = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&now, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

// --- writing ----------------------------------------------------------------------------------

namespace {
json optional_number(const std::optional<double>& v) { return v ? json(*v) : json(nullptr); }
const char* records_key(TaskKind kind) { return kind == TaskKind::kMultipleChoice ? "items" : "windows"; }
}  // namespace

json to_json(const RunResult& r) {
  const std::string where = r.task + " result";
  json doc;
  doc["format"] = kResultFormat;
  doc["format_version"] = kResultFormatVersion;
  doc["kvbits"] = {{"version", r.kvbits_version}, {"commit", r.kvbits_commit}};
  doc["timestamp"] = r.timestamp;
  doc["model"] = {{"path", r.model_path}, {"sha256", r.model_sha256}};
  doc["policy"] = {{"name", r.policy.name},
                   {"family", policy_family(r.policy)},
                   {"budget_bits", optional_number(r.policy.budget_bits)},
                   {"params", r.policy.params}};
  doc["task"] = {{"name", r.task}, {"kind", to_string(r.kind)}, {"data_file", r.data_file}};
  doc["shard"] = {{"index", r.shard.index}, {"count", r.shard.count}};
  doc["limit"] = r.limit;
  doc["n_total"] = r.n_total;
  doc["n"] = r.n();
  doc["n_skipped"] = r.n_skipped;
  doc["complete"] = r.complete;
  json records = json::array();
  if (r.kind == TaskKind::kMultipleChoice) {
    for (const McRecord& m : r.items) {
      validate(m, where);
      records.push_back({{"index", m.index}, {"gold", m.gold}, {"ll", m.ll}, {"len", m.length}});
    }
    if (r.items.empty()) {
      doc["metrics"] = nullptr;
    } else {
      const McMetrics m = mc_metrics(r.items);
      doc["metrics"] = {{"acc", m.acc}, {"acc_stderr", m.acc_stderr}, {"acc_norm", m.acc_norm},
                        {"acc_norm_stderr", m.acc_norm_stderr}};
    }
  } else {
    for (const PplWindow& w : r.windows) {
      validate(w, where);
      records.push_back({{"index", w.index}, {"nll", w.nll}, {"tokens", w.tokens}, {"bytes", w.bytes}});
      if (w.kl) records.back()["kl"] = *w.kl;
    }
    if (r.windows.empty()) {
      doc["metrics"] = nullptr;
    } else {
      const PplMetrics m = ppl_metrics(r.windows);
      doc["metrics"] = {{"ppl", m.ppl}, {"bits_per_byte", m.bits_per_byte}, {"nll", m.nll},
                        {"tokens", m.tokens}, {"bytes", m.bytes}};
      if (m.kl_per_token) doc["metrics"]["kl_vs_fp16"] = *m.kl_per_token;
    }
  }
  doc["kv"] = {{"effective_bits", r.kv.effective_bits}, {"kv_bytes", r.kv.kv_bytes},
               {"kv_bytes_allocated", r.kv.kv_bytes_allocated}, {"tokens", r.kv.tokens}};
  doc["decode_ms_per_token"] = optional_number(r.decode_ms_per_token);
  doc["wall_seconds"] = r.wall_seconds;
  doc[records_key(r.kind)] = std::move(records);
  return doc;
}

std::string serialize(const RunResult& r) {
  constexpr auto kReplace = json::error_handler_t::replace;  // never throw on odd bytes in a path
  json doc = to_json(r);
  const char* key = records_key(r.kind);
  const json records = std::move(doc[key]);
  doc.erase(key);
  std::string text = doc.dump(2, ' ', false, kReplace);
  text.resize(text.size() - 2);  // drop the closing "\n}"
  text += ",\n  \"" + std::string(key) + "\": [";
  for (size_t i = 0; i < records.size(); ++i) {
    text += (i ? ",\n    " : "\n    ") + records[i].dump(-1, ' ', false, kReplace);
  }
  text += records.empty() ? "]\n}\n" : "\n  ]\n}\n";
  return text;
}

// --- reading ----------------------------------------------------------------------------------

namespace {

// Typed access to the fields of one JSON object; every failure is
// Error("WHERE: field 'path.key': problem").
class Fields {
 public:
  Fields(const json& obj, const std::string& where, std::string path) : obj_(obj), where_(where), path_(std::move(path)) {
    if (!obj_.is_object()) fail_self("is not an object");
  }

  const json& get(const char* key) const {
    const auto it = obj_.find(key);
    if (it == obj_.end()) fail(key, "missing");
    return *it;
  }
  std::string str(const char* key) const {
    const json& v = get(key);
    if (!v.is_string()) fail(key, "is not a string");
    return v.get<std::string>();
  }
  int64_t integer(const char* key, int64_t min) const {
    const json& v = get(key);
    if (!v.is_number_integer()) fail(key, "is not an integer");
    const int64_t x = v.get<int64_t>();
    if (x < min || (v.is_number_unsigned() && v.get<uint64_t>() > static_cast<uint64_t>(INT64_MAX))) {
      fail(key, "is out of range (minimum " + std::to_string(min) + ")");
    }
    return x;
  }
  uint64_t unsigned_integer(const char* key) const {
    const json& v = get(key);
    if (!v.is_number_unsigned()) fail(key, "is not a non-negative integer");
    return v.get<uint64_t>();
  }
  double number(const char* key) const {
    const json& v = get(key);
    if (!v.is_number()) fail(key, "is not a number");
    return v.get<double>();
  }
  std::optional<double> number_or_null(const char* key) const {
    const auto it = obj_.find(key);
    if (it == obj_.end() || it->is_null()) return std::nullopt;
    return number(key);
  }
  bool boolean(const char* key) const {
    const json& v = get(key);
    if (!v.is_boolean()) fail(key, "is not true or false");
    return v.get<bool>();
  }
  const json& array(const char* key) const {
    const json& v = get(key);
    if (!v.is_array()) fail(key, "is not an array");
    return v;
  }
  Fields object(const char* key) const { return Fields(get(key), where_, name(key)); }

  std::string name(const std::string& key) const { return path_.empty() ? key : path_ + "." + key; }
  [[noreturn]] void fail(const std::string& key, const std::string& problem) const {
    throw Error(where_ + ": field '" + name(key) + "' " + problem);
  }

 private:
  [[noreturn]] void fail_self(const std::string& problem) const {
    throw Error(where_ + ": " + (path_.empty() ? std::string("the document") : "field '" + path_ + "'") + " " + problem);
  }
  const json& obj_;
  const std::string& where_;
  std::string path_;
};

McRecord parse_item(const Fields& f) {
  McRecord r;
  r.index = f.integer("index", 0);
  r.gold = static_cast<int>(f.integer("gold", 0));
  for (const json& x : f.array("ll")) {
    if (!x.is_number()) f.fail("ll", "holds a non-number");
    r.ll.push_back(x.get<double>());
  }
  for (const json& x : f.array("len")) {
    if (!x.is_number_integer()) f.fail("len", "holds a non-integer");
    r.length.push_back(x.get<int64_t>());
  }
  return r;
}

PplWindow parse_window(const Fields& f) {
  PplWindow w;
  w.index = f.integer("index", 0);
  w.nll = f.number("nll");
  w.tokens = f.integer("tokens", 1);
  w.bytes = f.integer("bytes", 0);
  w.kl = f.number_or_null("kl");
  return w;
}

// Records: unique, ascending after sorting, inside [0, n_total) and on this shard's stride.
template <typename Record>
void check_indices(std::vector<Record>& records, const RunResult& r, const std::string& where) {
  std::sort(records.begin(), records.end(), [](const Record& a, const Record& b) { return a.index < b.index; });
  for (size_t i = 0; i < records.size(); ++i) {
    const int64_t index = records[i].index;
    const std::string at = where + ": record with index " + std::to_string(index);
    if (i > 0 && records[i - 1].index == index) throw Error(at + " appears twice");
    if (index >= r.n_total) throw Error(at + " is not below n_total " + std::to_string(r.n_total));
    if (index % r.shard.count != r.shard.index - 1) throw Error(at + " does not belong to shard " + to_string(r.shard));
  }
}

}  // namespace

RunResult from_json(const json& doc, const std::string& where) {
  const Fields top(doc, where, "");
  if (!doc.contains("format") || !doc["format"].is_string() || doc["format"] != kResultFormat) {
    throw Error(where + ": not a kvbits result file (field 'format' is not \"" + kResultFormat + "\")");
  }
  const int64_t version = top.integer("format_version", 1);
  if (version > kResultFormatVersion) {
    throw Error(where + ": format_version " + std::to_string(version) + " is newer than this kvbits reads (" +
                std::to_string(kResultFormatVersion) + ")");
  }
  RunResult r;
  const Fields kvbits = top.object("kvbits");
  r.kvbits_version = kvbits.str("version");
  r.kvbits_commit = kvbits.str("commit");
  r.timestamp = top.str("timestamp");
  const Fields model = top.object("model");
  r.model_path = model.str("path");
  r.model_sha256 = model.str("sha256");
  const Fields policy = top.object("policy");
  r.policy.name = policy.str("name");
  if (r.policy.name.empty()) policy.fail("name", "is empty");
  r.policy.family = policy.str("family");
  r.policy.budget_bits = policy.number_or_null("budget_bits");
  r.policy.params = policy.get("params");
  if (!r.policy.params.is_object()) policy.fail("params", "is not an object");
  const Fields task = top.object("task");
  r.task = task.str("name");
  if (r.task.empty()) task.fail("name", "is empty");
  try {
    r.kind = parse_task_kind(task.str("kind"));
  } catch (const Error& e) {
    task.fail("kind", std::string("is wrong: ") + e.what());
  }
  r.data_file = task.str("data_file");
  const Fields shard = top.object("shard");
  r.shard.count = shard.integer("count", 1);
  r.shard.index = shard.integer("index", 1);
  if (r.shard.index > r.shard.count) shard.fail("index", "is above shard.count");
  r.limit = top.integer("limit", 0);
  r.n_total = top.integer("n_total", 0);
  r.n_skipped = top.integer("n_skipped", 0);
  r.complete = top.boolean("complete");
  const Fields kv = top.object("kv");
  r.kv.effective_bits = kv.number("effective_bits");
  r.kv.kv_bytes = kv.unsigned_integer("kv_bytes");
  r.kv.kv_bytes_allocated = kv.unsigned_integer("kv_bytes_allocated");
  r.kv.tokens = kv.unsigned_integer("tokens");
  r.decode_ms_per_token = top.number_or_null("decode_ms_per_token");
  r.wall_seconds = top.number("wall_seconds");

  const char* key = records_key(r.kind);
  const json& records = top.array(key);
  for (size_t i = 0; i < records.size(); ++i) {
    const Fields f(records[i], where, std::string(key) + "[" + std::to_string(i) + "]");
    if (r.kind == TaskKind::kMultipleChoice) {
      r.items.push_back(parse_item(f));
      validate(r.items.back(), where);
    } else {
      r.windows.push_back(parse_window(f));
      validate(r.windows.back(), where);
    }
  }
  if (r.kind == TaskKind::kMultipleChoice) check_indices(r.items, r, where);
  else check_indices(r.windows, r, where);
  const int64_t n = top.integer("n", 0);
  if (n != r.n()) top.fail("n", "is " + std::to_string(n) + " but there are " + std::to_string(r.n()) + " records");
  if (r.n() == 0 && r.complete) top.fail(key, "is empty in a complete result");
  return r;
}

RunResult read_result(const fs::path& file) {
  const std::string where = file.string();
  std::error_code ec;
  if (fs::is_directory(file, ec)) throw Error(where + ": is a directory, expected a result file");
  std::ifstream in(file, std::ios::binary);
  if (!in) throw Error(where + ": cannot open (" + std::strerror(errno) + ")");
  std::ostringstream text;
  text << in.rdbuf();
  json doc;
  try {
    doc = json::parse(text.str());
  } catch (const json::parse_error& e) {
    const std::string what = e.what();
    const size_t close = what.find("] ");
    throw Error(where + ": invalid JSON: " + utf8::sanitize(close == std::string::npos ? what : what.substr(close + 2)));
  }
  return from_json(doc, where);
}

// --- ResultWriter -------------------------------------------------------------------------------

ResultWriter::ResultWriter(fs::path path) : path_(std::move(path)), partial_(path_.string() + ".partial") {
  std::error_code ec;
  if (path_.empty()) throw Error("result file: empty path");
  if (fs::is_directory(path_, ec)) throw Error(path_.string() + ": is a directory, cannot write the result file there");
  FILE* fp = std::fopen(partial_.c_str(), "w");
  if (!fp) throw Error(path_.string() + ": cannot write the result file (" + partial_.string() + ": " + std::strerror(errno) + ")");
  std::fclose(fp);
}

ResultWriter::~ResultWriter() {
  std::error_code ec;
  fs::remove(partial_, ec);  // gone already after a successful write()
}

void ResultWriter::write(RunResult result) {
  if (result.timestamp.empty()) result.timestamp = utc_timestamp();
  const std::string text = serialize(result);
  FILE* fp = std::fopen(partial_.c_str(), "w");
  if (!fp) throw Error(partial_.string() + ": cannot write (" + std::strerror(errno) + ")");
  const bool ok = std::fwrite(text.data(), 1, text.size(), fp) == text.size() && std::fflush(fp) == 0;
  const int err = errno;
  if (std::fclose(fp) != 0 || !ok) throw Error(partial_.string() + ": write failed (" + std::strerror(err) + ")");
  std::error_code ec;
  fs::rename(partial_, path_, ec);
  if (ec) throw Error(path_.string() + ": cannot rename " + partial_.string() + " onto it (" + ec.message() + ")");
}

}  // namespace kvbits::eval
