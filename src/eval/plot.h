#pragma once
// Pictures for `kvbits report`, drawn by gnuplot (Debian gnuplot-nox; scripts/install-deps.sh).
//
// For each model and multiple-choice task, and each metric (acc, acc_norm), two plots:
//   TASK_METRIC_vs_bits.svg   metric vs effective KV bits (log2 axis)
//   TASK_METRIC_vs_ms.svg     metric vs decode ms/token (runs that measured it)
// one curve per policy family (policy_family(): learned@2.5 and learned@3 are one curve), points
// sorted by x, error bars ± 1 standard error. PNG copies are drawn when gnuplot has pngcairo.
// With several models the file names start with the model file's stem. The gnuplot script
// (data inline) is kept as plots.gp, so a picture can be restyled without rerunning anything.
#include <filesystem>
#include <string>
#include <vector>

#include "eval/report.h"

namespace kvbits::eval {

struct PlotOutput {
  std::vector<std::filesystem::path> files;  // pictures that exist after gnuplot ran, and plots.gp
  std::vector<std::string> warnings;         // gnuplot missing or failing: one line each
};

// The gnuplot script drawing every picture into `out_dir` ("" if there is nothing to plot).
std::string gnuplot_script(const std::vector<MergedRun>& runs, const std::filesystem::path& out_dir);

// Writes out_dir/plots.gp and runs `gnuplot` (a program name or path) on it; its messages go to
// out_dir/plots.log. Throws Error only if plots.gp cannot be written.
PlotOutput draw_plots(const std::vector<MergedRun>& runs, const std::filesystem::path& out_dir,
                      const std::string& gnuplot);

}  // namespace kvbits::eval
