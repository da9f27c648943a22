// KernelKnobs on fixture trees: which files get which values, in which order,
// and that restore() puts back only what tierd changed and still holds.
#include "kernel_tiering/knobs.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "kernel_tree.h"

namespace tierd::kernel_tiering {
namespace {

using test::KernelTree;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

const std::string kNumaBalancing = "sys/kernel/numa_balancing";
const std::string kRateLimit = "sys/kernel/numa_balancing_promote_rate_limit_MBps";
const std::string kDemotion = "kernel/mm/numa/demotion_enabled";
const std::string kHotThreshold = "kernel/debug/sched/numa_balancing/hot_threshold_ms";

struct Logged {
  KernelKnobs knobs;
  std::shared_ptr<tier::WriteLog> sys_log, proc_log;
};

Logged logged(const KernelTree& t) {
  auto sys = tier::FsRoot::open(t.sys());
  auto sys_writer = tier::FsWriter::open(t.sys());
  auto proc = tier::FsRoot::open(t.proc());
  auto proc_writer = tier::FsWriter::open(t.proc());
  EXPECT_TRUE(sys && sys_writer && proc && proc_writer);
  auto sys_log = std::make_shared<tier::WriteLog>();
  auto proc_log = std::make_shared<tier::WriteLog>();
  sys_writer->setWriteLog(sys_log);
  proc_writer->setWriteLog(proc_log);
  return {KernelKnobs(std::move(*sys), std::move(*sys_writer), std::move(*proc),
                      std::move(*proc_writer)),
          sys_log, proc_log};
}

TEST(KnobText, ParsesNumbersAndBooleans) {
  EXPECT_EQ(parseKnob(Knob::NumaBalancing, "3\n"), 3);
  EXPECT_EQ(parseKnob(Knob::PromoteRateLimit, "65536\n"), 65536);
  EXPECT_EQ(parseKnob(Knob::DemotionEnabled, "true\n"), 1);
  EXPECT_EQ(parseKnob(Knob::DemotionEnabled, "false\n"), 0);
  EXPECT_EQ(parseKnob(Knob::DemotionEnabled, "1"), 1);
  auto bad = parseKnob(Knob::HotThreshold, "soon\n");
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().errnum, EINVAL);
  EXPECT_THAT(bad.error().context, HasSubstr("hot_threshold_ms"));
  EXPECT_FALSE(parseKnob(Knob::DemotionEnabled, "maybe"));
}

TEST(KnobText, FormatsWhatTheKernelTakes) {
  EXPECT_EQ(formatKnob(Knob::DemotionEnabled, 1), "true");
  EXPECT_EQ(formatKnob(Knob::DemotionEnabled, 0), "false");
  EXPECT_EQ(formatKnob(Knob::NumaBalancing, 2), "2");
  EXPECT_EQ(knobByName("scan_size_mb"), Knob::ScanSize);
  EXPECT_EQ(knobByName("nope"), std::nullopt);
}

TEST(KernelKnobs, ReadsEveryKnob) {
  KernelTree t;
  auto knobs = KernelKnobs::open(t.sys(), t.proc());
  ASSERT_TRUE(knobs) << knobs.error().message();
  EXPECT_EQ(knobs->read(Knob::NumaBalancing).value(), std::optional<int64_t>(1));
  EXPECT_EQ(knobs->read(Knob::PromoteRateLimit).value(), std::optional<int64_t>(65536));
  EXPECT_EQ(knobs->read(Knob::DemotionEnabled).value(), std::optional<int64_t>(0));
  EXPECT_EQ(knobs->read(Knob::HotThreshold).value(), std::optional<int64_t>(1000));
  EXPECT_EQ(knobs->read(Knob::ScanPeriodMax).value(), std::optional<int64_t>(60000));
  auto states = knobs->states();
  ASSERT_EQ(states.size(), std::size(kAllKnobs));
  for (const auto& state : states) {
    EXPECT_TRUE(state.value) << knobInfo(state.knob).name;
    EXPECT_FALSE(state.original);
  }
}

TEST(KernelKnobs, WithoutDebugfsTheTunablesAreAbsentNotErrors) {
  KernelTree t(/*debugfs=*/false);
  auto knobs = KernelKnobs::open(t.sys(), t.proc());
  ASSERT_TRUE(knobs);
  EXPECT_FALSE(knobs->present(Knob::HotThreshold));
  auto value = knobs->read(Knob::HotThreshold);
  ASSERT_TRUE(value);
  EXPECT_EQ(*value, std::nullopt);
  auto set = knobs->set(Knob::HotThreshold, 500);
  ASSERT_FALSE(set);
  EXPECT_EQ(set.error().errnum, ENOENT);
  EXPECT_THAT(set.error().context, HasSubstr("kernel lacks hot_threshold_ms"));
  EXPECT_TRUE(knobs->changed().empty());
}

TEST(KernelKnobs, AMalformedKnobIsAnErrorNamingTheFile) {
  KernelTree t;
  t.set("proc/" + kNumaBalancing, "tiering\n");
  auto knobs = KernelKnobs::open(t.sys(), t.proc());
  ASSERT_TRUE(knobs);
  auto value = knobs->read(Knob::NumaBalancing);
  ASSERT_FALSE(value);
  EXPECT_THAT(value.error().context, HasSubstr("proc/sys/kernel/numa_balancing"));
}

TEST(KernelKnobs, SetNumaBalancingWritesTheRateLimitFirstAndRestoresBoth) {
  KernelTree t;
  auto [knobs, sys_log, proc_log] = logged(t);
  ASSERT_TRUE(knobs.setNumaBalancing(2, 0));
  EXPECT_THAT(proc_log->writes(), ElementsAre(tier::WriteRecord{kRateLimit, "0"},
                                              tier::WriteRecord{kNumaBalancing, "2"}));
  EXPECT_TRUE(sys_log->writes().empty());
  EXPECT_EQ(t.content("proc/" + kNumaBalancing), "2");
  EXPECT_EQ(t.content("proc/" + kRateLimit), "0");
  EXPECT_THAT(knobs.changed(), ElementsAre(Knob::PromoteRateLimit, Knob::NumaBalancing));

  proc_log->clear();
  auto outcomes = knobs.restore();
  ASSERT_EQ(outcomes.size(), 2u);
  for (const auto& outcome : outcomes)
    EXPECT_TRUE(outcome.restored) << outcome.note;
  // Most recent change first: the tiering bit goes before the limit comes back.
  EXPECT_THAT(proc_log->writes(), ElementsAre(tier::WriteRecord{kNumaBalancing, "1"},
                                              tier::WriteRecord{kRateLimit, "65536"}));
  EXPECT_EQ(t.content("proc/" + kNumaBalancing), "1");
  EXPECT_EQ(t.content("proc/" + kRateLimit), "65536");
  EXPECT_TRUE(knobs.changed().empty());
}

TEST(KernelKnobs, AValueAlreadyThereIsNeitherWrittenNorRestored) {
  KernelTree t;
  auto [knobs, sys_log, proc_log] = logged(t);
  ASSERT_TRUE(knobs.setNumaBalancing(1, 65536));
  EXPECT_TRUE(proc_log->writes().empty());
  EXPECT_TRUE(knobs.changed().empty());
  EXPECT_TRUE(knobs.restore().empty());
  EXPECT_TRUE(proc_log->writes().empty());
}

TEST(KernelKnobs, RestoreLeavesAKnobSomeoneElseChangedAndSaysSo) {
  KernelTree t;
  auto [knobs, sys_log, proc_log] = logged(t);
  ASSERT_TRUE(knobs.setNumaBalancing(3, 100));
  ASSERT_TRUE(knobs.set(Knob::DemotionEnabled, 1));
  EXPECT_EQ(t.content("sys/" + kDemotion), "true");
  // An admin turns NUMA balancing off while tierd runs.
  t.set("proc/" + kNumaBalancing, "0\n");
  proc_log->clear();
  sys_log->clear();
  auto outcomes = knobs.restore();
  ASSERT_EQ(outcomes.size(), 3u);
  for (const auto& outcome : outcomes) {
    if (outcome.knob == Knob::NumaBalancing) {
      EXPECT_FALSE(outcome.restored);
      EXPECT_THAT(outcome.note, HasSubstr("numa_balancing is 0, not the 3 tierd wrote"));
      EXPECT_THAT(outcome.note, HasSubstr("someone else changed it"));
    } else {
      EXPECT_TRUE(outcome.restored) << outcome.note;
    }
  }
  EXPECT_EQ(t.content("proc/" + kNumaBalancing), "0\n");
  EXPECT_THAT(proc_log->writes(), ElementsAre(tier::WriteRecord{kRateLimit, "65536"}));
  EXPECT_THAT(sys_log->writes(), ElementsAre(tier::WriteRecord{kDemotion, "false"}));
}

TEST(KernelKnobs, SeveralChangesRestoreTheFirstOriginal) {
  KernelTree t;
  auto [knobs, sys_log, proc_log] = logged(t);
  ASSERT_TRUE(knobs.set(Knob::HotThreshold, 500));
  ASSERT_TRUE(knobs.set(Knob::HotThreshold, 200));
  EXPECT_EQ(t.content("sys/" + kHotThreshold), "200");
  auto states = knobs.states();
  auto hot = std::find_if(states.begin(), states.end(),
                          [](const KnobState& s) { return s.knob == Knob::HotThreshold; });
  ASSERT_NE(hot, states.end());
  EXPECT_EQ(hot->original, 1000);
  EXPECT_EQ(hot->written, 200);
  auto outcomes = knobs.restore();
  ASSERT_EQ(outcomes.size(), 1u);
  EXPECT_TRUE(outcomes[0].restored);
  EXPECT_EQ(t.content("sys/" + kHotThreshold), "1000");
}

TEST(KernelKnobs, AKnobThatVanishedIsNoted) {
  KernelTree t;
  auto [knobs, sys_log, proc_log] = logged(t);
  ASSERT_TRUE(knobs.set(Knob::ScanSize, 64));
  std::filesystem::remove_all(t.tree.root() / "sys/kernel/debug");  // debugfs unmounted
  auto outcomes = knobs.restore();
  ASSERT_EQ(outcomes.size(), 1u);
  EXPECT_FALSE(outcomes[0].restored);
  EXPECT_THAT(outcomes[0].note, HasSubstr("scan_size_mb has gone"));
}

const std::string kScanDir = "sys/kernel/debug/sched/numa_balancing/";

TEST(ScanPacing, SetsTheCapHalfOfItAsTheMinimumAndAQuarterAsTheDelay) {
  KernelTree t;
  auto [knobs, sys_log, proc_log] = logged(t);
  ScanPacing pacing;
  EXPECT_EQ(pacing.cap(knobs, 8000).value(), 8000);
  EXPECT_EQ(t.content(kScanDir + "scan_period_max_ms"), "8000");
  EXPECT_EQ(t.content(kScanDir + "scan_period_min_ms"), "4000");
  EXPECT_EQ(t.content(kScanDir + "scan_delay_ms"), "2000");
  // Small caps keep the kernel's own minimum and delay (1000 each here).
  EXPECT_EQ(pacing.cap(knobs, 1500).value(), 1500);
  EXPECT_EQ(t.content(kScanDir + "scan_period_min_ms"), "1000");
  EXPECT_EQ(t.content(kScanDir + "scan_delay_ms"), "1000");
  // Never slower than the kernel's own maximum (60 s), read before the first cap.
  EXPECT_EQ(pacing.cap(knobs, 200000).value(), 60000);
  EXPECT_EQ(t.content(kScanDir + "scan_period_min_ms"), "30000");
  // restore() puts back what the kernel had.
  knobs.restore();
  EXPECT_EQ(t.content(kScanDir + "scan_period_max_ms"), "60000");
  EXPECT_EQ(t.content(kScanDir + "scan_period_min_ms"), "1000");
  EXPECT_EQ(t.content(kScanDir + "scan_delay_ms"), "1000");
}

TEST(ScanPacing, KeepsTheMinimumBelowTheMaximumBetweenWrites) {
  KernelTree t;
  auto [knobs, sys_log, proc_log] = logged(t);
  ScanPacing pacing;
  ASSERT_TRUE(pacing.cap(knobs, 20000));
  sys_log->clear();
  ASSERT_TRUE(pacing.cap(knobs, 4000));  // lowering: the minimum goes first
  ASSERT_GE(sys_log->writes().size(), 2u);
  EXPECT_EQ(sys_log->writes()[0].path, kScanDir.substr(4) + "scan_period_min_ms");
  EXPECT_EQ(sys_log->writes()[1].path, kScanDir.substr(4) + "scan_period_max_ms");
  sys_log->clear();
  ASSERT_TRUE(pacing.cap(knobs, 30000));  // raising: the maximum first
  ASSERT_GE(sys_log->writes().size(), 2u);
  EXPECT_EQ(sys_log->writes()[0].path, kScanDir.substr(4) + "scan_period_max_ms");
  EXPECT_EQ(sys_log->writes()[1].path, kScanDir.substr(4) + "scan_period_min_ms");
}

TEST(ScanPacing, WithoutDebugfsSaysSo) {
  KernelTree t(/*debugfs=*/false);
  auto [knobs, sys_log, proc_log] = logged(t);
  ScanPacing pacing;
  auto capped = pacing.cap(knobs, 8000);
  ASSERT_FALSE(capped);
  EXPECT_EQ(capped.error().errnum, ENOENT);
  EXPECT_THAT(capped.error().message(), HasSubstr("scan_period_max_ms"));
}

}  // namespace
}  // namespace tierd::kernel_tiering
