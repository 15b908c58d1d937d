#include "eval/plot.h"

#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <map>
#include <set>

#include "util/error.h"

extern char** environ;

namespace kvbits::eval {
namespace fs = std::filesystem;

namespace {

struct Point {
  double x, y, se;
};
struct Plot {
  std::string stem;  // file name without extension
  std::string title, xlabel, ylabel;
  bool log2_x = false;
  std::map<std::string, std::vector<Point>> series;  // family -> points
};

// A gnuplot single-quoted string ('' is a quote; nothing else is special).
std::string quote(std::string_view s) {
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("''") : std::string(1, c);
  return out + "'";
}

std::string file_safe(std::string_view s) {
  std::string out;
  for (char c : s) out += (std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '.') ? c : '_';
  return out;
}

std::vector<Plot> plan(const std::vector<MergedRun>& runs) {
  std::set<std::string> models;
  for (const MergedRun& m : runs) models.insert(m.result.model_sha256);
  std::map<std::pair<std::string, std::string>, std::vector<const RunResult*>> by_task;  // (sha, task)
  for (const MergedRun& m : runs) {
    if (m.result.kind == TaskKind::kMultipleChoice && !m.result.items.empty()) {
      by_task[{m.result.model_sha256, m.result.task}].push_back(&m.result);
    }
  }
  std::vector<Plot> plots;
  for (const auto& [key, results] : by_task) {
    const std::string prefix =
        models.size() > 1 ? file_safe(fs::path(results.front()->model_path).stem().string()) + "_" : "";
    int64_t n_min = INT64_MAX, n_max = 0;
    for (const RunResult* r : results) n_min = std::min(n_min, r->n()), n_max = std::max(n_max, r->n());
    const std::string n_text = n_min == n_max ? std::to_string(n_max) : std::to_string(n_min) + "-" + std::to_string(n_max);
    for (const bool norm : {false, true}) {
      const std::string metric = norm ? "acc_norm" : "acc";
      for (const bool vs_bits : {true, false}) {
        Plot p;
        p.stem = prefix + file_safe(key.second) + "_" + metric + (vs_bits ? "_vs_bits" : "_vs_ms");
        p.title = key.second + " (n = " + n_text + "): " + metric + (vs_bits ? " vs effective KV bits" : " vs decode ms/token") +
                  (models.size() > 1 ? " [" + fs::path(results.front()->model_path).filename().string() + "]" : "");
        p.xlabel = vs_bits ? "effective KV-cache bits per element (bits, log scale)" : "decode latency (ms/token)";
        p.ylabel = metric + (norm ? " (accuracy, length-normalised; ± 1 s.e.)" : " (accuracy; ± 1 s.e.)");
        p.log2_x = vs_bits;
        for (const RunResult* r : results) {
          if (!vs_bits && !r->decode_ms_per_token) continue;
          const McMetrics m = mc_metrics(r->items);
          p.series[policy_family(r->policy)].push_back({vs_bits ? r->kv.effective_bits : *r->decode_ms_per_token,
                                                        norm ? m.acc_norm : m.acc,
                                                        norm ? m.acc_norm_stderr : m.acc_stderr});
        }
        if (p.series.empty()) continue;
        for (auto& [family, points] : p.series) {
          std::sort(points.begin(), points.end(), [](const Point& a, const Point& b) { return a.x < b.x; });
        }
        plots.push_back(std::move(p));
      }
    }
  }
  return plots;
}

}  // namespace

std::string gnuplot_script(const std::vector<MergedRun>& runs, const fs::path& out_dir) {
  const std::vector<Plot> plots = plan(runs);
  if (plots.empty()) return "";
  const fs::path dir = fs::absolute(out_dir);
  std::string s = "# kvbits report: pictures (regenerate with: gnuplot plots.gp)\n"
                  "png = strstrt(GPVAL_TERMINALS, 'pngcairo') > 0\n"
                  "set grid\nset key outside right center box\nset offsets graph 0.04, graph 0.04, graph 0.08, graph 0.08\n"
                  "set style data yerrorlines\n\n";
  char num[96];
  for (size_t i = 0; i < plots.size(); ++i) {
    const Plot& p = plots[i];
    std::string plot_cmd = "plot ";
    size_t k = 0;
    for (const auto& [family, points] : p.series) {
      const std::string block = "$d" + std::to_string(i) + "_" + std::to_string(k);
      s += block + " << EOD\n";
      for (const Point& pt : points) {
        std::snprintf(num, sizeof num, "%.6g %.6g %.6g\n", pt.x, pt.y, pt.se);
        s += num;
      }
      s += "EOD\n";
      plot_cmd += (k ? ", \\\n     " : "") + block + " using 1:2:3 lw 2 pt 7 ps 1.2 title " + quote(family);
      ++k;
    }
    s += "set title " + quote(p.title) + "\nset xlabel " + quote(p.xlabel) + "\nset ylabel " + quote(p.ylabel) + "\n";
    s += p.log2_x ? "set logscale x 2\nset xtics 2\nset xtics add (3, 6, 12)\n" : "unset logscale x\nset xtics autofreq\n";
    s += "set terminal svg size 900,560 dynamic noenhanced font 'sans,13' background rgb 'white'\n";
    s += "set output " + quote((dir / (p.stem + ".svg")).string()) + "\n" + plot_cmd + "\n";
    s += "if (png) {\n  set terminal pngcairo size 900,560 noenhanced font 'sans,11' background rgb 'white'\n"
         "  set output " + quote((dir / (p.stem + ".png")).string()) + "\n  replot\n}\nunset output\n\n";
  }
  return s;
}

PlotOutput draw_plots(const std::vector<MergedRun>& runs, const fs::path& out_dir, const std::string& gnuplot) {
  PlotOutput out;
  const std::string script = gnuplot_script(runs, out_dir);
  if (script.empty()) return out;
  const fs::path script_path = out_dir / "plots.gp";
  const fs::path log_path = out_dir / "plots.log";
  {
    std::ofstream f(script_path);
    f << script;
    if (!f) throw Error(script_path.string() + ": cannot write");
  }
  out.files.push_back(script_path);
  const std::vector<Plot> plots = plan(runs);
  std::error_code ec;
  for (const Plot& p : plots) {  // so that stale pictures of an earlier report are not counted
    for (const char* ext : {".svg", ".png"}) fs::remove(out_dir / (p.stem + ext), ec);
  }

  // gnuplot plots.gp, stdout discarded, stderr to plots.log.
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, "/dev/null", O_WRONLY, 0);
  posix_spawn_file_actions_addopen(&actions, STDERR_FILENO, log_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  std::string arg0 = gnuplot, arg1 = script_path.string();
  char* argv[] = {arg0.data(), arg1.data(), nullptr};
  pid_t pid = 0;
  const int err = posix_spawnp(&pid, gnuplot.c_str(), &actions, nullptr, argv, environ);
  posix_spawn_file_actions_destroy(&actions);
  if (err != 0) {
    out.warnings.push_back(gnuplot + " not found (" + std::strerror(err) +
                           "): tables written, no pictures (install gnuplot-nox: scripts/install-deps.sh)");
    return out;
  }
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    out.warnings.push_back(gnuplot + " failed (see " + log_path.string() + "): some pictures may be missing");
  }
  for (const Plot& p : plots) {
    for (const char* ext : {".svg", ".png"}) {
      const fs::path f = out_dir / (p.stem + ext);
      if (fs::exists(f, ec) && fs::file_size(f, ec) > 0) out.files.push_back(f);
    }
  }
  if (fs::exists(log_path, ec) && fs::file_size(log_path, ec) == 0) fs::remove(log_path, ec);
  return out;
}

}  // namespace kvbits::eval
