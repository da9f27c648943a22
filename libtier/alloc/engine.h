/* libtier's allocation engine: the internal interface the LD_PRELOAD shim
 * (libtier/preload) builds on. The public API (include/tier/tier.h) is a thin
 * layer over the same functions.
 *
 * Safe inside malloc: nothing here calls the process's malloc. The engine
 * reads sysfs with raw syscalls into stack buffers, and its base allocator
 * is a private, symbol-renamed copy of jemalloc (tierje_*) whose metadata
 * comes from plain mmap. See docs/libtier.md, "## Engine".
 */
#ifndef LIBTIER_ALLOC_ENGINE_H
#define LIBTIER_ALLOC_ENGINE_H

#include <stddef.h>
#include <stdint.h>

#include "tier/tier.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Discovers the tiers, reserves and binds one address range per tier,
 * registers the engine's fork handlers (pthread_atfork, once) and boots the
 * private jemalloc. Idempotent and thread-safe (concurrent callers wait for
 * the first). 0, or -errno when no tier could be set up: the tier_* calls
 * then return NULL with errno = ENOMEM. Every tier_* call runs it lazily;
 * the shim calls it once its bootstrap is done. */
int tier_engine_init(void);
/* 1 once tier_engine_init has succeeded (a relaxed load: cheap). */
int tier_engine_ready(void);

/* How TIER_DEFAULT picks a tier rank per request. The default (and a NULL
 * `choose`) is rank 0 with spill-over. The chooser runs on every
 * TIER_DEFAULT request from any thread, must not allocate, and may return
 * any int: a rank outside 0..tier_count()-1 is clamped into it. */
typedef int (*tier_chooser_fn)(size_t size, void *ctx);
void tier_engine_set_chooser(tier_chooser_fn choose, void *ctx);

/* 1 when `block` lies in one of the engine's reserved ranges (a range
 * check, no lookup), else 0. */
int tier_engine_owns(const void *block);
/* The usable size of an engine block (0 for NULL or a foreign pointer). */
size_t tier_engine_usable_size(const void *block);
/* C++ sized delete. The same as tier_free: the engine finds every block's
 * size class from its page (a one-byte-per-page map), so the size given is
 * not needed and not trusted. */
void tier_engine_free_sized(void *block, size_t size);

/* The engine registers its own fork handlers in tier_engine_init (and the
 * private jemalloc registers its own); the shim registers handlers only for
 * its own locks. Exposed so tests can drive them. */
void tier_engine_atfork_prepare(void);
void tier_engine_atfork_parent(void);
void tier_engine_atfork_child(void);

/* Per-thread statistics are folded into the global tier_stats counters every
 * 64 KiB or 64 allocations per tier and at thread exit; this folds the
 * calling thread's now (tests, and before printing stats). */
void tier_engine_flush_thread_stats(void);

/* How many times tier `rank` grew (one mprotect of >= 2 MiB each; the range
 * was mmap'd and mbind'd once at init); 0 for a rank that does not exist. */
unsigned long tier_engine_grow_calls(int rank);

/* The devdax tier (LIBTIER_DEVDAX=/dev/daxX.Y: a device-DAX device, mapped
 * with libpmem2 as one more tier after the NUMA ones): 0 when not asked for,
 * 1 when mapped, -errno when it could not be (requests for its rank then
 * spill to the tier above). For the shim to report a bad value once. */
int tier_engine_devdax_status(void);

/* The rank of the tier holding NUMA node `node`, -1 when the node holds no
 * memory libtier manages. */
int tier_engine_rank_of_node(int node);

#ifdef __cplusplus
}
#endif

#endif /* LIBTIER_ALLOC_ENGINE_H */
