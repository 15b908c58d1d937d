#pragma once
// `kvbits report`: merges result files (result_file.h) and summarises them as markdown tables,
// paired comparisons and plots (plot.h).
//
// Merging: files with the same (model sha256, policy name, task) are one run. Their records are
// concatenated (shards of one run, from any machine); an item present in two files is an Error
// naming both (pass each shard once), as are files that disagree on the task's n_total or kind.
// Missing shards, interrupted shards and mixed kvbits versions are warnings, and such a run is
// marked incomplete in the tables. Merged KV figures: bytes and tokens add up, effective bits are
// weighted by tokens, decode ms/token by items, wall time adds up.
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "eval/result_file.h"

namespace kvbits::eval {

struct MergedRun {
  RunResult result;                 // all records, ascending index; shard 1/1; merged KV figures
  std::vector<std::string> files;   // where they came from
  std::vector<ShardSpec> shards;    // the shards merged, as given
  bool complete = false;            // every item of n_total present, no shard interrupted
};

struct Merged {
  std::vector<MergedRun> runs;        // ordered by model, task, policy family, budget, name
  std::vector<std::string> warnings;  // one line each
};

// Reads (read_result) and merges. Paths naming the same file twice are read once.
Merged merge_result_files(const std::vector<std::filesystem::path>& files);
// Merges already-read results; `inputs` pairs each with its file name (for messages).
Merged merge_results(std::vector<std::pair<std::string, RunResult>> inputs);

// "--pair A,B": policy names A and B. Throws Error unless exactly two non-empty distinct names.
struct PolicyPair {
  std::string a, b;
};
PolicyPair parse_pair(std::string_view text);

// The markdown: per model, a table with one row per policy (acc ± se, acc_norm ± se or ppl and
// bits per byte, n, per task; effective bits; decode ms/token), a table of effective bits per
// task, and with `pair` the differences B - A per multiple-choice task with standard errors.
// Throws Error if a policy of `pair` has no results.
std::string markdown_report(const Merged& merged, const std::optional<PolicyPair>& pair);

struct ReportOptions {
  std::filesystem::path out_dir = "report";  // created if missing
  std::optional<PolicyPair> pair;
  std::string gnuplot = "gnuplot";  // program to run (PATH lookup)
};
struct ReportOutput {
  std::string markdown;                     // also written to out_dir/report.md
  std::vector<std::filesystem::path> files; // everything written
  std::vector<std::string> warnings;        // merge warnings, then plotting warnings
};
// The whole command: merge, write report.md, draw the plots. Throws Error on bad input or an
// unwritable out_dir; a missing or failing gnuplot is a warning.
ReportOutput run_report(const std::vector<std::filesystem::path>& files, const ReportOptions& options);

}  // namespace kvbits::eval
