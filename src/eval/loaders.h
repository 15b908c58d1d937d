#pragma once
// Readers for the benchmark file formats (data: ../shared/data/README.md). They only parse and
// validate; scoring conventions (" " + choice, acc / acc_norm) live with the runner and metrics.h.
//
// Every malformed line is an Error "FILE:LINE: problem". With LoadOptions::skip_bad such a line
// (or 6-line HellaSwag item) is counted and dropped instead; the messages are kept for reporting.
// A file that cannot be read, or that holds no usable item, is always an Error.
#include <filesystem>
#include <string>
#include <vector>

namespace kvbits::eval {

// One multiple-choice question. Choices are the bare texts; the runner scores " " + choice.
struct McItem {
  std::string id;                    // the file's id if it has one, else the 1-based line number
  std::string context;               // what the model reads before a choice; non-empty, valid UTF-8
  std::vector<std::string> choices;  // >= 2, each non-empty, valid UTF-8
  int gold = 0;                      // index into choices
  int line = 0;                      // 1-based line of the item in its file (first line for HellaSwag)
};

struct LoadOptions {
  bool skip_bad = false;  // count and drop malformed lines instead of throwing
};

struct McData {
  std::filesystem::path file;
  std::vector<McItem> items;           // file order; the position is the item's global index
  std::vector<std::string> skipped;    // "FILE:LINE: problem", one per dropped line or item
};

// hellaswag_val_full.txt: 6 lines an item — context, gold index 0-3, 4 endings.
McData load_hellaswag(const std::filesystem::path& file, const LoadOptions& options = {});

// Official ARC jsonl: {"id", "question": {"stem", "choices": [{"text", "label"}]}, "answerKey"}.
// context = "Question: " + stem + "\nAnswer:"; gold = position of answerKey among the labels
// (letters or digits, unique).
McData load_arc_jsonl(const std::filesystem::path& file, const LoadOptions& options = {});

// Generic multiple choice jsonl: {"query": str, "choices": [str, ...], "gold": int} (an optional
// "id" is kept); context = query.
McData load_mc_jsonl(const std::filesystem::path& file, const LoadOptions& options = {});

// A whole text file (WikiText-2 raw). Must be non-empty valid UTF-8 (else "FILE:LINE: ...").
std::string load_text(const std::filesystem::path& file);

}  // namespace kvbits::eval
