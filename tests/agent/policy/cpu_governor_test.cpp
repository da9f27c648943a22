#include "policy/cpu_governor.h"

#include <gtest/gtest.h>

namespace tierd::policy {
namespace {

TEST(CpuGovernor, StartsEmptyAndEarnsTheRate) {
  CpuGovernor g(0.03, 0.3);
  g.update(5.0, 100.0);  // baseline: what was spent before does not count
  EXPECT_DOUBLE_EQ(g.available(), 0.0);
  g.update(5.0, 110.0);
  EXPECT_NEAR(g.available(), 0.3, 1e-12);
}

TEST(CpuGovernor, SavesNoMoreThanTheBurst) {
  CpuGovernor g(0.03, 0.3);
  g.update(0, 0);
  g.update(0, 1000);
  EXPECT_NEAR(g.available(), 0.3, 1e-12);
}

TEST(CpuGovernor, SpendingBeyondTheTokensIsDebtRepaidAtTheRate) {
  CpuGovernor g(0.03, 0.3);
  g.update(0, 0);
  g.update(0.6, 10);  // earned 0.3, spent 0.6
  EXPECT_NEAR(g.available(), -0.3, 1e-12);
  EXPECT_NEAR(g.secondsUntil(0.03), 11.0, 1e-9);
  g.update(0.6, 21);
  EXPECT_NEAR(g.available(), 0.03, 1e-12);
  EXPECT_DOUBLE_EQ(g.secondsUntil(0.02), 0.0);
}

TEST(CpuGovernor, OverALongRunSpendingFollowsTheRate) {
  // A spender that takes whatever is available each second never exceeds
  // rate * T + burst in total.
  CpuGovernor g(0.03, 0.3);
  double cpu = 0;
  g.update(cpu, 0);
  for (int t = 1; t <= 1000; ++t) {
    g.update(cpu, t);
    if (g.available() > 0) cpu += g.available() + 0.01;  // overshoots a little each time
  }
  EXPECT_LE(cpu, 0.03 * 1000 + 0.3 + 0.01 + 1e-9);
  EXPECT_GE(cpu, 0.03 * 1000 - 0.3);
}

TEST(CpuGovernor, AClockGoingBackwardsEarnsAndSpendsNothing) {
  CpuGovernor g(0.03, 0.3);
  g.update(1.0, 10);
  g.update(0.5, 5);
  EXPECT_DOUBLE_EQ(g.available(), 0.0);
}

}  // namespace
}  // namespace tierd::policy
