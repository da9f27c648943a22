#include "preload/shim.h"

#include <fcntl.h>
#include <pthread.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string_view>

#include "alloc/engine.h"
#include "alloc/node_sysfs.h"
#include "preload/agent_link.h"
#include "preload/bootstrap.h"
#include "preload/policy.h"

extern "C" {
// glibc's own allocator, exported under these names: the last resort when
// the engine cannot serve, and never reached through dlsym.
void* __libc_malloc(size_t size);
void* __libc_calloc(size_t count, size_t size);
void* __libc_memalign(size_t alignment, size_t size);
void* __libc_realloc(void* block, size_t size);
void __libc_free(void* block);
}
extern char** environ;

namespace tier::preload {
namespace {

#define SHIM_TLS __attribute__((tls_model("initial-exec")))

enum State : int { kUninit, kStarting, kReady, kGlibcOnly };
std::atomic<int> g_state{kUninit};
// Set while this thread runs the shim's start-up: its allocations (from
// pthread_atfork, say) come from the bootstrap buffer instead of recursing.
thread_local bool t_starting SHIM_TLS = false;

// --- glibc blocks: malloc_usable_size's answer without calling it (it is
// interposed). glibc's chunk header: the size word just before the block,
// low bits flags; an mmapped chunk (bit 2) has two header words of overhead.
size_t glibcUsableSize(const void* block) {
  size_t word = static_cast<const size_t*>(block)[-1];
  size_t chunk = word & ~size_t{7};
  return (word & 2) ? chunk - 2 * sizeof(size_t) : chunk - sizeof(size_t);
}

std::atomic<uint64_t> g_glibc_blocks{0};  // served by glibc because the engine could not

// --- the policy, set once at start-up.
Policy g_policy;
bool g_placing = false;     // the policy places blocks (else TIER_DEFAULT: fast first)
bool g_accounting = false;  // a ratio over two or more tiers is in force
Slots g_slots;
int g_tier_count = 0;

// The ratio balancer's live bytes per slot: each thread adds to its own
// counters and folds them into the shared ones every kFoldBytes, so there is
// no shared atomic on each malloc; the error this adds is at most
// threads x slots x kFoldBytes.
struct alignas(64) SharedCounter {
  std::atomic<int64_t> live{0};
};
SharedCounter g_live[kMaxShares];
pthread_key_t g_fold_key;

void foldThread(void*) {
  for (int i = 0; i < g_slots.count; ++i) {
    g_live[i].live.fetch_add(t_delta[i], std::memory_order_relaxed);
    t_delta[i] = 0;
  }
}

// A block's tier and usable size: inline from the engine's range and class
// map when the shim is built with its internals (two calls otherwise, on
// every malloc and free under a ratio).
int rankOf(const void* block) {
#ifdef TIER_PRELOAD_ENGINE_INTERNALS
  return tier::alloc::rankOfAddress(block);
#else
  return tier_of(block);
#endif
}

size_t usableOf(const void* block) {
#ifdef TIER_PRELOAD_ENGINE_INTERNALS
  size_t known = tier::alloc::knownUsableSize(block);
  if (known != 0) [[likely]]
    return known;
#endif
  return tier_engine_usable_size(block);
}

void count(const void* block, int64_t sign) {
  int rank = rankOf(block);
  if (rank < 0 || rank >= kMaxRanks) return;
  countLive(rank, sign * static_cast<int64_t>(usableOf(block)));
}

int pickRatioRank(size_t size) {
  int64_t live[kMaxShares];
  for (int i = 0; i < g_slots.count; ++i)
    live[i] = g_live[i].live.load(std::memory_order_relaxed) + t_delta[i];
  return g_slots.rank[pickSlot(g_slots, size, live)];
}

tier_where_t whereFor(size_t size) {
  Target target = g_policy.targetFor(size);
  switch (target.kind) {
    case Target::kFast:
      return TIER_FAST;
    case Target::kFar:
      return TIER_FAR;
    case Target::kRank:
      return TIER_RANK(target.index);
    case Target::kNode:
      return TIER_NODE(target.index);
    case Target::kRatio:
      return TIER_RANK(pickRatioRank(size));
  }
  return TIER_DEFAULT;
}

// The rank a target names; -1 for a ratio, whose rank is chosen per block.
int fixedRank(const Target& target) {
  switch (target.kind) {
    case Target::kFast:
      return 0;
    case Target::kFar:
      return 1;
    case Target::kRank:
      return target.index;
    case Target::kNode:
      return std::max(tier_engine_rank_of_node(target.index), 0);
    case Target::kRatio:
      return -1;
  }
  return 0;
}

// The chooser behind tier_malloc(TIER_DEFAULT, ...) called by the program
// itself: the same policy, as a rank.
int chooseRank(size_t size, void*) {
  const Target target = g_policy.targetFor(size);
  return target.kind == Target::kRatio ? pickRatioRank(size) : fixedRank(target);
}

// --- start-up: settings from LIBTIER_CONFIG and the environment, read with
// plain syscalls into static buffers.
void writeLine(const char* text) {
  size_t length = std::strlen(text);
  while (length > 0) {
    ssize_t n = ::write(2, text, length);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;
    text += n;
    length -= static_cast<size_t>(n);
  }
}

char g_environ_copy[64 * 1024];  // /proc/self/environ, when environ is not set up yet

// Calls visit(name, value) for each LIBTIER_* variable.
template <typename Visit>
void forEachSetting(Visit visit) {
  auto consider = [&](std::string_view entry) {
    if (!entry.starts_with("LIBTIER_")) return;
    size_t equals = entry.find('=');
    if (equals == std::string_view::npos) return;
    visit(entry.substr(0, equals), entry.substr(equals + 1));
  };
  if (environ != nullptr) {
    for (char** entry = environ; *entry != nullptr; ++entry)
      consider(*entry);
    return;
  }
  int fd = ::open("/proc/self/environ", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return;
  size_t length = 0;
  ssize_t n;
  while (length < sizeof g_environ_copy &&
         (n = ::read(fd, g_environ_copy + length, sizeof g_environ_copy - length)) > 0)
    length += static_cast<size_t>(n);
  ::close(fd);
  std::string_view rest(g_environ_copy, length);
  while (!rest.empty()) {
    size_t end = rest.find('\0');
    consider(rest.substr(0, end));
    if (end == std::string_view::npos) break;
    rest.remove_prefix(end + 1);
  }
}

char g_config_text[16 * 1024];
char g_config_path[4096];

Status applyConfigFile(std::string_view path) {
  size_t copied = std::min(path.size(), sizeof g_config_path - 1);
  std::memcpy(g_config_path, path.data(), copied);
  g_config_path[copied] = '\0';
  PolicyError e;
  int fd = ::open(g_config_path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    std::snprintf(e.message, sizeof e.message, "LIBTIER_CONFIG=\"%s\": cannot open: %s",
                  g_config_path, std::strerror(errno));
    return std::unexpected(e);
  }
  size_t length = 0;
  ssize_t n = 0;
  while (length < sizeof g_config_text &&
         (n = ::read(fd, g_config_text + length, sizeof g_config_text - length)) > 0)
    length += static_cast<size_t>(n);
  char probe;
  bool too_long = length == sizeof g_config_text && ::read(fd, &probe, 1) > 0;
  ::close(fd);
  if (n < 0 || too_long) {
    std::snprintf(e.message, sizeof e.message, "LIBTIER_CONFIG=\"%s\": %s", g_config_path,
                  too_long ? "larger than 16 KiB" : "cannot read");
    return std::unexpected(e);
  }
  return applyConfigText(std::string_view(g_config_text, length), g_config_path, g_policy);
}

// The file first, then each variable over it. The first bad value wins.
Status loadPolicy() {
  Status status;
  forEachSetting([&](std::string_view name, std::string_view value) {
    if (status && name == "LIBTIER_CONFIG") status = applyConfigFile(value);
  });
  forEachSetting([&](std::string_view name, std::string_view value) {
    if (status && isPolicySetting(name)) status = applySetting(name, value, g_policy);
  });
  if (status) status = validate(g_policy);
  // The engine reads LIBTIER_TIERS itself and ignores a bad one; reporting is ours.
  forEachSetting([&](std::string_view name, std::string_view value) {
    if (!status || name != "LIBTIER_TIERS") return;
    char text[256];
    tier::alloc::TierLayout layout;
    size_t length = std::min(value.size(), sizeof text - 1);
    std::memcpy(text, value.data(), length);
    text[length] = '\0';
    if (value.size() < sizeof text && tier::alloc::parseTierOverride(text, &layout)) return;
    PolicyError e;
    std::snprintf(e.message, sizeof e.message,
                  "LIBTIER_TIERS=\"%.120s\": expected node lists fastest first, separated by "
                  "';' (e.g. 0;1;2-3), each node in one tier, at most %d tiers",
                  text, tier::alloc::kMaxTiers);
    status = std::unexpected(e);
  });
  return status;
}

// Whether every block the policy could place lands on one rank (any policy
// on a one-tier host, say): then malloc takes the direct path.
bool placesOnOneRank() {
  int first = -1;
  auto same = [&](int rank) {
    rank = std::clamp(rank, 0, std::max(g_tier_count, 1) - 1);
    if (first < 0) first = rank;
    return rank == first;
  };
  bool one = same(0);  // sizes no rule covers go to the fast tier
  for (int i = 0; i < g_slots.count; ++i)
    one = one && same(g_slots.rank[i]);
  for (int i = 0; i < g_policy.rule_count; ++i) {
    const int rank = fixedRank(g_policy.rules[i].target);
    if (rank >= 0) one = one && same(rank);
  }
  if (g_policy.threshold != kNoLimit) one = one && same(1);
  return one;
}

void setUpPlacement() {
  g_tier_count = tier_count();
  g_slots = resolveShares(g_policy, g_tier_count);
  g_placing = g_policy.placesBlocks() && !placesOnOneRank();
  std::fill(std::begin(g_slot_of_rank), std::end(g_slot_of_rank), int8_t{-1});
  for (int i = 0; i < g_slots.count; ++i)
    g_slot_of_rank[g_slots.rank[i]] = static_cast<int8_t>(i);
  g_accounting = g_slots.count > 1;
  if (g_accounting) pthread_key_create(&g_fold_key, foldThread);
  if (g_placing) tier_engine_set_chooser(chooseRank, nullptr);
}

void startUp() {
  t_starting = true;
  int saved_errno = errno;
  Status loaded = loadPolicy();
  if (!loaded) {
    char line[512];
    std::snprintf(line, sizeof line, "libtier-preload: %s; running with default placement\n",
                  loaded.error().message);
    writeLine(line);
    g_policy = Policy{};
  }
  int engine = tier_engine_init();
  if (engine != 0) {
    if (g_policy.debug || g_policy.placesBlocks()) {
      char line[256];
      std::snprintf(line, sizeof line,
                    "libtier-preload: the tier engine did not start (%s); glibc's malloc serves\n",
                    std::strerror(-engine));
      writeLine(line);
    }
    g_state.store(kGlibcOnly, std::memory_order_release);
  } else {
    setUpPlacement();
    g_counting.store(g_accounting, std::memory_order_relaxed);
    // Only a ratio (no threshold, no rules): malloc asks the balancer inline.
    g_ratio_only.store(g_accounting && g_policy.threshold == kNoLimit && g_policy.rule_count == 0,
                       std::memory_order_relaxed);
    g_state.store(kReady, std::memory_order_release);
    g_direct.store(!g_placing, std::memory_order_release);
  }
  errno = saved_errno;
  t_starting = false;
}

// Starts the shim if nobody has; false when this request must be served
// from the bootstrap buffer (a recursive call from start-up, or another
// thread is starting it: it never waits, so it cannot deadlock).
bool started() {
  int state = g_state.load(std::memory_order_acquire);
  if (state >= kReady) return true;
  if (t_starting) return false;
  if (state == kUninit && g_state.compare_exchange_strong(state, kStarting)) {
    startUp();
    return true;
  }
  return false;
}

bool glibcOnly() {
  return g_state.load(std::memory_order_relaxed) == kGlibcOnly;
}

// When neither the engine nor (before start-up) the bootstrap buffer can
// serve: glibc. errno is restored, as the engine set ENOMEM on its way.
void* glibcAllocate(size_t alignment, size_t size, bool zeroed, int saved_errno) {
  void* block = zeroed           ? __libc_calloc(1, size)
                : alignment > 16 ? __libc_memalign(alignment, size)
                                 : __libc_malloc(size);
  if (block == nullptr) {
    errno = ENOMEM;
    return nullptr;
  }
  errno = saved_errno;
  if (!glibcOnly()) g_glibc_blocks.fetch_add(1, std::memory_order_relaxed);
  return block;
}

void* slowAllocate(size_t alignment, size_t size, bool zeroed, int saved_errno) {
  if (!started() || glibcOnly()) {
    if (!glibcOnly()) {
      void* block = boot::allocate(alignment, size);
      if (block != nullptr) return block;
    }
    return glibcAllocate(alignment, size, zeroed, saved_errno);
  }
  return nullptr;  // started now: the caller tries the engine
}

void* engineAllocate(size_t alignment, size_t size, bool zeroed) {
  if (!g_placing) [[likely]] {
    if (zeroed) return tier_calloc(TIER_DEFAULT, 1, size);
    if (alignment > 16) return tier_aligned_alloc(TIER_DEFAULT, alignment, size);
    return tier_malloc(TIER_DEFAULT, size);
  }
  tier_where_t where = whereFor(size);
  void* block = zeroed           ? tier_calloc(where, 1, size)
                : alignment > 16 ? tier_aligned_alloc(where, alignment, size)
                                 : tier_malloc(where, size);
  if (g_accounting && block != nullptr) count(block, +1);
  return block;
}

void* allocateAny(size_t alignment, size_t size, bool zeroed) {
  int saved_errno = errno;
  if (g_state.load(std::memory_order_acquire) != kReady) [[unlikely]] {
    void* block = slowAllocate(alignment, size, zeroed, saved_errno);
    if (block != nullptr || g_state.load(std::memory_order_acquire) != kReady) return block;
  }
  void* block = engineAllocate(alignment, size, zeroed);
  if (block != nullptr) [[likely]] {
    errno = saved_errno;
    return block;
  }
  return glibcAllocate(alignment, size, zeroed, saved_errno);
}

}  // namespace

std::atomic<bool> g_direct{false};
std::atomic<bool> g_counting{false};
std::atomic<bool> g_ratio_only{false};
int8_t g_slot_of_rank[kMaxRanks];
thread_local int64_t t_delta[kMaxShares] SHIM_TLS;
thread_local bool t_fold_at_exit SHIM_TLS = false;
thread_local int t_place_rank SHIM_TLS = 0;
thread_local int64_t t_place_budget SHIM_TLS = 0;

void foldLive(int slot, int64_t delta) {
  if (delta >= kFoldBytes || delta <= -kFoldBytes) {
    g_live[slot].live.fetch_add(delta, std::memory_order_relaxed);
    delta = 0;
  }
  t_delta[slot] = delta;
  if (!t_fold_at_exit) {
    t_fold_at_exit = true;
    pthread_setspecific(g_fold_key, &g_fold_key);  // any non-NULL value: run foldThread at exit
  }
}

int placeRatio(std::size_t size) {
  t_place_rank = pickRatioRank(size);
  t_place_budget = kPlaceQuantum;
  return t_place_rank;
}

void* allocateOnRankSlow(int rank, std::size_t size) {
  int saved_errno = errno;
  void* block = tier_malloc(TIER_RANK(rank), size);
  if (block == nullptr) return allocateAny(0, size, false);
  count(block, +1);
  errno = saved_errno;
  return block;
}

void* allocateSlow(size_t size) {
  return allocateAny(0, size, false);
}

void* allocateZeroed(size_t size) {
  return allocateAny(0, atLeastMinBlock(size), true);
}

void* allocateAligned(size_t alignment, size_t size) {
  return allocateAny(alignment, atLeastMinBlock(size), false);
}

void releaseSlow(void* block) {
  if (engineOwns(block)) {
    if (g_accounting) count(block, -1);
    releaseToEngine(block);
    return;
  }
  if (block == nullptr || boot::owns(block)) return;
  __libc_free(block);
}

void* reallocate(void* block, size_t size) {
  size = atLeastMinBlock(size);
  int saved_errno = errno;
  if (tier_engine_owns(block)) {
    size_t old_size = tier_engine_usable_size(block);
    if (g_accounting) count(block, -1);
    // A block the ratio placed stays on its tier; a rule's target moves it.
    bool ruled = g_placing && g_policy.targetFor(size).kind != Target::kRatio;
    void* moved = ruled ? tier_realloc_on(whereFor(size), block, size) : tier_realloc(block, size);
    if (moved != nullptr) {
      if (g_accounting) count(moved, +1);
      errno = saved_errno;
      return moved;
    }
    if (g_accounting) count(block, +1);
    // The engine cannot grow it anywhere: glibc may.
    moved = glibcAllocate(0, size, false, saved_errno);
    if (moved == nullptr) return nullptr;
    std::memcpy(moved, block, std::min(old_size, size));
    release(block);
    return moved;
  }
  if (glibcOnly() && !boot::owns(block)) return __libc_realloc(block, size);
  // A bootstrap or glibc block moves to the engine.
  size_t old_size = boot::owns(block) ? boot::sizeOf(block) : glibcUsableSize(block);
  void* moved = allocate(size);
  if (moved == nullptr) return nullptr;
  std::memcpy(moved, block, std::min(old_size, size));
  if (!boot::owns(block)) __libc_free(block);
  return moved;
}

size_t usableSize(const void* block) {
  if (tier_engine_owns(block)) return tier_engine_usable_size(block);
  if (block == nullptr) return 0;
  if (boot::owns(block)) return boot::sizeOf(block);
  return glibcUsableSize(block);
}

// --- after main's start: the agent, and the summary at exit. Never tears
// the tiers down: stdio flushes its buffers (which may live on any tier)
// after every destructor has run.
namespace {

__attribute__((constructor)) void afterLoad() {
  void* probe = allocate(1);  // starts the shim if nothing has allocated yet
  release(probe);
  if (g_state.load(std::memory_order_acquire) != kReady) return;
  registerWithAgent(g_policy, g_tier_count);
}

__attribute__((destructor)) void beforeExit() {
  if (!g_policy.debug) return;
  tier_engine_flush_thread_stats();
  char line[1024];
  size_t at = 0;
  auto add = [&](const char* format, auto... args) {
    if (at + 1 >= sizeof line) return;
    int n = std::snprintf(line + at, sizeof line - at, format, args...);
    if (n > 0) at = std::min(at + static_cast<size_t>(n), sizeof line - 1);
  };
  add("libtier-preload: pid %d, policy ", static_cast<int>(::getpid()));
  at += describe(g_policy, line + at, sizeof line - at);
  if (g_state.load() != kReady) {
    add("; engine not started, glibc served");
  } else {
    uint64_t total = 0;
    uint64_t below_fast = 0;
    for (int rank = 0; rank < g_tier_count; ++rank) {
      tier_stats_t stats{};
      if (tier_stats(rank, &stats) != 0) continue;
      add("; tier %d: %.1f MiB live, %llu allocations", rank,
          static_cast<double>(stats.allocated_bytes) / (1 << 20),
          static_cast<unsigned long long>(stats.allocations));
      total += stats.allocated_bytes;
      if (rank > 0) below_fast += stats.allocated_bytes;
    }
    if (total > 0)
      add("; below the fast tier %.3f",
          static_cast<double>(below_fast) / static_cast<double>(total));
  }
  add("; bootstrap %zu B; glibc %llu blocks\n", boot::used(),
      static_cast<unsigned long long>(g_glibc_blocks.load()));
  writeLine(line);
}

}  // namespace
}  // namespace tier::preload
