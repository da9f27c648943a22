#include "model.h"

#include <gtest/gtest.h>

#include <cmath>
#include <numeric>
#include <set>

namespace tier::bench {
namespace {

TEST(Zipf, ProbabilitiesSumToOneAndFollowThePowerLaw) {
  auto p = zipfProbabilities(98304, 0.99);
  EXPECT_NEAR(std::accumulate(p.begin(), p.end(), 0.0), 1.0, 1e-12);
  // p(r) / p(1) = r^-theta.
  EXPECT_NEAR(p[9] / p[0], std::pow(10.0, -0.99), 1e-12);
  EXPECT_NEAR(p[99] / p[0], std::pow(100.0, -0.99), 1e-12);
  for (size_t i = 1; i < p.size(); ++i)
    ASSERT_LT(p[i], p[i - 1]);
}

TEST(Zipf, TopKMassMatchesTheGeneralizedHarmonicNumbers) {
  const size_t n = 1000;
  const double theta = 0.99;
  auto harmonic = [&](size_t k) {
    double h = 0;
    for (size_t r = 1; r <= k; ++r)
      h += std::pow(static_cast<double>(r), -theta);
    return h;
  };
  auto p = zipfProbabilities(n, theta);
  for (size_t k : {1UL, 10UL, 250UL, 1000UL})
    EXPECT_NEAR(oracleShare(p, k), harmonic(k) / harmonic(n), 1e-12) << "k=" << k;
  // theta = 0 is uniform.
  auto uniform = zipfProbabilities(8, 0.0);
  for (double value : uniform)
    EXPECT_DOUBLE_EQ(value, 0.125);
}

TEST(AliasSampler, DrawsMatchTheProbabilities) {
  std::vector<double> p = {0.5, 0.25, 0.125, 0.0625, 0.0625, 0.0};
  AliasSampler sampler(p);
  Rng rng(42);
  std::vector<double> count(p.size());
  const int draws = 400000;
  for (int i = 0; i < draws; ++i)
    count[sampler.draw(rng)] += 1;
  for (size_t i = 0; i < p.size(); ++i)
    EXPECT_NEAR(count[i] / draws, p[i], 0.005) << "slot " << i;
  EXPECT_EQ(count[5], 0) << "a zero-probability slot is never drawn";
}

TEST(AliasSampler, ZipfHeadIsDrawnAsOftenAsItsMass) {
  auto p = zipfProbabilities(4096, 0.99);
  AliasSampler sampler(p);
  Rng rng(7);
  const int draws = 1000000;
  int head = 0;
  for (int i = 0; i < draws; ++i)
    head += sampler.draw(rng) < 64;
  EXPECT_NEAR(static_cast<double>(head) / draws, oracleShare(p, 64), 0.003);
}

TEST(Shuffle, IsAPermutationAndDependsOnTheSeed) {
  auto a = shuffledIndices(1000, 1), b = shuffledIndices(1000, 1), c = shuffledIndices(1000, 2);
  EXPECT_EQ(a, b);
  EXPECT_NE(a, c);
  std::set<uint32_t> seen(a.begin(), a.end());
  EXPECT_EQ(seen.size(), 1000u);
  EXPECT_EQ(*seen.rbegin(), 999u);
}

TEST(Oracle, TakesTheLargestProbabilitiesWhereverTheyAre) {
  std::vector<double> p = {0.05, 0.4, 0.05, 0.3, 0.2};
  EXPECT_DOUBLE_EQ(oracleShare(p, 0), 0.0);
  EXPECT_DOUBLE_EQ(oracleShare(p, 1), 0.4);
  EXPECT_DOUBLE_EQ(oracleShare(p, 2), 0.7);
  EXPECT_NEAR(oracleShare(p, 9), 1.0, 1e-12) << "capacity beyond the table takes it all";
}

TEST(FastShare, SumsTheProbabilityOfPagesOnFastNodes) {
  std::vector<double> p = {0.05, 0.4, 0.05, 0.3, 0.2};
  EXPECT_DOUBLE_EQ(fastShare(p, std::vector<uint8_t>{0, 1, 0, 0, 1}), 0.6);
  EXPECT_DOUBLE_EQ(fastShare(p, std::vector<uint8_t>(5, 0)), 0.0);
}

TEST(UpdatePlacement, FastNodesSetTheFlagAndUnknownPagesKeepTheirLastTier) {
  std::vector<uint8_t> fast_node = {1, 0, 0, 1};  // nodes 0 and 3 have CPUs
  std::vector<uint8_t> on_fast;
  auto counts = updatePlacement(std::vector<int>{0, 1, 3, 2, -2}, fast_node, on_fast);
  EXPECT_EQ(on_fast, (std::vector<uint8_t>{1, 0, 1, 0, 0}));
  EXPECT_EQ(counts.fast, 2u);
  EXPECT_EQ(counts.unknown, 1u);
  // Pages 0 and 1 in migration (-ENOENT): they stay where they were seen.
  counts = updatePlacement(std::vector<int>{-2, -2, 1, 0, 7}, fast_node, on_fast);
  EXPECT_EQ(on_fast, (std::vector<uint8_t>{1, 0, 0, 1, 0})) << "node 7 is beyond the node list";
  EXPECT_EQ(counts.fast, 2u);
  EXPECT_EQ(counts.unknown, 2u);
}

TEST(PlacementTracker, CountsMovesAndRoundTripsWithinTheWindow) {
  PlacementTracker tracker(3, 60.0);
  auto d = tracker.observe(std::vector<uint8_t>{0, 0, 1}, 0);
  EXPECT_EQ(d.moves, 0u) << "the first sample is the starting point";
  d = tracker.observe(std::vector<uint8_t>{1, 0, 1}, 1);  // page 0 promoted
  EXPECT_EQ(d.moves, 1u);
  EXPECT_EQ(d.round_trips, 0u);
  d = tracker.observe(std::vector<uint8_t>{0, 1, 0}, 10);  // 0 back (trip), 1 up, 2 down
  EXPECT_EQ(d.moves, 3u);
  EXPECT_EQ(d.round_trips, 1u);
  d = tracker.observe(std::vector<uint8_t>{0, 0, 0}, 80);  // page 1 back, but 70 s later
  EXPECT_EQ(d.moves, 1u);
  EXPECT_EQ(d.round_trips, 0u);
  d = tracker.observe(std::vector<uint8_t>{0, 0, 1}, 130);  // page 2 up again after 120 s
  EXPECT_EQ(d.round_trips, 0u);
  d = tracker.observe(std::vector<uint8_t>{0, 0, 0}, 190);  // and down after exactly 60 s
  EXPECT_EQ(d.round_trips, 1u);
  EXPECT_EQ(tracker.totalMoves(), 7u);
  EXPECT_EQ(tracker.totalRoundTrips(), 2u);
}

std::vector<Sample> series(std::initializer_list<double> ratios, double t0 = 0) {
  std::vector<Sample> out;
  double t = t0;
  for (double r : ratios)
    out.push_back({t++, r});
  return out;
}

TEST(TimeToSustain, FindsTheFirstSecondThatHoldsForTheWholeSpan) {
  // A blip at t=2 does not count: it falls back at t=3.
  auto s = series({0.1, 0.5, 0.95, 0.7, 0.9, 0.92, 0.93, 0.91, 0.95, 0.96, 0.97});
  EXPECT_EQ(timeToSustain(s, 0, 0.9, 5), 4.0);
  EXPECT_EQ(timeToSustain(s, 0, 0.9, 6), 4.0);
  EXPECT_EQ(timeToSustain(s, 0, 0.9, 7), std::nullopt) << "the series ends before 7 s pass";
}

TEST(TimeToSustain, NeverWhenItNeverHolds) {
  EXPECT_EQ(timeToSustain(series({0.95, 0.95, 0.95, 0.5, 0.95, 0.95}), 0, 0.9, 5), std::nullopt);
  EXPECT_EQ(timeToSustain({}, 0, 0.9, 5), std::nullopt);
}

TEST(TimeToSustain, RecoveryCountsFromTheShift) {
  // Good before the shift at t=5, a drop, back above 0.9 from t=8.
  auto s =
      series({0.95, 0.95, 0.95, 0.95, 0.95, 0.2, 0.4, 0.8, 0.91, 0.92, 0.93, 0.94, 0.95, 0.96});
  EXPECT_EQ(timeToSustain(s, 5, 0.9, 5), 3.0);
  EXPECT_EQ(timeToSustain(s, 0, 0.9, 4), 0.0) << "from the start it held for 4 s right away";
}

TEST(SteadyRatio, AveragesTheLastThird) {
  auto s = series({0, 0, 0, 0, 0, 0, 0.9, 0.9, 1.0});               // t = 0..8
  EXPECT_NEAR(steadyRatio(s, 0, 8), (0.9 + 0.9 + 1.0) / 3, 1e-12);  // t >= 5.33
  EXPECT_NEAR(steadyRatio(s, 5, 8), (0.9 + 1.0) / 2, 1e-12);        // t >= 7
  EXPECT_EQ(steadyRatio({}, 0, 8), 0.0);
}

}  // namespace
}  // namespace tier::bench
