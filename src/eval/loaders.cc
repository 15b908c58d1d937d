#include "eval/loaders.h"

#include <cerrno>
#include <algorithm>
#include <cctype>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string_view>

#include <nlohmann/json.hpp>

#include "tokenizer/utf8.h"
#include "util/error.h"

namespace kvbits::eval {
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

// A problem with one line (or item); the Collector turns it into "FILE:LINE: message".
struct BadLine {
  std::string message;
};

std::string read_file(const fs::path& file) {
  std::error_code ec;
  if (fs::is_directory(file, ec)) throw Error(file.string() + ": is a directory, expected a data file");
  std::ifstream in(file, std::ios::binary);
  if (!in) throw Error(file.string() + ": cannot open (" + std::strerror(errno) + ")");
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad()) throw Error(file.string() + ": read error");
  return text.str();
}

// Lines without their "\n" (and a "\r" before it); a final "\n" does not start another line.
std::vector<std::string_view> split_lines(std::string_view text) {
  std::vector<std::string_view> lines;
  size_t start = 0;
  while (start < text.size()) {
    size_t end = text.find('\n', start);
    if (end == std::string_view::npos) end = text.size();
    std::string_view line = text.substr(start, end - start);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    lines.push_back(line);
    start = end + 1;
  }
  return lines;
}

bool is_blank(std::string_view s) { return s.find_first_not_of(" \t\r\n") == std::string_view::npos; }

// Throws BadLine unless `s` is non-blank, valid UTF-8.
void check_text(std::string_view s, const std::string& what) {
  if (is_blank(s)) throw BadLine{what + " is empty"};
  const size_t bad = utf8::find_invalid(s);
  if (bad != std::string_view::npos) throw BadLine{what + " is not valid UTF-8 (byte " + std::to_string(bad) + ")"};
}

// Gathers items; a bad line throws (or, with skip_bad, is recorded and dropped).
class Collector {
 public:
  Collector(const fs::path& file, const LoadOptions& options) : skip_bad_(options.skip_bad) { data_.file = file; }

  void add(McItem item) { data_.items.push_back(std::move(item)); }

  void bad(int line, const std::string& message) {
    std::string m = data_.file.string() + ":" + std::to_string(line) + ": " + message;
    if (!skip_bad_) throw Error(m);
    data_.skipped.push_back(std::move(m));
  }

  McData finish() {
    if (data_.items.empty()) {
      throw Error(data_.file.string() + ": no items" +
                  (data_.skipped.empty() ? std::string()
                                         : " (all " + std::to_string(data_.skipped.size()) + " were malformed)"));
    }
    return std::move(data_);
  }

 private:
  bool skip_bad_;
  McData data_;
};

// --- JSON helpers: every failure is a BadLine naming the field --------------------------------

json parse_json_line(std::string_view line) {
  try {
    json j = json::parse(line);
    if (!j.is_object()) throw BadLine{"expected a JSON object"};
    return j;
  } catch (const json::parse_error& e) {
    // nlohmann's message minus its "[json.exception.parse_error.101] " prefix.
    std::string what = e.what();
    const size_t close = what.find("] ");
    // sanitize: the message may quote the offending bytes.
    throw BadLine{"invalid JSON: " + utf8::sanitize(close == std::string::npos ? what : what.substr(close + 2))};
  }
}

const json& field(const json& obj, const char* key, const std::string& path) {
  if (!obj.is_object()) throw BadLine{"\"" + path + "\" is not an object"};
  const auto it = obj.find(key);
  if (it == obj.end()) throw BadLine{"missing field \"" + path + (path.empty() ? "" : ".") + key + "\""};
  return *it;
}

std::string text_field(const json& obj, const char* key, const std::string& path) {
  const json& v = field(obj, key, path);
  const std::string name = "\"" + path + (path.empty() ? "" : ".") + key + "\"";
  if (!v.is_string()) throw BadLine{"field " + name + " is not a string"};
  std::string s = v.get<std::string>();
  check_text(s, "field " + name);
  return s;
}

// Reads a jsonl file: blank lines are ignored, every other line goes through `parse_item`.
template <typename ParseItem>
McData load_jsonl(const fs::path& file, const LoadOptions& options, ParseItem parse_item) {
  const std::string text = read_file(file);
  Collector out(file, options);
  const std::vector<std::string_view> lines = split_lines(text);
  for (size_t i = 0; i < lines.size(); ++i) {
    if (is_blank(lines[i])) continue;
    const int line = static_cast<int>(i + 1);
    try {
      McItem item = parse_item(parse_json_line(lines[i]));
      if (item.choices.size() < 2) throw BadLine{std::to_string(item.choices.size()) + " choice(s), need at least 2"};
      if (item.id.empty()) item.id = std::to_string(line);
      item.line = line;
      out.add(std::move(item));
    } catch (const BadLine& b) {
      out.bad(line, b.message);
    }
  }
  return out.finish();
}

