#include "topology/topology.h"

#include <fmt/format.h>
#include <algorithm>

#include "parse/parsers.h"

namespace tier {
namespace {

bool contains(const std::vector<int>& ids, int id) {
  return std::find(ids.begin(), ids.end(), id) != ids.end();
}

template <typename T>
const T* findByName(const std::vector<T>& items, const std::string& name) {
  for (const auto& item : items)
    if (item.name == name) return &item;
  return nullptr;
}

void addUnique(std::vector<std::string>& list, const std::string& value) {
  if (std::find(list.begin(), list.end(), value) == list.end()) list.push_back(value);
}

// --- classification -------------------------------------------------------

// Decides the kind from a dax device onlined as system RAM on the node.
std::optional<MemoryKind> kindFromDax(const PlatformFacts& facts, const DaxDevice& dax,
                                      NodeClass& out) {
  addUnique(out.dax_devices, dax.name);
  switch (dax.backing.source) {
    case DaxBacking::Source::CxlRegion: {
      addUnique(out.cxl_regions, dax.backing.name);
      std::string devs;
      if (const auto* region = findByName(facts.cxl_regions, dax.backing.name)) {
        for (const auto& memdev : region->memdevs)
          addUnique(out.memdevs, memdev);
        devs = fmt::format(" on {}", fmt::join(region->memdevs, ","));
      }
      out.evidence.push_back(fmt::format("{} is onlined as system RAM from CXL {}{}", dax.name,
                                         dax.backing.name, devs));
      return MemoryKind::Cxl;
    }
    case DaxBacking::Source::NdNamespace: {
      addUnique(out.namespaces, dax.backing.name);
      const NdNamespace* ns = findByName(facts.namespaces, dax.backing.name);
      const NdRegion* region = ns ? findByName(facts.nd_regions, ns->region) : nullptr;
      if (region) addUnique(out.nd_regions, region->name);
      bool cxl = region && region->behind_cxl;
      // A CXL pmem region surfaces as an nd region at the same address.
      std::string cxl_origin;
      for (const auto& cxl_region : facts.cxl_regions) {
        if (!cxl || !region->start || cxl_region.start != region->start) continue;
        addUnique(out.cxl_regions, cxl_region.name);
        for (const auto& memdev : cxl_region.memdevs) addUnique(out.memdevs, memdev);
        cxl_origin = fmt::format(", CXL {} on {}", cxl_region.name, fmt::join(cxl_region.memdevs, ","));
      }
      out.evidence.push_back(fmt::format(
          "{} is onlined as system RAM from {} on {} ({})", dax.name, dax.backing.name,
          region ? region->name : "an unknown region",
          cxl ? "persistent memory behind a CXL nvdimm bridge" + cxl_origin
              : "persistent memory, " + (region ? region->provider : std::string("?"))));
      return cxl ? MemoryKind::Cxl : MemoryKind::Pmem;
    }
    case DaxBacking::Source::SoftReserved:
      out.evidence.push_back(fmt::format(
          "{} is onlined as system RAM from soft-reserved (EFI specific-purpose) memory",
          dax.name));
      return std::nullopt;  // the address window decides whether it is CXL
    case DaxBacking::Source::Unknown:
      out.evidence.push_back(fmt::format("{} is onlined as system RAM", dax.name));
      return std::nullopt;
  }
  return std::nullopt;
}

// CXL memory that firmware handed to the OS as plain RAM has no dax device;
// its physical addresses still fall inside a CXL fixed memory window.
std::optional<MemoryKind> kindFromCxlWindow(const PlatformFacts& facts, const NodeFacts& node,
                                            NodeClass& out) {
  if (!facts.memory_block_size) return std::nullopt;
  for (uint64_t block : node.memory_blocks) {
    uint64_t address = block * *facts.memory_block_size;
    for (const auto& window : facts.cxl_decoders) {
      if (!window.root || !window.start || !window.size) continue;
      if (address < *window.start || address - *window.start >= *window.size) continue;
      out.evidence.push_back(
          fmt::format("memory block {} (0x{:x}) lies in CXL window {} (0x{:x}+0x{:x})", block,
                      address, window.name, *window.start, *window.size));
      for (const auto& region : facts.cxl_regions) {
        if (region.root_decoder != window.name) continue;
        addUnique(out.cxl_regions, region.name);
        for (const auto& memdev : region.memdevs)
          addUnique(out.memdevs, memdev);
      }
      return MemoryKind::Cxl;
    }
  }
  return std::nullopt;
}

void noteHmat(const NodeFacts& node, NodeClass& out) {
  for (const auto& [label, access] :
       {std::pair{"access1", &node.access1}, std::pair{"access0", &node.access0}}) {
    if (!*access || !(*access)->read_latency_ns) continue;
    out.evidence.push_back(fmt::format(
        "HMAT {}: read latency {} ns, read bandwidth {} MiB/s {}", label,
        *(*access)->read_latency_ns, (*access)->read_bandwidth_mibps.value_or(0),
        (*access)->initiators.empty()
            ? std::string("(no initiator listed)")
            : "from initiator node(s) " + formatIdList((*access)->initiators)));
    return;
  }
}

NodeClass classifyNode(const PlatformFacts& facts, const NodeFacts& node) {
  NodeClass out;
  out.node = node.id;
  for (const auto& tier : facts.memory_tiers)
    if (contains(tier.nodes, node.id)) out.kernel_tier = tier.id;
  if (!contains(facts.nodes_with_memory, node.id)) {
    out.evidence.push_back("no memory online (not in has_memory)");
    return out;
  }
  std::optional<MemoryKind> kind;
  for (const auto& dax : facts.dax_devices) {
    if (dax.mode != "system-ram" || dax.target_node != node.id) continue;
    if (auto from_dax = kindFromDax(facts, dax, out); from_dax && !kind) kind = from_dax;
  }
  if (!kind) kind = kindFromCxlWindow(facts, node, out);
  for (const auto& memdev : facts.memdevs) {
    bool backs_node =
        std::find(out.memdevs.begin(), out.memdevs.end(), memdev.name) != out.memdevs.end();
    if (backs_node && memdev.numa_node >= 0 && *memdev.numa_node != node.id)
      out.evidence.push_back(
          fmt::format("{}'s PCI numa_node is {} (CPU affinity); its memory is this node",
                      memdev.name, *memdev.numa_node));
  }
  if (!kind && !node.cpus.empty()) {
    kind = MemoryKind::Dram;
    out.evidence.push_back(fmt::format("memory attached to CPUs {} (no CXL or PMEM backing)",
                                       formatIdList(node.cpus)));
  }
  if (!kind) {
    kind = MemoryKind::Far;
    out.evidence.push_back("CPU-less memory node with no CXL or PMEM backing");
  }
  out.kind = *kind;
  noteHmat(node, out);
  return out;
}

void warnOnKernelTiers(Topology& topology) {
  for (const auto& node : topology.nodes) {
    if (node.kind == MemoryKind::Dram || node.kind == MemoryKind::None || !node.kernel_tier)
      continue;
    for (const auto& other : topology.nodes) {
      if (other.kind != MemoryKind::Dram || other.kernel_tier != node.kernel_tier) continue;
      topology.warnings.push_back(fmt::format(
          "node {} ({}) shares the kernel's memory_tier{} with DRAM node {}: the kernel will not "
          "demote to it; tierd orders it by its own evidence",
          node.node, kindName(node.kind), *node.kernel_tier, other.node));
      break;
    }
  }
}

// --- ordering -------------------------------------------------------------

struct SortKey {
  double primary = 0, secondary = 0;
};

std::optional<SortKey> hmatKey(const NodeFacts& target, int initiator) {
  for (const auto* access : {&target.access1, &target.access0}) {
    if (!*access || !contains((*access)->initiators, initiator)) continue;
    auto latency =
        (*access)->read_latency_ns ? (*access)->read_latency_ns : (*access)->write_latency_ns;
    if (!latency) continue;
    auto bandwidth = (*access)->read_bandwidth_mibps.value_or(0);
    return SortKey{static_cast<double>(*latency), -static_cast<double>(bandwidth)};
  }
  return std::nullopt;
}

// Between equal distances, the kernel's memory tier (its abstract distance,
// which also draws on CDAT and driver defaults) breaks the tie.
double kernelTierOf(const NodeClass& node) {
  return node.kernel_tier ? static_cast<double>(*node.kernel_tier) : 1e9;
}

std::optional<SortKey> distanceKey(const NodeFacts* from, const NodeClass& target) {
  if (!from) return std::nullopt;
  auto it = from->distance.find(target.node);
  if (it == from->distance.end()) return std::nullopt;
  return SortKey{static_cast<double>(it->second), kernelTierOf(target)};
}

SortKey kindKey(const NodeClass& node, const NodeFacts& facts, int initiator) {
  int order = 5;
  switch (node.kind) {
    case MemoryKind::Dram:
      order = contains(facts.cpus, initiator) || node.node == initiator ? 0 : 1;
      break;
    case MemoryKind::Cxl:
      order = 2;
      break;
    case MemoryKind::Far:
      order = 3;
      break;
    case MemoryKind::Pmem:
      order = 4;
      break;
    case MemoryKind::None:
      order = 5;
      break;
  }
  return SortKey{static_cast<double>(order), kernelTierOf(node)};
}

InitiatorTiers orderFor(const Topology& topology, int initiator, const TopologyOptions& options) {
  std::vector<const NodeClass*> members;
  for (const auto& node : topology.nodes)
    if (node.kind != MemoryKind::None) members.push_back(&node);

  auto keyed = [&](auto key_of) {
    std::vector<std::pair<SortKey, const NodeClass*>> keys;
    for (const auto* node : members) {
      auto key = key_of(*node);
      if (!key) return std::vector<std::pair<SortKey, const NodeClass*>>{};
      keys.emplace_back(*key, node);
    }
    return keys;
  };
  InitiatorTiers result;
  result.initiator = initiator;
  auto keys =
      keyed([&](const NodeClass& n) { return hmatKey(*topology.nodeFacts(n.node), initiator); });
  result.ordered_by = TierMetric::Hmat;
  if (keys.empty()) {
    keys = keyed([&](const NodeClass& n) { return distanceKey(topology.nodeFacts(initiator), n); });
    result.ordered_by = TierMetric::Distance;
  }
  if (keys.empty()) {
    keys = keyed([&](const NodeClass& n) -> std::optional<SortKey> {
      return kindKey(n, *topology.nodeFacts(n.node), initiator);
    });
    result.ordered_by = TierMetric::Kind;
  }
  std::sort(keys.begin(), keys.end(), [](const auto& a, const auto& b) {
    if (a.first.primary != b.first.primary) return a.first.primary < b.first.primary;
    if (a.first.secondary != b.first.secondary) return a.first.secondary < b.first.secondary;
    return a.second->node < b.second->node;
  });
  double tolerance = result.ordered_by == TierMetric::Distance ? options.same_tier_distance_tolerance
                                                                : options.same_tier_tolerance;
  const std::pair<SortKey, const NodeClass*>* head = nullptr;
  for (const auto& entry : keys) {
    bool new_tier = !head || entry.second->kind != head->second->kind ||
                    entry.first.primary > head->first.primary * (1.0 + tolerance);
    if (new_tier) {
      head = &entry;
      result.tiers.push_back(Tier{static_cast<int>(result.tiers.size()), {}});
    }
    result.tiers.back().nodes.push_back(entry.second->node);
  }
  return result;
}

void applyOverrides(InitiatorTiers& order, const std::map<int, int>& overrides) {
  for (const auto& [node, rank] : overrides) {
    bool present = false;
    for (auto& tier : order.tiers) {
      auto it = std::find(tier.nodes.begin(), tier.nodes.end(), node);
      if (it != tier.nodes.end()) {
        tier.nodes.erase(it);
        present = true;
      }
    }
    if (!present || rank < 0) continue;
    size_t slot = std::min(static_cast<size_t>(rank), order.tiers.size());
    if (slot == order.tiers.size()) order.tiers.push_back(Tier{});
    auto& nodes = order.tiers[slot].nodes;
    nodes.insert(std::upper_bound(nodes.begin(), nodes.end(), node), node);
  }
  std::erase_if(order.tiers, [](const Tier& tier) { return tier.nodes.empty(); });
  for (size_t i = 0; i < order.tiers.size(); ++i)
    order.tiers[i].rank = static_cast<int>(i);
}

}  // namespace

std::string_view kindName(MemoryKind kind) {
  switch (kind) {
    case MemoryKind::Dram:
      return "dram";
    case MemoryKind::Cxl:
      return "cxl";
    case MemoryKind::Pmem:
      return "pmem";
    case MemoryKind::Far:
      return "far";
    case MemoryKind::None:
      return "none";
  }
  return "none";
}

std::string_view metricName(TierMetric metric) {
  switch (metric) {
    case TierMetric::Hmat:
      return "hmat";
    case TierMetric::Distance:
      return "distance";
    case TierMetric::Kind:
      return "kind";
  }
  return "kind";
}

std::optional<int> InitiatorTiers::rankOf(int node) const {
  for (const auto& tier : tiers)
    if (contains(tier.nodes, node)) return tier.rank;
  return std::nullopt;
}

const NodeFacts* Topology::nodeFacts(int node) const {
  for (const auto& facts_node : facts.nodes)
    if (facts_node.id == node) return &facts_node;
  return nullptr;
}

const NodeClass* Topology::nodeClass(int node) const {
  for (const auto& entry : nodes)
    if (entry.node == node) return &entry;
  return nullptr;
}

std::optional<int> Topology::homeRank(int node) const {
  const NodeFacts* node_facts = nodeFacts(node);
  if (!node_facts) return std::nullopt;
  std::optional<int> home;
  if (!node_facts->cpus.empty()) home = node;
  for (const auto* access : {&node_facts->access1, &node_facts->access0})
    if (!home && *access && !(*access)->initiators.empty()) home = (*access)->initiators.front();
  if (!home) {
    int best = INT32_MAX;
    for (const auto& order : initiators) {
      const auto& row = nodeFacts(order.initiator)->distance;
      auto it = row.find(node);
      int distance = it == row.end() ? INT32_MAX - 1 : it->second;
      if (distance < best) best = distance, home = order.initiator;
    }
  }
  for (const auto& order : initiators)
    if (home && order.initiator == *home) return order.rankOf(node);
  return std::nullopt;
}

Topology buildTopology(PlatformFacts facts, const TopologyOptions& options) {
  Topology topology;
  topology.facts = std::move(facts);
  for (const auto& node : topology.facts.nodes)
    topology.nodes.push_back(classifyNode(topology.facts, node));
  warnOnKernelTiers(topology);
  for (const auto& node : topology.facts.nodes) {
    if (node.cpus.empty()) continue;
    auto order = orderFor(topology, node.id, options);
    applyOverrides(order, options.tier_override);
    topology.initiators.push_back(std::move(order));
  }
  for (const auto& [node, rank] : options.tier_override) {
    auto entry = std::find_if(topology.nodes.begin(), topology.nodes.end(),
                              [node](const NodeClass& c) { return c.node == node; });
    if (entry != topology.nodes.end())
      entry->evidence.push_back(fmt::format("tier rank {} set by configuration", rank));
    else
      topology.warnings.push_back(
          fmt::format("tier override names node {}, which is not online", node));
  }
  return topology;
}

}  // namespace tier
