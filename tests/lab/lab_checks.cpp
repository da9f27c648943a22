// Runs inside the lab guest (tools/lab/lab run --preset P -- lab_checks):
// tierctl against the real kernel of each preset, its JSON parsed and
// checked against what the preset built. Suites are named after presets and
// selected with --gtest_filter by tests/lab/CMakeLists.txt.
#include <gtest/gtest.h>

#include <algorithm>
#include <nlohmann/json.hpp>
#include <sstream>

#include "../golden/run_command.h"

namespace tier::test {
namespace {

using nlohmann::json;

json topologyJson() {
  auto result = runCommand({TIERCTL_PATH, "topology", "-j", "--config", "/dev/null"});
  EXPECT_EQ(result.exit_code, 0) << result.err;
  return json::parse(result.out);
}

const json& nodeOfKind(const json& topology, const std::string& kind) {
  for (const auto& node : topology["nodes"])
    if (node["kind"] == kind) return node;
  static const json none;
  ADD_FAILURE() << "no node of kind " << kind << " in " << topology["nodes"].dump();
  return none;
}

// Rank of `node` in the tiers seen from initiator `initiator`.
int rankFrom(const json& topology, int initiator, int node) {
  for (const auto& order : topology["initiators"]) {
    if (order["initiator"] != initiator) continue;
    for (const auto& tier : order["tiers"]) {
      const auto& nodes = tier["nodes"];
      if (std::find(nodes.begin(), nodes.end(), node) != nodes.end()) return tier["tier"];
    }
  }
  return -1;
}

std::string withoutFreeLines(const std::string& text) {
  std::string kept, line;
  std::istringstream lines(text);
  while (std::getline(lines, line))
    if (line.find(" free: ") == std::string::npos) kept += line + "\n";
  return kept;
}

TEST(AnyPreset, HardwareViewMatchesNumactl) {
  auto ours = runCommand({TIERCTL_PATH, "topology", "-H", "--config", "/dev/null"});
  auto numactl = runCommand({"/usr/bin/numactl", "-H"});
  ASSERT_EQ(ours.exit_code, 0) << ours.err;
  ASSERT_EQ(numactl.exit_code, 0) << numactl.err;
  EXPECT_EQ(withoutFreeLines(ours.out), withoutFreeLines(numactl.out));
}

TEST(AnyPreset, GatheredTreeReplaysToTheSameTopology) {
  std::string dir =
      std::string(std::getenv("LAB_OUT") ? std::getenv("LAB_OUT") : "/tmp") + "/replay";
  runCommand({"/bin/rm", "-rf", dir});
  runCommand({"/bin/mkdir", "-p", dir});
  auto gather = runCommand({TIERCTL_PATH, "gather", dir + "/lab.tar"});
  ASSERT_EQ(gather.exit_code, 0) << gather.err;
  ASSERT_EQ(runCommand({"/bin/tar", "-xf", dir + "/lab.tar", "-C", dir}).exit_code, 0);
  auto live = topologyJson();
  auto replay =
      runCommand({TIERCTL_PATH, "topology", "-j", "--config", "/dev/null", "--sysfs-root", dir});
  ASSERT_EQ(replay.exit_code, 0) << replay.err;
  auto replayed = json::parse(replay.out);
  for (auto* topology : {&live, &replayed})
    for (auto& node : (*topology)["nodes"])
      node.erase("free");
  EXPECT_EQ(live, replayed) << json::diff(live, replayed).dump(2);
}

// libcxl, libdaxctl and libndctl enumerate the same objects as the sysfs
// reader; any disagreement would show up in the notes.
TEST(AnyPreset, LibrariesAgreeWithTheSysfsReader) {
  auto topology = topologyJson();
  for (const auto& note : topology["notes"])
    EXPECT_EQ(note.get<std::string>().find("libraries vs sysfs"), std::string::npos) << note;
}

TEST(Far, FarNodeIsBelowDramByHmatLatency) {
  auto topology = topologyJson();
  const auto& dram = nodeOfKind(topology, "dram");
  const auto& far = nodeOfKind(topology, "far");
  EXPECT_EQ(topology["initiators"][0]["ordered_by"], "hmat");
  EXPECT_EQ(far["cpus"], "");
  EXPECT_GT(far["access1"]["read_latency_ns"].get<int>(),
            dram["access1"]["read_latency_ns"].get<int>());
  EXPECT_EQ(rankFrom(topology, dram["node"], dram["node"]), 0);
  EXPECT_EQ(rankFrom(topology, dram["node"], far["node"]), 1);
}

TEST(Pmem, PmemNodeShowsItsNamespaceAndDaxDevice) {
  auto topology = topologyJson();
  const auto& dram = nodeOfKind(topology, "dram");
  const auto& pmem = nodeOfKind(topology, "pmem");
  ASSERT_EQ(pmem["namespaces"].size(), 1u);
  ASSERT_EQ(pmem["dax_devices"].size(), 1u);
  std::string dax = pmem["dax_devices"][0];
  bool found = false;
  for (const auto& device : topology["dax_devices"]) {
    if (device["chardev"] != dax) continue;
    found = true;
    EXPECT_EQ(device["mode"], "system-ram");
    EXPECT_EQ(device["target_node"], pmem["node"]);
    EXPECT_GT(device["online_memblocks"].get<int>(), 0);
  }
  EXPECT_TRUE(found) << dax;
  EXPECT_GT(rankFrom(topology, dram["node"], pmem["node"]), 0);
}

TEST(Cxl, CxlNodeShowsMemdevSerialSizeAndRegionBelowDram) {
  auto topology = topologyJson();
  const auto& dram = nodeOfKind(topology, "dram");
  const auto& cxl = nodeOfKind(topology, "cxl");
  ASSERT_EQ(cxl["memdevs"].size(), 1u) << cxl.dump(2);
  ASSERT_EQ(cxl["cxl_regions"].size(), 1u) << cxl.dump(2);
  const auto& memdev = topology["memdevs"][0];
  EXPECT_EQ(memdev["memdev"], cxl["memdevs"][0]);
  EXPECT_TRUE(memdev.contains("serial"));
  EXPECT_EQ(memdev["pmem_size"].get<uint64_t>(), 256ULL << 20);
  EXPECT_EQ(topology["cxl_regions"][0]["region"], cxl["cxl_regions"][0]);
  EXPECT_EQ(topology["cxl_regions"][0]["memdevs"][0], memdev["memdev"]);
  EXPECT_GT(rankFrom(topology, dram["node"], cxl["node"]),
            rankFrom(topology, dram["node"], dram["node"]));
}

TEST(TwoSocket, EachCpuNodeSeesItsOwnFarNodeNext) {
  auto topology = topologyJson();
  ASSERT_EQ(topology["initiators"].size(), 2u);
  for (const auto& order : topology["initiators"]) {
    int initiator = order["initiator"];
    ASSERT_GE(order["tiers"].size(), 2u);
    EXPECT_EQ(order["tiers"][0]["nodes"], json::array({initiator}));
    ASSERT_EQ(order["tiers"][1]["nodes"].size(), 1u);
    int own_far = order["tiers"][1]["nodes"][0];
    for (const auto& node : topology["nodes"]) {
      if (node["node"] != own_far) continue;
      EXPECT_EQ(node["kind"], "far");
      EXPECT_EQ(node["access1"]["initiators"], json::array({initiator}));
    }
  }
}

}  // namespace
}  // namespace tier::test
