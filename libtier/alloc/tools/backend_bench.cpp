// The measurement behind the engine's choice of base allocator
// (docs/libtier.md, Engine): ns per malloc+free pair and per batched
// alloc/free, in one run, for glibc, mimalloc, a mimalloc exclusive arena
// (mbind'd, per-thread heap: the mimalloc candidate), the private jemalloc
// plain, and the engine (the jemalloc candidate: extent-hook arena + explicit
// tcache per tier). mimalloc is linked here only: it replaces this program's
// malloc, which is why the engine cannot ship it (see the docs).
//
// backend_bench [size=64] [pairs=2000000] [runs=3] [only=VARIANT-PREFIX] [pair|batch]
// (one variant and one pattern: for instruction counts with valgrind --tool=callgrind).
#include <dlfcn.h>
#include <mimalloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <vector>

#include "engine.h"
#include "private_jemalloc.h"

extern "C" {
void* tierje_malloc(size_t);
void tierje_free(void*);
}

namespace {

double nowNs() {
  timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return double(t.tv_sec) * 1e9 + double(t.tv_nsec);
}

struct Variant {
  const char* name;
  void* (*alloc)(size_t);
  void (*free)(void*);
};

mi_heap_t* g_arena_heap;
// glibc's own malloc: mimalloc (MI_OVERRIDE) replaces malloc and even
// __libc_malloc in this program, so look them up in libc.so.6 itself.
void* (*g_glibc_malloc)(size_t);
void (*g_glibc_free)(void*);
void* glibcMalloc(size_t n) { return g_glibc_malloc(n); }
void glibcFree(void* p) { g_glibc_free(p); }

void* mimallocArena(size_t n) { return mi_heap_malloc(g_arena_heap, n); }
void* engineFast(size_t n) { return tier_malloc(TIER_FAST, n); }
thread_local size_t t_size;
void engineSized(void* p) { tier_engine_free_sized(p, t_size); }

double pairNs(const Variant& v, size_t size, long pairs) {
  double start = nowNs();
  for (long i = 0; i < pairs; ++i) {
    auto* p = static_cast<volatile char*>(v.alloc(size));
    p[0] = 1;
    v.free(const_cast<char*>(p));
  }
  return (nowNs() - start) / double(pairs);
}

double batchNs(const Variant& v, size_t size, long count, std::vector<void*>& slots) {
  double start = nowNs();
  for (long i = 0; i < count; ++i) {
    auto* p = static_cast<volatile char*>(v.alloc(size));
    p[0] = 1;
    slots[size_t(i)] = const_cast<char*>(p);
  }
  for (long i = 0; i < count; ++i) v.free(slots[size_t(i)]);
  return (nowNs() - start) / double(count);
}

}  // namespace

int main(int argc, char** argv) {
  size_t size = argc > 1 ? strtoul(argv[1], nullptr, 10) : 64;
  long pairs = argc > 2 ? strtol(argv[2], nullptr, 10) : 2'000'000;
  int runs = argc > 3 ? atoi(argv[3]) : 3;
  const char* only = argc > 4 ? argv[4] : nullptr;
  const char* pattern = argc > 5 ? argv[5] : nullptr;
  t_size = size;

  void* libc = dlopen("libc.so.6", RTLD_NOW | RTLD_NOLOAD);
  g_glibc_malloc = reinterpret_cast<void* (*)(size_t)>(dlsym(libc, "malloc"));
  g_glibc_free = reinterpret_cast<void (*)(void*)>(dlsym(libc, "free"));
  if (g_glibc_malloc == nullptr || g_glibc_free == nullptr) {
    fprintf(stderr, "no glibc malloc\n");
    return 1;
  }
  if (tier_engine_init() != 0) {
    fprintf(stderr, "tier_engine_init failed\n");
    return 1;
  }

  if (only == nullptr || strncmp("mimalloc exclusive arena", only, strlen(only)) == 0) {
  // The mimalloc candidate (only when measured: valgrind cannot reserve it all): a 4 GiB exclusive arena over an mbind'd range.
  size_t arena_bytes = size_t{4} << 30;
  // mimalloc wants its arenas aligned to its segment size: align to 64 MiB.
  size_t align = size_t{64} << 20;
  auto raw = reinterpret_cast<uintptr_t>(mmap(nullptr, arena_bytes + align, PROT_READ | PROT_WRITE,
                                              MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0));
  void* range = reinterpret_cast<void*>((raw + align - 1) & ~(align - 1));
  unsigned long node0 = 1;
  syscall(SYS_mbind, range, arena_bytes, 1 /* MPOL_PREFERRED */, &node0, 65, 0);
  mi_arena_id_t arena;
  if (!mi_manage_os_memory_ex(range, arena_bytes, true, false, true, -1, true, &arena)) {
    fprintf(stderr, "mi_manage_os_memory_ex failed\n");
    return 1;
  }
  g_arena_heap = mi_heap_new_in_arena(arena);
  }
  const Variant variants[] = {
      {"glibc", glibcMalloc, glibcFree},
      {"mimalloc", mi_malloc, mi_free},
      {"mimalloc exclusive arena", mimallocArena, mi_free},
      {"jemalloc (private copy)", tierje_malloc, tierje_free},
      {"engine tier_malloc/tier_free", engineFast, tier_free},
      {"engine + sized free", engineFast, engineSized},
  };
  std::vector<void*> slots(static_cast<size_t>(pairs));
  printf("size %zu B, %ld pairs, best of %d runs (ns)\n", size, pairs, runs);
  printf("%-30s %8s %8s\n", "variant", "pair", "batch");
  for (const Variant& v : variants) {
    if (only != nullptr && strncmp(v.name, only, strlen(only)) != 0) continue;
    double best_pair = 1e18, best_batch = 1e18;
    for (int r = 0; r < runs; ++r) {
      bool pair = pattern == nullptr || strcmp(pattern, "pair") == 0;
      bool batch = pattern == nullptr || strcmp(pattern, "batch") == 0;
      double p = pair ? pairNs(v, size, pairs) : 0;
      double b = batch ? batchNs(v, size, pairs, slots) : 0;
      if (p < best_pair) best_pair = p;
      if (b < best_batch) best_batch = b;
    }
    printf("%-30s %8.1f %8.1f\n", v.name, best_pair, best_batch);
  }
  return 0;
}
