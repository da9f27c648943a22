// The host's memory as tierd schedules it: each memory node classified by
// kind with the evidence for it, and per CPU initiator the nodes ordered
// into tiers (rank 0 = fastest). Built from PlatformFacts by pure logic.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "topology/facts.h"

namespace tier {

enum class MemoryKind { Dram, Cxl, Pmem, Far, None };
std::string_view kindName(MemoryKind kind);

enum class TierMetric { Hmat, Distance, Kind };
std::string_view metricName(TierMetric metric);

struct NodeClass {
  int node = -1;
  MemoryKind kind = MemoryKind::None;
  std::vector<std::string> evidence;
  // What backs the node, by kernel device name.
  std::vector<std::string> memdevs, cxl_regions, dax_devices, namespaces, nd_regions;
  std::optional<int> kernel_tier;  // memory_tierN the kernel put it in
};

struct Tier {
  int rank = 0;
  std::vector<int> nodes;
};

struct InitiatorTiers {
  int initiator = -1;  // a node with CPUs
  TierMetric ordered_by = TierMetric::Kind;
  std::vector<Tier> tiers;

  std::optional<int> rankOf(int node) const;
};

struct TopologyOptions {
  // Node id -> tier rank, for firmware whose HMAT/SLIT data is wrong.
  std::map<int, int> tier_override;
  // Nodes of one kind whose metric is within this fraction of the tier's
  // fastest node share that tier (e.g. SNC siblings at distance 10 vs 11).
  double same_tier_tolerance = 0.10;
  // The same for SLIT distances, which are coarse: SNC siblings sit at 12
  // from local (10) on current Xeons, CXL on the same socket at 14 or more.
  double same_tier_distance_tolerance = 0.25;
};

struct Topology {
  PlatformFacts facts;
  std::vector<NodeClass> nodes;  // every online node, by id
  std::vector<InitiatorTiers> initiators;
  std::vector<std::string> warnings;

  const NodeFacts* nodeFacts(int node) const;
  const NodeClass* nodeClass(int node) const;
  // The node's rank as seen from its own CPUs, or else from its closest initiator.
  std::optional<int> homeRank(int node) const;
};

Topology buildTopology(PlatformFacts facts, const TopologyOptions& options = {});

}  // namespace tier
