#include "eval/progress.h"

#include <unistd.h>

#include <cmath>

namespace kvbits::eval {

std::string format_duration(double seconds) {
  if (!std::isfinite(seconds) || seconds < 0) return "?";
  const auto s = static_cast<int64_t>(std::llround(seconds));
  char buf[48];
  if (s < 60) std::snprintf(buf, sizeof buf, "%llds", static_cast<long long>(s));
  else if (s < 3600) std::snprintf(buf, sizeof buf, "%lldm%02llds", static_cast<long long>(s / 60), static_cast<long long>(s % 60));
  else std::snprintf(buf, sizeof buf, "%lldh%02lldm", static_cast<long long>(s / 3600), static_cast<long long>(s % 3600 / 60));
  return buf;
}

Progress::Progress(std::string label, int64_t total, const ProgressOptions& options)
    : label_(std::move(label)),
      total_(total),
      options_(options),
      tty_(options.tty < 0 ? ::isatty(::fileno(options.out)) != 0 : options.tty != 0),
      start_(Clock::now()) {}

std::string Progress::format(std::string_view label, int64_t done, int64_t total, std::string_view metric,
                             double elapsed_s) {
  const double frac = total > 0 ? static_cast<double>(done) / static_cast<double>(total) : 0.0;
  const double eta = done > 0 ? elapsed_s / static_cast<double>(done) * static_cast<double>(total - done) : NAN;
  char head[128];
  std::snprintf(head, sizeof head, "%lld/%lld items (%.1f%%)", static_cast<long long>(done),
                static_cast<long long>(total), 100.0 * frac);
  std::string line = std::string(label) + ": " + head;
  if (!metric.empty()) line += "  " + std::string(metric);
  line += "  elapsed " + format_duration(elapsed_s);
  if (done < total) line += "  ETA " + format_duration(eta);
  return line;
}

void Progress::print(int64_t done, std::string_view metric, double elapsed_s) {
  const std::string line = format(label_, done, total_, metric, elapsed_s);
  // On a terminal: back to column 0, the line, then clear what a longer earlier line left.
  if (tty_) std::fprintf(options_.out, "\r%s\x1b[K", line.c_str());
  else std::fprintf(options_.out, "%s\n", line.c_str());
  std::fflush(options_.out);
  last_print_s_ = elapsed_s;
}

void Progress::update(int64_t done, std::string_view metric) {
  const double elapsed = std::chrono::duration<double>(Clock::now() - start_).count();
  const double interval = tty_ ? options_.tty_interval_s : options_.line_interval_s;
  if (elapsed - last_print_s_ >= interval) print(done, metric, elapsed);
}

void Progress::finish(int64_t done, std::string_view metric) {
  print(done, metric, std::chrono::duration<double>(Clock::now() - start_).count());
  if (tty_) std::fputc('\n', options_.out);
}

}  // namespace kvbits::eval
