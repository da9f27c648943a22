#include "policy/poll_wait.h"

#include <gtest/gtest.h>

namespace tierd::policy {
namespace {

using std::chrono::milliseconds;

TEST(PollWait, QuietBuffersDoubleTheWaitUpToOneSecond) {
  const milliseconds base{250};
  milliseconds wait = base;
  wait = PollWait::next(wait, base, 0.0);
  EXPECT_EQ(wait, milliseconds(500));
  wait = PollWait::next(wait, base, 0.1);
  EXPECT_EQ(wait, milliseconds(1000));
  wait = PollWait::next(wait, base, 0.0);
  EXPECT_EQ(wait, PollWait::kLongest);
}

TEST(PollWait, ABusyPollGoesBackToTheConfiguredInterval) {
  const milliseconds base{250};
  EXPECT_EQ(PollWait::next(milliseconds(1000), base, 0.25), base);
  EXPECT_EQ(PollWait::next(milliseconds(1000), base, 1.0), base) << "records were lost";
}

TEST(PollWait, BetweenQuietAndBusyTheWaitHolds) {
  const milliseconds base{250};
  EXPECT_EQ(PollWait::next(milliseconds(500), base, 0.2), milliseconds(500));
  EXPECT_EQ(PollWait::next(base, base, 0.2), base);
}

TEST(PollWait, AConfiguredIntervalAboveTheLongestIsKept) {
  const milliseconds base{5000};
  EXPECT_EQ(PollWait::next(base, base, 0.0), base);
  EXPECT_EQ(PollWait::next(base, base, 1.0), base);
  const milliseconds tiny{10};
  EXPECT_EQ(PollWait::next(tiny, tiny, 0.0), milliseconds(20));
}

}  // namespace
}  // namespace tierd::policy
