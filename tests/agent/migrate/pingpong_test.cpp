#include "migrate/pingpong.h"

#include <gtest/gtest.h>

namespace tierd::migrate {
namespace {

using Clock = PingPongTracker::Clock;
using std::chrono::milliseconds;
using std::chrono::seconds;

TEST(PingPong, AMoveBackWithinTheWindowIsAReversalAndBacksOff) {
  PingPongTracker tracker(seconds(60), 1000);
  auto t0 = Clock::time_point{} + seconds(1000);
  EXPECT_FALSE(tracker.recordMove(7, 0x200000, 0, t0));
  EXPECT_TRUE(tracker.recordMove(7, 0x200123, 1, t0 + seconds(10)));  // same 2 MiB chunk
  EXPECT_FALSE(tracker.allowed(7, 0x200000, t0 + seconds(20)));
  EXPECT_TRUE(tracker.allowed(7, 0x200000, t0 + seconds(71)));
  // Other chunks and other processes are not affected.
  EXPECT_TRUE(tracker.allowed(7, 0x400000, t0 + seconds(20)));
  EXPECT_TRUE(tracker.allowed(8, 0x200000, t0 + seconds(20)));
}

TEST(PingPong, BackOffGrowsWithEachReversal) {
  PingPongTracker tracker(seconds(10), 1000);
  auto now = Clock::time_point{} + seconds(1000);
  (void)tracker.recordMove(1, 0, 0, now);
  (void)tracker.recordMove(1, 0, 1, now + seconds(1));  // back-off 10 s
  EXPECT_FALSE(tracker.allowed(1, 0, now + seconds(10)));
  (void)tracker.recordMove(1, 0, 0, now + seconds(8));  // within the window again: 20 s
  EXPECT_FALSE(tracker.allowed(1, 0, now + seconds(27)));
  EXPECT_TRUE(tracker.allowed(1, 0, now + seconds(29)));
}

TEST(PingPong, AMoveBackAfterTheWindowIsNotAReversal) {
  PingPongTracker tracker(seconds(60), 1000);
  auto t0 = Clock::time_point{} + seconds(1000);
  (void)tracker.recordMove(7, 0, 0, t0);
  EXPECT_FALSE(tracker.recordMove(7, 0, 1, t0 + seconds(61)));
}

TEST(PingPong, APageIsHeldForTheWindowAfterAMoveAndWhileBackingOff) {
  PingPongTracker tracker(seconds(60), 1000);
  auto t0 = Clock::time_point{} + seconds(1000);
  EXPECT_FALSE(tracker.held(7, 0x1000, t0));  // never moved
  (void)tracker.recordMove(7, 0x1000, 0, t0);
  EXPECT_TRUE(tracker.held(7, 0x1000, t0 + seconds(62)));  // the window and a twentieth
  EXPECT_FALSE(tracker.held(7, 0x1000, t0 + seconds(63)));
  EXPECT_FALSE(tracker.held(7, 0x2000, t0 + seconds(1)));    // the next page
  (void)tracker.recordMove(7, 0x1000, 1, t0 + seconds(30));  // reversal: 60 s back-off
  EXPECT_TRUE(tracker.held(7, 0x1000, t0 + seconds(92)));
  EXPECT_FALSE(tracker.held(7, 0x1000, t0 + seconds(93)));
}

TEST(PingPong, AShortWindowIsHeldAtLeastTwoSecondsLonger) {
  PingPongTracker tracker(seconds(10), 1000);
  auto t0 = Clock::time_point{} + seconds(1000);
  (void)tracker.recordMove(7, 0x1000, 0, t0);
  EXPECT_TRUE(tracker.held(7, 0x1000, t0 + milliseconds(11'999)));
  EXPECT_FALSE(tracker.held(7, 0x1000, t0 + seconds(12)));
}

TEST(PingPong, MemoryStaysBounded) {
  PingPongTracker tracker(seconds(60), 100);
  auto now = Clock::time_point{} + seconds(1000);
  for (uint64_t chunk = 0; chunk < 10000; ++chunk)
    (void)tracker.recordMove(1, chunk << PingPongTracker::kChunkShift, 0, now);
  EXPECT_LE(tracker.size(), 101u);
}

TEST(PingPong, ForgettingAProcessDropsItsEntries) {
  PingPongTracker tracker(seconds(60), 100);
  auto now = Clock::time_point{} + seconds(1000);
  (void)tracker.recordMove(1, 0, 0, now);
  (void)tracker.recordMove(2, 0, 0, now);
  tracker.forgetProcess(1);
  EXPECT_EQ(tracker.size(), 1u);
}

}  // namespace
}  // namespace tierd::migrate
