#include "hotness/heat_map.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <set>
#include <utility>
#include <vector>

namespace tierd::hotness {
namespace {

constexpr uint64_t kSec = 1'000'000'000ULL;

uint64_t addr(uint64_t page) {
  return page << 12;
}

// Every page on a slow node, and a fast tier with `pages` free.
bool onSlow(pid_t, uint64_t) {
  return false;
}
ClassifyInput emptyFastTier(uint64_t pages) {
  ClassifyInput in;
  in.capacity_pages = pages;
  in.fast_free_pages = pages;
  return in;
}

TEST(HeatMap, CoolingFollowsHalfLifeExactly) {
  HeatMap map;
  map.addAccess(1, addr(7), 10, 0);
  const double f0 = map.fastHeat(1, 7, 0);
  const double s0 = map.slowHeat(1, 7, 0);
  EXPECT_NEAR(f0, 10 * std::log(2.0) / 2.0, 1e-6);   // scores are floats
  EXPECT_NEAR(s0, 10 * std::log(2.0) / 60.0, 1e-6);  // scores are floats
  EXPECT_NEAR(map.fastHeat(1, 7, 2 * kSec), f0 / 2, 1e-5);
  EXPECT_NEAR(map.fastHeat(1, 7, 6 * kSec), f0 / 8, 1e-5);
  EXPECT_NEAR(map.slowHeat(1, 7, 60 * kSec), s0 / 2, 1e-5);
  EXPECT_NEAR(map.slowHeat(1, 7, 3 * kSec), s0 * std::exp2(-3.0 / 60.0), 1e-5);
  // Lazy decay on touch gives the same as decaying in one step.
  map.addAccess(1, addr(7), 0, 1 * kSec);
  EXPECT_NEAR(map.fastHeat(1, 7, 6 * kSec), f0 / 8, 1e-5);
  EXPECT_EQ(map.heat(1, 99, 0), 0.0);
}

TEST(HeatMap, SteadyRateIsTheSameOnBothScales) {
  HeatMap map;
  uint64_t t = 0;
  for (int i = 0; i < 400 * 100; ++i, t += kSec / 100)
    map.addAccess(1, addr(1), 1, t);
  // 100 accesses/s for 400 s: both scores near 100.
  EXPECT_NEAR(map.fastHeat(1, 1, t), 100, 2);
  EXPECT_NEAR(map.slowHeat(1, 1, t), 100, 2);
}

TEST(HeatMap, BurstIsHotOnTheFastScaleOnly) {
  HeatMap map;
  for (int i = 0; i < 1000; ++i)
    map.addAccess(1, addr(1), 1, static_cast<uint64_t>(i) * 1000);
  const uint64_t now = kSec / 100;
  EXPECT_GT(map.fastHeat(1, 1, now), 300);
  EXPECT_LT(map.slowHeat(1, 1, now), 12);
  // Twenty seconds later the burst is gone from the fast scale, not the slow one.
  EXPECT_LT(map.fastHeat(1, 1, 20 * kSec), map.slowHeat(1, 1, 20 * kSec));
}

TEST(HeatMap, SmallRegionsSpreadOverPagesLargeOnesKeepOneEntry) {
  Config c;
  c.max_region_pages = 16;
  HeatMap map(c);
  map.addRegion(3, addr(100), addr(108), 5, 20, 0);
  EXPECT_EQ(map.entries(), 8u);
  EXPECT_GT(map.heat(3, 107, 0), 0);
  map.addRegion(3, addr(1000), addr(1000 + (1u << 20)), 5, 20, 0);
  EXPECT_EQ(map.entries(), 9u);
  EXPECT_NEAR(map.heat(3, 1000, 0), map.heat(3, 100, 0), 1e-6);  // scores are floats

  // The spanning entry is planned as a whole.
  ClassifyInput in;
  in.capacity_pages = 1u << 21;
  in.fast_free_pages = 1u << 21;
  const Plan plan = map.classify(
      in, [](pid_t, uint64_t) { return false; }, 0);
  ASSERT_EQ(plan.promote.size(), 9u);
  EXPECT_EQ(plan.hot_pages, 8u + (1u << 20));
  EXPECT_TRUE(std::any_of(plan.promote.begin(), plan.promote.end(), [](const PageRef& r) {
    return r.page == 1000 && r.pages == (1u << 20);
  }));
}

TEST(HeatMap, HugePageGranularity) {
  Config c;
  c.page_shift = 21;
  HeatMap map(c);
  map.addAccess(1, 0x200000 + 5, 1, 0);
  map.addAccess(1, 0x3fffff, 1, 0);
  EXPECT_EQ(map.entries(), 1u);
  EXPECT_GT(map.heat(1, 1, 0), 0);
}

// Zipf(0.99) over n pages, drawn by inverse CDF (deterministic).
class Zipf {
 public:
  Zipf(size_t n, double s, uint64_t seed) : rng_(seed), cdf_(n) {
    double sum = 0;
    for (size_t i = 0; i < n; ++i)
      cdf_[i] = (sum += 1.0 / std::pow(static_cast<double>(i + 1), s));
    for (double& v : cdf_)
      v /= sum;
  }
  size_t next() {
    const double u = static_cast<double>(rng_() >> 11) * 0x1.0p-53;
    return static_cast<size_t>(std::lower_bound(cdf_.begin(), cdf_.end(), u) - cdf_.begin());
  }

