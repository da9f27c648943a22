#include "topology_text.h"

#include <fmt/format.h>

#include <algorithm>

#include "parse/parsers.h"
#include "units.h"

namespace tierctl {
namespace {

std::string perfColumns(const tier::NodeFacts& facts, int initiator) {
  for (const auto* access : {&facts.access1, &facts.access0}) {
    if (!*access || !(*access)->read_latency_ns) continue;
    bool from_here = std::find((*access)->initiators.begin(), (*access)->initiators.end(),
                               initiator) != (*access)->initiators.end();
    return fmt::format("{:>5} ns {:>7} MiB/s{}", *(*access)->read_latency_ns,
                       (*access)->read_bandwidth_mibps.value_or(0), from_here ? "" : " (remote)");
  }
  return fmt::format("{:>22}", "-");
}

std::string backingColumn(const tier::NodeClass& node) {
  std::vector<std::string> parts;
  for (const auto* list :
       {&node.memdevs, &node.cxl_regions, &node.nd_regions, &node.namespaces, &node.dax_devices})
    for (const auto& name : *list)  // a CXL pmem region and its nd region share a name
      if (std::find(parts.begin(), parts.end(), name) == parts.end()) parts.push_back(name);
  return fmt::format("{}", fmt::join(parts, " "));
}

void appendInitiator(std::string& out, const tier::Topology& topology,
                     const tier::InitiatorTiers& order) {
  out += fmt::format("From node {} (CPUs {}), ordered by {}:\n", order.initiator,
                     tier::formatIdList(topology.nodeFacts(order.initiator)->cpus),
                     metricName(order.ordered_by));
  out += fmt::format("  {:<5} {:<5} {:<5} {:>11} {:>11} {:>22}  {:<12} {}\n", "TIER", "NODE",
                     "KIND", "SIZE", "FREE", "LATENCY  BANDWIDTH", "MEMORY_TIER", "BACKING");
  for (const auto& tier : order.tiers) {
    for (int id : tier.nodes) {
      const auto& facts = *topology.nodeFacts(id);
      const auto& node = *topology.nodeClass(id);
      std::string line =
          fmt::format("  {:<5} {:<5} {:<5} {:>11} {:>11} {}  {:<12} {}", tier.rank, id,
                      kindName(node.kind), facts.total_bytes ? shortSize(*facts.total_bytes) : "-",
                      facts.free_bytes ? shortSize(*facts.free_bytes) : "-",
                      perfColumns(facts, order.initiator),
                      node.kernel_tier ? "memory_tier" + std::to_string(*node.kernel_tier) : "-",
                      backingColumn(node));
      out += "  " + std::string(tier::trim(line)) + "\n";
    }
  }
}

}  // namespace

std::string topologyText(const tier::Topology& topology, bool verbose) {
  std::string out;
  for (const auto& order : topology.initiators) {
    if (!out.empty()) out += "\n";
    appendInitiator(out, topology, order);
  }
  if (topology.initiators.empty()) out += "No node with CPUs: no tiers to order.\n";
  if (verbose) {
    out += "\nEvidence:\n";
    for (const auto& node : topology.nodes)
      for (const auto& line : node.evidence)
        out += fmt::format("  node {} ({}): {}\n", node.node, kindName(node.kind), line);
    for (const auto& note : topology.facts.notes)
      out += fmt::format("  note: {}\n", note);
  }
  for (const auto& warning : topology.warnings)
    out += fmt::format("\nwarning: {}\n", warning);
  return out;
}

std::string numactlHardwareText(const tier::Topology& topology) {
  const auto& facts = topology.facts;
  std::string out = fmt::format("available: {} nodes ({})\n", facts.online_nodes.size(),
                                tier::formatIdList(facts.online_nodes));
  for (const auto& node : facts.nodes) {
    out += fmt::format("node {} cpus:", node.id);
    for (int cpu : node.cpus)
      out += fmt::format(" {}", cpu);
    out += "\n";
    out += fmt::format("node {} size: {} MB\n", node.id, node.total_bytes.value_or(0) >> 20);
    out += fmt::format("node {} free: {} MB\n", node.id, node.free_bytes.value_or(0) >> 20);
  }
  bool have_distances = !facts.nodes.empty() && !facts.nodes.front().distance.empty();
  if (!have_distances) return out + "No distance information available.\n";
  out += "node distances:\nnode ";
  for (const auto& node : facts.nodes)
    out += fmt::format("{: 3d} ", node.id);
  out += "\n";
  for (const auto& from : facts.nodes) {
    out += fmt::format("{: 3d}: ", from.id);
    for (const auto& to : facts.nodes) {
      auto it = from.distance.find(to.id);
      out += fmt::format("{: 3d} ", it == from.distance.end() ? 0 : it->second);
    }
    out += "\n";
  }
  return out;
}

}  // namespace tierctl
