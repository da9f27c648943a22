// Migration throughput in the lab: tierd's engine against raw move_pages(2)
// and a plain memcpy of the same bytes, for 4 KiB pages and for transparent
// huge pages, far node -> node 0, printed side by side as ratios.
//   tools/lab/lab run --preset far -- build/bench/migrate_bench [--mib 128]
#include <numa.h>
#include <numaif.h>
#include <sys/mman.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "../tests/support/far_node.h"
#include "migrate/engine.h"

namespace {

using Clock = std::chrono::steady_clock;
constexpr size_t kHuge = 2 << 20;

using tier::test::farNode;

struct Region {
  Region(size_t bytes, int node, bool huge) : size(bytes) {
    raw = static_cast<char*>(
        mmap(nullptr, size + kHuge, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
    data = reinterpret_cast<char*>((reinterpret_cast<uintptr_t>(raw) + kHuge - 1) & ~(kHuge - 1));
    madvise(data, size, huge ? MADV_HUGEPAGE : MADV_NOHUGEPAGE);
    unsigned long mask = 1UL << node;
    mbind(data, size, MPOL_BIND, &mask, sizeof(mask) * 8, 0);
    std::memset(data, 0x33, size);
    mbind(data, size, MPOL_DEFAULT, nullptr, 0, 0);
  }
  ~Region() { munmap(raw, size + kHuge); }
  char* raw;
  char* data;
  size_t size;
};

double mibPerSecond(size_t bytes, Clock::duration took) {
  return static_cast<double>(bytes) / (1 << 20) / std::chrono::duration<double>(took).count();
}

double memcpyRate(size_t bytes, int far) {
  Region from(bytes, far, false), to(bytes, 0, false);
  auto start = Clock::now();
  std::memcpy(to.data, from.data, bytes);
  return mibPerSecond(bytes, Clock::now() - start);
}

double rawMoveRate(size_t bytes, int far, bool huge, size_t batch) {
  Region region(bytes, far, huge);
  std::vector<void*> pages;
  for (size_t offset = 0; offset < bytes; offset += 4096)
    pages.push_back(region.data + offset);
  std::vector<int> nodes(pages.size(), 0), status(pages.size());
  auto start = Clock::now();
  for (size_t i = 0; i < pages.size(); i += batch) {
    size_t count = std::min(batch, pages.size() - i);
    move_pages(0, count, pages.data() + i, nodes.data() + i, status.data() + i, MPOL_MF_MOVE);
  }
  return mibPerSecond(bytes, Clock::now() - start);
}

double engineRate(size_t bytes, int far, bool huge, size_t batch) {
  Region region(bytes, far, huge);
  auto proc = tier::FsRoot::open("/proc");
  auto sys = tier::FsRoot::open("/sys");
  tierd::migrate::KernelPageOps ops;
  tierd::migrate::EngineOptions options;
  options.rate_bytes_per_second = 0;  // unlimited: measure the engine itself
  options.batch_pages = batch;
  tierd::migrate::MigrationEngine engine(*proc, *sys, ops, options);
  auto start = reinterpret_cast<uint64_t>(region.data);
  auto result =
      engine.move({.pid = getpid(), .ranges = {{start, start + bytes}}, .target_node = 0});
  if (result.pages_on_target_after * 100 < result.pages_requested * 99)
    fmt::print(stderr, "warning: only {} of {} pages reached node 0\n",
               result.pages_on_target_after, result.pages_requested);
  return mibPerSecond(result.bytes_moved, std::chrono::duration_cast<Clock::duration>(
                                              std::chrono::duration<double>(result.seconds)));
}

}  // namespace

int main(int argc, char** argv) {
  size_t mib = 128;
  if (argc == 3 && std::string(argv[1]) == "--mib") mib = std::stoul(argv[2]);
  int far = numa_available() == 0 ? farNode() : -1;
  if (far < 0) {
    fmt::print(stderr,
               "no CPU-less node: run in the lab (tools/lab/lab run --preset far -- ...)\n");
    return 77;
  }
  size_t bytes = mib << 20;
  double copy = memcpyRate(bytes, far);
  fmt::print("far node {} -> node 0, {} MiB, MiB/s (ratio to memcpy)\n", far, mib);
  fmt::print("{:<34} {:>9.1f}\n", "memcpy", copy);
  for (bool huge : {false, true}) {
    const char* pages = huge ? "2 MiB THP" : "4 KiB";
    for (size_t batch : {512UL, 4096UL}) {
      double raw = rawMoveRate(bytes, far, huge, batch);
      double ours = engineRate(bytes, far, huge, batch);
      fmt::print("{:<34} {:>9.1f}  ({:.2f})\n", fmt::format("move_pages {} batch {}", pages, batch),
                 raw, raw / copy);
      fmt::print("{:<34} {:>9.1f}  ({:.2f})  engine/raw {:.2f}\n",
                 fmt::format("tierd engine {} batch {}", pages, batch), ours, ours / copy,
                 ours / raw);
    }
  }
  return 0;
}
