// Parsers for the kernel's text formats. They take text, never paths, so they
// are unit-tested and fuzzed without a filesystem. Each rejects malformed
// input with an error naming the offending token or line.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"

namespace tier {

std::string_view trim(std::string_view text);
// Every piece between separators, empty ones included: "a,,b" -> {"a", "", "b"}.
std::vector<std::string_view> split(std::string_view text, char separator);

// "42\n", "0x1f" (hex with 0x prefix) -> number.
Result<uint64_t> parseU64(std::string_view text);
// Signed, for attributes such as numa_node that read "-1".
Result<int64_t> parseI64(std::string_view text);
// "1"/"0", "Y"/"N", "true"/"false", "yes"/"no" (sysfs spells booleans all these ways).
Result<bool> parseBool(std::string_view text);

// cpulist / nodelist format: "0-3,8,10-11". Empty text is the empty list.
Result<std::vector<int>> parseIdList(std::string_view text);
// Inverse of parseIdList, producing the kernel's compact form.
std::string formatIdList(const std::vector<int>& ids);

// A node's distance row: "10 20 30".
Result<std::vector<int>> parseDistanceRow(std::string_view text);

// /proc/meminfo or /sys/devices/system/node/nodeN/meminfo. Values with a
// "kB" unit are converted to bytes; unitless ones (HugePages_*) kept as is.
// Keys are the kernel's field names without the colon ("MemTotal", "Active(anon)").
Result<std::map<std::string, uint64_t>> parseMeminfo(std::string_view text);

// /proc/vmstat, nodeN/vmstat, nodeN/numastat: "name value" per line.
Result<std::map<std::string, uint64_t>> parseCounters(std::string_view text);

// /proc/zoneinfo: each node's page-allocator watermarks, in pages, summed over
// its zones, each with the zone's current boost added (the kernel compares
// free memory against watermark + boost). Below `low` kswapd wakes and
// reclaims up to `high`; below `min` the allocating task reclaims itself.
// Also the pages free in the zones' per-CPU lists (pagesets' "count:"),
// which MemFree leaves out: a page just freed (a demotion's) sits there, and
// the next allocation on that CPU takes it first.
struct NodeWatermarks {
  uint64_t min_pages = 0, low_pages = 0, high_pages = 0;
  uint64_t per_cpu_free_pages = 0;
};
Result<std::map<int, NodeWatermarks>> parseZoneWatermarks(std::string_view text);

// /proc/PID/sched: how many full passes the NUMA-balancing scanner has made
// over the process's address space ("mm->numa_scan_seq : N"); nullopt when
// the kernel prints no such line (no CONFIG_NUMA_BALANCING, a kernel thread).
Result<std::optional<uint64_t>> parseNumaScanSeq(std::string_view text);

// One line of /proc/PID/numa_maps.
struct NumaMapsEntry {
  uint64_t start = 0;
  std::string policy;  // "default", "bind:1", "interleave:0-1", "prefer:1", ...
  std::string file;    // path of a file mapping, empty otherwise
  bool heap = false, stack = false, huge = false;
  uint64_t anon = 0, dirty = 0, mapped = 0;
  uint64_t page_size = 4096;              // from kernelpagesize_kB
  std::map<int, uint64_t> pages_on_node;  // N<node>=<pages>, in units of page_size
};
Result<std::vector<NumaMapsEntry>> parseNumaMaps(std::string_view text);

// One line of /proc/PID/maps.
struct MapsEntry {
  uint64_t start = 0, end = 0;  // [start, end)
  std::string perms;            // "rw-p"
  uint64_t offset = 0;
  uint64_t inode = 0;
  std::string path;  // file path, "[heap]", "[stack]", "[vdso]", ... or empty for anonymous
};
Result<std::vector<MapsEntry>> parseMaps(std::string_view text);

}  // namespace tier
