// PassClock: pass starts found from hint-fault bursts, faults weighed by
// their latency since the pass began. WindowClock: the same per 2 MiB window,
// passes found from pages that fault again.
#include <gtest/gtest.h>

#include <vector>

#include "sampling/perf/access_sampler.h"

namespace tierd::sampling::perf {
namespace {

constexpr uint64_t kMs = 1'000'000;

// A pass at `start`: `hot` faults within the first 5 ms, then `cold` faults
// spread over the next `spread_ms`.
std::vector<uint64_t> pass(uint64_t start, int hot, int cold, uint64_t spread_ms) {
  std::vector<uint64_t> t;
  for (int i = 0; i < hot; ++i)
    t.push_back(start + static_cast<uint64_t>(i) * (5 * kMs) / static_cast<uint64_t>(hot));
  for (int i = 1; i <= cold; ++i)
    t.push_back(start + 20 * kMs +
                static_cast<uint64_t>(i) * spread_ms * kMs / static_cast<uint64_t>(cold));
  return t;
}

TEST(PassClock, EarlyFaultsWeighFarMoreThanLateOnes) {
  PassClock clock(16);
  const auto times = pass(1'000 * kMs, 64, 20, 2'000);
  const auto w = clock.weigh(times);
  ASSERT_EQ(w.size(), times.size());
  EXPECT_EQ(clock.passes(), 1u);
  EXPECT_EQ(clock.passStart(), times.front());
  EXPECT_GE(w.front(), 900u);  // 0 ms late: 10000 / 10
  EXPECT_LE(w.back(), 10u);    // ~2 s late: 10000 / 2030
  for (size_t i = 1; i < w.size(); ++i)
    EXPECT_LE(w[i], w[i - 1]) << i;  // later never weighs more
}

TEST(PassClock, FindsEachPassAcrossCalls) {
  PassClock clock(16);
  clock.weigh(pass(1'000 * kMs, 64, 50, 1'500));
  // The next pass comes 2 s later, in another poll.
  const auto second = pass(3'000 * kMs, 64, 50, 1'500);
  const auto w = clock.weigh(second);
  EXPECT_EQ(clock.passes(), 2u);
  EXPECT_EQ(clock.passStart(), second.front());
  EXPECT_GE(w.front(), 900u);
}

TEST(PassClock, ASteadyTrickleIsNotAPass) {
  PassClock clock(16);
  std::vector<uint64_t> times;
  for (int i = 0; i < 400; ++i)
    times.push_back(1'000 * kMs + static_cast<uint64_t>(i) * 5 * kMs);  // 200/s, 2 per 10 ms
  const auto w = clock.weigh(times);
  EXPECT_EQ(clock.passes(), 0u);
  for (uint64_t x : w)
    EXPECT_EQ(x, 10u);  // unknown pass: weighed as 1 s late
}

TEST(PassClock, ABurstTooSoonAfterAPassDoesNotRestartIt) {
  PassClock clock(16);
  auto times = pass(1'000 * kMs, 64, 0, 0);
  const auto again = pass(1'100 * kMs, 64, 0, 0);  // 100 ms later: same pass
  times.insert(times.end(), again.begin(), again.end());
  clock.weigh(times);
  EXPECT_EQ(clock.passes(), 1u);
  EXPECT_EQ(clock.passStart(), 1'000 * kMs);
}

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