std::string optional_id(const json& j) {
  const auto it = j.find("id");
  if (it == j.end()) return {};
  if (it->is_string()) return it->get<std::string>();
  if (it->is_number_integer()) return it->dump();
  throw BadLine{"field \"id\" is neither a string nor an integer"};
}

}  // namespace

McData load_hellaswag(const fs::path& file, const LoadOptions& options) {
  constexpr size_t kLines = 6;  // context, gold, 4 endings
  const std::string text = read_file(file);
  Collector out(file, options);
  const std::vector<std::string_view> lines = split_lines(text);
  for (size_t first = 0; first < lines.size(); first += kLines) {
    const int line = static_cast<int>(first + 1);
    try {
      if (lines.size() - first < kLines) {
        throw BadLine{"truncated item: " + std::to_string(lines.size() - first) + " of 6 lines"};
      }
      McItem item;
      item.id = std::to_string(first / kLines);
      item.line = line;
      item.context = std::string(lines[first]);
      check_text(item.context, "context (line 1 of the item)");
      const std::string_view gold = lines[first + 1];
      if (gold.size() != 1 || gold[0] < '0' || gold[0] > '3') {
        throw BadLine{"gold label (line 2 of the item) is '" + utf8::sanitize(gold.substr(0, 20)) + "', expected 0-3"};
      }
      item.gold = gold[0] - '0';
      for (size_t k = 2; k < kLines; ++k) {
        item.choices.emplace_back(lines[first + k]);
        check_text(item.choices.back(), "ending " + std::to_string(k - 1) + " (line " + std::to_string(k + 1) +
                                            " of the item)");
      }
      out.add(std::move(item));
    } catch (const BadLine& b) {
      out.bad(line, b.message);
    }
  }
  return out.finish();
}

McData load_arc_jsonl(const fs::path& file, const LoadOptions& options) {
  return load_jsonl(file, options, [](const json& j) {
    McItem item;
    item.id = optional_id(j);
    const json& question = field(j, "question", "");
    item.context = "Question: " + text_field(question, "stem", "question") + "\nAnswer:";
    const json& choices = field(question, "choices", "question");
    if (!choices.is_array()) throw BadLine{"field \"question.choices\" is not an array"};
    std::vector<std::string> labels;
    for (const json& c : choices) {
      const std::string label = text_field(c, "label", "question.choices[]");
      for (char ch : label) {
        if (!std::isalnum(static_cast<unsigned char>(ch))) throw BadLine{"choice label '" + label + "' is not a letter or digit"};
      }
      for (const std::string& l : labels) {
        if (l == label) throw BadLine{"choice label '" + label + "' appears twice"};
      }
      labels.push_back(label);
      item.choices.push_back(text_field(c, "text", "question.choices[]"));
    }
    const json& key = field(j, "answerKey", "");
    if (!key.is_string()) throw BadLine{"field \"answerKey\" is not a string"};
    const std::string answer = key.get<std::string>();
    item.gold = -1;
    for (size_t i = 0; i < labels.size(); ++i) {
      if (labels[i] == answer) item.gold = static_cast<int>(i);
    }
    if (item.gold < 0) {
      std::string all;
      for (const std::string& l : labels) all += (all.empty() ? "" : ", ") + l;
      throw BadLine{"answerKey '" + utf8::sanitize(answer) + "' is not among the choice labels (" + all + ")"};
    }
    return item;
  });
}

McData load_mc_jsonl(const fs::path& file, const LoadOptions& options) {
  return load_jsonl(file, options, [](const json& j) {
    McItem item;
    item.id = optional_id(j);
    item.context = text_field(j, "query", "");
    const json& choices = field(j, "choices", "");
    if (!choices.is_array()) throw BadLine{"field \"choices\" is not an array"};
    for (size_t i = 0; i < choices.size(); ++i) {
      const std::string name = "field \"choices[" + std::to_string(i) + "]\"";
      if (!choices[i].is_string()) throw BadLine{name + " is not a string"};
      item.choices.push_back(choices[i].get<std::string>());
      check_text(item.choices.back(), name);
    }
    const json& gold = field(j, "gold", "");
    if (!gold.is_number_integer()) throw BadLine{"field \"gold\" is not an integer"};
    const int64_t g = gold.get<int64_t>();
    if (g < 0 || g >= static_cast<int64_t>(item.choices.size())) {
      throw BadLine{"gold " + std::to_string(g) + " is out of range for " + std::to_string(item.choices.size()) +
                    " choices"};
    }
    item.gold = static_cast<int>(g);
    return item;
  });
}

std::string load_text(const fs::path& file) {
  std::string text = read_file(file);
  if (is_blank(text)) throw Error(file.string() + ": empty text");
  const size_t bad = utf8::find_invalid(text);
  if (bad != std::string::npos) {
    const int64_t line = 1 + std::count(text.begin(), text.begin() + static_cast<std::ptrdiff_t>(bad), '\n');
    throw Error(file.string() + ":" + std::to_string(line) + ": not valid UTF-8 (byte offset " + std::to_string(bad) +
                ")");
  }
  return text;
}

}  // namespace kvbits::eval
