// The engine's malloc-free sysfs readers and its tier ranking, on text and on
// the captured and hand-made trees of tests/fixtures (the ranks must match
// what tierctl reports for the same tree).
#include "node_sysfs.h"

#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>

namespace tier::alloc {
namespace {

NodeMask list(const char* text) {
  NodeMask mask = ~NodeMask{0};
  EXPECT_TRUE(parseNodeList(text, strlen(text), &mask)) << text;
  return mask;
}

TEST(NodeList, ParsesRangesAndSingles) {
  EXPECT_EQ(list("0\n"), 0x1u);
  EXPECT_EQ(list("0-2,5\n"), 0x27u);
  EXPECT_EQ(list("\n"), 0u);
  EXPECT_EQ(list("63"), NodeMask{1} << 63);
}

TEST(NodeList, RejectsMalformedText) {
  NodeMask mask = 7;
  for (const char* bad : {"1-", "2-1", "a", "0,,1", "64", "0-64", "1 2", "0,"})
    EXPECT_FALSE(parseNodeList(bad, strlen(bad), &mask)) << bad;
  EXPECT_EQ(mask, 7u);  // untouched on failure
}

TEST(NodeMeminfo, FindsFieldsInBytes) {
  const char* text =
      "Node 0 MemTotal:        1016320 kB\nNode 0 MemFree:          963219 kB\n"
      "Node 0 HugePages_Total:     0\n";
  uint64_t bytes = 0;
  ASSERT_TRUE(parseNodeMeminfo(text, strlen(text), "MemFree", &bytes));
  EXPECT_EQ(bytes, 963219u * 1024);
  ASSERT_TRUE(parseNodeMeminfo(text, strlen(text), "MemTotal", &bytes));
  EXPECT_EQ(bytes, 1016320u * 1024);
  ASSERT_TRUE(parseNodeMeminfo(text, strlen(text), "HugePages_Total", &bytes));
  EXPECT_EQ(bytes, 0u);
  EXPECT_FALSE(parseNodeMeminfo(text, strlen(text), "MemUsed", &bytes));
  EXPECT_FALSE(parseNodeMeminfo(text, strlen(text), "Mem", &bytes));
  const char* broken = "Node 0 MemFree: lots kB\n";
  EXPECT_FALSE(parseNodeMeminfo(broken, strlen(broken), "MemFree", &bytes));
}

TEST(Distances, ReadsOneRow) {
  int d[kMaxNodes];
  EXPECT_EQ(parseDistances("10 20 30\n", 9, 0x7, d), 3);
  EXPECT_EQ(d[2], 30);
  EXPECT_EQ(parseDistances("10 x\n", 5, 0x3, d), 1);
}

TEST(TierOverride, ParsesAndRejects) {
  TierLayout layout;
  ASSERT_TRUE(parseTierOverride("0-1;2;3", &layout));
  EXPECT_EQ(layout.count, 3);
  EXPECT_EQ(layout.nodes[0], 0x3u);
  EXPECT_EQ(layout.nodes[2], 0x8u);
  TierLayout untouched = layout;
  for (const char* bad : {"", "0;", ";1", "0;0", "0-1;1", "x", "0;1;2;3;4;5;6;7;8"})
    EXPECT_FALSE(parseTierOverride(bad, &layout)) << bad;
  EXPECT_EQ(layout.count, untouched.count);
}

TEST(ReadSysFile, MissingFileIsAnErrorValue) {
  char buf[64];
  EXPECT_EQ(readSysFile(FIXTURES_DIR, "/no/such/file", buf, sizeof buf), -ENOENT);
  TierLayout layout;
  EXPECT_EQ(discoverTiers(FIXTURES_DIR "/no-such-tree/sys", &layout), -ENOENT);
}

// Every fixture: the engine's rank of each node equals tierctl's "tier".
TEST(DiscoverTiers, MatchesTierctlOnEveryFixture) {
  int checked = 0;
  for (const auto& entry : std::filesystem::directory_iterator(FIXTURES_DIR)) {
    auto expected_path = entry.path() / "expected" / "topology.json";
    if (!std::filesystem::exists(expected_path)) continue;
    SCOPED_TRACE(entry.path().filename().string());
    std::ifstream in(expected_path);
    auto expected = nlohmann::json::parse(in);
    TierLayout layout;
    ASSERT_EQ(discoverTiers((entry.path() / "sys").c_str(), &layout), 0);
    for (const auto& node : expected["nodes"]) {
      int id = node["node"];
      int rank = -1;
      for (int r = 0; r < layout.count; ++r)
        if (layout.nodes[r] & (NodeMask{1} << id)) rank = r;
      EXPECT_EQ(rank, node["tier"].get<int>()) << "node " << id;
    }
    uint64_t total = nodesMeminfo((entry.path() / "sys").c_str(), layout.nodes[0], "MemTotal");
    EXPECT_GT(total, 0u);
    ++checked;
  }
  EXPECT_GE(checked, 5);
}

}  // namespace
}  // namespace tier::alloc
