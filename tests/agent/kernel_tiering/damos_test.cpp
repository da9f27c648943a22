// DamosTiering on fixture trees: the plan from captured topologies, the
// values each scheme file gets, stats read back, kdamonds given back.
#include "kernel_tiering/damos.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>

#include "kernel_tree.h"

namespace tierd::kernel_tiering {
namespace {

using test::KdamondSpec;
using test::KernelTree;
using test::kK;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

constexpr uint64_t kGiB = 1ULL << 30;

tier::Topology fixtureTopology(const std::string& name) {
  auto sys = tier::FsRoot::open(std::string(FIXTURES_DIR) + "/" + name + "/sys");
  EXPECT_TRUE(sys);
  auto facts = tier::discoverPlatform(*sys, nullptr);
  EXPECT_TRUE(facts) << facts.error().message();
  return tier::buildTopology(std::move(*facts));
}

// The node the topology puts in tier `rank` of the first initiator.
int nodeOfRank(const tier::Topology& topology, size_t rank) {
  return topology.initiators.front().tiers.at(rank).nodes.front();
}

TEST(DamosPlan, FastNodeDemotesAndFarNodePromotes) {
  auto topology = fixtureTopology("lab-far");
  int fast = nodeOfRank(topology, 0), far = nodeOfRank(topology, 1);
  EXPECT_THAT(planDamosTiering(topology, true, true),
              ElementsAre(DamosPlanEntry{fast, far, DamosAction::MigrateCold},
                          DamosPlanEntry{far, fast, DamosAction::MigrateHot}));
  EXPECT_THAT(planDamosTiering(topology, false, true),
              ElementsAre(DamosPlanEntry{fast, far, DamosAction::MigrateCold}));
  EXPECT_THAT(planDamosTiering(topology, true, false),
              ElementsAre(DamosPlanEntry{far, fast, DamosAction::MigrateHot}));
}

TEST(DamosPlan, EveryCapturedTopologyDemotesToTheNextTierAndPromotesToTierZero) {
  for (const char* name : {"lab-pmem", "lab-cxl", "lab-2socket", "two-socket-two-cxl"}) {
    SCOPED_TRACE(name);
    auto topology = fixtureTopology(name);
    auto plan = planDamosTiering(topology, true, true);
    EXPECT_FALSE(plan.empty());
    for (const auto& entry : plan) {
      auto from = topology.homeRank(entry.node);
      ASSERT_TRUE(from);
      if (entry.action == DamosAction::MigrateCold) {
        EXPECT_EQ(*from, 0);
      } else {
        EXPECT_GT(*from, 0);
      }
      EXPECT_NE(entry.node, entry.target_node);
    }
  }
}

TEST(DamosPlan, OneTierHasNothingToDo) {
  EXPECT_TRUE(planDamosTiering(fixtureTopology("host-1node"), true, true).empty());
}

TEST(DamosSettings, QuotasAgesAndWatermarksFromTheOptions) {
  KernelTieringOptions options;
  options.damos_cold_min_age_s = 5;
  options.damos_aggr_us = 100'000;
  options.damos_quota_mbps = 64;
  options.damos_quota_reset_ms = 500;
  options.damos_quota_ms = 20;
  options.damos_demote_free_percent = 30;
  options.damos_low_watermark_percent = 2.5;
  options.damos_hot_min_accesses = 7;
  auto cold = schemeSettings({0, 1, DamosAction::MigrateCold}, options);
  EXPECT_EQ(cold.action, "migrate_cold");
  EXPECT_EQ(cold.target_nid, 1);
  EXPECT_EQ(cold.nr_accesses_min, 0u);
  EXPECT_EQ(cold.nr_accesses_max, 0u);
  EXPECT_EQ(cold.age_min, 50u);              // 5 s of 100 ms aggregation intervals
  EXPECT_EQ(cold.quota_bytes, 32ULL << 20);  // 64 MiB/s for 0.5 s
  EXPECT_EQ(cold.quota_ms, 20u);
  EXPECT_EQ(cold.quota_reset_ms, 500u);
  EXPECT_EQ(cold.wmark_high, 300u);
  EXPECT_EQ(cold.wmark_mid, 300u);
  EXPECT_EQ(cold.wmark_low, 25u);
  auto hot = schemeSettings({1, 0, DamosAction::MigrateHot}, options);
  EXPECT_EQ(hot.action, "migrate_hot");
  EXPECT_EQ(hot.target_nid, 0);
  EXPECT_EQ(hot.nr_accesses_min, 7u);
  EXPECT_EQ(hot.nr_accesses_max, 4294967295u);
  EXPECT_EQ(hot.age_min, 0u);
  EXPECT_EQ(hot.wmark_high, 1000u);
  EXPECT_EQ(hot.wmark_low, 25u);
}

TEST(DamosStats, ParsesTheFiveFiles) {
  auto stats = parseDamosStats({"3\n", "4096\n", "2\n", "8192\n", "1\n"});
  ASSERT_TRUE(stats);
  EXPECT_EQ(*stats, (DamosSchemeStats{3, 4096, 2, 8192, 1}));
  auto bad = parseDamosStats({"3\n", "x\n", "2\n", "8192\n", "1\n"});
  ASSERT_FALSE(bad);
  EXPECT_THAT(bad.error().context, HasSubstr("stats/sz_tried"));
}

std::string scheme(size_t k, const std::string& file) {
  return kK + "/" + std::to_string(k) + "/contexts/0/schemes/0/" + file;
}
std::string ctx(size_t k, const std::string& file) {
  return kK + "/" + std::to_string(k) + "/contexts/0/" + file;
}

TEST(DamosTiering, OneKdamondPerNodeWithItsSchemeAndMemory) {
  KernelTree t;
  t.kdamonds(0);
  t.kdamond(0);
  t.kdamond(1);
  auto topology = t.topology();
  int fast = nodeOfRank(topology, 0), far = nodeOfRank(topology, 1);
  auto damos = DamosTiering::open(t.sys());
  ASSERT_TRUE(damos);
  KernelTieringOptions options;
  ASSERT_TRUE(damos->apply(topology, options, true, true)) << damos->notes().size();
  EXPECT_EQ(t.content(kK + "/nr_kdamonds"), "2");
  ASSERT_EQ(damos->schemes().size(), 2u);
  const auto& cold = damos->schemes()[0];
  const auto& hot = damos->schemes()[1];
  EXPECT_EQ(cold.kdamond, 0);
  EXPECT_EQ(hot.kdamond, 1);
  EXPECT_TRUE(cold.running && hot.running);

  // Node 0 has memory blocks 0-7, node 1 blocks 8-15, 128 MiB each.
  EXPECT_THAT(cold.ranges, ElementsAre(sampling::damon::AddressRange{0, 1 * kGiB}));
  EXPECT_THAT(hot.ranges, ElementsAre(sampling::damon::AddressRange{1 * kGiB, 2 * kGiB}));
  for (size_t k : {0u, 1u}) {
    SCOPED_TRACE(k);
    EXPECT_EQ(t.content(kK + "/" + std::to_string(k) + "/state"), "on");
    EXPECT_EQ(t.content(kK + "/" + std::to_string(k) + "/contexts/nr_contexts"), "1");
    EXPECT_EQ(t.content(ctx(k, "operations")), "paddr");
    EXPECT_EQ(t.content(ctx(k, "monitoring_attrs/intervals/sample_us")), "5000");
    EXPECT_EQ(t.content(ctx(k, "monitoring_attrs/intervals/aggr_us")), "100000");
    EXPECT_EQ(t.content(ctx(k, "targets/nr_targets")), "1");
    EXPECT_EQ(t.content(ctx(k, "targets/0/regions/nr_regions")), "1");
    EXPECT_EQ(t.content(ctx(k, "schemes/nr_schemes")), "1");
    EXPECT_EQ(t.content(scheme(k, "quotas/ms")), "100");
    EXPECT_EQ(t.content(scheme(k, "quotas/bytes")), std::to_string(128ULL << 20));
    EXPECT_EQ(t.content(scheme(k, "quotas/reset_interval_ms")), "1000");
    EXPECT_EQ(t.content(scheme(k, "watermarks/metric")), "free_mem_rate");
    EXPECT_EQ(t.content(scheme(k, "watermarks/low")), "50");
  }
  EXPECT_EQ(t.content(ctx(0, "targets/0/regions/0/start")), "0");
  EXPECT_EQ(t.content(ctx(0, "targets/0/regions/0/end")), std::to_string(kGiB));
  EXPECT_EQ(t.content(ctx(1, "targets/0/regions/0/start")), std::to_string(kGiB));
  EXPECT_EQ(t.content(ctx(1, "targets/0/regions/0/end")), std::to_string(2 * kGiB));

  EXPECT_EQ(t.content(scheme(0, "action")), "migrate_cold");
  EXPECT_EQ(t.content(scheme(0, "target_nid")), std::to_string(far));
  EXPECT_EQ(t.content(scheme(0, "access_pattern/nr_accesses/min")), "0");
  EXPECT_EQ(t.content(scheme(0, "access_pattern/nr_accesses/max")), "0");
  EXPECT_EQ(t.content(scheme(0, "access_pattern/age/min")), "50");
  EXPECT_EQ(t.content(scheme(0, "watermarks/high")), "1000");

  // The page's own accessed bit: cold skips young pages, hot takes only young ones.
  EXPECT_EQ(t.content(scheme(0, "filters/nr_filters")), "1");
  EXPECT_EQ(t.content(scheme(0, "filters/0/type")), "young");
  EXPECT_EQ(t.content(scheme(0, "filters/0/matching")), "Y");
  EXPECT_EQ(t.content(scheme(1, "filters/0/type")), "young");
  EXPECT_EQ(t.content(scheme(1, "filters/0/matching")), "N");
  EXPECT_TRUE(damos->notes().empty());

  EXPECT_EQ(t.content(scheme(1, "action")), "migrate_hot");
  EXPECT_EQ(t.content(scheme(1, "target_nid")), std::to_string(fast));
  EXPECT_EQ(t.content(scheme(1, "access_pattern/nr_accesses/min")), "5");
  EXPECT_EQ(t.content(scheme(1, "access_pattern/nr_accesses/max")), "4294967295");
  EXPECT_EQ(t.content(scheme(1, "access_pattern/age/min")), "0");

  // The kernel fills the stats files on update_schemes_stats.
  t.set(scheme(1, "stats/nr_tried"), "12\n");
  t.set(scheme(1, "stats/sz_tried"), "50331648\n");
  t.set(scheme(1, "stats/nr_applied"), "10\n");
  t.set(scheme(1, "stats/sz_applied"), "33554432\n");
  t.set(scheme(1, "stats/qt_exceeds"), "2\n");
  ASSERT_TRUE(damos->refreshStats());
  EXPECT_EQ(t.content(kK + "/1/state"), "update_schemes_stats");
  EXPECT_EQ(damos->schemes()[1].stats, (DamosSchemeStats{12, 50331648, 10, 33554432, 2}));
  EXPECT_EQ(damos->schemes()[0].stats, DamosSchemeStats{});

  ASSERT_TRUE(damos->stop());
  EXPECT_EQ(t.content(kK + "/0/state"), "off");
  EXPECT_EQ(t.content(kK + "/1/state"), "off");
  EXPECT_EQ(t.content(kK + "/nr_kdamonds"), "0");
  EXPECT_FALSE(damos->running());
}

TEST(DamosTiering, OnlineBlocksOnlyAndFreeKdamondsFirst) {
  KernelTree t;
  t.set("sys/devices/system/memory/memory3/state", "offline\n");
  t.kdamonds(3);
  t.kdamond(0, {.on = true, .pid = 77});
  t.kdamond(1);
  t.kdamond(2);
  auto damos = DamosTiering::open(t.sys());
  ASSERT_TRUE(damos);
  ASSERT_TRUE(damos->apply(t.topology(), {}, true, true));
  EXPECT_EQ(damos->schemes()[0].kdamond, 1);
  EXPECT_EQ(damos->schemes()[1].kdamond, 2);
  EXPECT_THAT(damos->schemes()[0].ranges,
              ElementsAre(sampling::damon::AddressRange{0, 3 * (kGiB / 8)},
                          sampling::damon::AddressRange{4 * (kGiB / 8), kGiB}));
  EXPECT_EQ(t.content(kK + "/nr_kdamonds"), "3\n");  // not grown
  EXPECT_EQ(t.content(kK + "/0/state"), "on\n");     // someone else's, untouched
  ASSERT_TRUE(damos->stop());
  EXPECT_EQ(t.content(kK + "/0/state"), "on\n");
  EXPECT_EQ(t.content(kK + "/nr_kdamonds"), "3\n");
}

TEST(DamosTiering, TooFewFreeKdamondsIsBusyAndWritesNothing) {
  KernelTree t;
  t.kdamonds(2);
  t.kdamond(0, {.on = true, .pid = 77});
  t.kdamond(1);
  auto sys = tier::FsRoot::open(t.sys());
  auto writer = tier::FsWriter::open(t.sys());
  auto log = std::make_shared<tier::WriteLog>();
  writer->setWriteLog(log);
  DamosTiering damos(std::move(*sys), std::move(*writer));
  auto applied = damos.apply(t.topology(), {}, true, true);
  ASSERT_FALSE(applied);
  EXPECT_EQ(applied.error().errnum, EBUSY);
  EXPECT_THAT(applied.error().context, HasSubstr("2 needed, 1 free"));
  EXPECT_THAT(applied.error().context, HasSubstr("kdamond 0 (pid 77)"));
  EXPECT_TRUE(log->writes().empty());
}

TEST(DamosTiering, AKernelWithoutMigrateActionsIsNotSupportedAndGivesTheKdamondsBack) {
  KernelTree t;
  t.kdamonds(0);
  t.kdamond(0, {.target_nid = false});
  t.kdamond(1, {.target_nid = false});
  auto damos = DamosTiering::open(t.sys());
  ASSERT_TRUE(damos);
  auto applied = damos->apply(t.topology(), {}, true, true);
  ASSERT_FALSE(applied);
  EXPECT_EQ(applied.error().errnum, EOPNOTSUPP);
  EXPECT_THAT(applied.error().context, HasSubstr("migrate actions (Linux 6.11+)"));
  EXPECT_EQ(t.content(kK + "/nr_kdamonds"), "0");
  EXPECT_EQ(t.content(kK + "/0/state"), "off\n");
  EXPECT_FALSE(damos->running());
}

TEST(DamosTiering, WithoutDamonItSaysSo) {
  KernelTree t;
  auto damos = DamosTiering::open(t.sys());
  ASSERT_TRUE(damos);
  auto applied = damos->apply(t.topology(), {}, true, true);
  ASSERT_FALSE(applied);
  EXPECT_EQ(applied.error().errnum, ENOENT);
  EXPECT_THAT(applied.error().context, HasSubstr("kernel lacks DAMON's sysfs interface"));
}

TEST(DamosTiering, WithoutFiltersItRunsAndSaysWhatThatMeans) {
  KernelTree t;
  t.kdamonds(0);
  t.kdamond(0, {.filters = false});
  t.kdamond(1, {.filters = false});
  auto damos = DamosTiering::open(t.sys());
  ASSERT_TRUE(damos);
  ASSERT_TRUE(damos->apply(t.topology(), {}, true, true));
  ASSERT_EQ(damos->notes().size(), 1u);
  EXPECT_THAT(damos->notes()[0], HasSubstr("no filters"));
  EXPECT_EQ(t.content(kK + "/0/state"), "on");
}

TEST(DamosTiering, DestructorStopsAndReleases) {
  KernelTree t;
  t.kdamonds(0);
  t.kdamond(0);
  t.kdamond(1);
  {
    auto damos = DamosTiering::open(t.sys());
    ASSERT_TRUE(damos);
    ASSERT_TRUE(damos->apply(t.topology(), {}, false, true));
    EXPECT_EQ(damos->schemes().size(), 1u);
    EXPECT_EQ(t.content(kK + "/nr_kdamonds"), "1");
  }
  EXPECT_EQ(t.content(kK + "/0/state"), "off");
  EXPECT_EQ(t.content(kK + "/nr_kdamonds"), "0");
}

}  // namespace
}  // namespace tierd::kernel_tiering
