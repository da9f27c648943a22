/* libtier: tier-aware allocation.
 *
 * Memory comes from one reserved address range per tier (bound once to the
 * tier's nodes with mbind), so the tier of a block is a property of its
 * address and tier_free() is a range check. Tiers are ranked by the host's
 * topology (0 = fastest, the DRAM next to the CPUs); see docs/libtier.md.
 *
 * Every function is thread-safe and fork-safe. A request that a tier cannot
 * serve (exhausted, offlined, absent on this host) is served by the next tier
 * down, then by the next up: nothing fails that plain malloc would serve.
 * Errors: NULL with errno (ENOMEM, EINVAL), or a negative errno value.
 */
#ifndef LIBTIER_TIER_H
#define LIBTIER_TIER_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Where to allocate: a tier rank, "the fast tier", "the far tier", a NUMA
 * node, or the process's default placement. Build one with the macros. */
typedef int32_t tier_where_t;

#define TIER_FAST ((tier_where_t)0)             /* rank 0: the fastest tier */
#define TIER_RANK(r) ((tier_where_t)(r))        /* rank r >= 0, 0 fastest */
#define TIER_FAR ((tier_where_t)0x10000)        /* the first tier below the fast one */
#define TIER_NODE(n) ((tier_where_t)(0x20000 | (n))) /* NUMA node n */
#define TIER_DEFAULT ((tier_where_t)0x30000)    /* as malloc: the policy in force */

void *tier_malloc(tier_where_t where, size_t size);
void *tier_calloc(tier_where_t where, size_t count, size_t size);
/* Keeps the block on its tier (a NULL block: TIER_DEFAULT). */
void *tier_realloc(void *block, size_t size);
/* Moves the block's contents to `where` when it is not there already. */
void *tier_realloc_on(tier_where_t where, void *block, size_t size);
void *tier_aligned_alloc(tier_where_t where, size_t alignment, size_t size);
/* 0, EINVAL (alignment not a power of two multiple of sizeof(void*)) or ENOMEM. */
int tier_posix_memalign(tier_where_t where, void **out, size_t alignment, size_t size);
/* Any block from this API (or from the shim); NULL is ignored. */
void tier_free(void *block);
size_t tier_usable_size(const void *block);

/* The rank of the tier whose reserved range holds `address`; -1 when the
 * address is not libtier's. */
int tier_of(const void *address);
/* The node the page holding `address` is on now (the kernel may have moved
 * it), -errno when unknown (ENOENT: not faulted in yet). */
int tier_node_of(const void *address);

/* Hints to tierd for a range, forwarded when the agent runs (0 when sent,
 * -ENOTCONN when no agent listens: the hint is then a no-op). */
typedef enum {
  TIER_HINT_HOT = 1,   /* keep on the fast tier */
  TIER_HINT_COLD = 2,  /* a good candidate for far memory */
  TIER_HINT_PIN = 3,   /* never move (tierctl pin) */
  TIER_HINT_UNPIN = 4,
} tier_hint_t;
int tier_hint(const void *address, size_t length, tier_hint_t hint);

/* The host's tiers as libtier sees them. */
int tier_count(void);

typedef struct {
  int rank;                  /* 0 = fastest */
  int nodes[16];             /* NUMA nodes of the tier, node_count of them */
  int node_count;
  uint64_t reserved_bytes;   /* address space reserved for the tier */
  uint64_t mapped_bytes;     /* of which mmap'd and bound so far */
  uint64_t allocated_bytes;  /* live blocks (usable size) */
  uint64_t allocations;      /* tier_malloc & co. served here, total */
  uint64_t spilled_in;       /* requests for another tier served here */
} tier_stats_t;
/* 0, or -EINVAL for a rank that does not exist. */
int tier_stats(int rank, tier_stats_t *out);

#ifdef __cplusplus
}
#endif

#endif /* LIBTIER_TIER_H */
