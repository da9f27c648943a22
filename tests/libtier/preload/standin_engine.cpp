// A stand-in for libtier's engine (libtier/alloc/engine.h), for testing the
// shim's interposition and policy apart from the engine: blocks come from
// glibc (__libc_*) behind a 16-byte header that names a fake tier (two of
// them), so tier_of, the ratio balancer and every free path can be checked on
// any host. Not for production: tier_engine_owns reads the header.
#include <malloc.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdint>
#include <cstring>

#include "alloc/engine.h"
#include "alloc/node_sysfs.h"

extern "C" {
void* __libc_malloc(size_t size);
void* __libc_memalign(size_t alignment, size_t size);
void __libc_free(void* block);
}

namespace {

constexpr uint64_t kMagic = 0x7374616e64696e21;  // "standin!"
constexpr int kTiers = 2;

struct Header {
  uint64_t magic;
  uint32_t offset;  // from glibc's block to ours
  int32_t tier;
};

std::atomic<uint64_t> g_live[kTiers];
std::atomic<uint64_t> g_allocations[kTiers];
tier_chooser_fn g_choose = nullptr;
void* g_choose_ctx = nullptr;

Header* headerOf(const void* block) {
  return reinterpret_cast<Header*>(const_cast<char*>(static_cast<const char*>(block)) - 16);
}

size_t glibcUsable(const void* block) {
  size_t word = static_cast<const size_t*>(block)[-1];
  size_t chunk = word & ~size_t{7};
  return (word & 2) ? chunk - 16 : chunk - 8;
}

int tierFor(tier_where_t where, size_t size) {
  if (where == TIER_DEFAULT) return g_choose ? std::clamp(g_choose(size, g_choose_ctx), 0, 1) : 0;
  if (where == TIER_FAR) return 1;
  if (where >= 0 && where < 0x10000) return std::min<int>(where, 1);
  return 0;
}

void* place(int tier, size_t alignment, size_t size) {
  alignment = std::max<size_t>(alignment, 16);
  if (size > SIZE_MAX / 2) {
    errno = ENOMEM;
    return nullptr;
  }
  char* base = static_cast<char*>(alignment > 16 ? __libc_memalign(alignment, size + alignment)
                                                 : __libc_malloc(size + 16));
  if (base == nullptr) return nullptr;
  char* block = base + alignment;
  *headerOf(block) = Header{kMagic, static_cast<uint32_t>(alignment), tier};
  g_live[tier] += tier_engine_usable_size(block);
  g_allocations[tier]++;
  return block;
}

}  // namespace

extern "C" {

int tier_engine_init(void) {
  return 0;
}
int tier_engine_ready(void) {
  return 1;
}
void tier_engine_set_chooser(tier_chooser_fn choose, void* ctx) {
  g_choose = choose;
  g_choose_ctx = ctx;
}
int tier_engine_owns(const void* block) {
  return block != nullptr && headerOf(block)->magic == kMagic;
}
size_t tier_engine_usable_size(const void* block) {
  if (!tier_engine_owns(block)) return 0;
  const Header* header = headerOf(block);
  return glibcUsable(static_cast<const char*>(block) - header->offset) - header->offset;
}
void tier_engine_free_sized(void* block, size_t) {
  tier_free(block);
}
void tier_engine_atfork_prepare(void) {}
void tier_engine_atfork_parent(void) {}
void tier_engine_atfork_child(void) {}
void tier_engine_flush_thread_stats(void) {}
int tier_engine_rank_of_node(int) {
  return 0;
}

void* tier_malloc(tier_where_t where, size_t size) {
  return place(tierFor(where, size), 16, size);
}
void* tier_calloc(tier_where_t where, size_t count, size_t size) {
  size_t total;
  if (__builtin_mul_overflow(count, size, &total)) {
    errno = ENOMEM;
    return nullptr;
  }
  void* block = tier_malloc(where, total);
  if (block != nullptr) std::memset(block, 0, total);
  return block;
}
void* tier_aligned_alloc(tier_where_t where, size_t alignment, size_t size) {
  return place(tierFor(where, size), alignment, size);
}
int tier_posix_memalign(tier_where_t where, void** out, size_t alignment, size_t size) {
  void* block = tier_aligned_alloc(where, alignment, size);
  if (block == nullptr) return ENOMEM;
  *out = block;
  return 0;
}
void* tier_realloc_on(tier_where_t where, void* block, size_t size) {
  int tier = block && where == TIER_DEFAULT ? headerOf(block)->tier : tierFor(where, size);
  void* moved = place(tier, 16, size);
  if (moved == nullptr || block == nullptr) return moved;
  std::memcpy(moved, block, std::min(size, tier_engine_usable_size(block)));
  tier_free(block);
  return moved;
}
void* tier_realloc(void* block, size_t size) {
  return tier_realloc_on(TIER_DEFAULT, block, size);
}
void tier_free(void* block) {
  if (!tier_engine_owns(block)) return;
  Header* header = headerOf(block);
  g_live[header->tier] -= tier_engine_usable_size(block);
  header->magic = 0;
  __libc_free(static_cast<char*>(block) - header->offset);
}
size_t tier_usable_size(const void* block) {
  return tier_engine_usable_size(block);
}
int tier_of(const void* block) {
  return tier_engine_owns(block) ? headerOf(block)->tier : -1;
}
int tier_node_of(const void*) {
  return -ENOENT;
}
int tier_hint(const void*, size_t, tier_hint_t) {
  return -ENOTCONN;
}
int tier_count(void) {
  return kTiers;
}
int tier_stats(int rank, tier_stats_t* out) {
  if (rank < 0 || rank >= kTiers) return -EINVAL;
  *out = tier_stats_t{};
  out->rank = rank;
  out->nodes[0] = 0;
  out->node_count = 1;
  out->allocated_bytes = g_live[rank];
  out->allocations = g_allocations[rank];
  return 0;
}

}  // extern "C"

// The engine's LIBTIER_TIERS parser, as far as the shim's tests need it:
// digits, ',', '-' and ';', no empty tier.
bool tier::alloc::parseTierOverride(const char* text, TierLayout* out) {
  *out = TierLayout{};
  bool tier_has_node = false;
  for (const char* c = text;; ++c) {
    if (*c == ';' || *c == '\0') {
      if (!tier_has_node) return false;
      out->count++;
      tier_has_node = false;
      if (*c == '\0') return true;
    } else if (*c >= '0' && *c <= '9') {
      tier_has_node = true;
    } else if (*c != ',' && *c != '-') {
      return false;
    }
  }
}
