#include "policy/sampling_share.h"

#include <gtest/gtest.h>

namespace tierd::policy {
namespace {

constexpr double kBudget = 0.03;

TEST(SamplingShare, StartsAtTheCeilingUntilItHasSeenEnough) {
  SamplingShare share(kBudget);
  EXPECT_DOUBLE_EQ(share.update(0, 0, 0), SamplingShare::kCeiling * kBudget);
  // 5 s in, the rest of the process already spent a lot: too short to judge.
  EXPECT_DOUBLE_EQ(share.update(5, 1.0, 0), SamplingShare::kCeiling * kBudget);
}

TEST(SamplingShare, GivesTheSamplerWhatTheRestLeft) {
  SamplingShare share(kBudget);
  share.update(0, 0, 0);
  // 20 s: 0.4 s of process CPU, 0.1 of it sampling: the rest ran at 1.5 %.
  EXPECT_NEAR(share.update(20, 0.4, 0.1), SamplingShare::kTarget * kBudget - 0.015, 1e-12);
}

TEST(SamplingShare, KeepsAFloorAndACeiling) {
  SamplingShare busy(kBudget);
  busy.update(0, 0, 0);
  EXPECT_DOUBLE_EQ(busy.update(20, 2.0, 0), SamplingShare::kFloor * kBudget);  // moves at 10 %
  SamplingShare idle(kBudget);
  idle.update(0, 0, 0);
  EXPECT_DOUBLE_EQ(idle.update(20, 0.0, 0), SamplingShare::kCeiling * kBudget);
}

TEST(SamplingShare, ForgetsWhatIsOlderThanItsWindow) {
  SamplingShare share(kBudget);
  share.update(0, 0, 0);
  share.update(10, 3.0, 0);  // a burst of moves early on
  for (double t = 20; t <= 100; t += 10)
    share.update(t, 3.0, 0);  // then nothing
  // The window now starts after the burst: the rest spent nothing.
  EXPECT_DOUBLE_EQ(share.update(110, 3.0, 0), SamplingShare::kCeiling * kBudget);
}

}  // namespace
}  // namespace tierd::policy
