// A program the shim tests run under LD_PRELOAD with LIBTIER_* settings. It
// only uses malloc/free (so the policy decides) and reports what happened as
// one JSON object on stdout; the tests assert on it.
//
//   shim_probe idle                 start and exit
//   shim_probe place SIZE...        one block per size: its tier and the nodes of its pages
//   shim_probe api SIZE...          the same through tier_malloc(TIER_DEFAULT, size)
//   shim_probe ratio TOTAL LIVE     allocate TOTAL bytes in mixed sizes, at most LIVE live at
//                                   once, touch them; live bytes per tier and the nodes of
//                                   the pages of blocks below the fast tier
//   shim_probe flood BYTES          BYTES of numbered 64-byte lines through buffered stdout
#include <dlfcn.h>
#include <malloc.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "tier/tier.h"  // the types only: the functions come from the shim, through dlsym

namespace {

using TierOf = int (*)(const void*);
using TierCount = int (*)();

int tierOf(const void* block) {
  static auto fn = reinterpret_cast<TierOf>(dlsym(RTLD_DEFAULT, "tier_of"));
  return fn ? fn(block) : -1;
}

int tierCount() {
  static auto fn = reinterpret_cast<TierCount>(dlsym(RTLD_DEFAULT, "tier_count"));
  return fn ? fn() : 0;
}

// Each tier's nodes, as libtier reports them: [[0],[1],...].
void printTierNodes() {
  using TierStats = int (*)(int, tier_stats_t*);
  static auto fn = reinterpret_cast<TierStats>(dlsym(RTLD_DEFAULT, "tier_stats"));
  std::printf("\"tier_nodes\":[");
  for (int rank = 0; fn != nullptr && rank < tierCount(); ++rank) {
    tier_stats_t stats{};
    fn(rank, &stats);
    std::printf("%s[", rank ? "," : "");
    for (int i = 0; i < stats.node_count && i < 16; ++i)
      std::printf("%s%d", i ? "," : "", stats.nodes[i]);
    std::printf("]");
  }
  std::printf("]");
}

size_t pageSize() {
  return static_cast<size_t>(sysconf(_SC_PAGESIZE));
}

// Writes one byte in each page of the block (and its last byte): every page faults in.
void touch(unsigned char* block, size_t size) {
  for (size_t i = 0; i < size; i += pageSize())
    block[i] = 1;
  block[size - 1] = 1;
}

void addPages(const void* block, size_t size, std::vector<uintptr_t>& pages) {
  uintptr_t page = pageSize();
  uintptr_t first = reinterpret_cast<uintptr_t>(block) & ~(page - 1);
  uintptr_t last = (reinterpret_cast<uintptr_t>(block) + size - 1) & ~(page - 1);
  for (uintptr_t p = first; p <= last; p += page)
    pages.push_back(p);
}

// The node of each page, read back with move_pages(nodes=NULL): node -> pages.
std::map<int, size_t> nodesOf(std::vector<uintptr_t> pages) {
  std::sort(pages.begin(), pages.end());
  pages.erase(std::unique(pages.begin(), pages.end()), pages.end());
  std::map<int, size_t> by_node;
  constexpr size_t kBatch = 4096;
  std::vector<void*> batch;
  std::vector<int> status;
  for (size_t start = 0; start < pages.size(); start += kBatch) {
    size_t n = std::min(kBatch, pages.size() - start);
    batch.assign(n, nullptr);
    status.assign(n, -1);
    for (size_t i = 0; i < n; ++i)
      batch[i] = reinterpret_cast<void*>(pages[start + i]);
    if (syscall(SYS_move_pages, 0, n, batch.data(), nullptr, status.data(), 0) != 0) {
      by_node[-1000] += n;  // the call failed: counted apart
      continue;
    }
    for (int s : status)
      by_node[s]++;  // a negative status is -errno (e.g. -ENOENT)
  }
  return by_node;
}

void printNodes(const std::map<int, size_t>& by_node) {
  std::printf("{");
  bool first = true;
  for (auto [node, count] : by_node) {
    std::printf("%s\"%d\":%zu", first ? "" : ",", node, count);
    first = false;
  }
  std::printf("}");
}

// libtier's own tier_malloc(TIER_DEFAULT, size): the policy's chooser decides.
void* tierMallocDefault(size_t size) {
  using TierMalloc = void* (*)(int32_t, size_t);
  static auto fn = reinterpret_cast<TierMalloc>(dlsym(RTLD_DEFAULT, "tier_malloc"));
  return fn ? fn(0x30000, size) : nullptr;  // TIER_DEFAULT
}

int place(int argc, char** argv, bool through_api) {
  std::printf("{\"tiers\":%d,", tierCount());
  printTierNodes();
  std::printf(",\"blocks\":[");
  std::vector<void*> keep;
  for (int i = 2; i < argc; ++i) {
    size_t size = std::strtoull(argv[i], nullptr, 0);
    auto* block =
        static_cast<unsigned char*>(through_api ? tierMallocDefault(size) : std::malloc(size));
    if (block == nullptr) return 3;
    touch(block, size);
    std::vector<uintptr_t> pages;
    addPages(block, size, pages);
    std::printf("%s{\"size\":%zu,\"tier\":%d,\"usable\":%zu,\"nodes\":", i > 2 ? "," : "", size,
                tierOf(block), malloc_usable_size(block));
    printNodes(nodesOf(pages));
    std::printf("}");
    keep.push_back(block);
  }
  std::printf("]}\n");
  for (void* block : keep)
    std::free(block);
  return 0;
}

// Log-uniform sizes: mostly small, some medium, a few of up to 2 MiB.
size_t mixedSize(std::mt19937_64& random) {
  std::uniform_real_distribution<double> unit(0.0, 1.0);
  double u = unit(random);
  double low = 4, high = 10;          // 16 B .. 1 KiB
  if (u > 0.70) low = 10, high = 16;  // 1 KiB .. 64 KiB
  if (u > 0.95) low = 16, high = 21;  // 64 KiB .. 2 MiB
  double exponent = low + (high - low) * unit(random);
  return static_cast<size_t>(std::exp2(exponent));
}

int ratio(size_t total, size_t live_cap) {
  struct Block {
    unsigned char* address;
    size_t size;
  };
  // The probe's own bookkeeping stays out of the heap it measures.
  constexpr size_t kMaxLive = 1 << 20;
  auto* slots = static_cast<Block*>(mmap(nullptr, kMaxLive * sizeof(Block), PROT_READ | PROT_WRITE,
                                         MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
  if (slots == MAP_FAILED) return 4;
  struct {
    Block* data;
    size_t count = 0;
    bool empty() const { return count == 0; }
    size_t size() const { return count; }
    Block& operator[](size_t i) { return data[i]; }
    Block& back() { return data[count - 1]; }
    void push_back(Block b) { data[count++] = b; }
    void pop_back() { --count; }
    Block* begin() { return data; }
    Block* end() { return data + count; }
  } live{slots};
  std::mt19937_64 random(42);
  size_t allocated = 0, live_bytes = 0;
  while (allocated < total) {
    size_t size = mixedSize(random);
    auto* block = static_cast<unsigned char*>(std::malloc(size));
    if (block == nullptr || live.size() == kMaxLive) return 3;
    touch(block, size);
    live.push_back({block, size});
    allocated += size;
    live_bytes += size;
    // Free in between: a random third of the time, and whenever over the cap.
    while (!live.empty() && (live_bytes > live_cap || random() % 3 == 0)) {
      size_t victim = random() % live.size();
      live_bytes -= live[victim].size;
      std::free(live[victim].address);
      live[victim] = live.back();
      live.pop_back();
      if (live_bytes <= live_cap) break;
    }
  }
  std::vector<uint64_t> by_tier(static_cast<size_t>(std::max(tierCount(), 1)), 0);
  std::vector<uintptr_t> below_fast_pages, fast_pages;
  size_t foreign = 0;
  for (const Block& block : live) {
    int tier = tierOf(block.address);
    if (tier < 0 || tier >= static_cast<int>(by_tier.size())) {
      ++foreign;
      continue;
    }
    by_tier[static_cast<size_t>(tier)] += malloc_usable_size(block.address);
    addPages(block.address, block.size, tier > 0 ? below_fast_pages : fast_pages);
  }
  std::printf("{\"tiers\":%d,", tierCount());
  printTierNodes();
  std::printf(",\"allocated\":%zu,\"blocks\":%zu,\"foreign\":%zu,\"live\":[", allocated,
              live.size(), foreign);
  for (size_t i = 0; i < by_tier.size(); ++i)
    std::printf("%s%llu", i ? "," : "", static_cast<unsigned long long>(by_tier[i]));
  std::printf("],\"below_fast_pages\":");
  printNodes(nodesOf(below_fast_pages));
  std::printf(",\"fast_pages\":");
  printNodes(nodesOf(fast_pages));
  std::printf("}\n");
  for (const Block& block : live)
    std::free(block.address);
  return 0;
}

// Buffered stdout to the end: exit() flushes after every library destructor
// has run, which is where libmemtier lost output.
int flood(size_t bytes) {
  char line[65];
  for (size_t i = 0; i * 64 < bytes; ++i) {
    std::snprintf(line, sizeof line, "%012zu %050zu\n", i, i * 7);
    std::fputs(line, stdout);
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  std::string mode = argc > 1 ? argv[1] : "";
  if (mode == "idle") return 0;
  if (mode == "place") return place(argc, argv, false);
  if (mode == "api") return place(argc, argv, true);
  if (mode == "ratio" && argc == 4)
    return ratio(std::strtoull(argv[2], nullptr, 0), std::strtoull(argv[3], nullptr, 0));
  if (mode == "flood" && argc == 3) return flood(std::strtoull(argv[2], nullptr, 0));
  std::fprintf(stderr,
               "usage: shim_probe idle|place SIZE...|api SIZE...|ratio TOTAL LIVE|flood BYTES\n");
  return 2;
}
