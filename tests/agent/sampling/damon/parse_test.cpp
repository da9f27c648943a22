#include "sampling/damon/parse.h"

#include <gtest/gtest.h>

namespace tierd::sampling::damon {
namespace {

TEST(AvailableOperations, ListsWhatTheKernelOffers) {
  auto ops = parseAvailableOperations("vaddr fvaddr paddr\n");
  ASSERT_TRUE(ops) << ops.error().message();
  EXPECT_TRUE(ops->vaddr);
  EXPECT_TRUE(ops->fvaddr);
  EXPECT_TRUE(ops->paddr);
  EXPECT_EQ(ops->names, (std::vector<std::string>{"vaddr", "fvaddr", "paddr"}));
}

TEST(AvailableOperations, PaddrOnlyAndUnknownNames) {
  auto ops = parseAvailableOperations("paddr  newaddr\n");
  ASSERT_TRUE(ops);
  EXPECT_FALSE(ops->vaddr);
  EXPECT_FALSE(ops->fvaddr);
  EXPECT_TRUE(ops->paddr);
  EXPECT_EQ(ops->names, (std::vector<std::string>{"paddr", "newaddr"}));
}

TEST(AvailableOperations, EmptyIsAnError) {
  EXPECT_FALSE(parseAvailableOperations(""));
  EXPECT_FALSE(parseAvailableOperations(" \n"));
}

TEST(KdamondState, OnOffAndGarbage) {
  EXPECT_EQ(parseKdamondState("on\n"), true);
  EXPECT_EQ(parseKdamondState("off\n"), false);
  auto bad = parseKdamondState("update_schemes_stats");
  ASSERT_FALSE(bad);
  EXPECT_NE(bad.error().context.find("update_schemes_stats"), std::string::npos);
}

TEST(TriedRegion, ParsesTheFourFiles) {
  TriedRegionText text{.index = 7,
                       .start = "94381287079936\n",
                       .end = "94381291876352\n",
                       .nr_accesses = "12\n",
                       .age = "81\n"};
  auto region = parseTriedRegion(text, 4242, 20);
  ASSERT_TRUE(region) << region.error().message();
  EXPECT_EQ(region->pid, 4242);
  EXPECT_EQ(region->start, 94381287079936u);
  EXPECT_EQ(region->end, 94381291876352u);
  EXPECT_EQ(region->nr_accesses, 12u);
  EXPECT_EQ(region->max_accesses, 20u);
  EXPECT_EQ(region->age, 81u);
}

TEST(TriedRegion, ErrorsNameTheRegionAndFile) {
  TriedRegionText text{.index = 3, .start = "4096", .end = "8192", .nr_accesses = "x", .age = "1"};
  auto bad = parseTriedRegion(text, 0, 20);
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().errnum, EINVAL);
  EXPECT_NE(bad.error().context.find("tried region 3 nr_accesses"), std::string::npos)
      << bad.error().context;

  text = {.index = 4, .start = "8192", .end = "4096", .nr_accesses = "1", .age = "1"};
  bad = parseTriedRegion(text, 0, 20);
  ASSERT_FALSE(bad);
  EXPECT_NE(bad.error().context.find("tried region 4 range"), std::string::npos);

  text = {.index = 5, .start = "0", .end = "4096", .nr_accesses = "1", .age = "4294967296"};
  bad = parseTriedRegion(text, 0, 20);
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().errnum, ERANGE);

  text = {.index = 6, .start = "", .end = "4096", .nr_accesses = "1", .age = "1"};
  EXPECT_FALSE(parseTriedRegion(text, 0, 20));
}

TEST(TriedRegionIndices, NumericOrderWithoutOtherEntries) {
  std::vector<std::string> listing{"10", "total_bytes", "2", "9", "sz_filter_passed", "0x3"};
  EXPECT_EQ(triedRegionIndices(listing), (std::vector<uint64_t>{2, 9, 10}));
  EXPECT_TRUE(triedRegionIndices(std::vector<std::string>{"total_bytes"}).empty());
}

std::vector<RegionSample> regions(std::initializer_list<std::pair<uint64_t, uint64_t>> ranges) {
  std::vector<RegionSample> out;
  for (auto [start, end] : ranges)
    out.push_back({.start = start, .end = end});
  return out;
}

TEST(AttributeByAddressOrder, EachAscendingRunIsOneTarget) {
  auto list = regions({{0x5500, 0x5600},
                       {0x5600, 0x5800},
                       {0x7ff0, 0x7ff8},  // target 0
                       {0x5100, 0x5200},
                       {0x7f00, 0x7f10},    // target 1
                       {0x4000, 0x5000}});  // target 2
  std::vector<pid_t> pids{11, 22, 33};
  ASSERT_TRUE(attributeByAddressOrder(list, pids));
  std::vector<pid_t> got;
  for (const auto& r : list)
    got.push_back(r.pid);
  EXPECT_EQ(got, (std::vector<pid_t>{11, 11, 11, 22, 22, 33}));
}

TEST(AttributeByAddressOrder, RefusesToGuessWhenRunsAndTargetsDiffer) {
  auto list = regions({{0x5500, 0x5600}, {0x5100, 0x5200}});
  std::vector<pid_t> three{1, 2, 3};
  auto r = attributeByAddressOrder(list, three);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().errnum, EPROTO);
  std::vector<pid_t> none;
  EXPECT_TRUE(attributeByAddressOrder(std::span<RegionSample>(), none));
}

TEST(MemoryBlocks, BlockSizeIsHex) {
  EXPECT_EQ(parseBlockSize("8000000\n"), 0x8000000u);
  EXPECT_EQ(parseBlockSize("0x8000000"), 0x8000000u);
  EXPECT_FALSE(parseBlockSize("zz"));
  EXPECT_FALSE(parseBlockSize("0"));
  EXPECT_FALSE(parseBlockSize(""));
}

TEST(MemoryBlocks, Names) {
  EXPECT_EQ(parseMemoryBlockName("memory12"), 12u);
  EXPECT_FALSE(parseMemoryBlockName("memory"));
  EXPECT_FALSE(parseMemoryBlockName("block_size_bytes"));
  EXPECT_FALSE(parseMemoryBlockName("memory1x"));
}

TEST(MemoryBlocks, AdjacentBlocksMerge) {
  auto ranges = memoryBlockRanges({5, 0, 1, 3, 2, 2}, 0x10);
  EXPECT_EQ(ranges, (std::vector<AddressRange>{{0x0, 0x40}, {0x50, 0x60}}));
  EXPECT_TRUE(memoryBlockRanges({}, 0x10).empty());
}

}  // namespace
}  // namespace tierd::sampling::damon
