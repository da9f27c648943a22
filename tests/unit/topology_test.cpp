#include "topology/topology.h"

#include <gtest/gtest.h>

namespace tier {
namespace {

constexpr uint64_t kGiB = 1ULL << 30;

NodeFacts node(int id, std::vector<int> cpus, std::map<int, int> distance = {}) {
  NodeFacts n;
  n.id = id;
  n.cpus = std::move(cpus);
  n.total_bytes = 16 * kGiB;
  n.free_bytes = 8 * kGiB;
  n.distance = std::move(distance);
  return n;
}

AccessClass hmat(std::vector<int> initiators, uint64_t latency_ns, uint64_t bandwidth_mibps) {
  AccessClass access;
  access.initiators = std::move(initiators);
  access.read_latency_ns = access.write_latency_ns = latency_ns;
  access.read_bandwidth_mibps = access.write_bandwidth_mibps = bandwidth_mibps;
  return access;
}

PlatformFacts platform(std::vector<NodeFacts> nodes) {
  PlatformFacts facts;
  for (const auto& n : nodes) {
    facts.online_nodes.push_back(n.id);
    facts.nodes_with_memory.push_back(n.id);
    if (!n.cpus.empty()) facts.nodes_with_cpu.push_back(n.id);
  }
  facts.nodes = std::move(nodes);
  return facts;
}

std::vector<std::vector<int>> tierNodes(const InitiatorTiers& order) {
  std::vector<std::vector<int>> out;
  for (const auto& tier : order.tiers)
    out.push_back(tier.nodes);
  return out;
}

TEST(Topology, OneDramNodeIsOneTier) {
  auto topology = buildTopology(platform({node(0, {0, 1}, {{0, 10}})}));
  ASSERT_EQ(topology.initiators.size(), 1u);
  EXPECT_EQ(tierNodes(topology.initiators[0]), (std::vector<std::vector<int>>{{0}}));
  EXPECT_EQ(topology.nodes[0].kind, MemoryKind::Dram);
  EXPECT_EQ(topology.homeRank(0), 0);
}

TEST(Topology, CpuLessNodeIsFarAndOrderedByHmatBelowDram) {
  auto dram = node(0, {0}, {{0, 10}, {1, 20}});
  dram.access1 = hmat({0}, 80, 20480);
  auto far = node(1, {}, {{0, 20}, {1, 10}});
  far.access1 = hmat({0}, 250, 8192);
  auto topology = buildTopology(platform({dram, far}));
  EXPECT_EQ(topology.nodes[1].kind, MemoryKind::Far);
  EXPECT_EQ(topology.initiators[0].ordered_by, TierMetric::Hmat);
  EXPECT_EQ(tierNodes(topology.initiators[0]), (std::vector<std::vector<int>>{{0}, {1}}));
  EXPECT_EQ(topology.homeRank(1), 1);
}

TEST(Topology, HmatLatencyWinsOverNodeNumbering) {
  // Node 1 is slower than node 2 although numbered first.
  auto dram = node(0, {0});
  dram.access1 = hmat({0}, 80, 20000);
  auto slow = node(1, {});
  slow.access1 = hmat({0}, 400, 4000);
  auto faster = node(2, {});
  faster.access1 = hmat({0}, 250, 8000);
  auto topology = buildTopology(platform({dram, slow, faster}));
  EXPECT_EQ(tierNodes(topology.initiators[0]), (std::vector<std::vector<int>>{{0}, {2}, {1}}));
}

TEST(Topology, DaxOnCxlRegionMakesTheNodeCxlAndNamesItsMemdev) {
  auto facts = platform({node(0, {0}, {{0, 10}, {1, 20}}), node(1, {}, {{0, 20}, {1, 10}})});
  facts.memdevs.push_back(
      CxlMemdev{.name = "mem0", .serial = 7, .pmem_size = kGiB, .numa_node = 0});
  facts.cxl_regions.push_back(CxlRegion{
      .name = "region1", .size = kGiB, .root_decoder = "decoder0.0", .memdevs = {"mem0"}});
  facts.dax_devices.push_back(DaxDevice{.name = "dax1.0",
                                        .size = kGiB,
                                        .target_node = 1,
                                        .mode = "system-ram",
                                        .backing = {DaxBacking::Source::CxlRegion, "region1"}});
  auto topology = buildTopology(facts);
  const auto& cxl = topology.nodes[1];
  EXPECT_EQ(cxl.kind, MemoryKind::Cxl);
  EXPECT_EQ(cxl.memdevs, std::vector<std::string>{"mem0"});
  EXPECT_EQ(cxl.cxl_regions, std::vector<std::string>{"region1"});
  EXPECT_EQ(cxl.dax_devices, std::vector<std::string>{"dax1.0"});
  // The memdev's PCI numa_node (0) is not where its memory is (1): say so.
  bool explained = false;
  for (const auto& line : cxl.evidence)
    explained |= line.find("PCI numa_node is 0") != std::string::npos;
  EXPECT_TRUE(explained);
  EXPECT_EQ(tierNodes(topology.initiators[0]), (std::vector<std::vector<int>>{{0}, {1}}));
}

TEST(Topology, DevdaxThatIsNotOnlineDoesNotClassifyANode) {
  auto facts = platform({node(0, {0}), node(1, {})});
  facts.dax_devices.push_back(DaxDevice{.name = "dax0.0",
                                        .target_node = 1,
                                        .mode = "devdax",
                                        .backing = {DaxBacking::Source::CxlRegion, "region0"}});
  EXPECT_EQ(buildTopology(facts).nodes[1].kind, MemoryKind::Far);
}

TEST(Topology, NfitNamespaceIsPmemAndCxlBridgeNamespaceIsCxl) {
  auto facts = platform({node(0, {0}), node(2, {}), node(3, {})});
  facts.nd_regions.push_back(NdRegion{.name = "region0", .bus = "ndbus0", .provider = "ACPI.NFIT"});
  facts.nd_regions.push_back(
      NdRegion{.name = "region1", .bus = "ndbus1", .provider = "cxl_pmem", .behind_cxl = true});
  facts.namespaces.push_back(NdNamespace{.name = "namespace0.0", .region = "region0"});
  facts.namespaces.push_back(NdNamespace{.name = "namespace1.0", .region = "region1"});
  facts.dax_devices.push_back(
      DaxDevice{.name = "dax0.0",
                .target_node = 2,
                .mode = "system-ram",
                .backing = {DaxBacking::Source::NdNamespace, "namespace0.0"}});
  facts.dax_devices.push_back(
      DaxDevice{.name = "dax1.0",
                .target_node = 3,
                .mode = "system-ram",
                .backing = {DaxBacking::Source::NdNamespace, "namespace1.0"}});
  auto topology = buildTopology(facts);
  EXPECT_EQ(topology.nodes[1].kind, MemoryKind::Pmem);
  EXPECT_EQ(topology.nodes[1].namespaces, std::vector<std::string>{"namespace0.0"});
  EXPECT_EQ(topology.nodes[2].kind, MemoryKind::Cxl);
  EXPECT_EQ(topology.nodes[2].nd_regions, std::vector<std::string>{"region1"});
}

TEST(Topology, PlainRamInsideACxlWindowIsCxlAndAKernelTierClashIsWarned) {
  auto facts = platform({node(0, {0}, {{0, 10}, {1, 14}}), node(1, {}, {{0, 14}, {1, 10}})});
  facts.memory_block_size = 128ULL << 20;
  facts.nodes[1].memory_blocks = {(4ULL << 40) / (128ULL << 20)};  // the block at 4 TiB
  facts.cxl_decoders.push_back(CxlDecoder{
      .name = "decoder0.0", .port = "root0", .root = true, .start = 4ULL << 40, .size = 256 * kGiB});
  facts.memory_tiers.push_back(KernelMemoryTier{4, {0, 1}});  // firmware said "DRAM"
  auto topology = buildTopology(facts);
  EXPECT_EQ(topology.nodes[1].kind, MemoryKind::Cxl);
  ASSERT_EQ(topology.warnings.size(), 1u);
  EXPECT_NE(topology.warnings[0].find("memory_tier4"), std::string::npos);
  // tierd's own order still puts it below DRAM.
  EXPECT_EQ(tierNodes(topology.initiators[0]), (std::vector<std::vector<int>>{{0}, {1}}));
}

TEST(Topology, TwoSocketsEachSeeTheirOwnFarNodeFirst) {
  // SLIT: 0,1 CPU nodes; 2 far to socket 0, 3 far to socket 1.
  auto n0 = node(0, {0}, {{0, 10}, {1, 21}, {2, 20}, {3, 28}});
  auto n1 = node(1, {1}, {{0, 21}, {1, 10}, {2, 28}, {3, 20}});
  auto n2 = node(2, {}, {{0, 20}, {1, 28}, {2, 10}, {3, 28}});
  auto n3 = node(3, {}, {{0, 28}, {1, 20}, {2, 28}, {3, 10}});
  n0.access1 = hmat({0}, 80, 20000);
  n1.access1 = hmat({1}, 80, 20000);
  n2.access1 = hmat({0}, 250, 8000);
  n3.access1 = hmat({1}, 250, 8000);
  auto topology = buildTopology(platform({n0, n1, n2, n3}));
  ASSERT_EQ(topology.initiators.size(), 2u);
  // HMAT only covers local pairs, so the distances order the whole list.
  EXPECT_EQ(topology.initiators[0].ordered_by, TierMetric::Distance);
  EXPECT_EQ(tierNodes(topology.initiators[0]), (std::vector<std::vector<int>>{{0}, {2}, {1}, {3}}));
  EXPECT_EQ(tierNodes(topology.initiators[1]), (std::vector<std::vector<int>>{{1}, {3}, {0}, {2}}));
  EXPECT_EQ(topology.homeRank(2), 1);  // seen from socket 0
  EXPECT_EQ(topology.homeRank(3), 1);  // seen from socket 1
}

TEST(Topology, SubNumaSiblingsWithinToleranceShareATier) {
  auto n0 = node(0, {0}, {{0, 10}, {1, 11}, {2, 21}});
  auto n1 = node(1, {1}, {{0, 11}, {1, 10}, {2, 21}});
  auto n2 = node(2, {2}, {{0, 21}, {1, 21}, {2, 10}});
  auto topology = buildTopology(platform({n0, n1, n2}));
  EXPECT_EQ(tierNodes(topology.initiators[0]), (std::vector<std::vector<int>>{{0, 1}, {2}}));
  TopologyOptions strict;
  strict.same_tier_distance_tolerance = 0.0;
  auto split = buildTopology(platform({n0, n1, n2}), strict);
  EXPECT_EQ(tierNodes(split.initiators[0]), (std::vector<std::vector<int>>{{0}, {1}, {2}}));
}

TEST(Topology, WithoutHmatOrDistancesKindDecides) {
  auto facts = platform({node(0, {0}), node(1, {}), node(2, {})});
  facts.nd_regions.push_back(NdRegion{.name = "region0", .provider = "ACPI.NFIT"});
  facts.namespaces.push_back(NdNamespace{.name = "namespace0.0", .region = "region0"});
  facts.dax_devices.push_back(
      DaxDevice{.name = "dax0.0",
                .target_node = 1,
                .mode = "system-ram",
                .backing = {DaxBacking::Source::NdNamespace, "namespace0.0"}});
  auto topology = buildTopology(facts);
  EXPECT_EQ(topology.initiators[0].ordered_by, TierMetric::Kind);
  // dram, then far (node 2), then pmem (node 1).
  EXPECT_EQ(tierNodes(topology.initiators[0]), (std::vector<std::vector<int>>{{0}, {2}, {1}}));
}

TEST(Topology, OverrideMovesANodeAndRenumbers) {
  auto dram = node(0, {0});
  dram.access1 = hmat({0}, 80, 20000);
  auto a = node(1, {});
  a.access1 = hmat({0}, 250, 8000);
  auto b = node(2, {});
  b.access1 = hmat({0}, 400, 4000);
  TopologyOptions options;
  options.tier_override = {{2, 1}, {9, 0}};
  auto topology = buildTopology(platform({dram, a, b}), options);
  EXPECT_EQ(tierNodes(topology.initiators[0]), (std::vector<std::vector<int>>{{0}, {1, 2}}));
  ASSERT_EQ(topology.warnings.size(), 1u);
  EXPECT_NE(topology.warnings[0].find("node 9"), std::string::npos);
}

TEST(Topology, MemorylessCpuNodeIsAnInitiatorButNoTier) {
  auto facts = platform({node(0, {0}, {{0, 10}, {1, 20}}), node(1, {1}, {{0, 20}, {1, 10}})});
  facts.nodes_with_memory = {0};
  auto topology = buildTopology(facts);
  EXPECT_EQ(topology.nodes[1].kind, MemoryKind::None);
  ASSERT_EQ(topology.initiators.size(), 2u);
  EXPECT_EQ(tierNodes(topology.initiators[1]), (std::vector<std::vector<int>>{{0}}));
}

}  // namespace
}  // namespace tier
