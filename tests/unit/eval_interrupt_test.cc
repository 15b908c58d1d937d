#include "eval/interrupt.h"

#include <gtest/gtest.h>

#include <csignal>

namespace kvbits::eval {
namespace {

TEST(EvalInterrupt, FirstSigintSetsTheFlag) {
  {
    SigintScope scope;
    EXPECT_FALSE(interrupt_requested());
    std::raise(SIGINT);
    EXPECT_TRUE(interrupt_requested());
  }
  SigintScope again;  // a new scope starts clear
  EXPECT_FALSE(interrupt_requested());
}

TEST(EvalInterruptDeathTest, SecondSigintExitsAt130) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_EXIT(
      {
        SigintScope scope;
        std::raise(SIGINT);
        std::raise(SIGINT);
      },
      ::testing::ExitedWithCode(130), "interrupted again");
}

TEST(EvalInterrupt, PreviousHandlerIsRestored) {
  struct sigaction before;
  sigaction(SIGINT, nullptr, &before);
  { SigintScope scope; }
  struct sigaction after;
  sigaction(SIGINT, nullptr, &after);
  EXPECT_EQ(before.sa_handler, after.sa_handler);
}

}  // namespace
}  // namespace kvbits::eval
