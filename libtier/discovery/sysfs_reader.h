// Reads PlatformFacts from sysfs (and a few procfs knobs) through FsRoot, so
// it works on the live host, inside the lab and on captured fixture trees.
#pragma once

#include <cstdint>
#include <optional>

#include "base/result.h"
#include "fs/fs_root.h"
#include "topology/facts.h"

namespace tier {

// `sys` stands for /sys; `proc` for /proc, or null to skip the procfs knobs.
// Fails only when the root holds no NUMA node information at all; any other
// missing file is recorded as an absent feature in PlatformFacts::notes.
Result<PlatformFacts> readPlatformFacts(const FsRoot& sys, const FsRoot* proc);

// MemTotal and MemFree of one node, in bytes (what changes between full
// discoveries); nullopt when the node's meminfo is absent or unreadable.
struct NodeMemory {
  uint64_t total_bytes = 0, free_bytes = 0;
};
std::optional<NodeMemory> readNodeMemory(const FsRoot& sys, int node);

// The node's page-allocator watermarks (with boost) from /proc/zoneinfo, in
// bytes: below `low` kswapd wakes and reclaims up to `high`; below `min` the
// allocating task reclaims in its own time. nullopt when zoneinfo is absent or
// unreadable, or does not list the node.
struct NodeWatermarkBytes {
  uint64_t min = 0, low = 0, high = 0;
  uint64_t per_cpu_free = 0;  // free in per-CPU lists, outside MemFree
  // The least free memory a mover should leave on the node: halfway from
  // low to high. Allocations wake kswapd only below low, so the band above
  // it is usable; the half kept free absorbs other allocations in between
  // plans (the lab's fast node: 1100 pages more for the workload than
  // stopping at high, with kswapd still asleep).
  uint64_t moverFloor() const { return low + (high > low ? (high - low) / 2 : 0); }
};
std::optional<NodeWatermarkBytes> readNodeWatermarks(const FsRoot& proc, int node);

}  // namespace tier
