// WindowClock: hint faults weighed by their latency since their 2 MiB
// window's pass began; passes found from pages that fault again.
#include <gtest/gtest.h>

#include <vector>

#include "sampling/perf/access_sampler.h"

namespace tierd::sampling::perf {
namespace {

constexpr uint64_t kMs = 1'000'000;

// Page number (address >> 12) of slot `slot` in 2 MiB window `w`.
uint64_t pageIn(uint64_t w, uint64_t slot) {
  return w * 512 + slot;
}

TEST(WindowClock, FaultsWeighByTheirLatencySinceTheirWindowsFirstFault) {
  WindowClock clock;
  std::vector<WindowClock::Fault> faults;
  for (uint64_t i = 0; i < 20; ++i)  // one window, a fault every 50 ms
    faults.push_back({pageIn(7, i), 1'000 * kMs + i * 50 * kMs});
  const auto w = clock.weigh(faults);
  ASSERT_EQ(w.size(), faults.size());
  EXPECT_EQ(w.front(), 1000u);  // 0 ms: 10000 / 10
  EXPECT_EQ(w[1], 166u);        // 50 ms: 10000 / 60
  EXPECT_EQ(w.back(), 10u);     // 950 ms
  for (size_t i = 1; i < w.size(); ++i)
    EXPECT_LE(w[i], w[i - 1]) << i;  // later never weighs more
  EXPECT_EQ(clock.passes(), 0u);
  EXPECT_EQ(clock.windows(), 1u);
}

TEST(WindowClock, APageFaultingAgainStartsItsWindowsNextPass) {
  WindowClock clock;
  clock.weigh({{pageIn(1, 3), 1'000 * kMs}, {pageIn(1, 9), 1'400 * kMs}});
  // Page 3 again at 2 s: the scanner came round; page 9 follows 20 ms later.
  const auto w = clock.weigh({{pageIn(1, 3), 2'000 * kMs}, {pageIn(1, 9), 2'020 * kMs}});
  EXPECT_EQ(clock.passes(), 1u);
  EXPECT_EQ(w[0], 1000u);
  EXPECT_EQ(w[1], 333u);  // 20 ms into the new pass, not 1020 ms into the old
}

TEST(WindowClock, EachWindowKeepsItsOwnPass) {
  // A hot window whose pages all fault early, and a window armed later (the
  // scanner's next slice): with one clock per process the later window's
  // faults would look 800 ms late.
  WindowClock clock;
  std::vector<WindowClock::Fault> faults;
  for (uint64_t i = 0; i < 10; ++i)
    faults.push_back({pageIn(2, i), 1'000 * kMs + i * kMs});
  for (uint64_t i = 0; i < 10; ++i)
    faults.push_back({pageIn(300, i), 1'800 * kMs + i * kMs});
  const auto w = clock.weigh(faults);
  EXPECT_GE(w[9], 500u);  // 9 ms into window 2's pass
  EXPECT_EQ(w[10], 1000u);
  EXPECT_GE(w[19], 500u);  // 9 ms into window 300's pass
  EXPECT_EQ(clock.windows(), 2u);
}

}  // namespace
}  // namespace tierd::sampling::perf

namespace tierd::sampling::perf {
namespace {

constexpr uint64_t kSecond = 1'000'000'000ULL;

TEST(ScanPacer, ExpensivePassesSlowTheScannerDownAndCheapOnesSpeedItUp) {
  ScanPacer pacer;
  EXPECT_EQ(pacer.next(0, 0, 1000, 3000), 0);  // first call: starts the span
  // 3 s into a span that must cover two 3 s periods: too early to judge.
  EXPECT_EQ(pacer.next(30'000, 3 * kSecond, 1000, 3000), 0);
  // 60 000 samples in 6 s against 1000 a second affordable: 10x over, the
  // cap doubles (at most).
  EXPECT_EQ(pacer.next(60'000, 6 * kSecond, 1000, 3000), 6000);
  // 12 s later, 1200 more samples: 100/s, a tenth of what is affordable: the
  // cap halves (at most), never below the kernel's minimum period.
  EXPECT_EQ(pacer.next(61'200, 18 * kSecond, 1000, 6000), 3000);
  EXPECT_EQ(pacer.next(61'200, 30 * kSecond, 1000, 1500), ScanPacer::kMinCapMs);
}

TEST(ScanPacer, WhileATargetWarmsUpTheCapIsNotRaised) {
  // 10x over the budget: the cap would double, but a target is still in its
  // first passes. Cheap samples may still bring the cap down.
  ScanPacer pacer;
  pacer.setWarming(true);
  (void)pacer.next(0, 0, 1000, 2000);
  EXPECT_EQ(pacer.next(40'000, 4 * kSecond, 1000, 2000), 0);
  EXPECT_EQ(pacer.next(40'400, 8 * kSecond, 1000, 2000), ScanPacer::kMinCapMs);
  pacer.setWarming(false);
  EXPECT_EQ(pacer.next(80'400, 12 * kSecond, 1000, 1000), 2000);
}

TEST(ScanPacer, NeverCapsAboveItsMaximum) {
  ScanPacer pacer;
  (void)pacer.next(0, 0, 1000, 20000);
  // 10x over, two 20 s periods in: double, but no further than kMaxCapMs.
  EXPECT_EQ(pacer.next(400'000, 40 * kSecond, 1000, 20000), ScanPacer::kMaxCapMs);
}

TEST(ScanPacer, HoldsInsideTheDeadBand) {
  ScanPacer pacer;
  (void)pacer.next(0, 0, 1000, 2000);
  EXPECT_EQ(pacer.next(3200, 4 * kSecond, 1000, 2000), 0);            // 800/s: 80 % of affordable
  EXPECT_EQ(pacer.next(3200 + 4400, 8 * kSecond, 1000, 2000), 2200);  // 1100/s: slower
}

TEST(ScanPacer, SettledPlansSlowTheScannerTwiceAsMuchUntilAPlanMovesAgain) {
  ScanPacer pacer;
  (void)pacer.next(0, 0, 1000, 8000);
  EXPECT_EQ(pacer.settle(false, 8000), 0);  // not settled: nothing to change
  EXPECT_EQ(pacer.settle(true, 8000), 16000);
  EXPECT_TRUE(pacer.settled());
  EXPECT_EQ(pacer.settle(true, 16000), 0);  // still settled: holds
  // The budget does not pace a settled scanner, however cheap its samples.
  EXPECT_EQ(pacer.next(0, 100 * kSecond, 1000, 16000), 0);
  // A plan moved pages: back to the budget's cap, and the budget paces again.
  EXPECT_EQ(pacer.settle(false, 16000), 8000);
  EXPECT_FALSE(pacer.settled());
  EXPECT_EQ(pacer.next(0, 101 * kSecond, 1000, 8000), 0);  // a fresh span starts
  EXPECT_EQ(pacer.next(160'000, 117 * kSecond, 1000, 8000), 16000);
}

TEST(ScanPacer, ACheapScannerDoesNotSettle) {
  ScanPacer pacer;
  EXPECT_EQ(pacer.settle(true, 2000), 0);
  EXPECT_FALSE(pacer.settled());
  EXPECT_EQ(pacer.settle(true, ScanPacer::kSettleFromMs),
            2 * ScanPacer::kSettleFromMs);  // slowed since
  EXPECT_TRUE(pacer.settled());
}

TEST(ScanPacer, ASettledCapStopsAtTheMaximum) {
  ScanPacer pacer;
  EXPECT_EQ(pacer.settle(true, 20000), ScanPacer::kMaxCapMs);
  EXPECT_EQ(pacer.settle(false, ScanPacer::kMaxCapMs), 20000);
}

TEST(ScanPacer, SettlingAtTheMaximumChangesNothing) {
  ScanPacer pacer;
  EXPECT_EQ(pacer.settle(true, ScanPacer::kMaxCapMs), 0);
  EXPECT_EQ(pacer.settle(false, ScanPacer::kMaxCapMs), 0);
}

}  // namespace
}  // namespace tierd::sampling::perf
