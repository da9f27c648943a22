// The few sysfs facts the engine needs (memory nodes, CPU nodes, distances,
// the kernel's memory tiers, node sizes), read with raw syscalls into caller
// buffers: the engine runs inside malloc and may not allocate. Parsers take
// text; readers take a filesystem root ("" for the live kernel) so tests can
// point them at tests/fixtures.
#pragma once

#include <stddef.h>
#include <stdint.h>

namespace tier::alloc {

inline constexpr int kMaxNodes = 64;  // node ids 0..63: one uint64_t mask
inline constexpr int kMaxTiers = 8;

using NodeMask = uint64_t;

// "0-2,5\n" -> bits 0,1,2,5. An empty list is an empty mask. False on
// malformed text or a node id >= kMaxNodes.
bool parseNodeList(const char* text, size_t length, NodeMask* mask);
// The value of `field` ("MemTotal", "MemFree") in a node's meminfo
// ("Node 0 MemFree:   12 kB") in bytes; false when absent or malformed.
bool parseNodeMeminfo(const char* text, size_t length, const char* field, uint64_t* bytes);
// A node's distance row ("10 20 30\n"): distances[i] for node i of
// `online`, in order; returns how many were parsed.
int parseDistances(const char* text, size_t length, NodeMask online, int* distances);

// Reads root + path into buf (NUL-terminated); the length, or -errno.
long readSysFile(const char* root, const char* path, char* buf, size_t capacity);

struct TierLayout {
  int count = 0;
  NodeMask nodes[kMaxTiers] = {};
};

// The host's tiers, fastest first: the kernel's memory_tierN sorted by N
// (abstract distance); a tier mixing CPU nodes with CPU-less nodes more than
// 25 % farther is split (CPU-less memory the kernel filed as DRAM); without
// memory_tiering, CPU nodes then CPU-less nodes by distance. 0 or -errno.
int discoverTiers(const char* sys_root, TierLayout* out);
// LIBTIER_TIERS syntax: node lists separated by ';', fastest first
// ("0;1;2-3"). False on malformed text, an empty tier or a repeated node.
bool parseTierOverride(const char* text, TierLayout* out);

// Sum of `field` over the nodes in `nodes`, in bytes; 0 when unknown.
uint64_t nodesMeminfo(const char* sys_root, NodeMask nodes, const char* field);

}  // namespace tier::alloc
