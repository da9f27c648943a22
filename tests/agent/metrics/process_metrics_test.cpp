#include "metrics/process_metrics.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cerrno>
#include <fstream>
#include <sstream>
#include <string>

#include "metrics/registry.h"

namespace tierd::metrics {
namespace {

using ::testing::HasSubstr;

// comm "tier d) (x": spaces and both parentheses; only the last ')' ends it.
constexpr std::string_view kStat =
    "4242 (tier d) (x) S 1 4242 4242 0 -1 4194560 1520 0 3 0 250 130 0 0 20 0 3 0 98765 "
    "123456789 2048 18446744073709551615 1 1 0 0 0 0 0 4096 17416 0 0 0 17 1 0 0 0 0 0\n";

TEST(ParseSelfStatCpuTest, CountsFieldsAfterTheLastParenthesis) {
  auto cpu = parseSelfStatCpu(kStat, 100);
  ASSERT_TRUE(cpu) << cpu.error().message();
  EXPECT_DOUBLE_EQ(cpu->user_seconds, 2.5);
  EXPECT_DOUBLE_EQ(cpu->system_seconds, 1.3);
}

TEST(ParseSelfStatCpuTest, CommThatLooksLikeFields) {
  // A comm crafted to shift the fields if the parser split on the first ')'.
  auto cpu = parseSelfStatCpu(
      "7 (x) R 1 1 1 0 -1 0 0 0 0 0 9 9) R 1 7 7 0 -1 4194560 0 0 0 0 1000 500 0 0 20 0 1 0 1\n",
      1000);
  ASSERT_TRUE(cpu) << cpu.error().message();
  EXPECT_DOUBLE_EQ(cpu->user_seconds, 1.0);
  EXPECT_DOUBLE_EQ(cpu->system_seconds, 0.5);
}

TEST(ParseSelfStatCpuTest, ReadsThisProcess) {
  std::ifstream in("/proc/self/stat");
  std::stringstream text;
  text << in.rdbuf();
  auto cpu = parseSelfStatCpu(text.str(), ::sysconf(_SC_CLK_TCK));
  ASSERT_TRUE(cpu) << cpu.error().message();
  EXPECT_GE(cpu->user_seconds, 0);
  EXPECT_GE(cpu->system_seconds, 0);
}

TEST(ParseSelfStatCpuTest, RejectsMalformedText) {
  struct Case {
    std::string_view text;
    const char* names;
  } cases[] = {
      {"", "(comm)"},
      {"42 noparen S 1 2 3", "(comm)"},
      {"42 )x( S 1 2 3 4 5 6 7 8 9 10 11 12", "(comm)"},
      {"42 (a) S 1 42 42 0 -1 4194560 0 0 0 0 7\n", "only 14 fields"},
      {"42 (a) S 1 42 42 0 -1 4194560 0 0 0 0 x 5\n", "utime \"x\""},
      {"42 (a) S 1 42 42 0 -1 4194560 0 0 0 0 5 -5\n", "stime \"-5\""},
  };
  for (const auto& c : cases) {
    auto cpu = parseSelfStatCpu(c.text, 100);
    ASSERT_FALSE(cpu) << c.text;
    EXPECT_EQ(cpu.error().errnum, EINVAL);
    EXPECT_THAT(cpu.error().context, HasSubstr(c.names)) << c.text;
  }
  auto zero = parseSelfStatCpu(kStat, 0);
  ASSERT_FALSE(zero);
  EXPECT_EQ(zero.error().errnum, EINVAL);
}

// The tiering part of /proc/vmstat on a 6.12 kernel with CONFIG_NUMA_BALANCING,
// in the kernel's order (zone and NUMA counters, node counters, then events),
// with unrelated fields around each group.
constexpr std::string_view kVmstat =
    "nr_free_pages 3860224\n"
    "nr_zone_inactive_anon 10472\n"
    "numa_hit 98765432\n"
    "numa_miss 12\n"
    "numa_foreign 12\n"
    "numa_interleave 1410\n"
    "numa_local 98760000\n"
    "numa_other 5444\n"
    "nr_swapcached 0\n"
    "pgpromote_success 4242\n"
    "pgpromote_candidate 5000\n"
    "pgdemote_kswapd 1234\n"
    "pgdemote_direct 56\n"
    "pgdemote_khugepaged 0\n"
    "nr_hugetlb 0\n"
    "pgpgin 2134567\n"
    "pgsteal_kswapd 77\n"
    "numa_pte_updates 812345\n"
    "numa_huge_pte_updates 17\n"
    "numa_hint_faults 600123\n"
    "numa_hint_faults_local 512000\n"
    "numa_pages_migrated 4242\n"
    "pgmigrate_success 5498\n"
    "pgmigrate_fail 3\n"
    "thp_migration_success 0\n"
    "thp_migration_fail 0\n"
    "compact_migrate_scanned 0\n";

TEST(KernelTieringCountersTest, KeepsOnlyTieringCounters) {
  auto counters = kernelTieringCounters(kVmstat);
  ASSERT_TRUE(counters) << counters.error().message();
  std::map<std::string, uint64_t> expected = {
      {"numa_hint_faults", 600123},  {"numa_hint_faults_local", 512000},
      {"numa_pages_migrated", 4242}, {"pgdemote_direct", 56},
      {"pgdemote_khugepaged", 0},    {"pgdemote_kswapd", 1234},
      {"pgmigrate_fail", 3},         {"pgmigrate_success", 5498},
      {"pgpromote_candidate", 5000}, {"pgpromote_success", 4242},
  };
  EXPECT_EQ(*counters, expected);
}

TEST(KernelTieringCountersTest, NewerFieldsByPrefixAndAbsentOnesLeftOut) {
  auto counters = kernelTieringCounters(
      "pgpromote_candidate_nrl 9\npgdemote_proactive 8\nnuma_hit 1\npgpgout 2\n");
  ASSERT_TRUE(counters);
  std::map<std::string, uint64_t> expected = {{"pgdemote_proactive", 8},
                                              {"pgpromote_candidate_nrl", 9}};
  EXPECT_EQ(*counters, expected);

  auto none = kernelTieringCounters("nr_free_pages 1\n");  // CONFIG_NUMA_BALANCING=n, no NUMA
  ASSERT_TRUE(none);
  EXPECT_TRUE(none->empty());
}

TEST(KernelTieringCountersTest, MalformedTextIsAnErrorNamingVmstat) {
  auto counters = kernelTieringCounters("pgpromote_success 1\npgdemote_kswapd\n");
  ASSERT_FALSE(counters);
  EXPECT_EQ(counters.error().errnum, EINVAL);
  EXPECT_THAT(counters.error().context, HasSubstr("/proc/vmstat"));
  EXPECT_THAT(counters.error().context, HasSubstr("pgdemote_kswapd"));
}

TEST(PublishTest, KernelCountersAndAgentCpuUnderFixedNames) {
  Registry registry;
  auto counters = kernelTieringCounters(kVmstat);
  ASSERT_TRUE(counters);
  publishKernelTieringCounters(registry, *counters);
  publishAgentCpu(registry, {2.5, 1.25});
  publishAgentCpu(registry, {3, 1.5});  // totals are set, not added

  std::string text = registry.renderText();
  EXPECT_THAT(text, HasSubstr("# TYPE tierd_agent_cpu_seconds_total counter\n"
                              "tierd_agent_cpu_seconds_total{mode=\"system\"} 1.5\n"
                              "tierd_agent_cpu_seconds_total{mode=\"user\"} 3\n"));
  EXPECT_THAT(text, HasSubstr("# TYPE tierd_kernel_vmstat_total counter\n"
                              "tierd_kernel_vmstat_total{counter=\"numa_hint_faults\"} 600123\n"));
  EXPECT_THAT(text, HasSubstr("tierd_kernel_vmstat_total{counter=\"pgpromote_success\"} 4242\n"));
  EXPECT_THAT(text, HasSubstr("tierd_kernel_vmstat_total{counter=\"pgdemote_kswapd\"} 1234\n"));
  EXPECT_THAT(text, ::testing::Not(HasSubstr("numa_hit")));
  EXPECT_THAT(text, ::testing::Not(HasSubstr("errors")));
}

}  // namespace
}  // namespace tierd::metrics