 private:
  std::mt19937_64 rng_;
  std::vector<double> cdf_;
};

// Rank r maps to a scattered page so page order does not help.
uint64_t pageOfRank(size_t r) {
  return (r * 7919) % 10007;
}

Plan zipfPlan(uint64_t seed) {
  HeatMap map;
  Zipf z(10'000, 0.99, seed);
  uint64_t t = 0;
  for (int i = 0; i < 2'000'000; ++i, t += 5'000)
    map.addAccess(1, addr(pageOfRank(z.next())), 1, t);
  ClassifyInput in;
  in.capacity_pages = 1'000;
  in.fast_free_pages = 1'000;
  return map.classify(
      in, [](pid_t, uint64_t) { return false; }, t);
}

TEST(HeatMap, ZipfPromotesMostlyTheTrueTopSet) {
  const Plan plan = zipfPlan(42);
  std::set<uint64_t> top;
  for (size_t r = 0; r < 1'000; ++r)
    top.insert(pageOfRank(r));
  size_t in_top = 0;
  for (const PageRef& p : plan.promote)
    in_top += top.count(p.page);
  EXPECT_LE(plan.hot_pages, 1'000u);
  EXPECT_GE(plan.hot_pages, 800u);
  ASSERT_GT(plan.promote.size(), 0u);
  // Precision: what is promoted is in the true top-1000.
  EXPECT_GE(static_cast<double>(in_top) / static_cast<double>(plan.promote.size()), 0.9);
  // Recall.
  EXPECT_GE(static_cast<double>(in_top) / 1000.0, 0.8);
  EXPECT_TRUE(std::is_sorted(plan.promote.begin(), plan.promote.end(),
                             [](const PageRef& a, const PageRef& b) { return a.heat > b.heat; }));
}

// Buckets are eight equal steps within an octave, read off the double's
// bits: heats 1.0 and 1.4 share an octave but not a step, so a tier with room
// for the hotter pages alone gets exactly those, hottest first.
TEST(HeatMap, TheThresholdSeparatesHeatsWithinOneOctave) {
  HeatMap map;
  for (uint64_t page = 0; page < 20; ++page)
    map.addAccess(1, addr(page), page < 10 ? 140 : 100, 0);
  map.addAccess(1, addr(0), 5, 0);  // one page hotter still: the promote order shows
  const Plan plan = map.classify(emptyFastTier(10), onSlow, 0);
  EXPECT_EQ(plan.hot_pages, 10u);
  ASSERT_EQ(plan.promote.size(), 10u);
  EXPECT_EQ(plan.promote.front().page, 0u);
  for (const PageRef& p : plan.promote)
    EXPECT_LT(p.page, 10u) << "a page of the cooler half was promoted";
  EXPECT_TRUE(std::is_sorted(plan.promote.begin(), plan.promote.end(),
                             [](const PageRef& a, const PageRef& b) { return a.heat > b.heat; }));
}

TEST(HeatMap, DeterministicPlan) {
  const Plan a = zipfPlan(7);
  const Plan b = zipfPlan(7);
  EXPECT_EQ(a.promote, b.promote);
  EXPECT_EQ(a.demote, b.demote);
  EXPECT_EQ(a.hot_threshold, b.hot_threshold);
}

// A simulated host: a fast tier of `capacity` pages; plans are applied.
struct Sim {
  HeatMap map;
  std::set<uint64_t> fast;
  uint64_t capacity;
  uint64_t moves = 0;

  Plan step(uint64_t now) {
    ClassifyInput in;
    in.capacity_pages = capacity;
    in.headroom_pages = 0;
    in.fast_free_pages = capacity - fast.size();
    in.low_watermark_pages = capacity / 20;
    Plan plan = map.classify(
        in, [this](pid_t, uint64_t p) { return fast.count(p) > 0; }, now);
    for (const PageRef& r : plan.demote)
      fast.erase(r.page);
    for (const PageRef& r : plan.promote)
      fast.insert(r.page);
    moves += plan.promote.size() + plan.demote.size();
    EXPECT_LE(fast.size(), capacity);
    return plan;
  }
};

TEST(HeatMap, MovedHotSetIsRedetected) {
  Sim sim{HeatMap{}, {}, 100};
  uint64_t t = 0;
  auto round = [&](uint64_t hot_base) {
    // 0.5 s: 100 hot pages at 100/s, 900 background pages at ~1/s.
    for (int k = 0; k < 50; ++k) {
      for (uint64_t p = 0; p < 100; ++p)
        sim.map.addAccess(1, addr(hot_base + p), 1, t);
      if (k % 5 == 0)
        for (uint64_t p = 1000; p < 1900; p += 10)
          sim.map.addAccess(1, addr(p + k / 5), 1, t);
      t += kSec / 100;
    }
    return sim.step(t);
  };
  for (int r = 0; r < 60; ++r)
    round(0);
  for (uint64_t p = 0; p < 90; ++p)
    EXPECT_TRUE(sim.fast.count(p)) << p;

  int rounds = 0;
  auto all_b = [&] {
    for (uint64_t p = 500; p < 590; ++p)
      if (!sim.fast.count(p)) return false;
    return true;
  };
  while (!all_b() && rounds < 100) {
    round(500);
    ++rounds;
  }
  EXPECT_LE(rounds, 16);  // 8 s of updates with a 2 s fast half-life
  EXPECT_TRUE(all_b());
}

TEST(HeatMap, WarmBandPreventsPingPong) {
  // 100 pages with steady heat, capacity 50: pages near the threshold see
  // alternating small heat changes (+-10 %) every round.
  Sim sim{HeatMap{}, {}, 50};
  uint64_t t = 0;
  uint64_t settled_moves = 0;
  for (int r = 0; r < 200; ++r) {
    for (int k = 0; k < 10; ++k) {
      for (uint64_t p = 0; p < 100; ++p) {
        double rate = 100.0 - static_cast<double>(p) * 0.5;  // 100 .. 50.5 per s
        if (p >= 40 && p < 60) rate *= ((r + static_cast<int>(p)) % 2 == 0) ? 1.1 : 0.9;
        sim.map.addAccess(1, addr(p), static_cast<uint64_t>(std::lround(rate / 10)), t);
      }
      t += kSec / 100;
    }
    sim.step(t);
    if (r == 99) settled_moves = sim.moves;
  }
  EXPECT_EQ(sim.moves, settled_moves) << "moves after settling";
  EXPECT_GT(settled_moves, 0u);
}

TEST(HeatMap, ColdPagesLeaveOnlyUnderPressure) {
  HeatMap map;
  for (uint64_t p = 0; p < 10; ++p)
    map.addAccess(1, addr(p), 100, 0);
  map.addAccess(1, addr(50), 1, 0);  // cold, on fast
  ClassifyInput in;
  in.capacity_pages = 10;
  in.fast_free_pages = 5;
  in.low_watermark_pages = 2;
  auto onFast = [](pid_t, uint64_t) { return true; };
  EXPECT_TRUE(map.classify(in, onFast, kSec).demote.empty());
  in.fast_free_pages = 1;
  const Plan plan = map.classify(in, onFast, kSec);
  ASSERT_EQ(plan.demote.size(), 1u);
  EXPECT_EQ(plan.demote[0].page, 50u);
}

TEST(HeatMap, FreeMemoryUnderTheHeadroomIsPressureToo) {
  // The headroom is the kernel's high watermark (4 pages here), above the
  // policy's low watermark (2): at 3 free pages the cold page leaves, and
  // only as many as bring free memory back to the headroom.
  HeatMap map;
  for (uint64_t p = 0; p < 10; ++p)
    map.addAccess(1, addr(p), 100, 0);
  map.addAccess(1, addr(50), 1, 0);  // cold, on fast
  map.addAccess(1, addr(51), 1, 0);  // cold, on fast
  ClassifyInput in;
  in.capacity_pages = 14;  // less the headroom: room for the 10 hot pages only
  in.fast_free_pages = 3;
  in.low_watermark_pages = 2;
  in.headroom_pages = 4;
  auto onFast = [](pid_t, uint64_t) { return true; };
  const Plan plan = map.classify(in, onFast, kSec);
  ASSERT_EQ(plan.demote.size(), 1u);
  EXPECT_TRUE(plan.demote[0].page == 50u || plan.demote[0].page == 51u);
  in.fast_free_pages = 4;
  EXPECT_TRUE(map.classify(in, onFast, kSec).demote.empty());
}

TEST(HeatMap, FreePagesInPerCpuListsEndPressureButAreNoRoom) {
  // A demotion's freed pages sit in per-CPU lists, outside MemFree: counted,
  // they end the pressure (else every plan demotes again), but promotions do
  // not fill them.
  HeatMap map;
  for (uint64_t p = 0; p < 4; ++p)
    map.addAccess(1, addr(p), 100, 0);  // hot, on fast
  map.addAccess(1, addr(50), 1, 0);     // cold, on fast
  ClassifyInput in;
  in.capacity_pages = 8;  // less the headroom: the 4 hot pages
  in.fast_free_pages = 3;
  in.headroom_pages = 4;
  auto onFast = [](pid_t, uint64_t) { return true; };
  EXPECT_EQ(map.classify(in, onFast, kSec).demote.size(), 1u);  // 3 < 4: pressure
  in.per_cpu_free_pages = 2;
  EXPECT_TRUE(map.classify(in, onFast, kSec).demote.empty());  // 3 + 2 >= 4

  HeatMap slow;
  slow.addAccess(1, addr(60), 100, 0);  // hot, on slow, nothing to displace
  ClassifyInput room;
  room.capacity_pages = 10;
  room.fast_free_pages = 4;
  room.headroom_pages = 4;
  room.per_cpu_free_pages = 100;
  EXPECT_TRUE(slow.classify(
                      room, [](pid_t, uint64_t) { return false; }, kSec)
                  .promote.empty());
  room.fast_free_pages = 5;
  EXPECT_EQ(slow.classify(
                    room, [](pid_t, uint64_t) { return false; }, kSec)
                .promote.size(),
            1u);
}

TEST(HeatMap, HotCandidateDisplacesColdPageWithoutPressure) {
  // The fast tier is full at its watermark (no pressure) and holds a cold
  // page: a hot page on the slow tier takes its place, the cold page goes
  // before any warm one.
  HeatMap map;
  for (uint64_t p = 0; p < 8; ++p)
    map.addAccess(1, addr(p), 100, 0);  // hot, on fast
  map.addAccess(1, addr(40), 10, 0);    // warm band, on fast
  map.addAccess(1, addr(50), 1, 0);     // cold, on fast
  map.addAccess(1, addr(60), 100, 0);   // hot, on slow
  ClassifyInput in;
  in.capacity_pages = 10;
  in.fast_free_pages = 2;
  in.low_watermark_pages = 2;
  auto onFast = [](pid_t, uint64_t page) { return page != 60; };
  const Plan plan = map.classify(in, onFast, 0);
  ASSERT_EQ(plan.promote.size(), 1u);
  EXPECT_EQ(plan.promote[0].page, 60u);
  ASSERT_EQ(plan.demote.size(), 1u);
  EXPECT_EQ(plan.demote[0].page, 50u);
  // The last plan's displacements found no room for their promotions (the
  // freed pages not yet back in MemFree): this one displaces nothing.
  in.displace = false;
  const Plan waiting = map.classify(in, onFast, 0);
  EXPECT_TRUE(waiting.promote.empty());
  EXPECT_TRUE(waiting.demote.empty());
}

TEST(HeatMap, UnderTheKeepLineDisplacementsFirstMakeUpTheDeficit) {
  // Free memory 2 pages under the keep-free line, the per-CPU lists holding
  // the rest (no pressure): a promotion fits only after 3 demotions, and
  // with 2 cold pages to give there is neither (demoting them would make
  // room for nothing).
  const auto build = [](uint64_t cold_pages) {
    HeatMap map;
    for (uint64_t p = 0; p < 8; ++p)
      map.addAccess(1, addr(p), 100, 0);  // hot, on fast
    for (uint64_t p = 0; p < cold_pages; ++p)
      map.addAccess(1, addr(50 + p), 1, 0);  // cold, on fast
    map.addAccess(1, addr(60), 100, 0);      // hot, on slow
    return map;
  };
  auto onFast = [](pid_t, uint64_t page) { return page != 60; };
  ClassifyInput in;
  in.capacity_pages = 9;
  in.fast_free_pages = 3;
  in.low_watermark_pages = 5;
  in.per_cpu_free_pages = 4;
  ASSERT_FALSE(in.pressure());
  const Plan enough = build(4).classify(in, onFast, 0);
  ASSERT_EQ(enough.promote.size(), 1u);
  EXPECT_EQ(enough.promote[0].page, 60u);
  EXPECT_EQ(enough.demote.size(), 3u);
  const Plan short_of = build(2).classify(in, onFast, 0);
  EXPECT_TRUE(short_of.promote.empty());
  EXPECT_TRUE(short_of.demote.empty());
  EXPECT_TRUE(short_of.displacing);
}

TEST(HeatMap, APlanSaysWhenItsPromotionsHadToDisplace) {
  // The policy sweeps for untracked fast pages (the first to leave) only
  // for a plan that displaces: classify says so.
  HeatMap map;
  for (uint64_t p = 0; p < 8; ++p)
    map.addAccess(1, addr(p), 100, 0);  // hot, on fast
  map.addAccess(1, addr(50), 1, 0);     // cold, on fast
  map.addAccess(1, addr(60), 100, 0);   // hot, on slow
  auto onFast = [](pid_t, uint64_t page) { return page != 60; };
  ClassifyInput roomy;
  roomy.capacity_pages = 12;
  roomy.fast_free_pages = 4;
  roomy.low_watermark_pages = 2;
  const Plan fits = map.classify(roomy, onFast, 0);
  ASSERT_EQ(fits.promote.size(), 1u);
  EXPECT_FALSE(fits.displacing);
  ClassifyInput full = roomy;
  full.fast_free_pages = 2;
  EXPECT_TRUE(map.classify(full, onFast, 0).displacing);
  // Not allowed to displace: no sweep would help either.
  full.displace = false;
  EXPECT_FALSE(map.classify(full, onFast, 0).displacing);
  EXPECT_FALSE(full.pressure());
  full.fast_free_pages = 1;
  EXPECT_TRUE(full.pressure());
}

TEST(HeatMap, APageUnseenForIdlePassesIsColdWhateverItsHeat) {
  // The hot window moved: the old one, on the fast tier, built up heat but
  // has not faulted for three scanner passes, while the new one faults every
  // pass. The new window displaces the old with the fast tier full.
  Config config;
  config.idle_passes = 3;
  HeatMap map(config);
  map.setScanPasses(1, 1);
  for (uint64_t p = 0; p < 4; ++p)
    map.addAccess(1, addr(p), 1000, 0);  // old window, on fast: very hot then
  for (uint64_t pass = 2; pass <= 3; ++pass) {
    map.setScanPasses(1, pass);
    for (uint64_t p = 10; p < 14; ++p)
      map.addAccess(1, addr(p), 10, pass * kSec);  // new window, on slow
  }
  ClassifyInput in;
  in.capacity_pages = 4;  // all of it taken by the old window
  in.fast_free_pages = 0;
  auto onFast = [](pid_t, uint64_t page) { return page < 10; };
  EXPECT_FALSE(map.idle(1, 0));  // two passes unseen: not yet
  EXPECT_TRUE(map.classify(in, onFast, 4 * kSec).promote.empty());
  map.setScanPasses(1, 4);
  for (uint64_t p = 10; p < 14; ++p)
    map.addAccess(1, addr(p), 10, 4 * kSec);
  EXPECT_TRUE(map.idle(1, 0));
  EXPECT_FALSE(map.idle(1, 10));
  EXPECT_GT(map.heat(1, 0, 5 * kSec), map.heat(1, 10, 5 * kSec));  // heat itself kept
  const Plan plan = map.classify(in, onFast, 5 * kSec);
  EXPECT_EQ(plan.promote.size(), 4u);
  EXPECT_EQ(plan.demote.size(), 4u);
  for (const auto& r : plan.demote)
    EXPECT_LT(r.page, 4u);
}

TEST(HeatMap, NothingIsPromotedBeforeAWholePassWasSeen) {
  // The scanner started with tierd (0 passes): the first pass is whole, and
  // promotions wait for it. Already scanning (3 passes when first seen): the
  // pass under way began unwatched, so they wait for the next one as well.
  const ClassifyInput in = emptyFastTier(10);
  HeatMap map;
  map.setScanPasses(1, 0);
  map.setScanPasses(2, 3);
  map.addAccess(1, addr(0), 100, 0);
  map.addAccess(2, addr(0), 100, 0);
  EXPECT_TRUE(map.classify(in, onSlow, 0).promote.empty());
  map.setScanPasses(1, 1);
  map.setScanPasses(2, 4);
  map.addAccess(1, addr(0), 100, kSec);  // each page seen in a second pass
  map.addAccess(2, addr(0), 100, kSec);
  auto plan = map.classify(in, onSlow, 0);
  ASSERT_EQ(plan.promote.size(), 1u);
  EXPECT_EQ(plan.promote[0].pid, 1);
  map.setScanPasses(2, 5);
  EXPECT_EQ(map.classify(in, onSlow, 0).promote.size(), 2u);
  HeatMap no_passes;  // DAMON, hardware sampling: no gate
  no_passes.addAccess(1, addr(0), 100, 0);
  EXPECT_EQ(no_passes.classify(in, onSlow, 0).promote.size(), 1u);
}

TEST(HeatMap, APageSeenInOnePassOnlyIsNotPromoted) {
  // One latency is too noisy to promote on: page 1 is seen in two passes,
  // page 2 in one (twice within it, which does not count twice).
  const ClassifyInput in = emptyFastTier(10);
  HeatMap map;
  map.setScanPasses(1, 0);
  map.addAccess(1, addr(1), 100, 0);
  map.setScanPasses(1, 1);
  map.addAccess(1, addr(1), 100, kSec);
  map.addAccess(1, addr(2), 100, kSec);
  map.addAccess(1, addr(2), 100, kSec);
  const Plan plan = map.classify(in, onSlow, kSec);
  ASSERT_EQ(plan.promote.size(), 1u);
  EXPECT_EQ(plan.promote[0].page, 1u);
}

TEST(HeatMap, APageWhoseNodeIsUnknownIsNotPromoted) {
  // With nodes kept in the entries, a hot page never placed (the placement
  // queries ran out) may be on the fast tier already: promoting it would
  // displace a page for nothing. Once placed on a slow node, it is promoted.
  HeatMap map;
  map.addAccess(1, addr(1), 100, 0);
  map.addAccess(1, addr(2), 100, 0);
  map.setNode(1, 2, 1);
  ClassifyInput in = emptyFastTier(10);
  in.fast_nodes = {0};
  const Plan plan = map.classify(in, onSlow, 0);
  ASSERT_EQ(plan.promote.size(), 1u);
  EXPECT_EQ(plan.promote[0].page, 2u);
  map.setNode(1, 1, 1);
  EXPECT_EQ(map.classify(in, onSlow, 0).promote.size(), 2u);
}

TEST(HeatMap, NoPassCountsNoIdlePages) {
  // DAMON and hardware sampling report no passes: nothing is ever idle.
  HeatMap map;
  map.addAccess(1, addr(0), 100, 0);
  map.setScanPasses(2, 100);  // another process's passes do not count
  EXPECT_FALSE(map.idle(1, 0));
  Config off;
  off.idle_passes = 0;
  HeatMap never(off);
  never.setScanPasses(1, 0);
  never.addAccess(1, addr(0), 100, 0);
  never.setScanPasses(1, 100);
  EXPECT_FALSE(never.idle(1, 0));
}

TEST(HeatMap, HeldPagesAreNeitherPromotedNorDemoted) {
  // Page 60 (hot, slow) and page 50 (cold, fast) both moved a moment ago:
  // the plan leaves them, and page 61 displaces warm page 40 instead.
  HeatMap map;
  for (uint64_t p = 0; p < 8; ++p)
    map.addAccess(1, addr(p), 100, 0);
  map.addAccess(1, addr(40), 10, 0);
  map.addAccess(1, addr(50), 1, 0);
  map.addAccess(1, addr(60), 100, 0);
  map.addAccess(1, addr(61), 100, 0);
  ClassifyInput in;
  in.capacity_pages = 10;
  in.fast_free_pages = 0;
  in.untracked_fast = {{1, 70, 1, 0}, {1, 71, 1, 0}};
  auto onFast = [](pid_t, uint64_t page) { return page < 60 || page >= 70; };
  auto held = [](pid_t, uint64_t page) { return page == 50 || page == 60 || page == 70; };
  const Plan plan = map.classify(in, onFast, 0, held);
  ASSERT_EQ(plan.promote.size(), 1u);
  EXPECT_EQ(plan.promote[0].page, 61u);
  ASSERT_EQ(plan.demote.size(), 1u);
  EXPECT_EQ(plan.demote[0].page, 71u);  // untracked, not held: the first to leave
  const Plan free_plan = map.classify(in, onFast, 0);
  ASSERT_EQ(free_plan.promote.size(), 2u);
}

TEST(HeatMap, HeatSurvivesEpochRebase) {
  // Scores are stored against a shared epoch that moves when the scale
  // factors grow large (every few hundred half-lives); heat must not jump.
  Config c;
  c.fast_half_life_s = 0.01;
  HeatMap map(c);
  map.addAccess(1, addr(1), 1000, 0);
  uint64_t t = 0;
  for (int i = 0; i < 400; ++i, t += kSec / 100)  // 4 s = 400 fast half-lives
    map.addAccess(1, addr(2), 1, t);
  const double slow = map.slowHeat(1, 1, t);
  EXPECT_NEAR(
      slow, 1000 * std::log(2.0) / 60.0 * std::exp2(-(static_cast<double>(t) * 1e-9) / 60.0), 1e-5);
  EXPECT_GT(map.fastHeat(1, 2, t), 0.0);
  EXPECT_TRUE(std::isfinite(map.fastHeat(1, 2, t)));
  // One access per half-life, read one half-life after the last: the
  // geometric series gives w * ln2 / half_life * (1/2) / (1 - 1/2) = 100 ln2.
  EXPECT_NEAR(map.fastHeat(1, 2, t), 100.0 * std::log(2.0), 1e-4);
  const auto pages = map.snapshot(t);
  ASSERT_EQ(pages.size(), 2u);
}

TEST(HeatMap, IndexStaysConsistentThroughEvictionAndForgetting) {
  // The open-addressing index must find every entry after evictions (which
  // move the last entry into the hole) and after a process is forgotten.
  Config c;
  c.max_entries = 3000;
  HeatMap map(c);
  std::mt19937_64 rng(7);
  for (int i = 0; i < 20000; ++i)
    map.addAccess(static_cast<pid_t>(1 + rng() % 3), addr(rng() % 5000), 1 + rng() % 5, 0);
  ASSERT_EQ(map.entries(), 3000u);
  map.forgetProcess(2);
  const auto pages = map.snapshot(0);
  EXPECT_EQ(pages.size(), map.entries());
  for (const auto& ref : pages) {
    EXPECT_NE(ref.pid, 2);
    EXPECT_GT(map.heat(ref.pid, ref.page, 0), 0.0) << ref.pid << " " << ref.page;
  }
  for (uint64_t p = 0; p < 5000; ++p)
    EXPECT_EQ(map.heat(2, p, 0), 0.0);
  EXPECT_LE(map.bytes(), 3000 * HeatMap::bytesPerEntry() + 4096);
}

TEST(HeatMap, APageFarCoolerThanTheHottestIsNotHotEvenWithRoom) {
  HeatMap map;
  map.addAccess(1, addr(1), 1000, 0);
  map.addAccess(1, addr(2), 50, 0);
  map.addAccess(1, addr(3), 5, 0);  // 0.5 % of the hottest
  ClassifyInput in;
  in.capacity_pages = 100;
  in.fast_free_pages = 100;
  in.min_hot_fraction_of_max = 0.01;
  const Plan plan = map.classify(
      in, [](pid_t, uint64_t) { return false; }, 0);
  ASSERT_EQ(plan.promote.size(), 2u);
  EXPECT_EQ(plan.promote[0].page, 1u);
  EXPECT_EQ(plan.promote[1].page, 2u);
}

TEST(HeatMap, BudgetsCapTheLists) {
  HeatMap map;
  for (uint64_t p = 0; p < 100; ++p)
    map.addAccess(1, addr(p), 100 + p, 0);
  ClassifyInput in;
  in.capacity_pages = 100;
  in.fast_free_pages = 100;
  in.promote_budget_pages = 7;
  const Plan plan = map.classify(
      in, [](pid_t, uint64_t) { return false; }, 0);
  ASSERT_EQ(plan.promote.size(), 7u);
  EXPECT_EQ(plan.promote[0].page, 99u);
}

TEST(HeatMap, EntryCapHoldsUnderAMillionPages) {
  Config c;
  c.max_entries = 10'000;
  HeatMap map(c);
  uint64_t t = 0;
  for (uint64_t p = 0; p < 1'000'000; ++p, t += 1'000) {
    map.addAccess(1, addr(p + 1'000'000), 1, t);
    if (p % 100 == 0) map.addAccess(1, addr(1), 10, t);  // one hot page
    ASSERT_LE(map.entries(), c.max_entries);
  }
  EXPECT_EQ(map.entries(), c.max_entries);
  EXPECT_GT(map.evictions(), 900'000u);
  EXPECT_GT(map.heat(1, 1, t), 0) << "the hot page survives eviction";
  EXPECT_LE(map.bytes(), 2 * c.max_entries * HeatMap::bytesPerEntry());
}

TEST(HeatMap, HotBytesPerProcessAndLabel) {
  HeatMap map;
  for (uint64_t p = 0; p < 4; ++p)
    map.addAccess(10, addr(p), 100, 0);
  for (uint64_t p = 0; p < 2; ++p)
    map.addAccess(20, addr(p), 100, 0);
  map.addAccess(30, addr(0), 100, 0);
  map.setLabel(10, "/a.slice");
  map.setLabel(20, "/a.slice");
  ClassifyInput in;
  in.capacity_pages = 100;
  in.fast_free_pages = 100;
  const Plan plan = map.classify(
      in, [](pid_t, uint64_t) { return true; }, 0);
  ASSERT_EQ(plan.per_process.size(), 3u);
  EXPECT_EQ(plan.per_process[0], (ProcessHot{10, 4, 4 * 4096}));
  EXPECT_EQ(plan.per_process[2], (ProcessHot{30, 1, 4096}));
  EXPECT_EQ(plan.hot_bytes_by_label.at("/a.slice"), 6u * 4096);
  EXPECT_EQ(plan.hot_bytes_by_label.size(), 1u);
  map.forgetProcess(10);
  EXPECT_EQ(map.entries(), 3u);
}

TEST(HeatMap, AnEntryKeepsWhereItsPageIs) {
  HeatMap map;
  map.addAccess(1, addr(7), 1, 0);
  EXPECT_EQ(map.node(1, 7), HeatMap::kNodeUnknown);
  map.setNode(1, 7, 2);
  EXPECT_EQ(map.node(1, 7), 2);
  map.setNode(1, 7, -14);  // -EFAULT: not present
  EXPECT_EQ(map.node(1, 7), -14);
  map.setNode(1, 8, 0);  // untracked: nothing to keep it in
  EXPECT_EQ(map.node(1, 8), HeatMap::kNodeUnknown);
  map.addAccess(1, addr(7), 1, kSec);  // a new sample leaves the node alone
  EXPECT_EQ(map.node(1, 7), -14);
}

TEST(HeatMap, PlacementQueriesAskTheHottestUnknownPagesAndARotatingSlice) {
  HeatMap map;
  for (uint64_t page = 0; page < 32; ++page)
    for (uint64_t n = 0; n <= page; ++n)
      map.addAccess(1, addr(page), 1, 0);  // page p is seen p + 1 times: heat grows with p
  for (uint64_t page = 0; page < 16; ++page)
    map.setNode(1, page, 0);
  const auto pagesOf = [](std::vector<PageRef> refs) {
    std::vector<uint64_t> pages;
    for (const auto& r : refs)
      pages.push_back(r.page);
    std::sort(pages.begin(), pages.end());
    return pages;
  };
  // Unknown: 16..31; the slice (page + 3) % 8 == 0 adds the known 5 and 13.
  auto all = pagesOf(map.placementQueries(100, 8, 3, 0));
  std::vector<uint64_t> want = {5, 13};
  for (uint64_t page = 16; page < 32; ++page)
    want.push_back(page);
  EXPECT_EQ(all, want);
  // Capped: the hottest four.
  EXPECT_EQ(pagesOf(map.placementQueries(4, 8, 3, 0)), (std::vector<uint64_t>{28, 29, 30, 31}));
  // No recheck: only the unknown ones.
  EXPECT_EQ(pagesOf(map.placementQueries(100, 0, 3, 0)).size(), 16u);
}

TEST(HeatMap, AtTheCapAColdNewcomerWaitsAndAHotOneEnters) {
  Config config;
  config.max_entries = 64;
  HeatMap map(config);
  for (uint64_t page = 0; page < 64; ++page)
    map.addAccess(1, addr(page), 10, 0);
  map.addAccess(1, addr(1000), 10, 0);  // as hot as the one it evicts: in
  EXPECT_GT(map.heat(1, 1000, 0), 0);
  EXPECT_EQ(map.entries(), 64u);
  map.addAccess(1, addr(2000), 1, 0);  // a tenth as hot: turned away
  EXPECT_EQ(map.heat(1, 2000, 0), 0);
  EXPECT_EQ(map.rejected(), 1u);
  map.addAccess(1, addr(2000), 1, 0);  // ... until seen again
  EXPECT_GT(map.heat(1, 2000, 0), 0);
  EXPECT_EQ(map.entries(), 64u);
}

// Equal half-lives (the hint-fault sampler's) take the one-score paths: a
// sample updates both scales alike, and eviction compares the score's bits.
TEST(HeatMap, WithEqualHalfLivesBothScalesAgreeAndTheColdestSampledEntryIsEvicted) {
  for (const double slow_half_life : {120.0, 60.0}) {  // one score, then the usual two
    Config config;
    config.fast_half_life_s = 120;
    config.slow_half_life_s = slow_half_life;
    config.max_entries = 4;
    config.eviction_samples = 64;  // all four entries sampled, but with odds of 1 in 10^8
    HeatMap map(config);
    const uint64_t second = 1'000'000'000;
    for (uint64_t page : {1, 2, 3})
      map.addAccess(1, addr(page), 50, 0);
    map.addAccess(1, addr(4), 2, 0);  // the coldest
    map.addAccess(1, addr(1), 50, 30 * second);
    const double expected = std::log(2.0) / 120 * (50 * std::exp2(-30.0 / 120) + 50);
    EXPECT_NEAR(map.fastHeat(1, 1, 30 * second), expected, expected * 1e-5);
    if (slow_half_life == 120.0) {
      EXPECT_EQ(map.fastHeat(1, 1, 30 * second), map.slowHeat(1, 1, 30 * second));
    }
    map.addAccess(1, addr(5), 50, 30 * second);  // hotter than the floor (nothing evicted yet)
    EXPECT_EQ(map.entries(), 4u);
    EXPECT_EQ(map.heat(1, 4, 30 * second), 0) << "slow half-life " << slow_half_life;
    for (uint64_t page : {1, 2, 3, 5})
      EXPECT_GT(map.heat(1, page, 30 * second), 0) << page;
  }
}

}  // namespace
}  // namespace tierd::hotness
