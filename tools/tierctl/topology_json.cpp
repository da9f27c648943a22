#include "topology_json.h"

#include "parse/parsers.h"
#include "units.h"

namespace tierctl {
namespace {

// Values under 5000 KiB stay numbers even with -u, as in ndctl.
Json size(uint64_t bytes, const JsonStyle& style) {
  if (style.human && bytes >= 5000 * 1024ULL) return humanSize(bytes);
  return bytes;
}

Json address(uint64_t value, const JsonStyle& style) {
  if (style.human) return hex(value);
  return value;
}

template <typename T>
void putIf(Json& object, const char* key, const std::optional<T>& value) {
  if (value) object[key] = *value;
}

void putList(Json& object, const char* key, const std::vector<std::string>& values) {
  if (!values.empty()) object[key] = values;
}

Json accessJson(const tier::AccessClass& access) {
  Json out;
  out["initiators"] = access.initiators;
  putIf(out, "read_latency_ns", access.read_latency_ns);
  putIf(out, "write_latency_ns", access.write_latency_ns);
  putIf(out, "read_bandwidth_mibps", access.read_bandwidth_mibps);
  putIf(out, "write_bandwidth_mibps", access.write_bandwidth_mibps);
  return out;
}

Json nodeJson(const tier::Topology& topology, const tier::NodeClass& node, const JsonStyle& style) {
  const tier::NodeFacts& facts = *topology.nodeFacts(node.node);
  Json out;
  out["node"] = node.node;
  out["kind"] = std::string(kindName(node.kind));
  putIf(out, "tier", topology.homeRank(node.node));
  out["cpus"] = tier::formatIdList(facts.cpus);
  if (facts.total_bytes) out["size"] = size(*facts.total_bytes, style);
  if (facts.free_bytes) out["free"] = size(*facts.free_bytes, style);
  putIf(out, "memory_tier", node.kernel_tier);
  if (facts.access1) out["access1"] = accessJson(*facts.access1);
  if (facts.access0) out["access0"] = accessJson(*facts.access0);
  if (!facts.distance.empty()) {
    Json distances = Json::object();
    for (const auto& [to, distance] : facts.distance)
      distances["node" + std::to_string(to)] = distance;
    out["distances"] = distances;
  }
  if (!facts.memory_side_caches.empty()) {
    Json caches = Json::array();
    for (const auto& cache : facts.memory_side_caches) {
      Json entry;
      entry["index"] = cache.index;
      if (cache.size) entry["size"] = size(*cache.size, style);
      putIf(entry, "line_size", cache.line_size);
      putIf(entry, "indexing", cache.indexing);
      putIf(entry, "write_policy", cache.write_policy);
      caches.push_back(entry);
    }
    out["memory_side_caches"] = caches;
  }
  putList(out, "memdevs", node.memdevs);
  putList(out, "cxl_regions", node.cxl_regions);
  putList(out, "dax_devices", node.dax_devices);
  putList(out, "namespaces", node.namespaces);
  putList(out, "nd_regions", node.nd_regions);
  out["evidence"] = node.evidence;
  return out;
}

Json initiatorsJson(const tier::Topology& topology) {
  Json list = Json::array();
  for (const auto& order : topology.initiators) {
    Json entry;
    entry["initiator"] = order.initiator;
    entry["cpus"] = tier::formatIdList(topology.nodeFacts(order.initiator)->cpus);
    entry["ordered_by"] = std::string(metricName(order.ordered_by));
    Json tiers = Json::array();
    for (const auto& tier : order.tiers) {
      Json t;
      t["tier"] = tier.rank;
      t["kind"] = std::string(kindName(topology.nodeClass(tier.nodes.front())->kind));
      t["nodes"] = tier.nodes;
      tiers.push_back(t);
    }
    entry["tiers"] = tiers;
    list.push_back(entry);
  }
  return list;
}

Json memdevJson(const tier::CxlMemdev& memdev, const JsonStyle& style) {
  Json out;
  out["memdev"] = memdev.name;
  if (memdev.serial) out["serial"] = address(*memdev.serial, style);
  out["ram_size"] = size(memdev.ram_size, style);
  out["pmem_size"] = size(memdev.pmem_size, style);
  putIf(out, "firmware_version", memdev.firmware_version);
  putIf(out, "host", memdev.host);
  putIf(out, "numa_node", memdev.numa_node);
  if (memdev.health) {
    const auto& h = *memdev.health;
    Json health = Json::object();
    putIf(health, "maintenance_needed", h.maintenance_needed);
    putIf(health, "performance_degraded", h.performance_degraded);
    putIf(health, "hw_replacement_needed", h.hw_replacement_needed);
    putIf(health, "media_status", h.media_status);
    putIf(health, "life_used_percent", h.life_used_percent);
    putIf(health, "temperature", h.temperature_celsius);
    putIf(health, "dirty_shutdowns", h.dirty_shutdowns);
    out["health"] = health;
  }
  return out;
}

Json portJson(const tier::CxlPort& port) {
  Json out;
  out["port"] = port.name;
  if (!port.parent.empty()) out["parent"] = port.parent;
  putIf(out, "host", port.host);
  out["depth"] = port.depth;
  return out;
}

Json decoderJson(const tier::CxlDecoder& decoder, const JsonStyle& style) {
  Json out;
  out["decoder"] = decoder.name;
  out["port"] = decoder.port;
  out["root"] = decoder.root;
  if (decoder.start) out["resource"] = address(*decoder.start, style);
  if (decoder.size) out["size"] = size(*decoder.size, style);
  putIf(out, "mode", decoder.mode);
  putIf(out, "interleave_ways", decoder.interleave_ways);
  putIf(out, "region", decoder.region);
  return out;
}

Json regionJson(const tier::CxlRegion& region, const JsonStyle& style) {
  Json out;
  out["region"] = region.name;
  if (region.start) out["resource"] = address(*region.start, style);
  out["size"] = size(region.size, style);
  putIf(out, "type", region.mode);
  putIf(out, "interleave_ways", region.interleave_ways);
  putIf(out, "interleave_granularity", region.interleave_granularity);
  if (region.committed) out["decode_state"] = *region.committed ? "commit" : "reset";
  out["decoder"] = region.root_decoder;
  out["memdevs"] = region.memdevs;
  return out;
}

std::string_view backingSource(tier::DaxBacking::Source source) {
  switch (source) {
    case tier::DaxBacking::Source::CxlRegion:
      return "cxl_region";
    case tier::DaxBacking::Source::NdNamespace:
      return "namespace";
    case tier::DaxBacking::Source::SoftReserved:
      return "soft_reserved";
    case tier::DaxBacking::Source::Unknown:
      return "unknown";
  }
  return "unknown";
}

Json daxJson(const tier::DaxDevice& dax, const JsonStyle& style) {
  Json out;
  out["chardev"] = dax.name;
  out["size"] = size(dax.size, style);
  putIf(out, "target_node", dax.target_node);
  putIf(out, "numa_node", dax.numa_node);
  out["mode"] = dax.mode;
  if (dax.mode == "system-ram") {
    out["online_memblocks"] = dax.online_memblocks;
    out["total_memblocks"] = dax.total_memblocks;
    putIf(out, "movable", dax.movable);
  }
  out["source"] = std::string(backingSource(dax.backing.source));
  if (!dax.backing.name.empty()) out["backing"] = dax.backing.name;
  return out;
}

Json namespaceJson(const tier::NdNamespace& ns, const JsonStyle& style) {
  Json out;
  out["dev"] = ns.name;
  putIf(out, "mode", ns.mode);
  out["size"] = size(ns.size, style);
  out["region"] = ns.region;
  putIf(out, "chardev", ns.chardev);
  return out;
}

Json ndRegionJson(const tier::NdRegion& region, const JsonStyle& style) {
  Json out;
  out["dev"] = region.name;
  out["size"] = size(region.size, style);
  out["bus"] = region.bus;
  out["provider"] = region.provider;
  if (region.start) out["resource"] = address(*region.start, style);
  out["behind_cxl"] = region.behind_cxl;
  putIf(out, "target_node", region.target_node);
  putIf(out, "numa_node", region.numa_node);
  return out;
}

template <typename T, typename Fn>
Json listOf(const std::vector<T>& items, Fn&& render) {
  Json list = Json::array();
  for (const auto& item : items)
    list.push_back(render(item));
  return list;
}

Json kernelJson(const tier::PlatformFacts& facts) {
  Json out = Json::object();
  putIf(out, "numa_balancing", facts.kernel.numa_balancing);
  putIf(out, "demotion_enabled", facts.kernel.demotion_enabled);
  putIf(out, "promote_rate_limit_mbps", facts.kernel.promote_rate_limit_mbps);
  out["memory_tiers"] = listOf(facts.memory_tiers, [](const tier::KernelMemoryTier& tier) {
    Json t;
    t["memory_tier"] = tier.id;
    t["nodes"] = tier.nodes;
    return t;
  });
  return out;
}

}  // namespace

Json topologyToJson(const tier::Topology& topology, const JsonStyle& style) {
  const auto& facts = topology.facts;
  Json out;
  out["initiators"] = initiatorsJson(topology);
  out["nodes"] =
      listOf(topology.nodes, [&](const auto& n) { return nodeJson(topology, n, style); });
  out["memdevs"] = listOf(facts.memdevs, [&](const auto& m) { return memdevJson(m, style); });
  out["cxl_ports"] = listOf(facts.cxl_ports, [](const auto& p) { return portJson(p); });
  out["cxl_decoders"] =
      listOf(facts.cxl_decoders, [&](const auto& d) { return decoderJson(d, style); });
  out["cxl_regions"] =
      listOf(facts.cxl_regions, [&](const auto& r) { return regionJson(r, style); });
  out["dax_devices"] = listOf(facts.dax_devices, [&](const auto& d) { return daxJson(d, style); });
  out["namespaces"] =
      listOf(facts.namespaces, [&](const auto& n) { return namespaceJson(n, style); });
  out["nd_regions"] =
      listOf(facts.nd_regions, [&](const auto& r) { return ndRegionJson(r, style); });
  out["kernel"] = kernelJson(facts);
  out["warnings"] = topology.warnings;
  out["notes"] = facts.notes;
  return out;
}

}  // namespace tierctl
