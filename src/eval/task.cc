#include "eval/task.h"

#include <cstdlib>
#include <tuple>

#include "util/error.h"

namespace kvbits::eval {
namespace fs = std::filesystem;

DataDir resolve_data_dir(const std::string& flag, const char* env, const fs::path& base) {
  if (!flag.empty()) return {flag, "--data"};
  if (env != nullptr && *env != '\0') return {env, "KVBITS_DATA"};
  return {base / ".." / "shared" / "data", "default ../shared/data"};
}

DataDir resolve_data_dir(const std::string& flag) {
  return resolve_data_dir(flag, std::getenv("KVBITS_DATA"), fs::current_path());
}

const char* to_string(TaskKind kind) {
  return kind == TaskKind::kMultipleChoice ? "multiple_choice" : "perplexity";
}

TaskKind parse_task_kind(std::string_view s) {
  if (s == "multiple_choice") return TaskKind::kMultipleChoice;
  if (s == "perplexity") return TaskKind::kPerplexity;
  throw Error("unknown task kind '" + std::string(s) + "' (multiple_choice, perplexity)");
}

std::string task_names_help() {
  return "hellaswag, arc_easy[:test|dev|train], arc_challenge[:test|dev|train], openbookqa, wikitext2, mc:FILE, text:FILE";
}

namespace {

void require_file(const fs::path& file, std::string_view task, const DataDir& dir) {
  std::error_code ec;
  if (fs::is_regular_file(file, ec)) return;
  throw Error(std::string(task) + ": data file " + file.string() +
              (fs::exists(file, ec) ? " is not a regular file" : " does not exist") + " (data directory " +
              dir.path.string() + " from " + dir.origin + ")");
}

}  // namespace

TaskSpec parse_task(std::string_view name, const DataDir& data_dir) {
  TaskSpec spec;
  // mc:FILE (generic multiple-choice jsonl) and text:FILE (perplexity over any UTF-8 text).
  for (const auto& [prefix, kind, format] : {std::tuple{"mc:", TaskKind::kMultipleChoice, TaskFormat::kMcJsonl},
                                             std::tuple{"text:", TaskKind::kPerplexity, TaskFormat::kText}}) {
    const std::string_view p(prefix);
    if (!name.starts_with(p)) continue;
    const fs::path given(name.substr(p.size()));
    if (given.empty()) throw Error("task '" + std::string(p) + "': no file given (" + std::string(p) + "FILE)");
    std::error_code ec;
    spec.file = given;
    if (given.is_relative() && !fs::exists(given, ec) && fs::exists(data_dir.path / given, ec)) {
      spec.file = data_dir.path / given;
    }
    spec.name = std::string(p) + given.filename().string();
    spec.kind = kind;
    spec.format = format;
    if (!fs::is_regular_file(spec.file, ec)) {
      throw Error(spec.name + ": " + given.string() +
                  (fs::exists(spec.file, ec) ? " is not a regular file" : " does not exist") +
                  " (relative paths: current directory, then the data directory " + data_dir.path.string() + ")");
    }
    return spec;
  }
  std::string_view base = name;
  std::string split = "test";
  if (const size_t colon = name.find(':'); colon != std::string_view::npos) {
    base = name.substr(0, colon);
    split = std::string(name.substr(colon + 1));
  }
  const bool has_split = base.size() != name.size();
  if (base == "arc_easy" || base == "arc_challenge") {
    if (split != "test" && split != "dev" && split != "train") {
      throw Error("task '" + std::string(name) + "': unknown split '" + split + "' (test, dev, train)");
    }
    spec.name = split == "test" ? std::string(base) : std::string(base) + ":" + split;
    spec.format = TaskFormat::kArc;
    spec.file = data_dir.path / (std::string(base) + "_" + split + ".jsonl");
  } else if (!has_split && name == "hellaswag") {
    spec.name = "hellaswag";
    spec.format = TaskFormat::kHellaswag;
    spec.file = data_dir.path / "hellaswag_val_full.txt";
  } else if (!has_split && name == "openbookqa") {
    spec.name = "openbookqa";
    spec.format = TaskFormat::kMcJsonl;
    spec.file = data_dir.path / "openbookqa_test.jsonl";
  } else if (!has_split && name == "wikitext2") {
    spec.name = "wikitext2";
    spec.kind = TaskKind::kPerplexity;
    spec.format = TaskFormat::kText;
    spec.file = data_dir.path / "wikitext2_test.raw";
  } else {
    throw Error("unknown task '" + std::string(name) + "' (tasks: " + task_names_help() + ")");
  }
  require_file(spec.file, spec.name, data_dir);
  return spec;
}

TaskData load_task(const TaskSpec& spec, const LoadOptions& options) {
  TaskData data;
  data.spec = spec;
  McData mc;
  switch (spec.format) {
    case TaskFormat::kHellaswag: mc = load_hellaswag(spec.file, options); break;
    case TaskFormat::kArc: mc = load_arc_jsonl(spec.file, options); break;
    case TaskFormat::kMcJsonl: mc = load_mc_jsonl(spec.file, options); break;
    case TaskFormat::kText: data.text = load_text(spec.file); return data;
  }
  data.items = std::move(mc.items);
  data.skipped = std::move(mc.skipped);
  return data;
}

}  // namespace kvbits::eval
