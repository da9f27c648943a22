// A multi-threaded C++ program that leans on over-aligned new: alignas(64)
// and alignas(4096) types, std::vector of them, four threads, and objects
// deleted by a thread other than the one that made them. Run by
// programs_test under a preloaded allocator; libmemtier crashes here (it does
// not interpose aligned_alloc, which over-aligned new calls).
//
//   overaligned [FAR_NODE]
// Waits for EOF on stdin (the test checks the preload is mapped meanwhile),
// then prints "ok objects=N" and, with FAR_NODE, "far_pages=F of=T": how many
// pages of 64 MiB of alignas(4096) objects (64 blocks of 1 MiB) the kernel has on that node.
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <mutex>
#include <new>
#include <thread>
#include <vector>

namespace {

struct alignas(64) Line {
  uint64_t words[8];
};
struct alignas(4096) Page {
  uint8_t bytes[4096];
};
struct alignas(256) Odd {  // size 768: not a power of two
  uint32_t values[192];
};

std::atomic<int> failures{0};

void fail(const char* what, const void* where) {
  std::fprintf(stderr, "overaligned: %s at %p\n", what, where);
  failures.fetch_add(1);
}

template <typename T>
void checkAligned(const T* object) {
  if (reinterpret_cast<uintptr_t>(object) % alignof(T) != 0) fail("misaligned object", object);
}

// Objects made by one thread, checked and deleted by the next.
struct Handoff {
  std::vector<Line*> lines;
  std::vector<Page*> pages;
  std::unique_ptr<Odd[]> odds;
  std::vector<Line> line_vector;
  uint64_t seed = 0;
};

uint64_t pattern(uint64_t seed, uint64_t index) {
  return seed * 0x9E3779B97F4A7C15ull + index;
}

Handoff make(uint64_t seed) {
  Handoff made;
  made.seed = seed;
  for (uint64_t i = 0; i < 200; ++i) {
    auto* line = new Line;
    checkAligned(line);
    for (uint64_t w = 0; w < 8; ++w)
      line->words[w] = pattern(seed, i * 8 + w);
    made.lines.push_back(line);
  }
  for (uint64_t i = 0; i < 16; ++i) {
    auto* page = new (std::nothrow) Page;
    if (page == nullptr) {
      fail("nothrow aligned new returned NULL", nullptr);
      continue;
    }
    checkAligned(page);
    std::memset(page->bytes, static_cast<int>(pattern(seed, i) & 0xff), sizeof page->bytes);
    made.pages.push_back(page);
  }
  made.odds = std::make_unique<Odd[]>(33);
  for (int i = 0; i < 33; ++i) {
    checkAligned(&made.odds[i]);
    made.odds[i].values[191] = static_cast<uint32_t>(pattern(seed, 1000 + i));
  }
  for (uint64_t i = 0; i < 500; ++i) {  // grows through several reallocations
    made.line_vector.push_back(Line{{pattern(seed, 5000 + i)}});
    checkAligned(made.line_vector.data());
  }
  return made;
}

void checkAndRelease(Handoff& made) {
  for (uint64_t i = 0; i < made.lines.size(); ++i) {
    for (uint64_t w = 0; w < 8; ++w) {
      if (made.lines[i]->words[w] != pattern(made.seed, i * 8 + w)) fail("Line", made.lines[i]);
    }
    delete made.lines[i];  // sized, aligned delete
  }
  for (uint64_t i = 0; i < made.pages.size(); ++i) {
    auto expected = static_cast<uint8_t>(pattern(made.seed, i) & 0xff);
    for (uint8_t byte : made.pages[i]->bytes) {
      if (byte != expected) {
        fail("Page", made.pages[i]);
        break;
      }
    }
    ::operator delete (made.pages[i], std::align_val_t{alignof(Page)}, std::nothrow);
  }
  for (int i = 0; i < 33; ++i) {
    if (made.odds[i].values[191] != static_cast<uint32_t>(pattern(made.seed, 1000 + i))) {
      fail("Odd", &made.odds[i]);
    }
  }
  made.odds.reset();
  for (uint64_t i = 0; i < made.line_vector.size(); ++i) {
    if (made.line_vector[i].words[0] != pattern(made.seed, 5000 + i)) fail("vector", &made);
  }
  made.line_vector = {};
  made.lines.clear();
  made.pages.clear();
}

// The C aligned family, freed with free(): what libmemtier gets wrong.
void cAlignedFamily() {
  void* blocks[4] = {std::aligned_alloc(64, 640), nullptr, valloc(100), nullptr};
  if (posix_memalign(&blocks[1], 4096, 10000) != 0) fail("posix_memalign", nullptr);
  blocks[3] = std::malloc(0);
  if (blocks[0] == nullptr || reinterpret_cast<uintptr_t>(blocks[0]) % 64 != 0) {
    fail("aligned_alloc", blocks[0]);
  }
  if (blocks[2] == nullptr || reinterpret_cast<uintptr_t>(blocks[2]) % 4096 != 0) {
    fail("valloc", blocks[2]);
  }
  if (blocks[3] == nullptr) fail("malloc(0) returned NULL", nullptr);
  for (void* block : blocks)
    std::free(block);
}

// Rounds of: every thread makes a Handoff, publishes it, then checks and
// deletes the one its left neighbour made.
int runThreads(int threads, int rounds) {
  std::vector<Handoff> slots(threads);
  std::vector<std::thread> workers;
  std::atomic<int> arrived{0};
  auto barrier = [&](int generation) {
    arrived.fetch_add(1);
    while (arrived.load() < generation * threads)
      std::this_thread::yield();
  };
  for (int index = 0; index < threads; ++index) {
    workers.emplace_back([&, index] {
      int generation = 0;
      for (int round = 0; round < rounds; ++round) {
        slots[index] = make(static_cast<uint64_t>(round * threads + index + 1));
        cAlignedFamily();
        barrier(++generation);
        checkAndRelease(slots[(index + threads - 1) % threads]);
        barrier(++generation);
      }
    });
  }
  for (auto& worker : workers)
    worker.join();
  return rounds * threads;
}

// 64 MiB as 64 vectors of alignas(4096) objects (one aligned new of 1 MiB
// each, placed by the policy one by one); prints how many of their pages the
// kernel has on `far_node`, read back with move_pages(nodes=NULL).
void reportFarPages(int far_node) {
  constexpr size_t kVectors = 64;
  constexpr size_t kPagesEach = (1u << 20) / sizeof(Page);
  std::vector<std::vector<Page>> vectors(kVectors);
  std::vector<void*> addresses;
  for (auto& pages : vectors) {
    pages.resize(kPagesEach);
    for (auto& page : pages) {
      page.bytes[0] = 1;
      addresses.push_back(&page);
    }
  }
  std::vector<int> status(addresses.size(), -1);
  long rc =
      syscall(SYS_move_pages, 0, addresses.size(), addresses.data(), nullptr, status.data(), 0);
  if (rc != 0) {
    fail("move_pages failed", nullptr);
    return;
  }
  size_t far = 0;
  for (int node : status)
    far += node == far_node ? 1 : 0;
  std::printf("far_pages=%zu of=%zu\n", far, addresses.size());
}

}  // namespace

int main(int argc, char** argv) {
  char buffer[256];
  while (read(STDIN_FILENO, buffer, sizeof buffer) > 0) {
  }
  int objects = runThreads(4, 25);
  if (argc > 1) reportFarPages(std::atoi(argv[1]));
  if (failures.load() != 0) {
    std::printf("failures=%d\n", failures.load());
    return 1;
  }
  std::printf("ok objects=%d\n", objects);
  return 0;
}
