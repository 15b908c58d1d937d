#pragma once
// One evaluation run (one model, policy, task and shard) as a JSON file: written by `kvbits eval`,
// read and merged by `kvbits report`. The per-item records are the source of truth: metrics are
// recomputed from them on reading, so shards merge by concatenating records and two policies
// compare item by item.
//
// Schema (format_version 1; docs/protocols.md "Evaluation results"):
// {
//   "format": "kvbits-eval-result", "format_version": 1,
//   "kvbits": {"version": "0.1.0", "commit": "3ecb0b7abcde"},
//   "timestamp": "2025-06-01T12:00:00Z",                   // UTC, when the file was written
//   "model": {"path": "models/x.gguf", "sha256": "<64 hex>"},
//   "policy": {"name": "learned@2.5",                      // unique label of policy + settings
//              "family": "learned",                        // one curve in the plots
//              "budget_bits": 2.5,                         // or null
//              "params": {...}},                           // every parameter, free-form object
//   "task": {"name": "arc_easy", "kind": "multiple_choice" | "perplexity", "data_file": "..."},
//   "shard": {"index": 1, "count": 4},                     // 1-based (shard.h)
//   "limit": 0,                                            // --limit, 0 = none
//   "n_total": 2376,       // items (windows) of the task after --limit, all shards together
//   "n": 594,              // records in this file
//   "n_skipped": 0,        // malformed data lines dropped by --skip-bad
//   "complete": true,      // false: interrupted, the records are a prefix of the shard's items
//   "metrics": {"acc", "acc_stderr", "acc_norm", "acc_norm_stderr"}            (multiple choice)
//            | {"ppl", "bits_per_byte", "nll", "tokens", "bytes"[, "kl_vs_fp16"]} (perplexity;
//              kl_vs_fp16: mean KL(p_fp16 || p_policy) per scored token, nats, with eval --kl)
//            | null                                                            (n == 0),
//   "kv": {"effective_bits": 3.02,      // 8 * kv_bytes / (tokens * layers * 2 * kv_heads * head_dim)
//          "kv_bytes": 123456,          // summed over items (windows): bytes held for the cached context
//          "kv_bytes_allocated": 130000,// same, counting page slack
//          "tokens": 40000},            // summed cached context tokens (the weight when merging)
//   "decode_ms_per_token": 11.8,        // or null when not measured
//   "wall_seconds": 812.4,
//   "items": [{"index": 0, "gold": 2, "ll": [-12.1, ...], "len": [31, ...]}, ...]   (multiple choice)
//   "windows": [{"index": 0, "nll": 1654.2, "tokens": 512, "bytes": 2213[, "kl": 0.8]}, ...] (perplexity)
// }
// Unknown fields are ignored on reading (later versions may add some); records may carry extra
// fields too.
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "eval/metrics.h"
#include "eval/shard.h"
#include "eval/task.h"

namespace kvbits::eval {

inline constexpr const char* kResultFormat = "kvbits-eval-result";
inline constexpr int kResultFormatVersion = 1;

struct PolicyInfo {
  std::string name;                   // e.g. "learned@2.5"; identifies the row in reports
  std::string family;                 // curve label; empty: derived by policy_family()
  std::optional<double> budget_bits;  // the policy's target bits, if it has one
  nlohmann::json params = nlohmann::json::object();
};
// `family` if set, else the name up to its first '@' ("learned@2.5" -> "learned").
std::string policy_family(const PolicyInfo& policy);

struct KvStats {
  double effective_bits = 16.0;
  uint64_t kv_bytes = 0;
  uint64_t kv_bytes_allocated = 0;
  uint64_t tokens = 0;
};

struct RunResult {
  std::string kvbits_version;  // the constructor fills these from util/version.h
  std::string kvbits_commit;
  std::string timestamp;       // ISO 8601 UTC; ResultWriter::write fills it if empty
  std::string model_path;
  std::string model_sha256;
  PolicyInfo policy;
  std::string task;            // TaskSpec::name
  TaskKind kind = TaskKind::kMultipleChoice;
  std::string data_file;
  ShardSpec shard;
  int64_t limit = 0;
  int64_t n_total = 0;
  int64_t n_skipped = 0;
  bool complete = true;
  KvStats kv;
  std::optional<double> decode_ms_per_token;
  double wall_seconds = 0;
  std::vector<McRecord> items;     // kMultipleChoice, ascending index
  std::vector<PplWindow> windows;  // kPerplexity, ascending index

  RunResult();
  int64_t n() const {
    return static_cast<int64_t>(kind == TaskKind::kMultipleChoice ? items.size() : windows.size());
  }
};

// The JSON document, metrics computed from the records. Throws Error if a record is invalid.
nlohmann::json to_json(const RunResult& result);
// Pretty-printed JSON with one line per record.
std::string serialize(const RunResult& result);
// Validates everything the schema promises (types, ranges, records unique, inside n_total and
// belonging to the shard). Throws Error("WHERE: field 'x.y': problem").
RunResult from_json(const nlohmann::json& doc, const std::string& where);
// Reads and validates a result file; every problem is a one-line Error naming the file.
RunResult read_result(const std::filesystem::path& file);

// Writes the result file of one run. Construct it before the run: it creates PATH.partial right
// away, so an unwritable path fails in seconds, not after the run. write() (callable repeatedly,
// e.g. for a partial result after Ctrl-C) writes PATH.partial and renames it onto PATH, so PATH
// never holds half a file. The destructor removes a PATH.partial left behind.
class ResultWriter {
 public:
  explicit ResultWriter(std::filesystem::path path);
  ~ResultWriter();
  ResultWriter(const ResultWriter&) = delete;
  ResultWriter& operator=(const ResultWriter&) = delete;

  void write(RunResult result);
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
  std::filesystem::path partial_;
};

// Now, as "YYYY-MM-DDTHH:MM:SSZ".
std::string utc_timestamp();

}  // namespace kvbits::eval
