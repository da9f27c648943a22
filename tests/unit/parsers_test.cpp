// Unit tests for libtier/parse: the kernel text formats tierd reads. Inputs are
// copied from real /proc and /sys files; every malformed case checks that the
// error names the offending token or line.
#include "parse/parsers.h"
#include "discovery/sysfs_reader.h"

#include <gtest/gtest.h>

#include <cerrno>
#include <climits>
#include <cstdint>
#include <fstream>
#include <limits>
#include <map>
#include <sstream>
#include <string>
#include <vector>

namespace tier {
namespace {

using Ids = std::vector<int>;
using NodePages = std::map<int, uint64_t>;
using Fields = std::map<std::string, uint64_t>;

::testing::AssertionResult hasSubstr(const std::string& text, const std::string& part) {
  if (text.find(part) != std::string::npos) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << "'" << text << "' does not contain '" << part << "'";
}

constexpr uint64_t kKiB = 1024;

// ---------------------------------------------------------------------------
// trim

TEST(TrimTest, StripsSpacesTabsAndNewlinesOnBothSides) {
  EXPECT_EQ(trim(" \t0-3\n"), "0-3");
  EXPECT_EQ(trim("\r\n"), "");
  EXPECT_EQ(trim(""), "");
  EXPECT_EQ(trim("a b"), "a b");
}

// ---------------------------------------------------------------------------
// parseU64 / parseI64

TEST(ParseU64Test, ReadsDecimalWithTrailingNewlineAsSysfsPrintsIt) {
  auto value = parseU64("42\n");
  ASSERT_TRUE(value) << value.error().message();
  EXPECT_EQ(*value, 42u);
}

TEST(ParseU64Test, ReadsHexWithEitherPrefixCase) {
  EXPECT_EQ(parseU64("0x1f").value_or(0), 0x1fu);
  EXPECT_EQ(parseU64("0X1F").value_or(0), 0x1fu);
  // A CXL region's resource attribute: a physical address in hex.
  EXPECT_EQ(parseU64("0x1050000000\n").value_or(0), 0x1050000000u);
}

TEST(ParseU64Test, ReadsZeroAndTheLargestValue) {
  EXPECT_EQ(parseU64("0").value_or(1), 0u);
  EXPECT_EQ(parseU64("18446744073709551615").value_or(0), std::numeric_limits<uint64_t>::max());
  EXPECT_EQ(parseU64("0xffffffffffffffff").value_or(0), std::numeric_limits<uint64_t>::max());
}

TEST(ParseU64Test, RejectsOverflowNamingTheNumber) {
  auto value = parseU64("18446744073709551616");
  ASSERT_FALSE(value);
  EXPECT_EQ(value.error().errnum, EINVAL);
  EXPECT_TRUE(hasSubstr(value.error().context, "'18446744073709551616'"));
}

TEST(ParseU64Test, RejectsNegativeEmptyAndTrailingJunkNamingTheToken) {
  for (const char* bad : {"-1", "12abc", "0x", "0xg", "1 2", "+5", "1.5"}) {
    auto value = parseU64(bad);
    ASSERT_FALSE(value) << bad;
    EXPECT_TRUE(hasSubstr(value.error().context, std::string("'") + bad + "'")) << bad;
  }
  EXPECT_FALSE(parseU64(""));
  EXPECT_FALSE(parseU64("\n"));
}

TEST(ParseI64Test, ReadsMinusOneAsNumaNodePrintsForNoNode) {
  auto value = parseI64("-1\n");
  ASSERT_TRUE(value) << value.error().message();
  EXPECT_EQ(*value, -1);
}

TEST(ParseI64Test, ReadsTheFullSignedRange) {
  EXPECT_EQ(parseI64("9223372036854775807").value_or(0), INT64_MAX);
  EXPECT_EQ(parseI64("-9223372036854775808").value_or(0), INT64_MIN);
  EXPECT_EQ(parseI64("0x10").value_or(0), 16);
}

TEST(ParseI64Test, RejectsOverflowOnBothSidesNamingTheNumber) {
  for (const char* bad : {"9223372036854775808", "-9223372036854775809"}) {
    auto value = parseI64(bad);
    ASSERT_FALSE(value) << bad;
    EXPECT_TRUE(hasSubstr(value.error().context, bad));
  }
}

TEST(ParseI64Test, RejectsWordsAndLoneSign) {
  for (const char* bad : {"", "-", "one", "-1x", "--1"}) {
    auto value = parseI64(bad);
    ASSERT_FALSE(value) << bad;
    EXPECT_TRUE(hasSubstr(value.error().context, std::string("'") + bad + "'")) << bad;
  }
}

// Regression (parsers.cpp parseInteger): the sign is accepted after the hex prefix,
// so "0x-1" parses as -1 while "-0x1" is rejected.
TEST(ParseI64Test, RejectsSignAfterHexPrefix) {
  EXPECT_FALSE(parseI64("0x-1"));
}

// ---------------------------------------------------------------------------
// parseBool

TEST(ParseBoolTest, AcceptsEverySpellingSysfsUses) {
  for (const char* yes : {"1", "Y", "y", "yes", "YES", "true", "True", "Y\n", " true\n"})
    EXPECT_EQ(parseBool(yes).value_or(false), true) << yes;
  for (const char* no : {"0", "N", "n", "no", "No", "false", "FALSE", "N\n", " 0\n"})
    EXPECT_EQ(parseBool(no).value_or(true), false) << no;
}

TEST(ParseBoolTest, RejectsOtherWordsNamingThem) {
  for (const char* bad : {"2", "maybe", "yes please", "-1", "truee"}) {
    auto value = parseBool(bad);
    ASSERT_FALSE(value) << bad;
    EXPECT_EQ(value.error().errnum, EINVAL);
    EXPECT_TRUE(hasSubstr(value.error().context, std::string("'") + bad + "'")) << bad;
  }
  EXPECT_FALSE(parseBool(""));
  EXPECT_FALSE(parseBool("\n"));
}

// ---------------------------------------------------------------------------
// parseIdList / formatIdList

TEST(ParseIdListTest, ExpandsRangesAndSinglesOfACpuList) {
  auto ids = parseIdList("0-3,8,10-11\n");
  ASSERT_TRUE(ids) << ids.error().message();
  EXPECT_EQ(*ids, (Ids{0, 1, 2, 3, 8, 10, 11}));
}

TEST(ParseIdListTest, EmptyOrBlankTextIsTheEmptyList) {
  // A memoryless node's cpulist, or has_memory on a CPU-only box, is "\n".
  for (const char* empty : {"", "\n", "  \n"}) {
    auto ids = parseIdList(empty);
    ASSERT_TRUE(ids) << ids.error().message();
    EXPECT_TRUE((*ids).empty());
  }
}

TEST(ParseIdListTest, SortsAndDeduplicatesOverlappingRanges) {
  auto ids = parseIdList("8,0-2,1-3,8");
  ASSERT_TRUE(ids) << ids.error().message();
  EXPECT_EQ(*ids, (Ids{0, 1, 2, 3, 8}));
}

TEST(ParseIdListTest, AcceptsSingleElementRange) {
  EXPECT_EQ(parseIdList("5-5").value_or(Ids{}), Ids{5});
}

TEST(ParseIdListTest, RejectsDescendingRangeNamingIt) {
  auto ids = parseIdList("0,3-1");
  ASSERT_FALSE(ids);
  EXPECT_EQ(ids.error().errnum, EINVAL);
  EXPECT_TRUE(hasSubstr(ids.error().context, "'3-1'"));
}

TEST(ParseIdListTest, RejectsNonNumericIdNamingTheList) {
  auto ids = parseIdList("a");
  ASSERT_FALSE(ids);
  EXPECT_TRUE(hasSubstr(ids.error().context, "'a'"));
}

TEST(ParseIdListTest, RejectsEmptyElementNamingTheList) {
  for (const char* bad : {"1,,2", ",1", "1,"}) {
    auto ids = parseIdList(bad);
    ASSERT_FALSE(ids) << bad;
    EXPECT_TRUE(hasSubstr(ids.error().context, std::string("'") + bad + "'")) << bad;
  }
}

TEST(ParseIdListTest, RejectsNegativeIdsAndOpenRanges) {
  for (const char* bad : {"-1", "1-", "0--1", "1-2-3", "1-a"}) {
    auto ids = parseIdList(bad);
    ASSERT_FALSE(ids) << bad;
    EXPECT_TRUE(hasSubstr(ids.error().context, std::string("'") + bad + "'")) << bad;
  }
}

TEST(ParseIdListTest, RejectsIdBeyondIntNamingIt) {
  auto ids = parseIdList("0,99999999999");
  ASSERT_FALSE(ids);
  EXPECT_TRUE(hasSubstr(ids.error().context, "99999999999"));
}

TEST(ParseIdListTest, RejectsHugeRangeWithErangeNamingIt) {
  auto ids = parseIdList("0-3,0-2147483646");
  ASSERT_FALSE(ids);
  EXPECT_EQ(ids.error().errnum, ERANGE);
  EXPECT_TRUE(hasSubstr(ids.error().context, "'0-2147483646'"));
}

TEST(ParseIdListTest, AcceptsTheWidestAllowedRange) {
  auto ids = parseIdList("0-65536");
  ASSERT_TRUE(ids) << ids.error().message();
  EXPECT_EQ(ids->size(), 65537u);
  EXPECT_FALSE(parseIdList("0-65537"));
}

// Regression (parsers.cpp parseIdList): `for (int id = first; id <= last; ++id)`
// overflows when last == INT_MAX: UB, in practice an endless loop. Not run,
// since it would hang the suite.
TEST(ParseIdListTest, IdAtIntMaxTerminates) {
  auto ids = parseIdList("2147483647");
  EXPECT_FALSE(ids);
}

// Regression (parsers.cpp parseIdList): the 1<<16 limit is per range, so adjacent
// ranges pass it one by one, and formatIdList then merges them into a single
// range that parseIdList rejects. The same gap lets 4 KiB of text such as
// "0-65536,65537-131073,..." expand to 16 M ids (8 s, 800 MB).
TEST(FormatIdListTest, AnAcceptedListSurvivesTheRoundTrip) {
  auto ids = parseIdList("0-65535,65536");
  ASSERT_TRUE(ids) << ids.error().message();
  auto again = parseIdList(formatIdList(*ids));
  ASSERT_TRUE(again) << again.error().message();
  EXPECT_EQ(*again, *ids);
  // Beyond the largest id, adjacent ranges can no longer sneak past the limit.
  auto too_far = parseIdList("0-65536,65537");
  ASSERT_FALSE(too_far);
  EXPECT_EQ(too_far.error().errnum, ERANGE);
}

TEST(FormatIdListTest, ProducesTheKernelsCompactForm) {
  EXPECT_EQ(formatIdList({0, 1, 2, 3, 8, 10, 11}), "0-3,8,10-11");
  EXPECT_EQ(formatIdList({}), "");
  EXPECT_EQ(formatIdList({5}), "5");
  EXPECT_EQ(formatIdList({1, 2}), "1-2");
}

TEST(FormatIdListTest, SortsAndDeduplicatesItsInput) {
  EXPECT_EQ(formatIdList({3, 1, 2, 2, 7}), "1-3,7");
}

TEST(FormatIdListTest, RoundTripsThroughParseIdList) {
  for (const char* text : {"0-3,8,10-11", "0", "1,3,5", "0-127", "2-3,5-6,8", ""}) {
    auto ids = parseIdList(text);
    ASSERT_TRUE(ids) << text;
    EXPECT_EQ(formatIdList(*ids), text);
    auto again = parseIdList(formatIdList(*ids));
    ASSERT_TRUE(again) << text;
    EXPECT_EQ(*again, *ids);
  }
}

// ---------------------------------------------------------------------------
// parseDistanceRow

TEST(ParseDistanceRowTest, ReadsANodesDistanceFile) {
  // /sys/devices/system/node/node0/distance on a 2-socket box with CXL memory.
  auto row = parseDistanceRow("10 21 14 24\n");
  ASSERT_TRUE(row) << row.error().message();
  EXPECT_EQ(*row, (std::vector<int>{10, 21, 14, 24}));
}

TEST(ParseDistanceRowTest, ToleratesRunsOfSpacesAndTabs) {
  EXPECT_EQ(parseDistanceRow("  10\t 20   30 ").value_or(std::vector<int>{}),
            (std::vector<int>{10, 20, 30}));
}

TEST(ParseDistanceRowTest, RejectsNonNumericDistanceNamingIt) {
  auto row = parseDistanceRow("10 20 x3 30\n");
  ASSERT_FALSE(row);
  EXPECT_EQ(row.error().errnum, EINVAL);
  EXPECT_TRUE(hasSubstr(row.error().context, "'x3'"));
}

TEST(ParseDistanceRowTest, RejectsDistanceBeyondIntNamingIt) {
  auto row = parseDistanceRow("10 4294967296");
  ASSERT_FALSE(row);
  EXPECT_TRUE(hasSubstr(row.error().context, "'4294967296'"));
}

// ---------------------------------------------------------------------------
// parseNumaScanSeq

TEST(ParseNumaScanSeqTest, ReadsTheScannerPassesFromTheLabsSchedFile) {
  // /proc/PID/sched of the bench workload in the lab's far preset (Linux 6.12).
  std::ifstream file(std::string(FIXTURES_DIR) + "/sched/lab-far-6.12.txt");
  std::stringstream text;
  text << file.rdbuf();
  ASSERT_FALSE(text.str().empty());
  auto seq = parseNumaScanSeq(text.str());
  ASSERT_TRUE(seq) << seq.error().message();
  ASSERT_TRUE(seq->has_value());
  EXPECT_EQ(**seq, 15u);
}

TEST(ParseNumaScanSeqTest, AbsentLineIsNoFeatureAndABadValueIsNamed) {
  auto none = parseNumaScanSeq("policy : 0\nprio : 120\n");
  ASSERT_TRUE(none);
  EXPECT_FALSE(none->has_value());
  auto bad = parseNumaScanSeq("prio : 120\nmm->numa_scan_seq   :   many\n");
  ASSERT_FALSE(bad);
  EXPECT_TRUE(hasSubstr(bad.error().context, "line 2")) << bad.error().message();
  EXPECT_TRUE(hasSubstr(bad.error().message(), "many")) << bad.error().message();
}

// ---------------------------------------------------------------------------
// parseZoneWatermarks

TEST(ParseZoneWatermarksTest, SumsTheZonesOfEachNodeInTheLabsZoneinfo) {
  // /proc/zoneinfo of the lab's far preset (Linux 6.12): node 0 has DMA,
  // DMA32 and a Movable zone with watermarks, Normal and Device without.
  std::ifstream file(std::string(FIXTURES_DIR) + "/zoneinfo/lab-far-6.12.txt");
  std::stringstream text;
  text << file.rdbuf();
  auto nodes = parseZoneWatermarks(text.str());
  ASSERT_TRUE(nodes) << nodes.error().message();
  ASSERT_EQ(nodes->size(), 2u);
  EXPECT_EQ(nodes->at(0).min_pages, 128u + 8518 + 32);
  EXPECT_EQ(nodes->at(0).low_pages, 160u + 10647 + 32);
  EXPECT_EQ(nodes->at(0).high_pages, 192u + 12776 + 32);
  EXPECT_EQ(nodes->at(1).high_pages, 12373u + 32);
  EXPECT_EQ(nodes->at(0).per_cpu_free_pages, 1860u);  // the pagesets' "count:" lines
  EXPECT_EQ(nodes->at(1).per_cpu_free_pages, 3219u);
}

TEST(ParseZoneWatermarksTest, TheMoverFloorIsHalfwayFromLowToHigh) {
  // The lab's node 0: min 34712, low 43356, high 52000 KiB.
  const tier::NodeWatermarkBytes marks{34712 << 10, 43356 << 10, 52000 << 10, 0};
  EXPECT_EQ(marks.moverFloor(), uint64_t{47678} << 10);
  EXPECT_EQ((tier::NodeWatermarkBytes{1, 5, 5, 0}).moverFloor(), 5u);  // no band: low itself
}

TEST(ParseZoneWatermarksTest, AddsEachZonesBoost) {
  auto nodes = parseZoneWatermarks(
      "Node 2, zone   Normal\n"
      "  pages free     1000\n"
      "        boost    50\n"
      "        min      10\n"
      "        low      20\n"
      "        high     30\n"
      "  pagesets\n"
      "    cpu: 0\n"
      "              high:  100\n"
      "Node 2, zone  Movable\n"
      "        boost    0\n"
      "        high     4\n");
  ASSERT_TRUE(nodes) << nodes.error().message();
  EXPECT_EQ(nodes->at(2).min_pages, 60u);
  EXPECT_EQ(nodes->at(2).high_pages, 80u + 4);  // the pageset's "high:" is not a watermark
}

TEST(ParseZoneWatermarksTest, NamesABadZoneHeaderOrValue) {
  auto header = parseZoneWatermarks("Node x, zone Normal\n");
  ASSERT_FALSE(header);
  EXPECT_TRUE(hasSubstr(header.error().context, "'x'")) << header.error().message();
  auto value = parseZoneWatermarks("Node 0, zone Normal\n  high  lots\n");
  ASSERT_FALSE(value);
  EXPECT_TRUE(hasSubstr(value.error().context, "line 2")) << value.error().message();
}

// ---------------------------------------------------------------------------
// parseMeminfo

constexpr const char* kProcMeminfo =
    "MemTotal:       65536000 kB\n"
    "MemFree:        60000000 kB\n"
    "MemAvailable:   62000000 kB\n"
    "Buffers:          123456 kB\n"
    "Cached:          2345678 kB\n"
    "Active(anon):     102400 kB\n"
    "Inactive(file):   204800 kB\n"
    "Unevictable:           0 kB\n"
    "AnonHugePages:     2048 kB\n"
    "HugePages_Total:      16\n"
    "HugePages_Free:       12\n"
    "HugePages_Rsvd:        0\n"
    "HugePages_Surp:        0\n"
    "Hugepagesize:       2048 kB\n"
    "Hugetlb:           32768 kB\n"
    "DirectMap4k:      514048 kB\n"
    "DirectMap1G:    65011712 kB\n";

TEST(ParseMeminfoTest, ConvertsKilobytesOfProcMeminfoToBytes) {
  auto fields = parseMeminfo(kProcMeminfo);
  ASSERT_TRUE(fields) << fields.error().message();
  EXPECT_EQ(fields->size(), 17u);
  EXPECT_EQ(fields->at("MemTotal"), 65536000 * kKiB);
  EXPECT_EQ(fields->at("MemFree"), 60000000 * kKiB);
  EXPECT_EQ(fields->at("Active(anon)"), 102400 * kKiB);
  EXPECT_EQ(fields->at("Unevictable"), 0u);
  EXPECT_EQ(fields->at("Hugepagesize"), 2048 * kKiB);
  EXPECT_EQ(fields->at("DirectMap1G"), 65011712 * kKiB);
}

TEST(ParseMeminfoTest, KeepsUnitlessHugePagesCountsAsIs) {
  auto fields = parseMeminfo(kProcMeminfo);
  ASSERT_TRUE(fields) << fields.error().message();
  EXPECT_EQ(fields->at("HugePages_Total"), 16u);
  EXPECT_EQ(fields->at("HugePages_Free"), 12u);
  EXPECT_EQ(fields->at("HugePages_Rsvd"), 0u);
}

TEST(ParseMeminfoTest, StripsTheNodePrefixOfPerNodeMeminfo) {
  // /sys/devices/system/node/node1/meminfo of a 1 GiB CXL node.
  auto fields = parseMeminfo(
      "Node 1 MemTotal:        1048576 kB\n"
      "Node 1 MemFree:         1040000 kB\n"
      "Node 1 MemUsed:            8576 kB\n"
      "Node 1 Active(file):        100 kB\n"
      "Node 1 FilePages:           200 kB\n"
      "Node 1 HugePages_Total:     0\n"
      "Node 1 HugePages_Free:      0\n"
      "Node 1 HugePages_Surp:      0\n");
  ASSERT_TRUE(fields) << fields.error().message();
  EXPECT_EQ(fields->at("MemTotal"), 1073741824u);
  EXPECT_EQ(fields->at("MemUsed"), 8576 * kKiB);
  EXPECT_EQ(fields->at("Active(file)"), 100 * kKiB);
  EXPECT_EQ(fields->at("HugePages_Total"), 0u);
  EXPECT_EQ(fields->count("Node"), 0u);
  EXPECT_EQ(fields->size(), 8u);
}

TEST(ParseMeminfoTest, SkipsBlankLines) {
  auto fields = parseMeminfo("\nMemTotal: 4 kB\n\n\nMemFree: 2 kB\n");
  ASSERT_TRUE(fields) << fields.error().message();
  EXPECT_EQ(*fields, (Fields{{"MemFree", 2 * kKiB}, {"MemTotal", 4 * kKiB}}));
}

TEST(ParseMeminfoTest, EmptyTextHasNoFields) {
  auto fields = parseMeminfo("");
  ASSERT_TRUE(fields) << fields.error().message();
  EXPECT_TRUE((*fields).empty());
}

TEST(ParseMeminfoTest, RejectsUnknownUnitNamingTheLine) {
  auto fields = parseMeminfo("MemTotal: 4 kB\nMemFree: 2 kB\nCached: 3 MB\n");
  ASSERT_FALSE(fields);
  EXPECT_EQ(fields.error().errnum, EINVAL);
  EXPECT_TRUE(hasSubstr(fields.error().context, "line 3"));
  EXPECT_TRUE(hasSubstr(fields.error().context, "MB"));
}

TEST(ParseMeminfoTest, RejectsExtraWordsAfterTheUnit) {
  auto fields = parseMeminfo("MemTotal: 4 kB kB\n");
  ASSERT_FALSE(fields);
  EXPECT_TRUE(hasSubstr(fields.error().context, "line 1"));
}

TEST(ParseMeminfoTest, RejectsBadValueNamingLineAndToken) {
  auto fields = parseMeminfo("MemTotal: 4 kB\n\nMemFree: lots kB\n");
  ASSERT_FALSE(fields);
  // Blank lines still count: the bad one is the file's third line.
  EXPECT_TRUE(hasSubstr(fields.error().context, "line 3"));
  EXPECT_TRUE(hasSubstr(fields.error().context, "'lots'"));
}

TEST(ParseMeminfoTest, RejectsNegativeValue) {
  auto fields = parseMeminfo("MemTotal: -4 kB\n");
  ASSERT_FALSE(fields);
  EXPECT_TRUE(hasSubstr(fields.error().context, "line 1"));
  EXPECT_TRUE(hasSubstr(fields.error().context, "'-4'"));
}

TEST(ParseMeminfoTest, RejectsLineWithoutColonOrValue) {
  for (const char* bad : {"MemTotal 4 kB\n", "MemTotal:\n", ": 4 kB\n", "Node 1\n"}) {
    auto fields = parseMeminfo(std::string("MemFree: 1 kB\n") + bad);
    ASSERT_FALSE(fields) << bad;
    EXPECT_TRUE(hasSubstr(fields.error().context, "line 2")) << bad;
  }
}

// Regression (parsers.cpp parseMeminfo): `*value * scale` wraps around silently for
// a kB value above UINT64_MAX / 1024.
TEST(ParseMeminfoTest, RejectsKilobyteValueWhoseByteCountOverflows) {
  auto fields = parseMeminfo("MemTotal: 18014398509481984 kB\n");
  ASSERT_FALSE(fields);
  EXPECT_TRUE(hasSubstr(fields.error().context, "line 1"));
}

// ---------------------------------------------------------------------------
// parseCounters

TEST(ParseCountersTest, ReadsProcVmstatIncludingTieringCounters) {
  auto counters = parseCounters(
      "nr_free_pages 15000000\n"
      "nr_zone_inactive_anon 1024\n"
      "numa_hit 98765432\n"
      "numa_miss 12\n"
      "numa_pte_updates 0\n"
      "pgpromote_success 4242\n"
      "pgpromote_candidate 5000\n"
      "pgdemote_kswapd 1234\n"
      "pgdemote_direct 56\n"
      "pgdemote_khugepaged 0\n"
      "nr_hugepages_promoted 18446744073709551615\n");
  ASSERT_TRUE(counters) << counters.error().message();
  EXPECT_EQ(counters->size(), 11u);
  EXPECT_EQ(counters->at("pgpromote_success"), 4242u);
  EXPECT_EQ(counters->at("pgdemote_kswapd"), 1234u);
  EXPECT_EQ(counters->at("pgdemote_direct"), 56u);
  EXPECT_EQ(counters->at("numa_hit"), 98765432u);
  EXPECT_EQ(counters->at("nr_hugepages_promoted"), std::numeric_limits<uint64_t>::max());
}

TEST(ParseCountersTest, ReadsPerNodeNumastat) {
  auto counters = parseCounters(
      "numa_hit 1000\nnuma_miss 20\nnuma_foreign 3\ninterleave_hit 4\nlocal_node 990\n"
      "other_node 30\n");
  ASSERT_TRUE(counters) << counters.error().message();
  EXPECT_EQ(*counters, (Fields{{"interleave_hit", 4},
                               {"local_node", 990},
                               {"numa_foreign", 3},
                               {"numa_hit", 1000},
                               {"numa_miss", 20},
                               {"other_node", 30}}));
}

TEST(ParseCountersTest, RejectsNameWithoutValueNamingTheLine) {
  auto counters = parseCounters("pgpromote_success 1\npgdemote_kswapd\n");
  ASSERT_FALSE(counters);
  EXPECT_EQ(counters.error().errnum, EINVAL);
  EXPECT_TRUE(hasSubstr(counters.error().context, "line 2"));
  EXPECT_TRUE(hasSubstr(counters.error().context, "pgdemote_kswapd"));
}

TEST(ParseCountersTest, RejectsThreeWordLineNamingTheLine) {
  auto counters = parseCounters("a 1\nb 2\nc 3 4\n");
  ASSERT_FALSE(counters);
  EXPECT_TRUE(hasSubstr(counters.error().context, "line 3"));
}

TEST(ParseCountersTest, RejectsNegativeOrNonNumericValueNamingLineAndToken) {
  auto counters = parseCounters("nr_free_pages 10\nnuma_hit -5\n");
  ASSERT_FALSE(counters);
  EXPECT_TRUE(hasSubstr(counters.error().context, "line 2"));
  EXPECT_TRUE(hasSubstr(counters.error().context, "'-5'"));

  counters = parseCounters("numa_hit 99999999999999999999\n");
  ASSERT_FALSE(counters);
  EXPECT_TRUE(hasSubstr(counters.error().context, "line 1"));
  EXPECT_TRUE(hasSubstr(counters.error().context, "99999999999999999999"));
}

// ---------------------------------------------------------------------------
// parseNumaMaps

// /proc/PID/numa_maps of a process with a file mapping, heap, an mbind'ed and
// an interleaved anonymous area, a THP-backed area, hugetlbfs and the stack.
constexpr const char* kNumaMaps =
    "00400000 default file=/usr/bin/cat mapped=8 N0=8 kernelpagesize_kB=4\n"
    "0060b000 default file=/usr/bin/cat anon=1 dirty=1 mapped=2 N0=2 kernelpagesize_kB=4\n"
    "01a4e000 default heap anon=34 dirty=34 active=0 N0=34 kernelpagesize_kB=4\n"
    "7f3c8a000000 bind:1 anon=256 dirty=256 active=0 N1=256 kernelpagesize_kB=4\n"
    "7f3c9a000000 interleave:0-1 anon=512 dirty=512 N0=256 N1=256 kernelpagesize_kB=4\n"
    "7f3caa000000 prefer:1 anon=1024 dirty=1024 swapcache=3 N0=512 N1=512 kernelpagesize_kB=4\n"
    "7f3cc0000000 default file=/dev/hugepages/db huge dirty=4 N1=4 kernelpagesize_kB=2048\n"
    "7f3cd0000000 bind=static:2 file=/anon_hugepage\\040(deleted) huge anon=1 dirty=1 N2=1 "
    "kernelpagesize_kB=1048576\n"
    "7ffd4c9e3000 default stack anon=33 dirty=33 N0=33 kernelpagesize_kB=4\n";

TEST(ParseNumaMapsTest, ReadsEveryLineOfARealFile) {
  auto entries = parseNumaMaps(kNumaMaps);
  ASSERT_TRUE(entries) << entries.error().message();
  ASSERT_EQ(entries->size(), 9u);
  EXPECT_EQ((*entries)[0].start, 0x400000u);
  EXPECT_EQ((*entries)[3].start, 0x7f3c8a000000u);
  EXPECT_EQ((*entries)[8].start, 0x7ffd4c9e3000u);
}

TEST(ParseNumaMapsTest, ReadsAFileMapping) {
  auto entries = parseNumaMaps(kNumaMaps);
  ASSERT_TRUE(entries) << entries.error().message();
  const NumaMapsEntry& text = (*entries)[0];
  EXPECT_EQ(text.policy, "default");
  EXPECT_EQ(text.file, "/usr/bin/cat");
  EXPECT_EQ(text.mapped, 8u);
  EXPECT_EQ(text.anon, 0u);
  EXPECT_FALSE(text.heap || text.stack || text.huge);
  EXPECT_EQ(text.page_size, 4096u);
  EXPECT_EQ(text.pages_on_node, (NodePages{{0, 8}}));
}

TEST(ParseNumaMapsTest, ReadsHeapAndStackFlags) {
  auto entries = parseNumaMaps(kNumaMaps);
  ASSERT_TRUE(entries) << entries.error().message();
  const NumaMapsEntry& heap = (*entries)[2];
  EXPECT_TRUE(heap.heap);
  EXPECT_FALSE(heap.stack);
  EXPECT_TRUE(heap.file.empty());
  EXPECT_EQ(heap.anon, 34u);
  EXPECT_EQ(heap.dirty, 34u);
  const NumaMapsEntry& stack = (*entries)[8];
  EXPECT_TRUE(stack.stack);
  EXPECT_FALSE(stack.heap);
  EXPECT_EQ(stack.pages_on_node, (NodePages{{0, 33}}));
}

TEST(ParseNumaMapsTest, ReadsBindAndInterleavePoliciesWithTheirNodes) {
  auto entries = parseNumaMaps(kNumaMaps);
  ASSERT_TRUE(entries) << entries.error().message();
  const NumaMapsEntry& bound = (*entries)[3];
  EXPECT_EQ(bound.policy, "bind:1");
  EXPECT_EQ(bound.anon, 256u);
  EXPECT_EQ(bound.dirty, 256u);
  EXPECT_EQ(bound.pages_on_node, (NodePages{{1, 256}}));
  const NumaMapsEntry& interleaved = (*entries)[4];
  EXPECT_EQ(interleaved.policy, "interleave:0-1");
  EXPECT_EQ(interleaved.pages_on_node, (NodePages{{0, 256}, {1, 256}}));
  EXPECT_EQ((*entries)[5].policy, "prefer:1");
  EXPECT_EQ((*entries)[7].policy, "bind=static:2");
}

TEST(ParseNumaMapsTest, CountsTransparentHugePagesInBasePages) {
  // THP is not hugetlb: the kernel prints kernelpagesize_kB=4 and counts the
  // 2 MiB folios as 512 base pages each, with no "huge" flag.
  auto entries = parseNumaMaps(kNumaMaps);
  ASSERT_TRUE(entries) << entries.error().message();
  const NumaMapsEntry& thp = (*entries)[5];
  EXPECT_FALSE(thp.huge);
  EXPECT_EQ(thp.page_size, 4096u);
  EXPECT_EQ(thp.anon, 1024u);
  EXPECT_EQ(thp.pages_on_node, (NodePages{{0, 512}, {1, 512}}));
}

TEST(ParseNumaMapsTest, ReadsHugetlbPageSizeAndFlag) {
  auto entries = parseNumaMaps(kNumaMaps);
  ASSERT_TRUE(entries) << entries.error().message();
  const NumaMapsEntry& huge2m = (*entries)[6];
  EXPECT_TRUE(huge2m.huge);
  EXPECT_EQ(huge2m.file, "/dev/hugepages/db");
  EXPECT_EQ(huge2m.page_size, 2u * 1024 * 1024);
  EXPECT_EQ(huge2m.pages_on_node, (NodePages{{1, 4}}));
  const NumaMapsEntry& huge1g = (*entries)[7];
  EXPECT_TRUE(huge1g.huge);
  EXPECT_EQ(huge1g.page_size, 1024u * 1024 * 1024);
  // The kernel escapes spaces in paths as \040; the parser keeps them escaped.
  EXPECT_EQ(huge1g.file, "/anon_hugepage\\040(deleted)");
}

TEST(ParseNumaMapsTest, DefaultsToFourKilobytePagesWithoutKernelpagesize) {
  auto entries = parseNumaMaps("7f0000000000 default anon=2 N3=2\n");
  ASSERT_TRUE(entries) << entries.error().message();
  ASSERT_EQ(entries->size(), 1u);
  EXPECT_EQ((*entries)[0].page_size, 4096u);
  EXPECT_EQ((*entries)[0].pages_on_node, (NodePages{{3, 2}}));
}

TEST(ParseNumaMapsTest, IgnoresUnknownFlagsAndCounters) {
  auto entries =
      parseNumaMaps("7f0000000000 local anon=2 writeback=1 active=1 newflag N0=2 future=7\n");
  ASSERT_TRUE(entries) << entries.error().message();
  ASSERT_EQ(entries->size(), 1u);
  EXPECT_EQ((*entries)[0].policy, "local");
  EXPECT_EQ((*entries)[0].anon, 2u);
  EXPECT_EQ((*entries)[0].pages_on_node, (NodePages{{0, 2}}));
}

TEST(ParseNumaMapsTest, AreaWithNoPagesYetHasNoNodeCounts) {
  auto entries = parseNumaMaps("7f3c8a000000 bind:1\n");
  ASSERT_TRUE(entries) << entries.error().message();
  ASSERT_EQ(entries->size(), 1u);
  EXPECT_EQ((*entries)[0].policy, "bind:1");
  EXPECT_TRUE(((*entries)[0].pages_on_node).empty());
}

TEST(ParseNumaMapsTest, EmptyTextHasNoEntries) {
  auto entries = parseNumaMaps("\n\n");
  ASSERT_TRUE(entries) << entries.error().message();
  EXPECT_TRUE((*entries).empty());
}

TEST(ParseNumaMapsTest, RejectsBadAddressNamingLineAndToken) {
  auto entries = parseNumaMaps(
      "00400000 default file=/usr/bin/cat mapped=8 N0=8 kernelpagesize_kB=4\n"
      "zz400000 default anon=1 N0=1\n");
  ASSERT_FALSE(entries);
  EXPECT_EQ(entries.error().errnum, EINVAL);
  EXPECT_TRUE(hasSubstr(entries.error().context, "line 2"));
  EXPECT_TRUE(hasSubstr(entries.error().context, "'zz400000'"));
}

TEST(ParseNumaMapsTest, RejectsAddressWithItsOwnHexPrefix) {
  auto entries = parseNumaMaps("0x400000 default\n");
  ASSERT_FALSE(entries);
  EXPECT_TRUE(hasSubstr(entries.error().context, "'0x400000'"));
}

TEST(ParseNumaMapsTest, RejectsLineWithoutPolicyNamingTheLine) {
  auto entries = parseNumaMaps("00400000 default\n\n7f3c8a000000\n");
  ASSERT_FALSE(entries);
  EXPECT_TRUE(hasSubstr(entries.error().context, "line 3"));
  EXPECT_TRUE(hasSubstr(entries.error().context, "7f3c8a000000"));
}

TEST(ParseNumaMapsTest, RejectsBadCounterNamingLineAndField) {
  auto entries = parseNumaMaps(
      "00400000 default mapped=8 N0=8\n"
      "01a4e000 default heap anon=3x N0=3\n");
  ASSERT_FALSE(entries);
  EXPECT_TRUE(hasSubstr(entries.error().context, "line 2"));
  EXPECT_TRUE(hasSubstr(entries.error().context, "'anon=3x'"));
}

TEST(ParseNumaMapsTest, RejectsBadNodeCountNamingTheField) {
  auto entries = parseNumaMaps("7f3c8a000000 bind:1 anon=1 N1=-1\n");
  ASSERT_FALSE(entries);
  EXPECT_TRUE(hasSubstr(entries.error().context, "line 1"));
  EXPECT_TRUE(hasSubstr(entries.error().context, "'N1=-1'"));
}

TEST(ParseNumaMapsTest, RejectsNodeIdBeyondInt) {
  auto entries = parseNumaMaps("7f3c8a000000 bind:1 N99999999999=1\n");
  ASSERT_FALSE(entries);
  EXPECT_TRUE(hasSubstr(entries.error().context, "line 1"));
  EXPECT_TRUE(hasSubstr(entries.error().context, "99999999999"));
}

// Regression (parsers.cpp parseNumaMaps): the kernel's policy names include spaces
// (mm/mempolicy.c policy_modes[]: "weighted interleave" since 6.9, "prefer
// (many)" since 5.15), but the parser takes only the second word as policy.
TEST(ParseNumaMapsTest, ReadsPolicyNamesThatContainASpace) {
  auto entries = parseNumaMaps(
      "7f3c9a000000 weighted interleave:0-1 anon=3 dirty=3 N0=2 N1=1 kernelpagesize_kB=4\n"
      "7f3caa000000 prefer (many):1-2 anon=2 dirty=2 N1=2 kernelpagesize_kB=4\n");
  ASSERT_TRUE(entries) << entries.error().message();
  ASSERT_EQ(entries->size(), 2u);
  EXPECT_EQ((*entries)[0].policy, "weighted interleave:0-1");
  EXPECT_EQ((*entries)[0].anon, 3u);
  EXPECT_EQ((*entries)[1].policy, "prefer (many):1-2");
}

}  // namespace
}  // namespace tier

