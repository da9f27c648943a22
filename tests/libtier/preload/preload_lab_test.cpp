// The shim's placement on real tiers, run inside the lab guest (see
// CMakeLists.txt: far preset in full, pmem and cxl presets small). shim_probe
// runs under libtier-preload.so; the pages' nodes are read back with
// move_pages(nodes=NULL) by the probe and checked here against the far
// tier's nodes as libtier reports them, which must be CPU-less (libnuma) and,
// in the far preset, the lab's far node: no node id is hard-coded.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "../../support/far_node.h"
#include "run_program.h"

namespace {

using nlohmann::json;
using tier::test::farNode;
using tier::test::Ran;
using tier::test::runProgram;

constexpr size_t kMiB = size_t{1} << 20;

std::string preset() {
  const char* name = std::getenv("LAB_PRESET");
  return name ? name : "";
}

json probe(std::vector<std::string> args, std::vector<std::string> env) {
  args.insert(args.begin(), SHIM_PROBE_PATH);
  env.push_back(std::string("LD_PRELOAD=") + PRELOAD_LIB_PATH);
  Ran ran = runProgram(args, env);
  EXPECT_EQ(ran.status, 0) << ran.err;
  EXPECT_EQ(ran.err, "") << "the shim complained";
  std::printf("%s", ran.out.c_str());  // the numbers, for the log
  return json::parse(ran.out, nullptr, false);
}

// The share of the pages counted in `by_node` ({"node": pages}) that are on `nodes`.
double shareOn(const json& by_node, const std::vector<int>& nodes) {
  double total = 0, on = 0;
  for (auto& [key, pages] : by_node.items()) {
    total += pages.get<double>();
    if (std::find(nodes.begin(), nodes.end(), std::stoi(key)) != nodes.end())
      on += pages.get<double>();
  }
  return total == 0 ? 0 : on / total;
}

bool cpuLess(int node) {
  bitmask* cpus = numa_allocate_cpumask();
  numa_node_to_cpus(node, cpus);
  bool none = numa_bitmask_weight(cpus) == 0;
  numa_free_cpumask(cpus);
  return none;
}

// The far tier (rank 1) as libtier reports it: CPU-less nodes only, and in
// the far preset the lab's far node.
std::vector<int> farTierNodes(const json& result) {
  std::vector<int> nodes = result["tier_nodes"][1].get<std::vector<int>>();
  EXPECT_FALSE(nodes.empty());
  for (int node : nodes)
    EXPECT_TRUE(cpuLess(node)) << "far tier node " << node << " has CPUs";
  if (preset() == "far") {
    EXPECT_EQ(nodes, std::vector<int>{farNode()});
  }
  return nodes;
}

double pagesIn(const json& by_node) {
  double total = 0;
  for (auto& [key, pages] : by_node.items())
    total += pages.get<double>();
  return total;
}

// LIBTIER_RATIO=fast:1,far:3 over `total` bytes in mixed sizes with frees
// in between: 3/4 of the live bytes below the fast tier (within 2 %), and
// those blocks' touched pages on the far node (at least 99 %).
void checkRatio(size_t total, size_t live_cap) {
  ASSERT_GE(farNode(), 0) << "no CPU-less node: not in the lab?";
  json result = probe({"ratio", std::to_string(total), std::to_string(live_cap)},
                      {"LIBTIER_RATIO=fast:1,far:3"});
  ASSERT_TRUE(result.is_object());
  ASSERT_GE(result["tiers"].get<int>(), 2);
  EXPECT_EQ(result["foreign"].get<int>(), 0) << "live blocks that are not libtier's";
  EXPECT_GE(result["allocated"].get<double>(), static_cast<double>(total));
  double fast = result["live"][0].get<double>();
  double below = 0;
  for (size_t i = 1; i < result["live"].size(); ++i)
    below += result["live"][i].get<double>();
  EXPECT_NEAR(below / (fast + below), 0.75, 0.02);
  EXPECT_GT(pagesIn(result["below_fast_pages"]), static_cast<double>(live_cap / 2 / 4096));
  EXPECT_GE(shareOn(result["below_fast_pages"], farTierNodes(result)), 0.99);
  EXPECT_GE(shareOn(result["fast_pages"], {0}), 0.99) << "fast-tier pages off node 0";
}

TEST(PreloadLab, RatioOneToThreeHoldsOverOneGiB) {
  if (preset() != "far") GTEST_SKIP() << "the full check runs in the far preset";
  checkRatio(1024 * kMiB, 256 * kMiB);
}

TEST(PreloadLab, RatioSmallCheck) {
  if (preset() == "far" || preset().empty()) GTEST_SKIP() << "pmem and cxl presets";
  checkRatio(128 * kMiB, 64 * kMiB);
}

TEST(PreloadLab, ThresholdSendsLargeBlocksToTheFarNode) {
  ASSERT_GE(farNode(), 0) << "no CPU-less node: not in the lab?";
  json result = probe({"place", "4096", "65536", "1048575", "1048576", "4194304", "16777216"},
                      {"LIBTIER_THRESHOLD=1M"});
  ASSERT_TRUE(result.is_object());
  ASSERT_EQ(result["blocks"].size(), 6u);
  std::vector<int> far = farTierNodes(result);
  for (const json& block : result["blocks"]) {
    SCOPED_TRACE(block.dump());
    bool large = block["size"].get<size_t>() >= kMiB;
    EXPECT_EQ(block["tier"].get<int>(), large ? 1 : 0);
    EXPECT_GE(shareOn(block["nodes"], large ? far : std::vector<int>{0}), 0.99);
  }
}

// The libmemtier bug on real tiers: every block (stdio's buffer included) on
// the far tier, 8 MiB of buffered stdout through a pipe, every byte arrives.
TEST(PreloadLab, BufferedStdoutOnTheFarTierSurvivesExit) {
  constexpr size_t kBytes = 8 * kMiB;
  Ran ran = runProgram({SHIM_PROBE_PATH, "flood", std::to_string(kBytes)},
                       {std::string("LD_PRELOAD=") + PRELOAD_LIB_PATH, "LIBTIER_RULES=0-:far"});
  ASSERT_EQ(ran.status, 0) << ran.err;
  ASSERT_EQ(ran.out.size(), kBytes);
  for (size_t line = 0; line * 64 < kBytes; line += 1009) {
    char expected[65];
    std::snprintf(expected, sizeof expected, "%012zu %050zu\n", line, line * 7);
    ASSERT_EQ(ran.out.compare(line * 64, 64, expected), 0) << "line " << line;
  }
}

// A rule naming a node: the PMEM or CXL node the preset onlined.
TEST(PreloadLab, NodeRulePlacesOnThatNode) {
  const char* node_text = std::getenv(preset() == "cxl" ? "LAB_CXL_NODE" : "LAB_PMEM_NODE");
  if (node_text == nullptr) GTEST_SKIP() << "no PMEM or CXL node in this preset";
  int node = std::atoi(node_text);
  json result =
      probe({"place", "100", "8388608"}, {"LIBTIER_RULES=1M-:node" + std::to_string(node)});
  ASSERT_TRUE(result.is_object());
  ASSERT_EQ(result["blocks"].size(), 2u);
  EXPECT_GE(shareOn(result["blocks"][0]["nodes"], {0}), 0.99);
  EXPECT_GE(shareOn(result["blocks"][1]["nodes"], {node}), 0.99) << result["blocks"][1].dump();
}

}  // namespace
