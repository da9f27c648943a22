// What discovery found on a host, as plain data: no OS calls here. The sysfs
// reader and the libcxl/libdaxctl/libndctl reader fill it; the classifier
// (topology.h) turns it into kinds and tiers. Every field the kernel may lack
// is optional: absence means "this kernel or machine does not offer it".
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace tier {

// nodeN/accessK/initiators: performance from the best initiator(s) of class K
// (access0: any initiator, access1: CPUs only). Units as the kernel's:
// latency in ns, bandwidth in MiB/s.
struct AccessClass {
  std::vector<int> initiators;
  std::optional<uint64_t> read_latency_ns, write_latency_ns;
  std::optional<uint64_t> read_bandwidth_mibps, write_bandwidth_mibps;
};

struct MemorySideCache {
  int index = 0;
  std::optional<uint64_t> size, line_size, indexing, write_policy;
};

struct NodeFacts {
  int id = -1;
  std::vector<int> cpus;
  std::optional<uint64_t> total_bytes, free_bytes;
  std::map<int, int> distance;  // SLIT distance to each online node
  std::optional<AccessClass> access0, access1;
  std::vector<MemorySideCache> memory_side_caches;
  std::vector<uint64_t> memory_blocks;  // ids of memoryN blocks linked under the node
};

struct CxlHealth {
  std::optional<std::string> maintenance_needed, performance_degraded, hw_replacement_needed;
  std::optional<std::string> media_status;
  std::optional<int> life_used_percent, temperature_celsius;
  std::optional<uint64_t> dirty_shutdowns;
};

struct CxlMemdev {
  std::string name;  // "mem0"
  std::optional<uint64_t> serial;
  uint64_t ram_size = 0, pmem_size = 0;
  std::optional<std::string> firmware_version;
  std::optional<int> numa_node;     // the PCI device's CPU affinity, NOT its memory's node
  std::optional<std::string> host;  // PCI address of the device
  std::optional<CxlHealth> health;  // only through libcxl (a mailbox command)
};

// A CXL port: the root (ACPI0017 host bridge list), a switch or host-bridge
// port, or an endpoint (one per memdev).
struct CxlPort {
  std::string name;    // "root0", "port1", "endpoint2"
  std::string parent;  // parent port, empty for a root
  std::optional<std::string> host;  // what the port stands for: "ACPI0017:00", "pci0000:0c", "mem0"
  int depth = 0;                    // 0 for a root, as `cxl list` counts
};

// An HDM decoder. A root decoder is a CXL fixed memory window (CFMWS): the
// host physical addresses that decode to CXL devices.
struct CxlDecoder {
  std::string name;  // "decoder0.0"
  std::string port;  // the port it belongs to
  bool root = false;
  std::optional<uint64_t> start, size;
  std::optional<std::string> mode;  // endpoint decoders: "ram", "pmem", "none"
  std::optional<int> interleave_ways;
  std::optional<std::string> region;  // switch and endpoint decoders taking part in a region
};

struct CxlRegion {
  std::string name;                 // "region0"
  std::optional<std::string> mode;  // "ram" or "pmem"
  uint64_t size = 0;
  std::optional<uint64_t> start;
  std::optional<int> interleave_ways, interleave_granularity;
  std::optional<bool> committed;
  std::string root_decoder;
  std::vector<std::string> memdevs;  // in target order
};

// What a dax device's memory comes from, read off its sysfs ancestry.
struct DaxBacking {
  enum class Source { Unknown, CxlRegion, NdNamespace, SoftReserved };
  Source source = Source::Unknown;
  std::string name;  // "region1" (CXL) or "namespace0.0"
};

struct DaxDevice {
  std::string name;    // "dax0.0"
  std::string region;  // "dax_region0" id as the kernel names it ("0")
  uint64_t size = 0;
  std::optional<int> target_node;  // the node the memory becomes when onlined
  std::optional<int> numa_node;    // closest CPU node before that
  std::string mode;                // "system-ram" (bound to kmem) or "devdax"
  std::optional<uint64_t> start;
  uint64_t online_memblocks = 0, total_memblocks = 0;
  std::optional<bool> movable;
  DaxBacking backing;
};

struct NdRegion {
  std::string name;         // "region0"
  std::string bus;          // "ndbus0"
  std::string provider;     // "ACPI.NFIT", or the CXL nvdimm bridge's
  bool behind_cxl = false;  // the bus hangs off a CXL nvdimm-bridge
  uint64_t size = 0;
  std::optional<uint64_t> start;  // physical address; equals its CXL region's when behind CXL
  std::optional<int> target_node, numa_node;
};

struct NdNamespace {
  std::string name;  // "namespace0.0"
  std::string region;
  std::optional<std::string> mode;  // "devdax", "fsdax", "raw", "sector"
  uint64_t size = 0;
  std::optional<std::string> chardev;  // dax device when in devdax mode
};

struct KernelMemoryTier {
  int id = 0;  // N of memory_tierN: abstract distance / 128, smaller is faster
  std::vector<int> nodes;
};

struct KernelTieringSettings {
  std::optional<int> numa_balancing;  // 0 off, bit 0 normal, bit 1 memory tiering
  std::optional<bool> demotion_enabled;
  std::optional<uint64_t> promote_rate_limit_mbps;
};

struct PlatformFacts {
  std::vector<int> online_nodes, possible_nodes;
  std::vector<int> nodes_with_memory, nodes_with_cpu, nodes_with_normal_memory;
  std::vector<NodeFacts> nodes;
  std::optional<uint64_t> memory_block_size;
  std::vector<KernelMemoryTier> memory_tiers;
  std::vector<CxlMemdev> memdevs;
  std::vector<CxlPort> cxl_ports;
  std::vector<CxlDecoder> cxl_decoders;
  std::vector<CxlRegion> cxl_regions;
  std::vector<DaxDevice> dax_devices;
  std::vector<NdRegion> nd_regions;
  std::vector<NdNamespace> namespaces;
  KernelTieringSettings kernel;
  std::vector<std::string> notes;  // features absent, unreadable files skipped
};

}  // namespace tier
