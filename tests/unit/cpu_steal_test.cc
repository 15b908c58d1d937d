// parse_proc_stat and steal_fraction on /proc/stat texts (the format of proc(5)), and a reading
// of this machine's own file where there is one.
#include "backend/cpu_steal.h"

#include <gtest/gtest.h>

#include <filesystem>

namespace kvbits {
namespace {

TEST(CpuSteal, ParsesTheAggregateLine) {
  const auto t = parse_proc_stat(
      "cpu  3743490 722376 154831 2138050 3807 11 687 133003 0 0\n"
      "cpu0 1667500 375336 73121 1263560 768 0 195 67179 0 0\n");
  ASSERT_TRUE(t.has_value());
  EXPECT_EQ(t->busy, 3743490u + 722376u + 154831u + 11u + 687u);
  EXPECT_EQ(t->idle, 2138050u + 3807u);
  EXPECT_EQ(t->steal, 133003u);
}

TEST(CpuSteal, RejectsTextsWithoutTheStealField) {
  EXPECT_FALSE(parse_proc_stat("").has_value());
  EXPECT_FALSE(parse_proc_stat("cpu0 1 2 3 4 5 6 7 8\n").has_value());  // a per-CPU line first
  EXPECT_FALSE(parse_proc_stat("cpu  1 2 3 4 5 6 7\n").has_value());    // 7 fields: no steal
  EXPECT_FALSE(parse_proc_stat("cpu  1 2 3 x 5 6 7 8\n").has_value());
  EXPECT_FALSE(parse_proc_stat("intr 1 2 3 4 5 6 7 8\n").has_value());
  // The steal field on the next line does not count for this one.
  EXPECT_FALSE(parse_proc_stat("cpu  1 2 3 4 5 6 7\n8\n").has_value());
  EXPECT_TRUE(parse_proc_stat("cpu  1 2 3 4 5 6 7 8").has_value());  // no newline, 8 fields
}

TEST(CpuSteal, FractionOfAllTicks) {
  const CpuTimes a{100, 50, 10}, b{160, 70, 30};  // +60 busy, +20 idle, +20 steal
  EXPECT_DOUBLE_EQ(steal_fraction(a, b), 0.2);
  EXPECT_DOUBLE_EQ(steal_fraction(a, a), 0.0);
  EXPECT_DOUBLE_EQ(steal_fraction(b, a), 0.0);  // backwards: nothing passed
}

TEST(CpuSteal, ReadsThisMachineWhereProcStatExists) {
  if (!std::filesystem::exists("/proc/stat")) GTEST_SKIP() << "no /proc/stat";
  const auto a = read_cpu_times();
  ASSERT_TRUE(a.has_value());
  EXPECT_GT(a->busy + a->idle, 0u);
  const auto b = read_cpu_times();
  ASSERT_TRUE(b.has_value());
  const double f = steal_fraction(*a, *b);
  EXPECT_GE(f, 0.0);
  EXPECT_LE(f, 1.0);
}

}  // namespace
}  // namespace kvbits
