// The public C API (include/tier/tier.h) over the engine.
#include <errno.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "engine.h"
#include "engine_internal.h"

using namespace tier::alloc;

namespace {

bool isPowerOfTwo(size_t v) { return v != 0 && (v & (v - 1)) == 0; }

int lgAlignFlags(size_t alignment) {
  return alignment <= 16 ? 0 : tierjeLgAlign(static_cast<unsigned>(__builtin_ctzll(alignment)));
}

void* moveTo(tier_where_t where, void* block, size_t size) {
  void* moved = allocateWhere(where, size, 0);
  if (moved == nullptr) return nullptr;
  size_t old_size = usableOf(block);
  memcpy(moved, block, old_size < size ? old_size : size);
  tier_free(block);
  return moved;
}

}  // namespace

extern "C" {

void* tier_malloc(tier_where_t where, size_t size) { return allocateWhere(where, size, 0); }

void* tier_calloc(tier_where_t where, size_t count, size_t size) {
  size_t bytes;
  if (__builtin_mul_overflow(count, size, &bytes)) {
    errno = ENOMEM;
    return nullptr;
  }
  return allocateWhere(where, bytes, kTierjeZero);
}

void* tier_realloc(void* block, size_t size) {
  if (block == nullptr) return tier_malloc(TIER_DEFAULT, size);
  int rank = rankOfAddress(block);
  if (rank < 0) {
    errno = EINVAL;
    return nullptr;
  }
  if (size == 0) {  // glibc's realloc(p, 0): free, NULL
    tier_free(block);
    return nullptr;
  }
  size_t old_usable = usableOf(block);
  void* resized = nullptr;
  int flags = allocateOnFlags(rank);
  if (flags != 0) resized = tierje_rallocx(block, size, flags);
  if (resized == nullptr) return moveTo(TIER_RANK(rank), block, size);  // the tier is full: spill
  noteBlock(resized);
  size_t new_usable = usableOf(resized);
  accountResize(rank, static_cast<int64_t>(new_usable) - static_cast<int64_t>(old_usable),
                resized != block);
  return resized;
}

void* tier_realloc_on(tier_where_t where, void* block, size_t size) {
  if (block == nullptr) return tier_malloc(where, size);
  if (ensureInit() != 1) {
    errno = ENOMEM;
    return nullptr;
  }
  int target = resolveRank(where, size);
  if (target < 0) {
    errno = EINVAL;
    return nullptr;
  }
  int rank = rankOfAddress(block);
  if (rank < 0) {
    errno = EINVAL;
    return nullptr;
  }
  if (rank == target || size == 0) return tier_realloc(block, size);
  return moveTo(TIER_RANK(target), block, size);
}

void* tier_aligned_alloc(tier_where_t where, size_t alignment, size_t size) {
  if (!isPowerOfTwo(alignment)) {
    errno = EINVAL;
    return nullptr;
  }
  return allocateWhere(where, size, lgAlignFlags(alignment));
}

int tier_posix_memalign(tier_where_t where, void** out, size_t alignment, size_t size) {
  if (!isPowerOfTwo(alignment) || alignment % sizeof(void*) != 0) return EINVAL;
  int saved_errno = errno;
  void* block = allocateWhere(where, size, lgAlignFlags(alignment));
  if (block == nullptr) {
    int error = errno;
    errno = saved_errno;
    return error;
  }
  *out = block;
  return 0;
}

void tier_free(void* block) { freeBlock(block); }

size_t tier_usable_size(const void* block) { return tier_engine_usable_size(block); }

int tier_of(const void* address) { return rankOfAddress(address); }

int tier_node_of(const void* address) {
  void* page = reinterpret_cast<void*>(reinterpret_cast<uintptr_t>(address) &
                                       ~static_cast<uintptr_t>(sysconf(_SC_PAGESIZE) - 1));
  int status = -1;
  // nodes == NULL: a query, nothing moves.
  if (syscall(SYS_move_pages, 0, 1UL, &page, nullptr, &status, 0) != 0) return -errno;
  return status;
}

int tier_count(void) { return ensureInit() == 1 ? g_engine.count : 0; }

int tier_stats(int rank, tier_stats_t* out) {
  if (out == nullptr || ensureInit() != 1 || rank < 0 || rank >= g_engine.count) return -EINVAL;
  const Tier& tier = g_engine.tiers[rank];
  *out = tier_stats_t{};
  out->rank = rank;
  for (int n = 0; n < kMaxNodes && out->node_count < 16; ++n)
    if (tier.nodes & (NodeMask{1} << n)) out->nodes[out->node_count++] = n;
  out->reserved_bytes = tier.limit - tier.base;
  out->mapped_bytes = tier.mapped_bytes.load(std::memory_order_relaxed);
  int64_t allocated = tier.allocated_bytes.load(std::memory_order_relaxed);
  out->allocated_bytes = allocated > 0 ? static_cast<uint64_t>(allocated) : 0;
  out->allocations = tier.allocations.load(std::memory_order_relaxed);
  out->spilled_in = tier.spilled_in.load(std::memory_order_relaxed);
  return 0;
}

}  // extern "C"
