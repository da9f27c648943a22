// KernelTiering on fixture trees: each machinery sets exactly its knobs and
// kdamonds, restore() puts everything back, report() and its JSON.
#include "kernel_tiering/kernel_tiering.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "kernel_tree.h"

namespace tierd::kernel_tiering {
namespace {

using test::KernelTree;
using test::kK;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

const std::string kNumaBalancing = "proc/sys/kernel/numa_balancing";
const std::string kRateLimit = "proc/sys/kernel/numa_balancing_promote_rate_limit_MBps";
const std::string kDemotion = "sys/kernel/mm/numa/demotion_enabled";
const std::string kHotThreshold = "sys/kernel/debug/sched/numa_balancing/hot_threshold_ms";

std::unique_ptr<KernelTiering> open(const KernelTree& t) {
  auto tiering = KernelTiering::open(t.sys(), t.proc());
  EXPECT_TRUE(tiering) << tiering.error().message();
  return std::move(*tiering);
}

TEST(VmstatDeltas, OnlyTheReportedCountersPresentInBoth) {
  std::map<std::string, uint64_t> then{{"pgpromote_success", 10},
                                       {"numa_hint_faults", 5},
                                       {"pgdemote_kswapd", 7},
                                       {"nr_free_pages", 1}};
  std::map<std::string, uint64_t> now{{"pgpromote_success", 25},
                                      {"numa_hint_faults", 4},
                                      {"pgmigrate_success", 3},
                                      {"nr_free_pages", 9},
                                      {"pgdemote_kswapd", 7}};
  auto deltas = vmstatDeltas(then, now);
  EXPECT_EQ(deltas,
            (std::map<std::string, uint64_t>{
                {"numa_hint_faults", 0}, {"pgdemote_kswapd", 0}, {"pgpromote_success", 15}}));
}

TEST(KernelTiering, NumaBalancingSetsTheTieringBitRateLimitThresholdAndDemotion) {
  KernelTree t;
  auto tiering = open(t);
  KernelTieringOptions options;
  options.machinery = Machinery::NumaBalancing;
  options.promote_rate_limit_mbps = 64;
  options.hot_threshold_ms = 300;
  ASSERT_TRUE(tiering->apply(t.topology(), options));
  EXPECT_EQ(t.content(kNumaBalancing), "3");  // NORMAL (as it was) + MEMORY_TIERING
  EXPECT_EQ(t.content(kRateLimit), "64");
  EXPECT_EQ(t.content(kHotThreshold), "300");
  EXPECT_EQ(t.content(kDemotion), "true");
  EXPECT_FALSE(t.exists(kK));  // no DAMON needed
  EXPECT_TRUE(tiering->applied());

  auto report = tiering->report();
  EXPECT_TRUE(report.applied);
  EXPECT_EQ(report.machinery, "numa_balancing");
  EXPECT_TRUE(report.schemes.empty());
  auto line = describeApplied(report);
  EXPECT_THAT(line, HasSubstr("numa_balancing 1 -> 3"));
  EXPECT_THAT(line, HasSubstr("promote_rate_limit_mbps 65536 -> 64"));
  EXPECT_THAT(line, HasSubstr("demotion_enabled false -> true"));

  EXPECT_TRUE(tiering->restore().empty());
  EXPECT_EQ(t.content(kNumaBalancing), "1");
  EXPECT_EQ(t.content(kRateLimit), "65536");
  EXPECT_EQ(t.content(kHotThreshold), "1000");
  EXPECT_EQ(t.content(kDemotion), "false");
  EXPECT_FALSE(tiering->applied());
}

TEST(KernelTiering, WithoutDebugfsTheThresholdIsANoteNotAnError) {
  KernelTree t(/*debugfs=*/false);
  auto tiering = open(t);
  KernelTieringOptions options;
  options.hot_threshold_ms = 300;
  ASSERT_TRUE(tiering->apply(t.topology(), options));
  auto report = tiering->report();
  ASSERT_EQ(report.notes.size(), 1u);
  EXPECT_THAT(report.notes[0], HasSubstr("debugfs"));
  auto json = reportJson(report);
  EXPECT_EQ(json["knobs"]["hot_threshold_ms"]["present"], false);
  EXPECT_EQ(json["knobs"]["numa_balancing"]["value"], 3);
  EXPECT_EQ(json["knobs"]["numa_balancing"]["original"], 1);
  EXPECT_EQ(json["knobs"]["numa_balancing"]["set_by_tierd"], true);
  EXPECT_EQ(json["knobs"]["scan_size_mb"]["present"], false);
}

TEST(KernelTiering, DamosLeavesTheNumaBalancingKnobsAlone) {
  KernelTree t;
  t.kdamonds(0);
  t.kdamond(0);
  t.kdamond(1);
  auto tiering = open(t);
  KernelTieringOptions options;
  options.machinery = Machinery::Damos;
  ASSERT_TRUE(tiering->apply(t.topology(), options));
  EXPECT_EQ(t.content(kNumaBalancing), "1\n");
  EXPECT_EQ(t.content(kRateLimit), "65536\n");
  EXPECT_EQ(t.content(kDemotion), "false\n");
  EXPECT_EQ(t.content(kK + "/0/contexts/0/schemes/0/action"), "migrate_cold");
  EXPECT_EQ(t.content(kK + "/1/contexts/0/schemes/0/action"), "migrate_hot");

  // Counters move between apply and report.
  t.set("proc/vmstat",
        "pgpromote_success 4196\npgpromote_candidate 150\npgdemote_kswapd 10\n"
        "pgdemote_direct 0\npgdemote_khugepaged 0\npgmigrate_success 12788\n"
        "numa_hint_faults 1000\n");
  t.set(kK + "/0/contexts/0/schemes/0/stats/sz_applied", "33554432\n");
  auto json = reportJson(tiering->report());
  EXPECT_EQ(json["machinery"], "damos");
  EXPECT_EQ(json["vmstat_since_apply"]["pgpromote_success"], 4096);
  EXPECT_EQ(json["vmstat_since_apply"]["pgmigrate_success"], 12288);
  EXPECT_EQ(json["vmstat_since_apply"]["numa_hint_faults"], 0);
  ASSERT_EQ(json["damos_schemes"].size(), 2u);
  EXPECT_EQ(json["damos_schemes"][0]["action"], "migrate_cold");
  EXPECT_EQ(json["damos_schemes"][0]["sz_applied"], 33554432);
  EXPECT_EQ(json["damos_schemes"][1]["action"], "migrate_hot");
  EXPECT_EQ(json["knobs"]["numa_balancing"]["set_by_tierd"], false);

  EXPECT_TRUE(tiering->restore().empty());
  EXPECT_EQ(t.content(kK + "/0/state"), "off");
  EXPECT_EQ(t.content(kK + "/1/state"), "off");
  EXPECT_EQ(t.content(kK + "/nr_kdamonds"), "0");
}

TEST(KernelTiering, BothPromotesByNumaBalancingAndDemotesByDamos) {
  KernelTree t;
  t.set(kNumaBalancing, "0\n");
  t.kdamonds(0);
  t.kdamond(0);
  auto tiering = open(t);
  KernelTieringOptions options;
  options.machinery = Machinery::Both;
  ASSERT_TRUE(tiering->apply(t.topology(), options));
  EXPECT_EQ(t.content(kNumaBalancing), "2");
  EXPECT_EQ(t.content(kRateLimit), "256");
  EXPECT_EQ(t.content(kK + "/nr_kdamonds"), "1");
  EXPECT_EQ(t.content(kK + "/0/contexts/0/schemes/0/action"), "migrate_cold");
  auto report = tiering->report();
  ASSERT_EQ(report.schemes.size(), 1u);
  EXPECT_EQ(report.schemes[0].entry.action, DamosAction::MigrateCold);
  tiering.reset();  // the destructor restores
  EXPECT_EQ(t.content(kNumaBalancing), "0");
  EXPECT_EQ(t.content(kRateLimit), "65536");
  EXPECT_EQ(t.content(kK + "/0/state"), "off");
  EXPECT_EQ(t.content(kK + "/nr_kdamonds"), "0");
}

TEST(KernelTiering, AFailingDamosRestoresTheKnobsItAlreadySet) {
  KernelTree t;  // no DAMON in this tree
  auto tiering = open(t);
  KernelTieringOptions options;
  options.machinery = Machinery::Both;
  auto applied = tiering->apply(t.topology(), options);
  ASSERT_FALSE(applied);
  EXPECT_THAT(applied.error().context, HasSubstr("DAMON"));
  EXPECT_EQ(t.content(kNumaBalancing), "1");
  EXPECT_EQ(t.content(kRateLimit), "65536");
  EXPECT_EQ(t.content(kDemotion), "false");
  EXPECT_FALSE(tiering->applied());
}

TEST(KernelTiering, ReapplyingRestoresFirst) {
  KernelTree t;
  auto tiering = open(t);
  KernelTieringOptions options;
  options.hot_threshold_ms = 300;
  ASSERT_TRUE(tiering->apply(t.topology(), options));
  options.hot_threshold_ms.reset();
  options.promote_rate_limit_mbps = 32;
  ASSERT_TRUE(tiering->apply(t.topology(), options));
  EXPECT_EQ(t.content(kHotThreshold), "1000");  // back: the new options leave it alone
  EXPECT_EQ(t.content(kRateLimit), "32");
  tiering->restore();
  EXPECT_EQ(t.content(kRateLimit), "65536");
  EXPECT_EQ(t.content(kNumaBalancing), "1");
}

TEST(KernelTiering, WithoutNumaBalancingTheMachineryCannotWork) {
  KernelTree t;
  std::filesystem::remove(t.tree.root() / kNumaBalancing);
  auto tiering = open(t);
  auto applied = tiering->apply(t.topology(), {});
  ASSERT_FALSE(applied);
  EXPECT_EQ(applied.error().errnum, ENOENT);
  EXPECT_THAT(applied.error().context, HasSubstr("kernel lacks NUMA balancing"));
}

TEST(KernelTiering, RestoreReportsWhatItLeft) {
  KernelTree t;
  auto tiering = open(t);
  ASSERT_TRUE(tiering->apply(t.topology(), {}));
  t.set(kRateLimit, "1000\n");
  auto left = tiering->restore();
  ASSERT_EQ(left.size(), 1u);
  EXPECT_THAT(left[0], HasSubstr("promote_rate_limit_mbps is 1000, not the 256 tierd wrote"));
  EXPECT_EQ(t.content(kRateLimit), "1000\n");
  EXPECT_EQ(t.content(kNumaBalancing), "1");
}

}  // namespace
}  // namespace tierd::kernel_tiering
