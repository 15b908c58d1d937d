#include "train/calib_data.h"

#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "eval/loaders.h"
#include "tokenizer/utf8.h"
#include "util/error.h"

namespace kvbits::train {

namespace fs = std::filesystem;

namespace {

std::string read_all(const fs::path& file) {
  std::error_code ec;
  if (!fs::exists(file, ec)) throw Error(file.string() + ": calibration file not found");
  if (fs::is_directory(file, ec)) throw Error(file.string() + ": is a directory, expected a calibration file");
  std::ifstream in(file, std::ios::binary);
  if (!in) throw Error(file.string() + ": cannot read the calibration file");
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

bool blank(std::string_view s) { return s.find_first_not_of(" \t\r\n") == std::string_view::npos; }

// Evaluation-only files (test splits and the sets that have no train split here).
void refuse_test_split(const fs::path& file) {
  const std::string name = file.filename().string();
  const bool test = name.find("_test") != std::string::npos || name.find("test.") == 0 ||
                    name.find("-test") != std::string::npos || name.find("hellaswag_val") != std::string::npos;
  if (test) {
    throw Error(file.string() + ": looks like an evaluation split; fit the controller on train/dev data only "
                "(../shared/PROTOCOLS.md), e.g. arc_easy_train.jsonl arc_easy_dev.jsonl");
  }
}

}  // namespace

CalibItems load_calibration(const std::vector<fs::path>& files) {
  if (files.empty()) throw Error("--calib: give at least one calibration file");
  CalibItems out;
  for (const fs::path& file : files) {
    refuse_test_split(file);
    const std::string text = read_all(file);
    if (blank(text)) throw Error(file.string() + ": no usable calibration text (the file is empty)");
    const size_t before = out.texts.size();
    // Format by the first non-blank line.
    std::istringstream lines(text);
    std::string first;
    while (std::getline(lines, first) && blank(first)) {
    }
    nlohmann::json head;
    bool is_json = false;
    try {
      head = nlohmann::json::parse(first);
      is_json = head.is_object();
    } catch (const nlohmann::json::parse_error&) {
      is_json = false;
    }
    if (is_json && head.contains("question")) {
      for (const eval::McItem& it : eval::load_arc_jsonl(file).items) {
        out.texts.push_back(it.context + " " + it.choices[static_cast<size_t>(it.gold)]);
      }
    } else if (is_json && head.contains("query")) {
      for (const eval::McItem& it : eval::load_mc_jsonl(file).items) {
        out.texts.push_back(it.context + " " + it.choices[static_cast<size_t>(it.gold)]);
      }
    } else if (is_json) {
      throw Error(file.string() + ": a JSON line that is neither ARC ({\"question\": ...}) nor generic multiple "
                  "choice ({\"query\", \"choices\", \"gold\"}): no usable calibration text");
    } else {
      const size_t bad = utf8::find_invalid(text);
      if (bad != std::string::npos) {
        throw Error(file.string() + ": not valid UTF-8 text (byte " + std::to_string(bad) + ")");
      }
      std::istringstream in(text);
      std::string line;
      while (std::getline(in, line)) {
        if (!line.empty() && line.back() == '\r') line.pop_back();
        if (!blank(line)) out.texts.push_back(line);
      }
    }
    const size_t n = out.texts.size() - before;
    if (n == 0) throw Error(file.string() + ": no usable calibration text");
    out.sources.push_back(file.filename().string() + ": " + std::to_string(n) + " items");
  }
  return out;
}

std::vector<std::vector<int32_t>> pack_sequences(const Tokenizer& tok, const std::vector<std::string>& texts,
                                                 const PackOptions& o) {
  if (o.target_tokens < 2 || o.max_tokens < o.target_tokens) throw Error("calibration: bad sequence lengths");
  const bool bos = tok.add_bos() && tok.bos_id() >= 0;
  const std::vector<int32_t> sep = tok.encode("\n\n", false);
  std::vector<std::vector<int32_t>> out;
  std::vector<int32_t> cur;
  const auto start = [&] {
    cur.clear();
    if (bos) cur.push_back(tok.bos_id());
  };
  const size_t base = bos ? 1 : 0;
  start();
  for (const std::string& text : texts) {
    std::vector<int32_t> ids = tok.encode(text, false);
    if (ids.empty()) continue;
    if (static_cast<int64_t>(ids.size() + base) > o.max_tokens) ids.resize(static_cast<size_t>(o.max_tokens) - base);
    const size_t extra = (cur.size() > base ? sep.size() : 0) + ids.size();
    if (static_cast<int64_t>(cur.size() + extra) > o.max_tokens) {
      if (static_cast<int64_t>(cur.size()) >= o.min_tokens) out.push_back(cur);
      start();
    }
    if (cur.size() > base) cur.insert(cur.end(), sep.begin(), sep.end());
    cur.insert(cur.end(), ids.begin(), ids.end());
    if (static_cast<int64_t>(cur.size()) >= o.target_tokens) {
      out.push_back(cur);
      start();
    }
  }
  if (static_cast<int64_t>(cur.size()) >= o.min_tokens) out.push_back(cur);
  return out;
}

}  // namespace kvbits::train
