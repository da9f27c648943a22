// The engine: one reserved range per tier (a slot of one big reservation, so
// a block's tier is (p - base) >> shift), bound once with mbind; a private
// jemalloc with extent hooks that hand out that range; an explicit jemalloc
// thread cache per (thread, tier). Why each choice: docs/libtier.md, Engine.
#include "engine.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "devdax.h"
#include "engine_internal.h"
#include "front_cache.h"

// The private jemalloc's compile-time options (its weak tierje_malloc_conf):
// one automatic arena (only jemalloc's own bookkeeping uses it), no
// background threads, sizes up to 64 KiB in the thread caches, and no
// transparent huge pages on its own mappings (under THP "always" each
// sparsely used 2 MiB metadata block became a huge page: a small process
// under the shim went from 3 to 19 MiB in the lab's guest).
extern "C" {
extern const char* tierje_malloc_conf;
const char* tierje_malloc_conf =
    "narenas:1,background_thread:false,oversize_threshold:0,tcache_max:65536,thp:never";
}

namespace tier::alloc {

constinit Engine g_engine;
__thread ThreadState t_thread __attribute__((tls_model("initial-exec")));

namespace {

constexpr int kMpolPreferred = 1;
constexpr int kMpolPreferredMany = 5;  // Linux 5.15
constexpr uint64_t kMiB = 1ull << 20;
constexpr uint64_t kGiB = 1ull << 30;
constexpr uintptr_t kHugePage = 2 * kMiB;
constexpr uint64_t kFullBackoffNs = 200'000'000;

// Records the size class of the block's page for free (see Engine::class_map).
inline void noteClass(const void* block, size_t usable) {
  if (rankOfAddress(block) < 0) return;  // cannot happen; a wild write if it did
  size_t page = (reinterpret_cast<uintptr_t>(block) - g_engine.base) >> kClassMapShift;
  uint8_t value = usable <= kFrontMax ? static_cast<uint8_t>(classIndex(usable) + 1) : 0;
  __atomic_store_n(&g_engine.class_map[page], value, __ATOMIC_RELAXED);
}

// The block's usable size: from the class map, else from jemalloc.
inline size_t usableSize(const void* block) {
  size_t page = (reinterpret_cast<uintptr_t>(block) - g_engine.base) >> kClassMapShift;
  uint8_t value = __atomic_load_n(&g_engine.class_map[page], __ATOMIC_RELAXED);
  return value != 0 ? kClassSizes[value - 1u] : tierje_sallocx(block, 0);
}

struct Chooser {
  tier_chooser_fn choose;
  void* ctx;
};
constinit Chooser g_choosers[16];
constinit std::atomic<unsigned> g_chooser_next{0};
constinit std::atomic<const Chooser*> g_chooser{nullptr};

pthread_mutex_t g_init_lock = PTHREAD_MUTEX_INITIALIZER;
constinit std::atomic<int> g_init_state{0};  // 0 not yet, 1 ready, < 0 failed with -errno
pthread_key_t g_thread_key;
constinit int g_devdax_status = 0;  // 0 not asked, 1 mapped, -errno failed
// jemalloc's batch_alloc takes a run of blocks out of the tcache bin (and
// fresh slabs) in one call, where mallocx would be one slow-path call each.
constinit size_t g_batch_mib[4] = {};
constinit size_t g_batch_miblen = 0;

uint64_t monotonicNs() {
  timespec now;
  clock_gettime(CLOCK_MONOTONIC_COARSE, &now);
  return static_cast<uint64_t>(now.tv_sec) * 1'000'000'000u + static_cast<uint64_t>(now.tv_nsec);
}

uint64_t roundUpPow2(uint64_t v) {
  return v <= 1 ? 1 : uint64_t{1} << (64 - __builtin_clzll(v - 1));
}

// jemalloc 5.3's size class of a plain (unaligned) request: 8, 16, then four
// classes per doubling with a 16-byte minimum spacing. Checked against
// tierje_nallocx by the tests.
inline size_t sizeClass(size_t size) {
  if (size <= 8) return 8;
  if (size <= 16) return 16;
  unsigned lg = 63u - static_cast<unsigned>(__builtin_clzll(size - 1));
  size_t delta = lg < 6 ? 16 : size_t{1} << (lg - 2);
  return (size + delta - 1) & ~(delta - 1);
}

// Free memory the tier's nodes must keep; below it the tier counts as full.
uint64_t headroomBytes(uint64_t total) {
  uint64_t h = total / 64;
  return h < 16 * kMiB ? 16 * kMiB : h;
}

bool tierHasRoom(Tier& tier, size_t size) {
  if (g_engine.count < 2 || t_thread.force_growth || tier.nodes == 0) return true;
  uint64_t now = monotonicNs();
  if (now < tier.full_until_ns.load(std::memory_order_relaxed)) return false;
  uint64_t total = nodesMeminfo("/sys", tier.nodes, "MemTotal");
  uint64_t free_bytes = nodesMeminfo("/sys", tier.nodes, "MemFree");
  if (total == 0) return true;  // no meminfo: trust the kernel's fallback
  if (free_bytes >= size + headroomBytes(total)) return true;
  tier.full_until_ns.store(now + kFullBackoffNs, std::memory_order_relaxed);
  return false;
}

// --- extent hooks: jemalloc asks for >= 2 MiB at a time (opt.retain grows
// geometrically), so each call is at most one mprotect per 2 MiB of growth.

void* hookAlloc(tierje_extent_hooks* hooks, void* new_addr, size_t size, size_t alignment,
                bool* zero, bool* commit, unsigned) {
  Tier& tier = *reinterpret_cast<Tier*>(hooks);
  if (new_addr != nullptr) return nullptr;  // no in-place growth: extents never overlap
  int saved_errno = errno;
  if (!tierHasRoom(tier, size)) return nullptr;
  if (alignment < 4096) alignment = 4096;
  uintptr_t start, end;
  uintptr_t current = tier.frontier.load(std::memory_order_relaxed);
  do {
    start = (current + alignment - 1) & ~(alignment - 1);
    end = start + size;
    if (end < start || end > tier.limit) return nullptr;  // the reserved range is used up
  } while (!tier.frontier.compare_exchange_weak(current, end, std::memory_order_relaxed));
  if (tier.devdax) {  // mapped whole at init; the device's old contents are there
    tier.mapped_bytes.fetch_add(size, std::memory_order_relaxed);
    tier.grow_calls.fetch_add(1, std::memory_order_relaxed);
    *zero = false;
    *commit = true;
    errno = saved_errno;
    return reinterpret_cast<void*>(start);
  }
  // mprotect keeps the range's mbind policy (same VMA flags: it merges back).
  if (mprotect(reinterpret_cast<void*>(start), size, PROT_READ | PROT_WRITE) != 0) {
    errno = saved_errno;
    return nullptr;
  }
  tier.mapped_bytes.fetch_add(size, std::memory_order_relaxed);
  tier.grow_calls.fetch_add(1, std::memory_order_relaxed);
  *zero = true;  // never handed out before
  *commit = true;
  errno = saved_errno;
  return reinterpret_cast<void*>(start);
}

// Opt out: jemalloc keeps the extent (opt.retain) and reuses it on this tier.
bool hookDalloc(tierje_extent_hooks*, void*, size_t, bool, unsigned) {
  return true;
}

void hookDestroy(tierje_extent_hooks* hooks, void* addr, size_t size, bool, unsigned) {
  if (!reinterpret_cast<Tier*>(hooks)->devdax) madvise(addr, size, MADV_DONTNEED);
}

bool hookCommit(tierje_extent_hooks*, void*, size_t, size_t, size_t, unsigned) {
  return false;
}
bool hookDecommit(tierje_extent_hooks*, void*, size_t, size_t, size_t, unsigned) {
  return true;
}

// MADV_DONTNEED keeps the VMA and so its policy; a remap would drop it.
bool hookPurge(tierje_extent_hooks* hooks, void* addr, size_t, size_t offset, size_t length,
               unsigned) {
  if (reinterpret_cast<Tier*>(hooks)->devdax) return true;  // device memory: nothing to give back
  int saved_errno = errno;
  bool failed = madvise(static_cast<char*>(addr) + offset, length, MADV_DONTNEED) != 0;
  errno = saved_errno;
  return failed;
}

bool hookSplit(tierje_extent_hooks*, void*, size_t, size_t, size_t, bool, unsigned) {
  return false;
}
bool hookMerge(tierje_extent_hooks*, void*, size_t, void*, size_t, bool, unsigned) {
  return false;
}

// --- set-up

long mbindRange(uintptr_t start, size_t length, int mode, NodeMask nodes) {
  unsigned long mask[1] = {nodes};
  return syscall(SYS_mbind, start, length, mode, mask, kMaxNodes + 1, 0);
}

// PREFERRED(_MANY), not BIND: an exhausted BIND node means the OOM killer
// for the program, while PREFERRED lets the kernel fall back page by page;
// the engine keeps pages on the tier by refusing growth below a headroom.
bool bindTier(const Tier& tier) {
  size_t length = tier.limit - tier.base;
  if (__builtin_popcountll(tier.nodes) > 1 &&
      mbindRange(tier.base, length, kMpolPreferredMany, tier.nodes) == 0)
    return true;
  NodeMask first = tier.nodes & (~tier.nodes + 1);
  return mbindRange(tier.base, length, kMpolPreferred, first) == 0;
}

// One more arena for the tier; false when jemalloc cannot make one.
bool addArena(Tier& tier) {
  tierje_arena_config config{&tier.hooks, false};  // metadata from mmap: DRAM, not the tier
  unsigned index;
  size_t length = sizeof index;
  if (tierje_mallctl("experimental.arenas_create_ext", &index, &length, &config, sizeof config) !=
      0)
    return false;
  int n = tier.narenas.load(std::memory_order_relaxed);
  tier.arenas[n] = index;
  tier.narenas.store(n + 1, std::memory_order_release);
  return true;
}

// The tier's first arena; the others come with the threads that need them.
bool createArenas(Tier& tier, int max_arenas) {
  tier.hooks = {hookAlloc, hookDalloc, hookDestroy, hookCommit, hookDecommit,
                nullptr,   hookPurge,  hookSplit,   hookMerge};
  tier.max_arenas = max_arenas;
  return addArena(tier);
}

pthread_mutex_t g_arena_lock = PTHREAD_MUTEX_INITIALIZER;

// The slot of the tier's arena with the fewest threads, a new arena when
// every one has a thread and there is room: one thread at a time (a server's
// worker pool replaced over time) stays on one arena and its slabs, instead
// of spreading its blocks over all of them.
int chooseArenaSlot(Tier& tier) {
  auto least = [&] {
    int best = 0;
    int n = tier.narenas.load(std::memory_order_acquire);
    for (int i = 1; i < n; ++i)
      if (tier.arena_threads[i].load(std::memory_order_relaxed) <
          tier.arena_threads[best].load(std::memory_order_relaxed))
        best = i;
    return best;
  };
  int slot = least();
  if (tier.arena_threads[slot].load(std::memory_order_relaxed) > 0 &&
      tier.narenas.load(std::memory_order_acquire) < tier.max_arenas) {
    pthread_mutex_lock(&g_arena_lock);
    if (tier.narenas.load(std::memory_order_relaxed) < tier.max_arenas) addArena(tier);
    pthread_mutex_unlock(&g_arena_lock);
    slot = least();
  }
  tier.arena_threads[slot].fetch_add(1, std::memory_order_relaxed);
  return slot;
}

// The jemalloc arena of the calling thread on `rank`, chosen on first use.
unsigned threadArena(int rank) {
  ThreadState& ts = t_thread;
  Tier& tier = g_engine.tiers[rank];
  if (ts.phase == Phase::kDead) return tier.arenas[0];  // no longer counted anywhere
  if (ts.arena_slot[rank] == 0)
    ts.arena_slot[rank] = static_cast<uint8_t>(chooseArenaSlot(tier) + 1);
  return tier.arenas[ts.arena_slot[rank] - 1];
}

void leaveArenas(ThreadState& ts) {
  for (int rank = 0; rank < g_engine.count; ++rank) {
    if (ts.arena_slot[rank] == 0) continue;
    g_engine.tiers[rank].arena_threads[ts.arena_slot[rank] - 1].fetch_sub(
        1, std::memory_order_relaxed);
    ts.arena_slot[rank] = 0;
  }
}

}  // namespace

__attribute__((noinline)) void foldThread(ThreadState& ts, int rank) {
  Tier& tier = g_engine.tiers[rank];
  tier.allocated_bytes.fetch_add(ts.pending_bytes[rank], std::memory_order_relaxed);
  tier.allocations.fetch_add(ts.pending_allocations[rank], std::memory_order_relaxed);
  ts.pending_bytes[rank] = 0;
  ts.pending_allocations[rank] = 0;
}

namespace {

constexpr int kNoTcache = tierjeTcache(static_cast<unsigned>(-1));

// Returns a front bin's blocks [from, count) to jemalloc (the tier's tcache).
// Frees into the tier's jemalloc tcache: the automatic one (rank 0, no
// tcache bits in flags) through jemalloc's fast free, else the explicit one.
inline void releaseToJemalloc(void* block, size_t usable, int flags) {
  if ((flags & 0xfff00) == 0)
    tierje_free(block);
  else
    tierje_sdallocx(block, usable, flags & 0xfff00);  // arena bits mean nothing to a free
}

// A bin holding `keep` blocks or fewer is left alone: raising its count to
// `keep` would hand out whatever stale pointers sit in the empty slots.
void flushBin(FrontBin& bin, uint32_t keep, unsigned index, int flags) {
  if (bin.count <= keep) return;
  for (uint32_t i = keep; i < bin.count; ++i)
    releaseToJemalloc(bin.slots[i], kClassSizes[index], flags);
  bin.count = keep;
}

FrontCache* createFront() {
  // From jemalloc's own automatic arena 0 (plain mmap): never a tier's memory.
  auto* front =
      static_cast<FrontCache*>(tierje_mallocx(sizeof(FrontCache), kNoTcache | tierjeArena(0)));
  if (front == nullptr) return nullptr;
  for (unsigned c = 0; c < kFrontClasses; ++c) {
    size_t slots = 16 * 1024 / kClassSizes[c];
    front->bins[c].count = 0;
    front->bins[c].capacity =
        static_cast<uint32_t>(slots < 4 ? 4 : (slots > kFrontSlots ? kFrontSlots : slots));
  }
  return front;
}

// A thread's caches outlive it, parked for the next thread that needs the
// same tier: threadExit runs as a pthread-key destructor, possibly after the
// private jemalloc's own per-thread teardown, and calling into jemalloc then
// (tcache.destroy, or even freeing into it) crashed when the thread had freed
// blocks of another thread on a far tier. Parking makes no jemalloc call at
// exit and never leaks: the next thread takes the tcache id and front cache
// as they are (their blocks are free blocks of that tier, valid anywhere).
struct ParkedCaches {
  unsigned tcache;  // explicit tcache id; unused for rank 0
  FrontCache* front;
};
constexpr int kParkedPerRank = 1024;
pthread_mutex_t g_park_lock = PTHREAD_MUTEX_INITIALIZER;
ParkedCaches g_parked[kMaxTiers][kParkedPerRank];
int g_parked_count[kMaxTiers];

bool park(int rank, ParkedCaches caches) {
  pthread_mutex_lock(&g_park_lock);
  const bool room = g_parked_count[rank] < kParkedPerRank;
  if (room) g_parked[rank][g_parked_count[rank]++] = caches;
  pthread_mutex_unlock(&g_park_lock);
  return room;
}

bool unpark(int rank, ParkedCaches* caches) {
  pthread_mutex_lock(&g_park_lock);
  const bool found = g_parked_count[rank] > 0;
  if (found) *caches = g_parked[rank][--g_parked_count[rank]];
  pthread_mutex_unlock(&g_park_lock);
  return found;
}

void threadExit(void*) {
  ThreadState& ts = t_thread;
  for (int rank = 0; rank < g_engine.count; ++rank) {
    foldThread(ts, rank);
    FrontCache* front = ts.front[rank];
    ts.front[rank] = nullptr;
    const bool explicit_tcache = (ts.flags[rank] & 0xfff00) != 0;
    const unsigned tcache =
        explicit_tcache ? static_cast<unsigned>(((ts.flags[rank] >> 8) & 0xfff) - 2) : 0;
    ts.flags[rank] = 0;
    if (front == nullptr && !explicit_tcache) continue;
    if (park(rank, ParkedCaches{tcache, front})) continue;
    // No room to park (over 1024 threads died and none came since): the old
    // way, which works unless this thread freed other threads' far blocks.
    if (front != nullptr) {
      for (unsigned c = 0; c < kFrontClasses; ++c)
        flushBin(front->bins[c], 0, c, explicit_tcache ? tierjeTcache(tcache) : 0);
      tierje_dallocx(front, kNoTcache);
    }
    if (explicit_tcache)
      tierje_mallctl("tcache.destroy", nullptr, nullptr, const_cast<unsigned*>(&tcache),
                     sizeof tcache);
  }
  leaveArenas(ts);
  ts.phase = Phase::kDead;
}

int setUp() {
  TierLayout layout;
  const char* override_text = getenv("LIBTIER_TIERS");
  if (override_text == nullptr || !parseTierOverride(override_text, &layout)) {
    // A bad override is the shim's to report (it reads the same variable).
    int rc = discoverTiers("/sys", &layout);
    if (rc != 0) {
      layout = TierLayout{};
      layout.count = 1;
      layout.nodes[0] = 1;  // no sysfs: one tier, the kernel's default placement
    }
  }
  // The devdax pool, when asked for, is one more tier after the NUMA ones.
  const char* devdax_path = getenv("LIBTIER_DEVDAX");
  int devdax_rank = -1;
  if (devdax_path != nullptr && *devdax_path != '\0') {
    if (layout.count < kMaxTiers) {
      devdax_rank = layout.count;
      layout.nodes[layout.count++] = 0;
    } else {
      g_devdax_status = -E2BIG;
    }
  }
  Engine& e = g_engine;
  uint64_t slot = 4 * kGiB;
  for (int r = 0; r < layout.count; ++r) {
    uint64_t capacity = nodesMeminfo("/sys", layout.nodes[r], "MemTotal");
    uint64_t wanted = roundUpPow2(2 * capacity);
    if (wanted > slot) slot = wanted;
  }
  if (slot > (4096 * kGiB)) slot = 4096 * kGiB;
  // Address space can be limited (RLIMIT_AS, valgrind): halve the slots
  // until the reservation fits, down to 256 MiB per tier.
  size_t total;
  void* raw;
  for (;;) {
    total = static_cast<size_t>(slot) * static_cast<size_t>(layout.count);
    raw = mmap(nullptr, total + kHugePage, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
               -1, 0);
    if (raw != MAP_FAILED) break;
    if (slot <= 256 * kMiB) return -errno;
    slot /= 2;
  }
  uintptr_t base = (reinterpret_cast<uintptr_t>(raw) + kHugePage - 1) & ~(kHugePage - 1);
  if (base != reinterpret_cast<uintptr_t>(raw))
    munmap(raw, base - reinterpret_cast<uintptr_t>(raw));
  uintptr_t raw_end = reinterpret_cast<uintptr_t>(raw) + total + kHugePage;
  if (raw_end > base + total) munmap(reinterpret_cast<void*>(base + total), raw_end - base - total);

  void* map = mmap(nullptr, total >> kClassMapShift, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (map == MAP_FAILED) return -errno;
  // One byte per 4 KiB page is touched sparsely: a huge page here would be
  // 2 MiB resident for a few bytes used.
  madvise(map, total >> kClassMapShift, MADV_NOHUGEPAGE);
  e.class_map = static_cast<uint8_t*>(map);
  long cpus = sysconf(_SC_NPROCESSORS_CONF);
  int narenas = cpus < 1 ? 1 : (cpus > kMaxArenasPerTier ? kMaxArenasPerTier : int(cpus));
  for (int n = 0; n < kMaxNodes; ++n)
    e.rank_of_node[n] = -1;
  int usable = 0;
  for (int r = 0; r < layout.count; ++r) {
    Tier& tier = e.tiers[r];
    tier.rank = r;
    tier.nodes = layout.nodes[r];
    tier.base = base + static_cast<uintptr_t>(slot) * static_cast<uintptr_t>(r);
    tier.limit = tier.base + slot;
    tier.frontier.store(tier.base, std::memory_order_relaxed);
    if (r == devdax_rank) {
      tier.devdax = true;
      long mapped = mapDevdax(devdax_path, tier.base, slot);
      g_devdax_status = mapped > 0 ? 1 : static_cast<int>(mapped < 0 ? mapped : -ENOSPC);
      if (mapped > 0) tier.limit = tier.base + static_cast<uintptr_t>(mapped);
      tier.usable = mapped > 0 && createArenas(tier, narenas);
      if (tier.usable) ++usable;
      continue;
    }
    // An unbindable tier (a node gone) is left out: requests for it spill.
    tier.usable = (bindTier(tier) || layout.count == 1) && createArenas(tier, narenas);
    if (tier.usable) ++usable;
    for (int n = 0; n < kMaxNodes; ++n)
      if (tier.nodes & (NodeMask{1} << n)) e.rank_of_node[n] = static_cast<int8_t>(r);
  }
  if (usable == 0) return -ENOMEM;
  e.count = layout.count;
  e.shift = static_cast<unsigned>(__builtin_ctzll(slot));
  e.end = base + total;
  e.base = base;  // last: rankOfAddress is valid once base and end are
  if (pthread_key_create(&g_thread_key, threadExit) != 0) return -EAGAIN;
  g_batch_miblen = sizeof g_batch_mib / sizeof g_batch_mib[0];
  if (tierje_mallctlnametomib("experimental.batch_alloc", g_batch_mib, &g_batch_miblen) != 0)
    g_batch_miblen = 0;  // refill one block at a time
  return 0;
}

}  // namespace

namespace {

// Boots the private jemalloc first (it registers its own fork handlers as it
// boots), then registers the engine's: handlers prepare in reverse order, so
// the engine takes its init lock (waiting out a set-up in progress, which may
// need jemalloc's locks) before jemalloc takes its own.
pthread_once_t g_boot_once = PTHREAD_ONCE_INIT;

void bootJemallocAndForkHandlers() {
  unsigned narenas = 0;
  size_t length = sizeof narenas;
  tierje_mallctl("arenas.narenas", &narenas, &length, nullptr, 0);
  pthread_atfork(tier_engine_atfork_prepare, tier_engine_atfork_parent, tier_engine_atfork_child);
}

}  // namespace

int ensureInit() {
  int state = g_init_state.load(std::memory_order_acquire);
  if (state != 0) return state;
  tier_engine_init();
  return g_init_state.load(std::memory_order_acquire);
}

namespace {

// Slow path of a thread's first use of a tier: its explicit tcache and arena.
// Behind the fastest tier's front cache is jemalloc's automatic tcache (its
// fast free path is a third of the explicit tcache's), with the thread's
// arena bound to one of rank 0's arenas. That cache holds only rank-0
// blocks: only they are ever freed into it (every other tier frees into its
// explicit tcache), and jemalloc's internal allocations keep using its own
// arena 0 (the "iarena", which this does not rebind).
bool bindRank0() {
  ThreadState& ts = t_thread;
  Tier& tier = g_engine.tiers[0];
  if (!tier.usable) return false;
  unsigned arena = threadArena(0);
  if (tierje_mallctl("thread.arena", nullptr, nullptr, &arena, sizeof arena) != 0) return false;
  // Whatever the thread's automatic tcache held came from elsewhere (only a
  // program calling the private jemalloc itself, like backend_bench): drop it.
  tierje_mallctl("thread.tcache.flush", nullptr, nullptr, nullptr, 0);
  ts.bound_arena = arena + 1;
  if (ts.phase == Phase::kFresh) {
    ts.phase = Phase::kLive;
    pthread_setspecific(g_thread_key, &ts);  // non-NULL: threadExit folds the statistics
  }
  return true;
}

__attribute__((noinline)) int threadFlags(int rank) {
  ThreadState& ts = t_thread;
  Tier& tier = g_engine.tiers[rank];
  if (!tier.usable) return 0;
  int arena = tierjeArena(threadArena(rank));
  if (ts.phase == Phase::kDead) return arena | tierjeTcache(static_cast<unsigned>(-1));
  if (rank == 0) {
    if (!bindRank0()) return 0;
    ts.flags[0] = tierjeArena(ts.bound_arena - 1);  // no tcache bits: the automatic one
    ParkedCaches parked;
    ts.front[0] = unpark(0, &parked) && parked.front != nullptr ? parked.front : createFront();
    return ts.flags[0];
  }
  unsigned tcache;
  ParkedCaches parked;
  if (unpark(rank, &parked)) {
    tcache = parked.tcache;
    ts.front[rank] = parked.front != nullptr ? parked.front : createFront();
  } else {
    size_t length = sizeof tcache;
    if (tierje_mallctl("tcache.create", &tcache, &length, nullptr, 0) != 0)
      return arena | tierjeTcache(static_cast<unsigned>(-1));
    ts.front[rank] = createFront();
  }
  ts.flags[rank] = arena | tierjeTcache(tcache);
  // Last: glibc's pthread_setspecific may calloc (keys past the first 32),
  // which under the shim comes back here and must find this tier set up.
  if (ts.phase == Phase::kFresh) {
    ts.phase = Phase::kLive;
    pthread_setspecific(g_thread_key, &ts);  // non-NULL: threadExit runs
  }
  return ts.flags[rank];
}

void refillBatch(FrontBin& bin, uint32_t want, size_t size, int flags) {
  if (g_batch_miblen == 0 || bin.count >= want) return;
  tierje_batch_alloc_packet packet{bin.slots + bin.count, want - bin.count, size, flags};
  size_t filled = 0;
  size_t length = sizeof filled;
  if (tierje_mallctlbymib(g_batch_mib, g_batch_miblen, &filled, &length, &packet, sizeof packet) ==
          0 &&
      filled <= want - bin.count)
    bin.count += static_cast<uint32_t>(filled);
}

int threadFlagsFor(int rank) {
  int flags = t_thread.flags[rank];
  return flags != 0 ? flags : threadFlags(rank);
}

// Allocation past the front cache: its first use by the thread, an empty
// bin (refilled with half its capacity), an aligned or large request.
__attribute__((noinline)) void* allocateSlow(int rank, size_t size, int extra_flags) {
  ThreadState& ts = t_thread;
  int flags = threadFlagsFor(rank);
  if (flags == 0) return nullptr;
  FrontCache* front = ts.front[rank];
  if (front != nullptr && size <= kFrontMax && (extra_flags & 0x3f) == 0) {
    unsigned c = classIndex(size);
    FrontBin& bin = front->bins[c];
    uint32_t want = bin.capacity / 2 + 1;
    uint32_t first_new = bin.count;
    refillBatch(bin, want, kClassSizes[c], flags);
    while (bin.count < want) {
      void* block = tierje_mallocx(kClassSizes[c], flags);
      if (block == nullptr) break;
      bin.slots[bin.count++] = block;
    }
    for (uint32_t i = first_new; i < bin.count; ++i)
      noteClass(bin.slots[i], kClassSizes[c]);
    if (bin.count == 0) return nullptr;
    void* block = bin.slots[--bin.count];
    account(ts, rank, static_cast<int64_t>(kClassSizes[c]), 1);
    if (extra_flags & kTierjeZero) memset(block, 0, size);
    return block;
  }
  void* block = tierje_mallocx(size == 0 ? 1 : size, flags | extra_flags);
  if (block == nullptr) return nullptr;
  size_t usable = (extra_flags & 0x3f) == 0 ? sizeClass(size) : tierje_sallocx(block, 0);
  noteClass(block, usable);
  account(ts, rank, static_cast<int64_t>(usable), 1);
  return block;
}

__attribute__((noinline)) void freeSlow(int rank, void* block, size_t usable) {
  ThreadState& ts = t_thread;
  int flags = threadFlagsFor(rank);
  if (flags == 0) flags = kNoTcache;
  FrontCache* front = ts.front[rank];
  if (front != nullptr && usable <= kFrontMax) {
    unsigned c = classIndex(usable);
    FrontBin& bin = front->bins[c];
    flushBin(bin, bin.capacity / 2, c, flags);
    bin.slots[bin.count++] = block;
  } else {
    releaseToJemalloc(block, usable, flags);
  }
  account(ts, rank, -static_cast<int64_t>(usable), 0);
}

}  // namespace

// The engine's allocation entry points, shared with api.cpp.

__attribute__((always_inline)) inline void* allocateOnFast(int rank, size_t size, int extra_flags);
void* allocateOn(int rank, size_t size, int extra_flags) {
  return allocateOnFast(rank, size, extra_flags);
}

__attribute__((always_inline)) inline void* allocateOnFast(int rank, size_t size, int extra_flags) {
  ThreadState& ts = t_thread;
  FrontCache* front = ts.front[rank];
  if (__builtin_expect(front != nullptr && size <= kFrontMax && (extra_flags & 0x3f) == 0, 1)) {
    unsigned c = classIndex(size);
    FrontBin& bin = front->bins[c];
    if (__builtin_expect(bin.count != 0, 1)) {
      void* block = bin.slots[--bin.count];
      account(ts, rank, static_cast<int64_t>(kClassSizes[c]), 1);
      if (extra_flags & kTierjeZero) memset(block, 0, size);
      return block;
    }
  }
  return allocateSlow(rank, size, extra_flags);
}

void* allocateSpilling(int rank, size_t size, int extra_flags) {
  const int count = g_engine.count;
  for (int pass = 0; pass < 2; ++pass) {
    t_thread.force_growth = pass == 1;
    // The requested tier, then the next ones down, then the next ones up.
    for (int step = 0; step < count; ++step) {
      int below = count - 1 - rank;
      int r = step <= below ? rank + step : rank - (step - below);
      void* block = allocateOn(r, size, extra_flags);
      if (block == nullptr) continue;
      t_thread.force_growth = false;
      if (r != rank) g_engine.tiers[r].spilled_in.fetch_add(1, std::memory_order_relaxed);
      return block;
    }
  }
  t_thread.force_growth = false;
  errno = ENOMEM;
  return nullptr;
}

void freeOn(int rank, void* block, size_t usable) {
  ThreadState& ts = t_thread;
  FrontCache* front = ts.front[rank];
  if (__builtin_expect(front != nullptr && usable <= kFrontMax, 1)) {
    FrontBin& bin = front->bins[classIndex(usable)];
    if (__builtin_expect(bin.count < bin.capacity, 1)) {
      bin.slots[bin.count++] = block;
      accountFree(ts, rank, static_cast<int64_t>(usable));
      return;
    }
  }
  freeSlow(rank, block, usable);
}

int resolveRank(tier_where_t where, size_t size) {
  const int count = g_engine.count;
  if (where == TIER_DEFAULT) {
    const Chooser* chooser = g_chooser.load(std::memory_order_acquire);
    if (chooser == nullptr) return 0;
    int r = chooser->choose(size, chooser->ctx);
    return r < 0 ? 0 : (r >= count ? count - 1 : r);
  }
  if (where >= 0 && where < TIER_FAR) return where < count ? where : count - 1;
  if (where == TIER_FAR) return count > 1 ? 1 : 0;
  if ((where & ~0xffff) == TIER_NODE(0)) {
    int node = where & 0xffff;
    if (node >= kMaxNodes) return -1;
    int r = g_engine.rank_of_node[node];
    return r >= 0 ? r : 0;  // a node without memory here: the fastest tier serves
  }
  return -1;
}

void* allocateWhere(tier_where_t where, size_t size, int extra_flags) {
  if (__builtin_expect(g_init_state.load(std::memory_order_acquire) != 1, 0) && ensureInit() != 1) {
    errno = ENOMEM;
    return nullptr;
  }
  // An explicit rank that exists, or malloc's TIER_DEFAULT with no chooser
  // set (the shim without a policy): no resolving call.
  int rank = static_cast<unsigned>(where) < static_cast<unsigned>(g_engine.count) ? where
             : where == TIER_DEFAULT && g_chooser.load(std::memory_order_acquire) == nullptr
                 ? 0
                 : resolveRank(where, size);
  if (rank < 0) {
    errno = EINVAL;
    return nullptr;
  }
  void* block = allocateOnFast(rank, size, extra_flags);
  return block != nullptr ? block : allocateSpilling(rank, size, extra_flags);
}

size_t usableOf(const void* block) {
  return usableSize(block);
}

void noteBlock(const void* block) {
  noteClass(block, tierje_sallocx(block, 0));
}

void freeBlock(void* block) {
  int rank = rankOfAddress(block);
  if (rank < 0) return;                   // NULL, or not libtier's
  if (pushFront(rank, block)) [[likely]]  // the class is known: no lookup
    return;
  freeOn(rank, block, usableSize(block));
}

void freeBlockSlow(int rank, void* block) {
  freeOn(rank, block, usableSize(block));
}

int allocateOnFlags(int rank) {
  return threadFlagsFor(rank);
}

void accountResize(int rank, int64_t delta_bytes, bool moved) {
  account(t_thread, rank, delta_bytes, moved ? 1 : 0);
}

}  // namespace tier::alloc

using namespace tier::alloc;

extern "C" {

int tier_engine_init(void) {
  int state = g_init_state.load(std::memory_order_acquire);
  if (state != 0) return state == 1 ? 0 : state;
  if (t_thread.in_init) return -EDEADLK;  // called back from inside set-up
  t_thread.in_init = true;
  // Fork handlers exist before any thread can hold the init lock.
  pthread_once(&g_boot_once, bootJemallocAndForkHandlers);
  pthread_mutex_lock(&g_init_lock);
  state = g_init_state.load(std::memory_order_relaxed);
  if (state == 0) {
    int rc = setUp();
    state = rc == 0 ? 1 : rc;
    g_init_state.store(state, std::memory_order_release);
  }
  pthread_mutex_unlock(&g_init_lock);
  t_thread.in_init = false;
  return state == 1 ? 0 : state;
}

int tier_engine_ready(void) {
  return g_init_state.load(std::memory_order_relaxed) == 1;
}

void tier_engine_set_chooser(tier_chooser_fn choose, void* ctx) {
  if (choose == nullptr) {
    g_chooser.store(nullptr, std::memory_order_release);
    return;
  }
  // A fresh slot each time, so a reader never sees a half-written pair.
  Chooser& slot = g_choosers[g_chooser_next.fetch_add(1) % 16];
  slot.choose = choose;
  slot.ctx = ctx;
  g_chooser.store(&slot, std::memory_order_release);
}

int tier_engine_owns(const void* block) {
  return rankOfAddress(block) >= 0;
}

size_t tier_engine_usable_size(const void* block) {
  return rankOfAddress(block) >= 0 ? usableOf(block) : 0;
}

// The class map knows every block's size already, and better than a caller
// could: the size is not needed (nor trusted).
void tier_engine_free_sized(void* block, size_t) {
  freeBlock(block);
}

void tier_engine_atfork_prepare(void) {
  pthread_mutex_lock(&g_init_lock);
  pthread_mutex_lock(&g_arena_lock);
  pthread_mutex_lock(&g_park_lock);
}
void tier_engine_atfork_parent(void) {
  pthread_mutex_unlock(&g_park_lock);
  pthread_mutex_unlock(&g_arena_lock);
  pthread_mutex_unlock(&g_init_lock);
}
void tier_engine_atfork_child(void) {
  pthread_mutex_unlock(&g_park_lock);
  pthread_mutex_unlock(&g_arena_lock);
  pthread_mutex_unlock(&g_init_lock);
}

void tier_engine_flush_thread_stats(void) {
  for (int rank = 0; rank < g_engine.count; ++rank)
    foldThread(t_thread, rank);
}

int tier_engine_devdax_status(void) {
  ensureInit();
  return g_devdax_status;
}

unsigned long tier_engine_grow_calls(int rank) {
  if (rank < 0 || rank >= g_engine.count) return 0;
  return g_engine.tiers[rank].grow_calls.load(std::memory_order_relaxed);
}

int tier_engine_rank_of_node(int node) {
  if (ensureInit() != 1 || node < 0 || node >= kMaxNodes) return -1;
  return g_engine.rank_of_node[node];
}

}  // extern "C"
