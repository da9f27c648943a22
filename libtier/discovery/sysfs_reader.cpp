#include "discovery/sysfs_reader.h"

#include <unistd.h>

#include <fmt/format.h>
#include <algorithm>
#include <regex>

#include "parse/parsers.h"

namespace tier {
namespace {

constexpr std::string_view kNodeDir = "devices/system/node";
constexpr std::string_view kMemoryDir = "devices/system/memory";
constexpr std::string_view kTierDir = "devices/virtual/memory_tiering";
constexpr std::string_view kCxlDevices = "bus/cxl/devices";
constexpr std::string_view kDaxDevices = "bus/dax/devices";
constexpr std::string_view kNdDevices = "bus/nd/devices";

// Attribute readers: a missing or unparsable attribute is simply absent.
std::optional<std::string> readText(const FsRoot& root, const std::string& path) {
  auto text = root.readFile(path);
  if (!text) return std::nullopt;
  return std::string(trim(*text));
}

std::optional<uint64_t> readU64(const FsRoot& root, const std::string& path) {
  auto text = root.readFile(path);
  if (!text) return std::nullopt;
  auto value = parseU64(*text);
  return value ? std::optional(*value) : std::nullopt;
}

std::optional<int> readInt(const FsRoot& root, const std::string& path) {
  auto text = root.readFile(path);
  if (!text) return std::nullopt;
  auto value = parseI64(*text);
  return value ? std::optional(static_cast<int>(*value)) : std::nullopt;
}

std::optional<std::vector<int>> readIdList(const FsRoot& root, const std::string& path) {
  auto text = root.readFile(path);
  if (!text) return std::nullopt;
  auto ids = parseIdList(*text);
  return ids ? std::optional(*ids) : std::nullopt;
}

std::vector<std::string> listMatching(const FsRoot& root, std::string_view dir,
                                      const std::regex& pattern) {
  std::vector<std::string> names;
  if (auto entries = root.listDir(dir))
    for (auto& name : *entries)
      if (std::regex_match(name, pattern)) names.push_back(std::move(name));
  return names;
}

int numericSuffix(const std::string& name) {
  size_t pos = name.find_last_not_of("0123456789");
  return std::stoi(name.substr(pos + 1));
}

std::vector<std::string> pathComponents(const std::string& path) {
  std::vector<std::string> parts;
  std::string rest = path;
  while (!rest.empty()) {
    parts.insert(parts.begin(), baseName(rest));
    rest = parentPath(rest);
  }
  return parts;
}

// --- nodes ---------------------------------------------------------------

std::optional<AccessClass> readAccessClass(const FsRoot& sys, const std::string& node_dir,
                                           int klass) {
  std::string dir = fmt::format("{}/access{}/initiators", node_dir, klass);
  if (!sys.isDir(dir)) return std::nullopt;
  AccessClass access;
  static const std::regex kNodeLink("node[0-9]+");
  for (const auto& name : listMatching(sys, dir, kNodeLink))
    access.initiators.push_back(numericSuffix(name));
  // The kernel shows 0 for a domain the firmware's HMAT left out: no data.
  auto measured = [&](const char* name) {
    auto value = readU64(sys, dir + "/" + name);
    return value == 0u ? std::nullopt : value;
  };
  access.read_latency_ns = measured("read_latency");
  access.write_latency_ns = measured("write_latency");
  access.read_bandwidth_mibps = measured("read_bandwidth");
  access.write_bandwidth_mibps = measured("write_bandwidth");
  return access;
}

std::vector<MemorySideCache> readMemorySideCaches(const FsRoot& sys, const std::string& node_dir) {
  std::vector<MemorySideCache> caches;
  static const std::regex kIndex("index[0-9]+");
  std::string dir = node_dir + "/memory_side_cache";
  for (const auto& name : listMatching(sys, dir, kIndex)) {
    std::string base = dir + "/" + name;
    caches.push_back(MemorySideCache{
        numericSuffix(name), readU64(sys, base + "/size"), readU64(sys, base + "/line_size"),
        readU64(sys, base + "/indexing"), readU64(sys, base + "/write_policy")});
  }
  return caches;
}

NodeFacts readNode(const FsRoot& sys, int id, const std::vector<int>& online) {
  NodeFacts node;
  node.id = id;
  std::string dir = fmt::format("{}/node{}", kNodeDir, id);
  node.cpus = readIdList(sys, dir + "/cpulist").value_or(std::vector<int>{});
  if (auto memory = readNodeMemory(sys, id)) {
    node.total_bytes = memory->total_bytes;
    node.free_bytes = memory->free_bytes;
  }
  if (auto text = sys.readFile(dir + "/distance")) {
    // The row lists distances to the online nodes, in order.
    if (auto row = parseDistanceRow(*text); row && row->size() == online.size())
      for (size_t i = 0; i < row->size(); ++i)
        node.distance[online[i]] = (*row)[i];
  }
  node.access0 = readAccessClass(sys, dir, 0);
  node.access1 = readAccessClass(sys, dir, 1);
  node.memory_side_caches = readMemorySideCaches(sys, dir);
  static const std::regex kBlock("memory[0-9]+");
  for (const auto& name : listMatching(sys, dir, kBlock))
    node.memory_blocks.push_back(static_cast<uint64_t>(numericSuffix(name)));
  std::sort(node.memory_blocks.begin(), node.memory_blocks.end());
  return node;
}

Result<void> readNodes(const FsRoot& sys, PlatformFacts& facts) {
  auto entries = sys.listDir(kNodeDir);
  if (!entries)
    return fail(entries.error().errnum,
                fmt::format("no NUMA node information: cannot list {}/{}", sys.dir(), kNodeDir));
  std::string base(kNodeDir);
  auto online = readIdList(sys, base + "/online");
  if (!online) {
    // A kernel without the state files still has the nodeN directories.
    facts.notes.push_back("node/online is missing; using the nodeN directories");
    online.emplace();
    static const std::regex kNode("node[0-9]+");
    for (const auto& name : *entries)
      if (std::regex_match(name, kNode)) online->push_back(numericSuffix(name));
    std::sort(online->begin(), online->end());
  }
  facts.online_nodes = *online;
  facts.possible_nodes = readIdList(sys, base + "/possible").value_or(*online);
  facts.nodes_with_cpu = readIdList(sys, base + "/has_cpu").value_or(std::vector<int>{});
  facts.nodes_with_normal_memory =
      readIdList(sys, base + "/has_normal_memory").value_or(std::vector<int>{});
  for (int id : facts.online_nodes)
    facts.nodes.push_back(readNode(sys, id, facts.online_nodes));
  if (auto has_memory = readIdList(sys, base + "/has_memory")) {
    facts.nodes_with_memory = *has_memory;
  } else {
    for (const auto& node : facts.nodes)
      if (node.total_bytes.value_or(0) > 0) facts.nodes_with_memory.push_back(node.id);
  }
  if (facts.nodes_with_cpu.empty())
    for (const auto& node : facts.nodes)
      if (!node.cpus.empty()) facts.nodes_with_cpu.push_back(node.id);
  bool any_hmat = std::any_of(facts.nodes.begin(), facts.nodes.end(),
                              [](const NodeFacts& n) { return n.access0 || n.access1; });
  if (!any_hmat) facts.notes.push_back("no HMAT access attributes (firmware or kernel lacks HMAT)");
  return {};
}

void readMemoryTiers(const FsRoot& sys, PlatformFacts& facts) {
  facts.memory_block_size = [&]() -> std::optional<uint64_t> {
    // block_size_bytes is hex without a 0x prefix.
    auto text = readText(sys, std::string(kMemoryDir) + "/block_size_bytes");
    if (!text) return std::nullopt;
    auto value = parseU64("0x" + *text);
    return value ? std::optional(*value) : std::nullopt;
  }();
  static const std::regex kTier("memory_tier[0-9]+");
  auto tiers = listMatching(sys, kTierDir, kTier);
  if (tiers.empty()) facts.notes.push_back("no memory_tiering in sysfs (kernel before 6.1?)");
  for (const auto& name : tiers) {
    std::string dir = fmt::format("{}/{}", kTierDir, name);
    auto nodes = readIdList(sys, dir + "/nodelist");
    if (!nodes) nodes = readIdList(sys, dir + "/nodes");  // the name in early patches
    facts.memory_tiers.push_back(
        KernelMemoryTier{numericSuffix(name), nodes.value_or(std::vector<int>{})});
  }
  std::sort(facts.memory_tiers.begin(), facts.memory_tiers.end(),
            [](const auto& a, const auto& b) { return a.id < b.id; });
  if (auto text = readText(sys, "kernel/mm/numa/demotion_enabled"))
    if (auto value = parseBool(*text)) facts.kernel.demotion_enabled = *value;
}

void readProcKnobs(const FsRoot* proc, PlatformFacts& facts) {
  if (!proc) return;
  facts.kernel.numa_balancing = readInt(*proc, "sys/kernel/numa_balancing");
  facts.kernel.promote_rate_limit_mbps =
      readU64(*proc, "sys/kernel/numa_balancing_promote_rate_limit_MBps");
}

// --- CXL -----------------------------------------------------------------

std::string memdevOfEndpointDecoder(const FsRoot& sys, const std::string& decoder) {
  // decoderP.N belongs to port P; for an endpoint that is endpointP, whose
  // uport link points at the memdev.
  size_t dot = decoder.find('.');
  std::string port = "endpoint" + decoder.substr(7, dot - 7);
  auto uport = sys.readLink(fmt::format("{}/{}/uport", kCxlDevices, port));
  return uport ? baseName(*uport) : decoder;
}

void readCxl(const FsRoot& sys, PlatformFacts& facts) {
  auto entries = sys.listDir(kCxlDevices);
  if (!entries) {
    facts.notes.push_back("no CXL bus in sysfs (cxl_core not loaded or no CXL)");
    return;
  }
  static const std::regex kMem("mem[0-9]+"), kDecoder("decoder[0-9]+\\.[0-9]+"),
      kRegion("region[0-9]+"), kTarget("target[0-9]+"), kPort("(root|port|endpoint)[0-9]+");
  for (const auto& name : *entries) {
    std::string dir = fmt::format("{}/{}", kCxlDevices, name);
    if (std::regex_match(name, kMem)) {
      CxlMemdev memdev;
      memdev.name = name;
      memdev.serial = readU64(sys, dir + "/serial");
      memdev.ram_size = readU64(sys, dir + "/ram/size").value_or(0);
      memdev.pmem_size = readU64(sys, dir + "/pmem/size").value_or(0);
      memdev.firmware_version = readText(sys, dir + "/firmware_version");
      memdev.numa_node = readInt(sys, dir + "/numa_node");
      if (auto path = sys.resolve(dir)) memdev.host = baseName(parentPath(*path));
      facts.memdevs.push_back(std::move(memdev));
    } else if (std::regex_match(name, kDecoder)) {
      CxlDecoder decoder;
      decoder.name = name;
      if (auto path = sys.resolve(dir)) decoder.port = baseName(parentPath(*path));
      decoder.root = decoder.port.starts_with("root");
      decoder.start = readU64(sys, dir + "/start");
      decoder.size = readU64(sys, dir + "/size");
      if (!decoder.root) decoder.mode = readText(sys, dir + "/mode");
      decoder.interleave_ways = readInt(sys, dir + "/interleave_ways");
      if (auto region = readText(sys, dir + "/region"); region && !region->empty())
        decoder.region = *region;
      facts.cxl_decoders.push_back(std::move(decoder));
    } else if (std::regex_match(name, kPort)) {
      CxlPort port;
      port.name = name;
      if (auto path = sys.resolve(dir)) {
        std::string parent = baseName(parentPath(*path));
        if (std::regex_match(parent, kPort)) port.parent = parent;
        for (const auto& part : pathComponents(parentPath(*path)))
          port.depth += std::regex_match(part, kPort) ? 1 : 0;
      }
      if (auto uport = sys.readLink(dir + "/uport")) port.host = baseName(*uport);
      facts.cxl_ports.push_back(std::move(port));
    } else if (std::regex_match(name, kRegion)) {
      CxlRegion region;
      region.name = name;
      region.mode = readText(sys, dir + "/mode");
      region.size = readU64(sys, dir + "/size").value_or(0);
      region.start = readU64(sys, dir + "/resource");
      region.interleave_ways = readInt(sys, dir + "/interleave_ways");
      region.interleave_granularity = readInt(sys, dir + "/interleave_granularity");
      if (auto commit = readText(sys, dir + "/commit"))
        if (auto value = parseBool(*commit)) region.committed = *value;
      if (auto path = sys.resolve(dir)) region.root_decoder = baseName(parentPath(*path));
      for (const auto& target : listMatching(sys, dir, kTarget))
        if (auto decoder = readText(sys, dir + "/" + target); decoder && !decoder->empty())
          region.memdevs.push_back(memdevOfEndpointDecoder(sys, *decoder));
      facts.cxl_regions.push_back(std::move(region));
    }
  }
}

// --- dax and nvdimm ------------------------------------------------------

// Reads a dax device's ancestry: .../decoderX.Y/regionN/dax_regionN/daxN.M
// is a CXL region; .../ndbusB/regionR/daxR.K/daxR.K is a namespace in devdax
// mode; .../hmem.N/... is soft-reserved memory handed to dax_hmem.
DaxBacking backingOf(const FsRoot& sys, const std::string& path) {
  static const std::regex kDecoder("decoder[0-9]+\\.[0-9]+"), kRegion("region[0-9]+"),
      kNdDax("dax[0-9]+\\.[0-9]+");
  auto parts = pathComponents(path);
  for (size_t i = 1; i < parts.size(); ++i) {
    if (std::regex_match(parts[i], kRegion) && std::regex_match(parts[i - 1], kDecoder))
      return {DaxBacking::Source::CxlRegion, parts[i]};
    if (std::regex_match(parts[i], kNdDax) && std::regex_match(parts[i - 1], kRegion) &&
        i + 1 < parts.size()) {
      std::string nd_dax;
      for (size_t j = 0; j <= i; ++j)
        nd_dax = joinPath(nd_dax, parts[j]);
      if (auto ns = readText(sys, nd_dax + "/namespace"); ns && !ns->empty())
        return {DaxBacking::Source::NdNamespace, *ns};
    }
    if (parts[i].starts_with("hmem")) return {DaxBacking::Source::SoftReserved, parts[i]};
  }
  return {};
}

void countMemblocks(const FsRoot& sys, const PlatformFacts& facts, DaxDevice& dax) {
  if (!dax.start || !facts.memory_block_size || *facts.memory_block_size == 0) return;
  uint64_t block_size = *facts.memory_block_size;
  uint64_t first = (*dax.start + block_size - 1) / block_size;
  uint64_t end = (*dax.start + dax.size) / block_size;
  bool all_movable = true;
  for (uint64_t block = first; block < end; ++block) {
    std::string dir = fmt::format("{}/memory{}", kMemoryDir, block);
    auto state = readText(sys, dir + "/state");
    if (!state) continue;  // not hot-added (yet)
    ++dax.total_memblocks;
    if (*state != "online") continue;
    ++dax.online_memblocks;
    auto zones = readText(sys, dir + "/valid_zones");
    if (!zones || !zones->starts_with("Movable")) all_movable = false;
  }
  if (dax.online_memblocks > 0) dax.movable = all_movable;
}

void readDax(const FsRoot& sys, PlatformFacts& facts) {
  static const std::regex kDax("dax[0-9]+\\.[0-9]+");
  auto names = listMatching(sys, kDaxDevices, kDax);
  for (const auto& name : names) {
    std::string dir = fmt::format("{}/{}", kDaxDevices, name);
    DaxDevice dax;
    dax.name = name;
    dax.region = name.substr(3, name.find('.') - 3);
    dax.size = readU64(sys, dir + "/size").value_or(0);
    dax.target_node = readInt(sys, dir + "/target_node");
    dax.numa_node = readInt(sys, dir + "/numa_node");
    dax.start = readU64(sys, dir + "/resource");
    auto driver = sys.readLink(dir + "/driver");
    dax.mode = driver && baseName(*driver) == "kmem" ? "system-ram" : "devdax";
    if (auto path = sys.resolve(dir)) dax.backing = backingOf(sys, *path);
    if (dax.mode == "system-ram") countMemblocks(sys, facts, dax);
    facts.dax_devices.push_back(std::move(dax));
  }
}

std::string namespaceMode(const std::string& kernel_mode) {
  if (kernel_mode == "dax") return "devdax";
  if (kernel_mode == "memory") return "fsdax";
  if (kernel_mode == "safe") return "sector";
  return kernel_mode;
}

void readNvdimm(const FsRoot& sys, PlatformFacts& facts) {
  static const std::regex kRegion("region[0-9]+"), kNamespace("namespace[0-9]+\\.[0-9]+"),
      kBus("ndbus[0-9]+");
  for (const auto& name : listMatching(sys, kNdDevices, kRegion)) {
    std::string dir = fmt::format("{}/{}", kNdDevices, name);
    NdRegion region;
    region.name = name;
    region.size = readU64(sys, dir + "/size").value_or(0);
    region.start = readU64(sys, dir + "/resource");
    region.target_node = readInt(sys, dir + "/target_node");
    region.numa_node = readInt(sys, dir + "/numa_node");
    if (auto path = sys.resolve(dir)) {
      std::string bus_path;
      for (const auto& part : pathComponents(*path)) {
        bus_path = joinPath(bus_path, part);
        if (part.starts_with("nvdimm-bridge")) region.behind_cxl = true;
        if (std::regex_match(part, kBus)) {
          region.bus = part;
          region.provider = readText(sys, bus_path + "/provider").value_or("");
          break;
        }
      }
    }
    facts.nd_regions.push_back(std::move(region));
  }
  for (const auto& name : listMatching(sys, kNdDevices, kNamespace)) {
    std::string dir = fmt::format("{}/{}", kNdDevices, name);
    NdNamespace ns;
    ns.name = name;
    if (auto mode = readText(sys, dir + "/mode")) ns.mode = namespaceMode(*mode);
    ns.size = readU64(sys, dir + "/size").value_or(0);
    if (auto path = sys.resolve(dir)) ns.region = baseName(parentPath(*path));
    if (ns.size == 0 && ns.mode == "raw") continue;  // the idle seed namespace
    for (const auto& dax : facts.dax_devices)
      if (dax.backing.source == DaxBacking::Source::NdNamespace && dax.backing.name == name)
        ns.chardev = dax.name;
    facts.namespaces.push_back(std::move(ns));
  }
}

}  // namespace

std::optional<NodeMemory> readNodeMemory(const FsRoot& sys, int node) {
  auto text = sys.readFile(fmt::format("{}/node{}/meminfo", kNodeDir, node));
  if (!text) return std::nullopt;
  auto fields = parseMeminfo(*text);
  if (!fields || !fields->contains("MemTotal") || !fields->contains("MemFree")) return std::nullopt;
  return NodeMemory{fields->at("MemTotal"), fields->at("MemFree")};
}

std::optional<NodeWatermarkBytes> readNodeWatermarks(const FsRoot& proc, int node) {
  auto text = proc.readFile("zoneinfo");
  if (!text) return std::nullopt;
  auto nodes = parseZoneWatermarks(*text);
  if (!nodes) return std::nullopt;
  auto it = nodes->find(node);
  if (it == nodes->end()) return std::nullopt;
  const auto page = static_cast<uint64_t>(sysconf(_SC_PAGESIZE));
  return NodeWatermarkBytes{it->second.min_pages * page, it->second.low_pages * page,
                            it->second.high_pages * page, it->second.per_cpu_free_pages * page};
}

Result<PlatformFacts> readPlatformFacts(const FsRoot& sys, const FsRoot* proc) {
  PlatformFacts facts;
  if (auto nodes = readNodes(sys, facts); !nodes) return std::unexpected(nodes.error());
  readMemoryTiers(sys, facts);
  readProcKnobs(proc, facts);
  readCxl(sys, facts);
  readDax(sys, facts);
  readNvdimm(sys, facts);
  return facts;
}

}  // namespace tier