namespace tier {
namespace {

TEST(ParseMapsTest, ReadsAnonymousFileAndSpecialMappings) {
  auto maps = parseMaps(
      "55d0c0a00000-55d0c0a02000 r--p 00000000 fe:01 1835014                    /usr/bin/cat\n"
      "7f1c2c000000-7f1c2c021000 rw-p 00000000 00:00 0 \n"
      "7f1c2d000000-7f1c2d001000 rw-s 00001000 00:05 42                         /dev/shm/my file\n"
      "7ffd1e3b2000-7ffd1e3d3000 rw-p 00000000 00:00 0                          [stack]\n");
  ASSERT_TRUE(maps) << maps.error().message();
  ASSERT_EQ(maps->size(), 4u);
  EXPECT_EQ((*maps)[0].start, 0x55d0c0a00000u);
  EXPECT_EQ((*maps)[0].end, 0x55d0c0a02000u);
  EXPECT_EQ((*maps)[0].perms, "r--p");
  EXPECT_EQ((*maps)[0].inode, 1835014u);
  EXPECT_EQ((*maps)[0].path, "/usr/bin/cat");
  EXPECT_EQ((*maps)[1].path, "");
  EXPECT_EQ((*maps)[2].offset, 0x1000u);
  EXPECT_EQ((*maps)[2].path, "/dev/shm/my file");
  EXPECT_EQ((*maps)[3].path, "[stack]");
}

TEST(ParseMapsTest, RejectsMalformedLinesNamingTheLine) {
  auto maps = parseMaps("7f00-7f10 rw-p 0 00:00 0\nzz-7f10 rw-p 0 00:00 0\n");
  ASSERT_FALSE(maps);
  EXPECT_NE(maps.error().context.find("line 2"), std::string::npos) << maps.error().context;
  EXPECT_FALSE(parseMaps("7f10-7f00 rw-p 0 00:00 0\n"));  // end before start
  EXPECT_FALSE(parseMaps("7f00-7f10 rw-p 0\n"));
}

}  // namespace
}  // namespace tier
