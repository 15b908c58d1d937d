#include "eval/progress.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <string>

namespace kvbits::eval {
namespace {

TEST(EvalProgress, Durations) {
  EXPECT_EQ(format_duration(0), "0s");
  EXPECT_EQ(format_duration(59.4), "59s");
  EXPECT_EQ(format_duration(125), "2m05s");
  EXPECT_EQ(format_duration(7380), "2h03m");
  EXPECT_EQ(format_duration(-1), "?");
  EXPECT_EQ(format_duration(std::nan("")), "?");
}

TEST(EvalProgress, Line) {
  EXPECT_EQ(Progress::format("hellaswag", 1200, 10042, "acc 0.4125", 123),
            "hellaswag: 1200/10042 items (11.9%)  acc 0.4125  elapsed 2m03s  ETA 15m06s");
  EXPECT_EQ(Progress::format("arc", 0, 10, "", 1), "arc: 0/10 items (0.0%)  elapsed 1s  ETA ?");
  EXPECT_EQ(Progress::format("arc", 10, 10, "acc 0.5000", 30), "arc: 10/10 items (100.0%)  acc 0.5000  elapsed 30s");
}

std::string read_all(FILE* f) {
  std::rewind(f);
  std::string s;
  for (int c; (c = std::fgetc(f)) != EOF;) s += static_cast<char>(c);
  return s;
}

TEST(EvalProgress, LinesWhenNotATerminal) {
  FILE* f = std::tmpfile();
  ASSERT_NE(f, nullptr);
  Progress p("t", 3, {.out = f, .tty = 0, .line_interval_s = 3600});
  p.update(1, "acc 1.0000");  // the first update prints
  p.update(2, "acc 0.5000");  // within the interval: silent
  p.finish(3, "acc 0.6667");  // always prints
  const std::string out = read_all(f);
  std::fclose(f);
  EXPECT_EQ(std::count(out.begin(), out.end(), '\n'), 2);
  EXPECT_EQ(out.rfind("t: 1/3 items", 0), 0u);
  EXPECT_NE(out.find("\nt: 3/3 items (100.0%)  acc 0.6667  elapsed 0s\n"), std::string::npos);
  EXPECT_EQ(out.find('\r'), std::string::npos);
}

TEST(EvalProgress, RewritesOneLineOnATerminal) {
  FILE* f = std::tmpfile();
  ASSERT_NE(f, nullptr);
  Progress p("t", 2, {.out = f, .tty = 1, .tty_interval_s = 0});
  p.update(1, "ppl 20.00");
  p.finish(2, "ppl 19.50");
  const std::string out = read_all(f);
  std::fclose(f);
  EXPECT_EQ(out.rfind("\rt: 1/2 items", 0), 0u);
  EXPECT_EQ(std::count(out.begin(), out.end(), '\n'), 1);
  EXPECT_EQ(out.back(), '\n');
}

}  // namespace
}  // namespace kvbits::eval
