#pragma once
// Evaluation tasks: names, where their data lives, and loading them (formats: loaders.h).
//
// Task names:
//   hellaswag                    hellaswag_val_full.txt (validation split, 10042 items)
//   arc_easy[:SPLIT]             arc_easy_{test,dev,train}.jsonl, SPLIT = test (default) | dev | train
//   arc_challenge[:SPLIT]        arc_challenge_{test,dev,train}.jsonl
//   openbookqa                   openbookqa_test.jsonl (generic multiple-choice jsonl)
//   wikitext2                    wikitext2_test.raw (perplexity over one text)
//   mc:FILE                      any generic multiple-choice jsonl {"query", "choices", "gold"};
//                                FILE is absolute or relative to the current directory, else to
//                                the data directory. Its canonical name is "mc:" + the file name
//                                (so shards run on machines with different paths still merge).
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "eval/loaders.h"

namespace kvbits::eval {

// Where the benchmark files are: --data if given, else $KVBITS_DATA, else ../shared/data
// relative to `base` (the current directory: run from the project root).
struct DataDir {
  std::filesystem::path path;
  std::string origin;  // "--data", "KVBITS_DATA" or "default ../shared/data", for error messages
};
// `env` is the value of KVBITS_DATA (nullptr or empty: unset). Does not check that it exists.
DataDir resolve_data_dir(const std::string& flag, const char* env, const std::filesystem::path& base);
// Same, reading KVBITS_DATA and using the current directory.
DataDir resolve_data_dir(const std::string& flag);

enum class TaskKind { kMultipleChoice, kPerplexity };
enum class TaskFormat { kHellaswag, kArc, kMcJsonl, kText };

// "multiple_choice" / "perplexity" (the result-file spelling); parse_task_kind throws on others.
const char* to_string(TaskKind kind);
TaskKind parse_task_kind(std::string_view s);

struct TaskSpec {
  std::string name;  // canonical: "arc_easy" (= arc_easy:test), "arc_easy:dev", "mc:file.jsonl", ...
  TaskKind kind = TaskKind::kMultipleChoice;
  TaskFormat format = TaskFormat::kMcJsonl;
  std::filesystem::path file;  // the data file; parse_task has checked that it exists
};

// Throws Error for an unknown name ("unknown task 'x' (tasks: hellaswag, ...)"), an unknown split,
// or a data file that does not exist (naming the data directory and where it came from).
TaskSpec parse_task(std::string_view name, const DataDir& data_dir);

// The names parse_task accepts, for --help ("hellaswag, arc_easy, ..., mc:FILE").
std::string task_names_help();

struct TaskData {
  TaskSpec spec;
  std::vector<McItem> items;         // kMultipleChoice: the items, in file order (index = global index)
  std::string text;                  // kPerplexity: the whole text
  std::vector<std::string> skipped;  // malformed lines dropped under skip_bad ("FILE:LINE: problem")
};

// Loads and validates the task's file. Throws Error (FILE:LINE for malformed lines; see loaders.h).
TaskData load_task(const TaskSpec& spec, const LoadOptions& options = {});

}  // namespace kvbits::eval
