// `kvbits report RESULTS... [--out DIR] [--pair A,B]`: merges evaluation result files (shards
// too) into markdown tables on stdout and DIR/report.md, and plots in DIR (src/eval/report.h).
#include <cstdio>
#include <memory>

#include "cli/commands.h"
#include "eval/report.h"

namespace kvbits::cli {

namespace {
struct ReportFlags {
  std::vector<std::string> results;
  std::string out = "report";
  std::string pair;
};

int report(const ReportFlags& f) {
  eval::ReportOptions options;
  options.out_dir = f.out;
  if (!f.pair.empty()) options.pair = eval::parse_pair(f.pair);
  const std::vector<std::filesystem::path> files(f.results.begin(), f.results.end());
  const eval::ReportOutput out = eval::run_report(files, options);
  for (const std::string& w : out.warnings) std::fprintf(stderr, "warning: %s\n", w.c_str());
  std::fputs(out.markdown.c_str(), stdout);
  std::fprintf(stderr, "report: wrote %zu file(s) to %s\n", out.files.size(), f.out.c_str());
  return 0;
}
}  // namespace

Runner add_report_command(CLI::App& cmd) {
  auto f = std::make_shared<ReportFlags>();
  cmd.add_option("results", f->results, "result files of kvbits eval (shards are merged)")->required();
  cmd.add_option("-o,--out", f->out, "directory for report.md and the pictures (created)");
  cmd.add_option("--pair", f->pair, "POLICY_A,POLICY_B: paired differences B - A per task");
  return [f] { return report(*f); };
}

}  // namespace kvbits::cli
