// State shared by the engine's translation units (engine.cpp, api.cpp,
// hint.cpp). Not part of any interface.
#pragma once

#include <stdint.h>

#include <atomic>

#include "tier/tier.h"

#include "node_sysfs.h"
#include "private_jemalloc.h"

namespace tier::alloc {

inline constexpr int kMaxArenasPerTier = 8;

struct Tier {
  // First member: jemalloc hands the hooks pointer back to every hook.
  tierje_extent_hooks hooks = {};
  int rank = 0;
  NodeMask nodes = 0;
  bool usable = false;  // reserved and bound
  bool devdax = false;  // a device-DAX mapping (LIBTIER_DEVDAX), not NUMA memory
  uintptr_t base = 0;
  uintptr_t limit = 0;  // base + reserved bytes
  std::atomic<uintptr_t> frontier{0};
  // Arenas are created as threads need them (at most max_arenas): a
  // process with one thread on the tier pays for one arena's metadata.
  int max_arenas = 0;
  std::atomic<int> narenas{0};
  unsigned arenas[kMaxArenasPerTier] = {};
  std::atomic<int> arena_threads[kMaxArenasPerTier] = {};
  // Set when the tier's nodes ran low; growth is refused until this time (ns).
  std::atomic<uint64_t> full_until_ns{0};
  std::atomic<uint64_t> mapped_bytes{0};
  std::atomic<uint64_t> grow_calls{0};
  std::atomic<int64_t> allocated_bytes{0};
  std::atomic<uint64_t> allocations{0};
  std::atomic<uint64_t> spilled_in{0};
};

struct Engine {
  int count = 0;
  uintptr_t base = 0;  // one reservation holds every tier: tier = (p - base) >> shift
  unsigned shift = 0;
  uintptr_t end = 0;
  Tier tiers[kMaxTiers];
  // One byte per 4 KiB page of the reservation: 1 + the size class of the
  // blocks starting in that page (a page belongs to one jemalloc slab or
  // extent, so all of them share it), 0 when unknown. Lets free skip
  // jemalloc's lookup. In DRAM, like all the engine's metadata.
  uint8_t* class_map = nullptr;
  int8_t rank_of_node[kMaxNodes] = {};
};

extern Engine g_engine;

inline constexpr unsigned kClassMapShift = 12;

// The rank whose range holds p, or -1.
inline int rankOfAddress(const void* p) {
  uintptr_t a = reinterpret_cast<uintptr_t>(p);
  if (a - g_engine.base >= g_engine.end - g_engine.base) return -1;
  return static_cast<int>((a - g_engine.base) >> g_engine.shift);
}

// 1 when the engine is ready (initialising it on first use), else -errno.
int ensureInit();
// The rank `where` asks for (TIER_DEFAULT through the chooser), -1 if invalid.
int resolveRank(tier_where_t where, size_t size);
// A block of `size` on tier `rank` exactly, NULL when that tier cannot serve.
void* allocateOn(int rank, size_t size, int extra_flags);
// The spill rule: `rank`, the tiers below it, then those above; ENOMEM last.
void* allocateSpilling(int rank, size_t size, int extra_flags);
// tier_malloc & co.: resolve, allocate, spill. NULL with errno on failure.
void* allocateWhere(tier_where_t where, size_t size, int extra_flags);
void freeOn(int rank, void* block, size_t usable);
// The calling thread's jemalloc flags for `rank` (0 when the tier is unusable).
int allocateOnFlags(int rank);
// Statistics of a resize in place or a move within one tier.
void accountResize(int rank, int64_t delta_bytes, bool moved);
size_t usableOf(const void* block);
// Records a block jemalloc placed outside the engine's paths (rallocx).
void noteBlock(const void* block);
// tier_free: NULL and foreign pointers are ignored.
void freeBlock(void* block);
// freeBlock past pushFront's hit path (front_cache.h), for a block of `rank`.
void freeBlockSlow(int rank, void* block);

}  // namespace tier::alloc
