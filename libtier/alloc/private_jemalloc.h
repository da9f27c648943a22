// The engine's private jemalloc 5.3 (built by make_private_jemalloc.sh): the
// few entry points the engine calls, under their tierje_ names, and the ABI
// types of jemalloc's extent hooks and arena creation.
#pragma once

#include <stddef.h>

extern "C" {

void* tierje_malloc(size_t size);
void tierje_free(void* block);
void* tierje_mallocx(size_t size, int flags);
void* tierje_rallocx(void* block, size_t size, int flags);
void tierje_dallocx(void* block, int flags);
void tierje_sdallocx(void* block, size_t size, int flags);
size_t tierje_sallocx(const void* block, int flags);
size_t tierje_nallocx(size_t size, int flags);
int tierje_mallctl(const char* name, void* oldp, size_t* oldlenp, void* newp, size_t newlen);
int tierje_mallctlnametomib(const char* name, size_t* mib, size_t* miblenp);
int tierje_mallctlbymib(const size_t* mib, size_t miblen, void* oldp, size_t* oldlenp, void* newp,
                        size_t newlen);

struct tierje_extent_hooks;
using tierje_alloc_fn = void* (*)(tierje_extent_hooks*, void* new_addr, size_t size,
                                  size_t alignment, bool* zero, bool* commit, unsigned arena);
using tierje_dalloc_fn = bool (*)(tierje_extent_hooks*, void* addr, size_t size, bool committed,
                                  unsigned arena);
using tierje_destroy_fn = void (*)(tierje_extent_hooks*, void* addr, size_t size, bool committed,
                                   unsigned arena);
using tierje_range_fn = bool (*)(tierje_extent_hooks*, void* addr, size_t size, size_t offset,
                                 size_t length, unsigned arena);
using tierje_split_fn = bool (*)(tierje_extent_hooks*, void* addr, size_t size, size_t size_a,
                                 size_t size_b, bool committed, unsigned arena);
using tierje_merge_fn = bool (*)(tierje_extent_hooks*, void* addr_a, size_t size_a, void* addr_b,
                                 size_t size_b, bool committed, unsigned arena);

// extent_hooks_t: the order of the members is jemalloc's ABI.
struct tierje_extent_hooks {
  tierje_alloc_fn alloc;
  tierje_dalloc_fn dalloc;
  tierje_destroy_fn destroy;
  tierje_range_fn commit;
  tierje_range_fn decommit;
  tierje_range_fn purge_lazy;
  tierje_range_fn purge_forced;
  tierje_split_fn split;
  tierje_merge_fn merge;
};

// arena_config_t of "experimental.arenas_create_ext" (5.3.0).
struct tierje_arena_config {
  tierje_extent_hooks* extent_hooks;
  bool metadata_use_hooks;
};

// The request of "experimental.batch_alloc" (5.3.0): fill ptrs[0..num).
struct tierje_batch_alloc_packet {
  void** ptrs;
  size_t num;
  size_t size;
  int flags;
};

}  // extern "C"

constexpr int tierjeArena(unsigned arena) { return static_cast<int>((arena + 1) << 20); }
constexpr int tierjeTcache(unsigned tcache) { return static_cast<int>((tcache + 2) << 8); }
constexpr int kTierjeZero = 0x40;
constexpr int tierjeLgAlign(unsigned lg_align) { return static_cast<int>(lg_align); }
