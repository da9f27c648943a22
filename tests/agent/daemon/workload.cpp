// A test workload with memory whose every byte it can check. It binds
// --mib MiB to --node, fills a known pattern, releases the binding (so pages
// may move), prints "READY <start> <end>" and then, with --write, keeps
// bumping one counter per page. On SIGUSR1 it checks every byte and prints
// "OK <rounds>" or "CORRUPT <offset>"; on SIGTERM it exits.
#include <numaif.h>
#include <signal.h>
#include <sys/mman.h>
#include <unistd.h>

#include <atomic>
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

namespace {

std::atomic<bool> check_requested{false}, stop_requested{false};

uint64_t pattern(size_t word) {
  return word * 0x9e3779b97f4a7c15ULL + 0x5eed;
}

}  // namespace

int main(int argc, char** argv) {
  int node = 0;
  size_t mib = 64;
  bool writer = false, huge = false;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--node" && i + 1 < argc)
      node = std::atoi(argv[++i]);
    else if (arg == "--mib" && i + 1 < argc)
      mib = std::strtoul(argv[++i], nullptr, 10);
    else if (arg == "--write")
      writer = true;
    else if (arg == "--huge")
      huge = true;
    else {
      std::fprintf(stderr, "usage: workload [--node N] [--mib M] [--write] [--huge]\n");
      return 2;
    }
  }
  constexpr size_t kAlign = 2 << 20;
  size_t size = mib << 20;
  auto* raw = static_cast<char*>(
      mmap(nullptr, size + kAlign, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
  if (raw == MAP_FAILED) return 1;
  auto* words =
      reinterpret_cast<uint64_t*>((reinterpret_cast<uintptr_t>(raw) + kAlign - 1) & ~(kAlign - 1));
  madvise(words, size, huge ? MADV_HUGEPAGE : MADV_NOHUGEPAGE);
  unsigned long mask = 1UL << node;
  if (mbind(words, size, MPOL_BIND, &mask, sizeof(mask) * 8, 0) != 0) {
    std::perror("mbind");
    return 1;
  }
  size_t count = size / sizeof(uint64_t);
  for (size_t i = 0; i < count; ++i)
    words[i] = pattern(i);
  mbind(words, size, MPOL_DEFAULT, nullptr, 0, 0);

  signal(SIGUSR1, [](int) { check_requested = true; });
  signal(SIGTERM, [](int) { stop_requested = true; });
  std::printf("READY %#" PRIxPTR " %#" PRIxPTR "\n", reinterpret_cast<uintptr_t>(words),
              reinterpret_cast<uintptr_t>(words) + size);
  std::fflush(stdout);

  constexpr size_t kStride = 4096 / sizeof(uint64_t);  // one counter per page
  uint64_t rounds = 0;
  while (!stop_requested) {
    if (writer) {
      for (size_t i = 0; i < count; i += kStride)
        words[i] += 1;
      ++rounds;
    } else {
      usleep(10000);
    }
    if (!check_requested.exchange(false)) continue;
    for (size_t i = 0; i < count; ++i) {
      uint64_t expected = pattern(i) + (i % kStride == 0 ? rounds : 0);
      if (words[i] != expected) {
        std::printf("CORRUPT %zu\n", i * sizeof(uint64_t));
        std::fflush(stdout);
        return 3;
      }
    }
    std::printf("OK %" PRIu64 "\n", rounds);
    std::fflush(stdout);
  }
  return 0;
}
