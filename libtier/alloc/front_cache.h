// The engine's per-thread front cache, shared with the shim (built with
// the engine's internals) so that malloc and free inline its hit path: one
// TLS access and a push or pop, no call.
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "engine_internal.h"

namespace tier::alloc {

// 1 MiB, not less: with 64 KiB every malloc and free of a 64 KiB block
// folded, and two threads doing so spent 70 ns a pair on the shared
// counters' cache lines (11.6 ns with one thread).
inline constexpr int64_t kFoldBytes = 1024 * 1024;
inline constexpr uint32_t kFoldAllocations = 64;

enum class Phase : uint8_t { kFresh, kLive, kDead };

// Per thread: the jemalloc flags (arena | explicit tcache) of each tier, 0
// until the thread first uses the tier, and statistics not yet folded.
// The engine's own thread cache in front of jemalloc's: a stack of blocks
// per size class up to 64 KiB, per tier (so caches never mix tiers), kept in
// DRAM (the private jemalloc's automatic arena). A hit is a few loads and
// stores; jemalloc is entered only to refill or flush half a bin.
inline constexpr size_t kFrontMax = 64 * 1024;
inline constexpr unsigned kFrontClasses = 45;
inline constexpr uint32_t kFrontSlots = 32;

// jemalloc 5.3's size classes up to 64 KiB: 8, 16..128 by 16, then four
// classes per doubling.
constexpr size_t classSizeOf(unsigned index) {
  if (index == 0) return 8;
  if (index <= 8) return index * 16;
  unsigned k = index - 9, lg = 7 + k / 4;
  return (size_t{1} << lg) + (size_t{(k % 4) + 1} << (lg - 2));
}
inline constexpr auto kClassSizes = [] {
  struct Table {
    size_t sizes[kFrontClasses];
    constexpr size_t operator[](unsigned i) const { return sizes[i]; }
  } table{};
  for (unsigned i = 0; i < kFrontClasses; ++i)
    table.sizes[i] = classSizeOf(i);
  return table;
}();
static_assert(kClassSizes[kFrontClasses - 1] == kFrontMax);

inline unsigned classIndex(size_t size) {
  if (size <= 8) return 0;
  if (size <= 128) return static_cast<unsigned>((size + 15) >> 4);
  unsigned lg = 63u - static_cast<unsigned>(__builtin_clzll(size - 1));
  return 9 + (lg - 7) * 4 + static_cast<unsigned>(((size - 1) >> (lg - 2)) & 3);
}

struct FrontBin {
  uint32_t count;
  uint32_t capacity;
  void* slots[kFrontSlots];
};
struct FrontCache {
  FrontBin bins[kFrontClasses];
};

struct ThreadState {
  FrontCache* front[kMaxTiers];
  int flags[kMaxTiers];
  int64_t pending_bytes[kMaxTiers];
  uint32_t pending_allocations[kMaxTiers];
  Phase phase;
  bool in_init;
  bool force_growth;  // every tier refused: grow past the headroom
  // The fastest tier uses jemalloc's automatic thread cache, with the
  // thread's arena bound to one of the tier's arenas (bound_arena + 1; 0
  // until the thread's first fast-tier allocation).
  unsigned bound_arena;
  uint8_t arena_slot[kMaxTiers];  // 1 + the slot of the tier's arena this thread counts on
};

extern __thread ThreadState t_thread __attribute__((tls_model("initial-exec")));

void foldThread(ThreadState& ts, int rank);

// Allocations fold every 64 (or 1 MiB), frees every 1 MiB freed.
inline void account(ThreadState& ts, int rank, int64_t bytes, uint32_t allocations) {
  ts.pending_bytes[rank] += bytes;
  ts.pending_allocations[rank] += allocations;
  if (ts.pending_allocations[rank] >= kFoldAllocations || ts.pending_bytes[rank] >= kFoldBytes ||
      ts.pending_bytes[rank] <= -kFoldBytes)
    foldThread(ts, rank);
}

inline void accountFree(ThreadState& ts, int rank, int64_t bytes) {
  ts.pending_bytes[rank] -= bytes;
  if (ts.pending_bytes[rank] <= -kFoldBytes) foldThread(ts, rank);
}

// The usable size of a block of the engine's from the class map, 0 when the
// map does not know it (blocks over 64 KiB: ask tier_engine_usable_size).
inline size_t knownUsableSize(const void* block) {
  size_t page = (reinterpret_cast<uintptr_t>(block) - g_engine.base) >> kClassMapShift;
  unsigned value = __atomic_load_n(&g_engine.class_map[page], __ATOMIC_RELAXED);
  return value != 0 ? kClassSizes[value - 1] : 0;
}

// The hit path of an allocation of `size` (<= kFrontMax, no alignment or
// zeroing) on `rank`: a block from the thread's front cache, or NULL.
__attribute__((always_inline)) inline void* popFront(int rank, size_t size) {
  ThreadState& ts = t_thread;
  FrontCache* front = ts.front[rank];
  if (front == nullptr || size > kFrontMax) [[unlikely]]
    return nullptr;
  unsigned c = classIndex(size);
  FrontBin& bin = front->bins[c];
  if (bin.count == 0) [[unlikely]]
    return nullptr;
  account(ts, rank, static_cast<int64_t>(kClassSizes[c]), 1);
  return bin.slots[--bin.count];
}

// The hit path of freeing `block`, which lies in `rank`'s range: false when
// its class is unknown (over 64 KiB), the thread has no front cache for the
// tier yet, or the bin is full.
__attribute__((always_inline)) inline bool pushFront(int rank, void* block) {
  size_t page = (reinterpret_cast<uintptr_t>(block) - g_engine.base) >> kClassMapShift;
  unsigned value = __atomic_load_n(&g_engine.class_map[page], __ATOMIC_RELAXED);
  ThreadState& ts = t_thread;
  FrontCache* front = ts.front[rank];
  if (value == 0 || front == nullptr) [[unlikely]]
    return false;
  FrontBin& bin = front->bins[value - 1];
  if (bin.count >= bin.capacity) [[unlikely]]
    return false;
  bin.slots[bin.count++] = block;
  accountFree(ts, rank, static_cast<int64_t>(kClassSizes[value - 1]));
  return true;
}

}  // namespace tier::alloc
