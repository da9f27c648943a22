#include "migrate/token_bucket.h"

#include <gtest/gtest.h>

namespace tierd::migrate {
namespace {

using Clock = TokenBucket::Clock;
using std::chrono::duration;
using std::chrono::milliseconds;

double seconds(Clock::duration d) {
  return duration<double>(d).count();
}

TEST(TokenBucket, BurstIsFreeThenTheRateApplies) {
  auto t0 = Clock::time_point{};
  TokenBucket bucket(1000.0, 500.0, t0);
  EXPECT_EQ(bucket.acquire(500, t0), Clock::duration::zero());
  EXPECT_NEAR(seconds(bucket.acquire(1000, t0)), 1.0, 1e-6);
  // A second taker queues behind the first one's debt.
  EXPECT_NEAR(seconds(bucket.acquire(1000, t0)), 2.0, 1e-6);
}

TEST(TokenBucket, TokensRefillWithTimeUpToTheBurst) {
  auto t0 = Clock::time_point{};
  TokenBucket bucket(1000.0, 500.0, t0);
  (void)bucket.acquire(500, t0);
  // After 10 s the bucket is full again, but no fuller than the burst.
  EXPECT_EQ(bucket.acquire(500, t0 + std::chrono::seconds(10)), Clock::duration::zero());
  EXPECT_NEAR(seconds(bucket.acquire(100, t0 + std::chrono::seconds(10))), 0.1, 1e-6);
}

TEST(TokenBucket, NeverLetsMoreThanBurstPlusRateThrough) {
  auto now = Clock::time_point{};
  TokenBucket bucket(64.0 * (1 << 20), 8.0 * (1 << 20), now);
  double moved = 0;
  while (moved < 256.0 * (1 << 20)) {
    now += bucket.acquire(2.0 * (1 << 20), now);  // the caller waits, then moves 2 MiB
    moved += 2.0 * (1 << 20);
  }
  double elapsed = seconds(now - Clock::time_point{});
  EXPECT_GE(elapsed, (256.0 - 8.0) / 64.0 - 1e-6);
}

// A mover whose batches take time themselves: time spent moving counts
// toward the budget, so it runs at the rate, not below it. (The engine never
// lets a batch exceed the burst.)
TEST(TokenBucket, ABusyMoverReachesTheRateItself) {
  auto now = Clock::time_point{};
  const double MiB = 1 << 20;
  TokenBucket bucket(64 * MiB, 8 * MiB, now);
  for (int batch = 0; batch < 32; ++batch) {
    now += bucket.acquire(8 * MiB, now);
    now += milliseconds(73);  // move_pages of 8 MiB at ~110 MiB/s
  }
  double rate = 256 / seconds(now - Clock::time_point{});
  EXPECT_GT(rate, 0.95 * 64);
  EXPECT_LE(rate, 256.0 / ((256.0 - 8.0) / 64.0));
}

TEST(TokenBucket, ZeroRateIsUnlimited) {
  TokenBucket bucket(0, 0, Clock::time_point{});
  EXPECT_EQ(bucket.acquire(1e12, Clock::time_point{}), Clock::duration::zero());
}

TEST(TokenBucket, SetRateTakesEffect) {
  auto t0 = Clock::time_point{};
  TokenBucket bucket(1000.0, 0.0, t0);
  bucket.setRate(100.0, 0.0, t0);
  EXPECT_NEAR(seconds(bucket.acquire(100, t0)), 1.0, 1e-6);
  EXPECT_DOUBLE_EQ(bucket.rate(), 100.0);
}

}  // namespace
}  // namespace tierd::migrate
