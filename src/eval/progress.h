#pragma once
// Progress of an evaluation on stderr: items done / total, a running metric, elapsed, ETA.
// On a terminal one line is rewritten in place ("\r"); otherwise (logs, batch jobs) a full line
// is printed at most every `line_interval_s` seconds, plus a final one.
//
//   hellaswag: 1200/10042 items (11.9%)  acc 0.4125  elapsed 2m03s  ETA 15m06s
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <string>
#include <string_view>

namespace kvbits::eval {

struct ProgressOptions {
  FILE* out = stderr;            // not owned
  int tty = -1;                  // 1: rewrite one line, 0: print lines, -1: isatty(out)
  double line_interval_s = 10;   // not a TTY: seconds between lines
  double tty_interval_s = 0.25;  // TTY: seconds between redraws
};

class Progress {
 public:
  Progress(std::string label, int64_t total, const ProgressOptions& options = {});

  // `done` items finished; `metric` is a short running figure such as "acc 0.4125" or
  // "ppl 21.37". Prints only when the interval has passed.
  void update(int64_t done, std::string_view metric);
  // Prints the state now and ends the line (call once, also after an interruption).
  void finish(int64_t done, std::string_view metric);

  // The text of one report (no "\r" or newline).
  static std::string format(std::string_view label, int64_t done, int64_t total, std::string_view metric,
                            double elapsed_s);

 private:
  void print(int64_t done, std::string_view metric, double elapsed_s);

  using Clock = std::chrono::steady_clock;
  std::string label_;
  int64_t total_;
  ProgressOptions options_;
  bool tty_;
  Clock::time_point start_;
  double last_print_s_ = -1e30;
};

// "45s", "3m05s", "2h03m"; "?" for negative or non-finite input.
std::string format_duration(double seconds);

}  // namespace kvbits::eval
