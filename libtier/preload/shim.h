// The shim's core, under the exported malloc family (override.cpp): glibc's
// semantics are checked there, these do the work. Every block comes from the
// engine (placed by the policy), from the static bootstrap buffer (requests
// made while the shim starts), or from glibc (only when the engine cannot
// serve); free, realloc and usable-size tell them apart by address.
#pragma once

#include <atomic>
#include <cstddef>

#include "alloc/engine.h"
#include "preload/policy.h"
#ifdef TIER_PRELOAD_ENGINE_INTERNALS
#include "alloc/engine_internal.h"
#include "alloc/front_cache.h"
#endif

namespace tier::preload {

// Set once start-up is done: the engine is up and no policy places blocks,
// so malloc goes straight to the engine.
extern std::atomic<bool> g_direct;
// A ratio is in force: frees must be counted.
extern std::atomic<bool> g_counting;
// The policy is a ratio over two or more tiers and nothing else.
extern std::atomic<bool> g_ratio_only;

// The ratio balancer's per-thread side (shim.cpp has the shared counters):
// live bytes per share not yet folded into the shared counters (folded every
// kFoldBytes, and at thread exit), and the thread's current placement, which
// serves the next kPlaceQuantum bytes of requests before the balancer is
// asked again (so a small block costs no balancing; the ratio's error grows
// by at most that much per thread, against kFoldBytes for the counters).
inline constexpr int64_t kFoldBytes = 1024 * 1024;  // 64 KiB folded on each 64 KiB block
inline constexpr int64_t kPlaceQuantum = 16 * 1024;
extern int8_t g_slot_of_rank[kMaxRanks];
extern thread_local int64_t t_delta[kMaxShares] __attribute__((tls_model("initial-exec")));
extern thread_local bool t_fold_at_exit __attribute__((tls_model("initial-exec")));
extern thread_local int t_place_rank __attribute__((tls_model("initial-exec")));
extern thread_local int64_t t_place_budget __attribute__((tls_model("initial-exec")));
// Folds a share's delta when it is large, and arranges the fold at exit.
void foldLive(int slot, int64_t delta);
// Asks the balancer for the tier of the next kPlaceQuantum bytes.
int placeRatio(std::size_t size);
// A block on `rank` past the front cache (spilling, or glibc), counted.
void* allocateOnRankSlow(int rank, std::size_t size);

// Adds `bytes` (negative for a free) to the live bytes of `rank`'s share.
inline void countLive(int rank, int64_t bytes) {
  int slot = g_slot_of_rank[rank];
  if (slot < 0) return;
  int64_t delta = t_delta[slot] + bytes;
  if (delta >= kFoldBytes || delta <= -kFoldBytes || !t_fold_at_exit) [[unlikely]] {
    foldLive(slot, delta);
    return;
  }
  t_delta[slot] = delta;
}

// glibc aligns every block to 16 bytes; the engine (as jemalloc) aligns a
// block of up to 8 bytes to 8 only. Requests go up to 16 bytes, in every
// path that hands the engine a size (sized delete and realloc too).
inline constexpr std::size_t kMinBlock = 16;
inline std::size_t atLeastMinBlock(std::size_t size) {
  return size < kMinBlock ? kMinBlock : size;
}

// Whether the engine owns a block: a range check, inlined when the shim is
// built with the engine's internals (a call to tier_engine_owns costs as
// much as the rest of free's fast path on a loaded machine).
inline bool engineOwns(const void* block) {
#ifdef TIER_PRELOAD_ENGINE_INTERNALS
  return tier::alloc::rankOfAddress(block) >= 0;
#else
  return tier_engine_owns(block) != 0;
#endif
}

void* allocateSlow(std::size_t size);
void releaseSlow(void* block);

// NULL with errno = ENOMEM when nothing can serve. errno is untouched on success.
// Inline: the fast path is malloc's own body; with the engine's internals,
// a hit in the fast tier's front cache makes no call at all.
inline void* allocate(std::size_t size) {
  size = atLeastMinBlock(size);
  if (g_direct.load(std::memory_order_relaxed)) [[likely]] {
#ifdef TIER_PRELOAD_ENGINE_INTERNALS
    if (void* block = tier::alloc::popFront(0, size)) [[likely]]
      return block;
#endif
    void* block = tier_malloc(TIER_DEFAULT, size);
    if (block != nullptr) [[likely]]
      return block;
  }
#ifdef TIER_PRELOAD_ENGINE_INTERNALS
  else if (g_ratio_only.load(std::memory_order_relaxed)) {
    int64_t bytes = static_cast<int64_t>(size);
    int rank = t_place_budget >= bytes ? t_place_rank : placeRatio(size);
    t_place_budget -= bytes;
    if (void* block = tier::alloc::popFront(rank, size)) [[likely]] {
      countLive(rank, static_cast<int64_t>(tier::alloc::knownUsableSize(block)));
      return block;
    }
    return allocateOnRankSlow(rank, size);
  }
#endif
  return allocateSlow(size);
}

// The engine's free when no ratio counts frees; with its internals, a block
// whose class is known goes onto the front cache inline.
inline void releaseToEngine(void* block) {
#ifdef TIER_PRELOAD_ENGINE_INTERNALS
  int rank = tier::alloc::rankOfAddress(block);
  if (tier::alloc::pushFront(rank, block)) [[likely]]
    return;
  tier::alloc::freeBlockSlow(rank, block);
#else
  tier_free(block);
#endif
}

inline void release(void* block) {
  if (engineOwns(block)) [[likely]] {
    if (!g_counting.load(std::memory_order_relaxed)) [[likely]] {
      releaseToEngine(block);
      return;
    }
#ifdef TIER_PRELOAD_ENGINE_INTERNALS
    int rank = tier::alloc::rankOfAddress(block);
    if (size_t usable = tier::alloc::knownUsableSize(block)) [[likely]] {
      countLive(rank, -static_cast<int64_t>(usable));
      releaseToEngine(block);
      return;
    }
#endif
  }
  releaseSlow(block);
}

void* allocateZeroed(std::size_t size);  // size: the product, already checked for overflow
// `alignment`: a power of two.
void* allocateAligned(std::size_t alignment, std::size_t size);
// C++ sized delete: the engine skips its size lookup.
inline void releaseSized(void* block, std::size_t size) {
  if (engineOwns(block) && !g_counting.load(std::memory_order_relaxed)) [[likely]] {
#ifdef TIER_PRELOAD_ENGINE_INTERNALS
    (void)size;  // the class map knows the size better than the caller
    releaseToEngine(block);
#else
    tier_engine_free_sized(block, atLeastMinBlock(size));
#endif
    return;
  }
  releaseSlow(block);
}
// realloc with `size` > 0 and a non-NULL block.
void* reallocate(void* block, std::size_t size);
std::size_t usableSize(const void* block);

}  // namespace tier::preload
