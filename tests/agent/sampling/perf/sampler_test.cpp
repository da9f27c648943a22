// The sampler's pure parts: the period controller and the error texts.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <linux/perf_event.h>

#include "sampling/perf/sampler.h"

namespace tierd::sampling::perf {
namespace {

using ::testing::HasSubstr;

TEST(PeriodController, WithoutABudgetThePeriodStays) {
  PeriodController c(1000, 100, 100000);
  EXPECT_FALSE(c.update(1'000'000, 0, 1.0));
  EXPECT_EQ(c.period(), 1000u);
  EXPECT_DOUBLE_EQ(c.lastRate(), 1'000'000.0);
}

TEST(PeriodController, AboveTheBudgetThePeriodGrowsTowardEightyPercent) {
  PeriodController c(1000, 100, 1'000'000);
  c.setBudget(1000);
  auto next = c.update(2000, 0, 1.0);  // 2000/s against 1000/s: aim at 800/s
  ASSERT_TRUE(next);
  EXPECT_EQ(*next, 2500u);
  EXPECT_EQ(c.period(), 2500u);
}

TEST(PeriodController, StepsAreBoundedAndPeriodsClamped) {
  PeriodController c(1000, 100, 20000);
  c.setBudget(10);
  EXPECT_EQ(c.update(1'000'000, 0, 1.0), 8000u);   // at most 8x per step
  EXPECT_EQ(c.update(1'000'000, 0, 1.0), 20000u);  // clamped to max
  EXPECT_FALSE(c.update(1'000'000, 0, 1.0));       // already there
}

TEST(PeriodController, BelowHalfTheBudgetThePeriodShrinks) {
  PeriodController c(10000, 100, 1'000'000);
  c.setBudget(1000);
  EXPECT_EQ(c.update(400, 0, 1.0), 5000u);  // 400/s: toward 800/s
  EXPECT_EQ(c.update(10, 0, 1.0), 1250u);   // at most 4x down per step
  EXPECT_EQ(c.update(0, 0, 1.0), 625u);     // nothing seen: halve
  EXPECT_FALSE(c.update(700, 0, 1.0));      // within [budget/2, budget]: hold
  c.setBudget(1e9);
  EXPECT_EQ(c.update(0, 0, 1.0), 313u);
  EXPECT_EQ(c.update(0, 0, 1.0), 157u);
  EXPECT_EQ(c.update(0, 0, 1.0), 100u);  // the floor
  EXPECT_FALSE(c.update(0, 0, 1.0));
}

TEST(PeriodController, ShortPollsAccumulateIntoOneWindow) {
  PeriodController c(1000, 1, 1'000'000);
  c.setBudget(100);
  EXPECT_FALSE(c.update(100, 0, 0.0625));
  EXPECT_FALSE(c.update(100, 0, 0.0625));
  EXPECT_FALSE(c.update(100, 0, 0.0625));
  auto next = c.update(100, 0, 0.0625);  // 400 samples over 0.25 s = 1600/s
  ASSERT_TRUE(next);
  EXPECT_EQ(*next, 8000u);
  EXPECT_DOUBLE_EQ(c.lastRate(), 1600.0);
}

TEST(PeriodController, ThrottlingDoublesThePeriodEvenWithoutABudget) {
  PeriodController c(1000, 1, 1'000'000);
  EXPECT_EQ(c.update(10, 1, 0.01), 2000u);
  c.setBudget(1e9);
  EXPECT_EQ(c.update(10, 2, 0.01), 4000u);
}

TEST(PeriodController, IbsPeriodsStayMultiplesOfSixteen) {
  PeriodController c(65536, 1024, 0xFFFF0, 16);
  c.setBudget(1000);
  for (uint64_t rate : {3000u, 100u, 1700u, 999999u, 7u}) {
    c.update(rate, 0, 1.0);
    EXPECT_EQ(c.period() % 16, 0u) << c.period();
    EXPECT_GE(c.period(), 1024u);
    EXPECT_LE(c.period(), 0xFFFF0u);
  }
  PeriodController odd(1000, 1000, 0xFFFF0, 16);  // min not a multiple: rounds up
  EXPECT_EQ(odd.period(), 1008u);
}

EventSpec ldlatSpec() {
  EventSpec spec;
  spec.name = "MEM_TRANS_RETIRED.LOAD_LATENCY ldlat=64";
  spec.pmu = "cpu";
  spec.type = PERF_TYPE_RAW;
  spec.config = 0x1cd;
  spec.config1 = 64;
  spec.precise_ip = 2;
  spec.sample_type = PERF_SAMPLE_ADDR;
  return spec;
}

TEST(ExplainOpenError, ParanoidAboveTwoNeedsCapPerfmon) {
  std::string why = explainOpenError(EACCES, ldlatSpec(), Target::process(1), 4, false);
  EXPECT_THAT(why, HasSubstr("perf_event_paranoid is 4: needs CAP_PERFMON"));
}

TEST(ExplainOpenError, SystemWideNeedsCapPerfmonFromParanoidOne) {
  std::string why = explainOpenError(EACCES, ldlatSpec(), Target::system(), 2, false);
  EXPECT_THAT(why, HasSubstr("perf_event_paranoid is 2"));
  EXPECT_THAT(why, HasSubstr("system-wide sampling needs CAP_PERFMON"));
  why = explainOpenError(EACCES, ldlatSpec(), Target::cgroup("/sys/fs/cgroup/x"), 1, false);
  EXPECT_THAT(why, HasSubstr("cgroup /sys/fs/cgroup/x sampling needs CAP_PERFMON"));
}

TEST(ExplainOpenError, IbsCannotExcludeTheKernel) {
  EventSpec ibs = ldlatSpec();
  ibs.pmu = "ibs_op";
  ibs.exclude_kernel = false;
  std::string why = explainOpenError(EACCES, ibs, Target::process(1), 2, false);
  EXPECT_THAT(why, HasSubstr("ibs_op cannot exclude the kernel"));
}

TEST(ExplainOpenError, OtherUsersProcessAndPrivilegedDenials) {
  std::string why = explainOpenError(EPERM, ldlatSpec(), Target::process(1), 1, false);
  EXPECT_THAT(why, HasSubstr("may not trace pid 1"));
  why = explainOpenError(EACCES, ldlatSpec(), Target::system(), 2, true);
  EXPECT_THAT(why, HasSubstr("security module or kernel lockdown"));
}

TEST(ExplainOpenError, MissingPmuAndUnsupportedFeatures) {
  EXPECT_THAT(explainOpenError(ENOENT, ldlatSpec(), Target::system(), 2, true),
              HasSubstr("no such PMU or event on this host (type 4, config 0x1cd)"));
  EXPECT_THAT(explainOpenError(EOPNOTSUPP, ldlatSpec(), Target::system(), 2, true),
              HasSubstr("precise_ip 2 is not supported"));
  EXPECT_THAT(explainOpenError(EINVAL, ldlatSpec(), Target::system(), 2, true),
              HasSubstr("config1 0x40"));
  EXPECT_THAT(explainOpenError(EMFILE, ldlatSpec(), Target::system(), 2, true),
              HasSubstr("RLIMIT_NOFILE"));
  EXPECT_THAT(explainOpenError(ESRCH, ldlatSpec(), Target::process(77), 2, true),
              HasSubstr("pid 77"));
}

}  // namespace
}  // namespace tierd::sampling::perf
