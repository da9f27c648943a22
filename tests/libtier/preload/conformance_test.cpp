// The malloc family's and C++ new/delete's semantics, as glibc 2.36 has them.
// The same binary runs three times (see CMakeLists.txt): on plain glibc (the
// reference: every expectation here holds there), under the shim over a
// stand-in engine, and under libtier-preload.so. A run with a libtier-preload
// LD_PRELOAD checks that libtier's tier_of is there and owns malloc's blocks,
// so a preload that silently did not take fails instead of passing on glibc.
#include <dlfcn.h>
#include <gtest/gtest.h>
#include <malloc.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <mutex>
#include <new>
#include <set>
#include <string>
#include <thread>
#include <vector>

namespace {

constexpr int kErrnoSentinel = 4242;

bool underShim() {
  const char* preload = std::getenv("LD_PRELOAD");
  return preload != nullptr && std::string(preload).find("tier-preload") != std::string::npos;
}

// libtier's tier_of when the shim is loaded (never linked: the glibc run has none).
int tierOf(const void* block) {
  using TierOf = int (*)(const void*);
  static auto tier_of = reinterpret_cast<TierOf>(dlsym(RTLD_DEFAULT, "tier_of"));
  return tier_of ? tier_of(block) : -1;
}

bool aligned(const void* block, size_t alignment) {
  return reinterpret_cast<uintptr_t>(block) % alignment == 0;
}

size_t nextPowerOfTwo(size_t n) {
  size_t p = 1;
  while (p < n)
    p <<= 1;
  return p;
}

// Defeats the compiler's knowledge of malloc (it may fold malloc+free away).
template <typename T>
T opaque(T value) {
  asm volatile("" : "+r"(value));
  return value;
}

TEST(Preload, TheExpectedAllocatorServes) {
  void* block = std::malloc(100);
  ASSERT_NE(block, nullptr);
  if (underShim()) {
    EXPECT_NE(dlsym(RTLD_DEFAULT, "tier_of"), nullptr) << "LD_PRELOAD did not take";
    EXPECT_GE(tierOf(block), 0) << "malloc's block is not libtier's";
  } else {
    EXPECT_EQ(dlsym(RTLD_DEFAULT, "tier_of"), nullptr);
  }
  std::free(block);
}

TEST(Malloc, ZeroBytesGivesUniqueFreeableBlocks) {
  std::set<void*> seen;
  for (int i = 0; i < 100; ++i) {
    void* block = std::malloc(opaque<size_t>(0));
    ASSERT_NE(block, nullptr);
    EXPECT_TRUE(seen.insert(block).second) << "malloc(0) returned a block twice";
  }
  for (void* block : seen)
    std::free(block);
}

TEST(Malloc, SizesAreAlignedWritableAndUsable) {
  for (size_t size : {1ul, 7ul, 8ul, 15ul, 16ul, 17ul, 24ul, 100ul, 1000ul, 4096ul, 4097ul, 65536ul,
                      100000ul, 1ul << 20, (1ul << 21) + 3, 16ul << 20}) {
    SCOPED_TRACE(size);
    auto* block = static_cast<unsigned char*>(std::malloc(opaque(size)));
    ASSERT_NE(block, nullptr);
    EXPECT_TRUE(aligned(block, 16));
    EXPECT_GE(malloc_usable_size(block), size);
    std::memset(block, 0xa5, size);
    EXPECT_EQ(block[size - 1], 0xa5);
    std::free(block);
  }
}

TEST(Malloc, ErrnoIsUntouchedOnSuccess) {
  struct Call {
    const char* name;
    void* (*run)();
  };
  static void* keep;
  const Call calls[] = {
      {"malloc", [] { return std::malloc(opaque<size_t>(64)); }},
      {"malloc 0", [] { return std::malloc(opaque<size_t>(0)); }},
      {"malloc 8M", [] { return std::malloc(opaque<size_t>(8 << 20)); }},
      {"calloc", [] { return std::calloc(opaque<size_t>(10), 10); }},
      {"realloc NULL", [] { return std::realloc(nullptr, opaque<size_t>(10)); }},
      {"realloc grow", [] { return keep = std::realloc(keep, opaque<size_t>(1 << 20)); }},
      {"reallocarray", [] { return keep = reallocarray(keep, opaque<size_t>(3), 1000); }},
      {"memalign", [] { return memalign(opaque<size_t>(256), 10); }},
      {"aligned_alloc", [] { return aligned_alloc(opaque<size_t>(4096), 10); }},
      {"valloc", [] { return valloc(opaque<size_t>(10)); }},
      {"pvalloc", [] { return pvalloc(opaque<size_t>(10)); }},
      {"posix_memalign",
       [] {
         void* out = nullptr;
         return posix_memalign(&out, opaque<size_t>(64), 100) == 0 ? out : nullptr;
       }},
  };
  keep = std::malloc(16);
  for (const Call& call : calls) {
    errno = kErrnoSentinel;
    void* block = call.run();
    int after = errno;
    EXPECT_NE(block, nullptr) << call.name;
    EXPECT_EQ(after, kErrnoSentinel) << call.name << " changed errno on success";
    if (block != keep) std::free(block);
  }
  std::free(keep);
  errno = kErrnoSentinel;
  std::free(nullptr);
  std::free(std::malloc(32));
  EXPECT_EQ(errno, kErrnoSentinel) << "free changed errno";
}

TEST(Malloc, ImpossibleSizesFailWithEnomem) {
  for (size_t size : {SIZE_MAX, SIZE_MAX - 4096, SIZE_MAX / 2, size_t{1} << 62}) {
    SCOPED_TRACE(size);
    errno = 0;
    EXPECT_EQ(std::malloc(opaque(size)), nullptr);
    EXPECT_EQ(errno, ENOMEM);
  }
}

TEST(Malloc, FreeOfNullIsANoOp) {
  std::free(opaque<void*>(nullptr));
}

TEST(Malloc, UsableSizeOfNullIsZero) {
  EXPECT_EQ(malloc_usable_size(opaque<void*>(nullptr)), 0u);
}

TEST(Calloc, ZeroesRecycledMemory) {
  for (size_t size : {64ul, 4096ul, 200000ul, 4ul << 20}) {
    SCOPED_TRACE(size);
    for (int round = 0; round < 3; ++round) {
      void* dirty = std::malloc(opaque(size));
      ASSERT_NE(dirty, nullptr);
      std::memset(dirty, 0xff, size);
      std::free(dirty);
      auto* clean = static_cast<unsigned char*>(std::calloc(opaque(size), 1));
      ASSERT_NE(clean, nullptr);
      for (size_t i = 0; i < size; i += 61)
        ASSERT_EQ(clean[i], 0) << "byte " << i;
      EXPECT_EQ(clean[size - 1], 0);
      std::free(clean);
    }
  }
}

TEST(Calloc, OverflowFailsWithEnomem) {
  errno = 0;
  EXPECT_EQ(std::calloc(opaque(SIZE_MAX / 2), 3), nullptr);
  EXPECT_EQ(errno, ENOMEM);
  errno = 0;
  EXPECT_EQ(std::calloc(opaque(size_t{1} << 33), size_t{1} << 33), nullptr);
  EXPECT_EQ(errno, ENOMEM);
}

TEST(Calloc, ZeroCountGivesAFreeableBlock) {
  void* block = std::calloc(opaque<size_t>(0), 16);
  ASSERT_NE(block, nullptr);
  std::free(block);
}

TEST(Realloc, NullIsMalloc) {
  void* block = std::realloc(nullptr, opaque<size_t>(0));
  ASSERT_NE(block, nullptr);
  void* other = std::realloc(nullptr, opaque<size_t>(0));
  ASSERT_NE(other, nullptr);
  EXPECT_NE(block, other);
  std::free(block);
  std::free(other);
}

TEST(Realloc, ZeroSizeFreesAndReturnsNull) {
  void* block = std::malloc(100);
  errno = kErrnoSentinel;
  EXPECT_EQ(std::realloc(block, opaque<size_t>(0)), nullptr);
  EXPECT_EQ(errno, kErrnoSentinel);
}

TEST(Realloc, GrowingAndShrinkingKeepTheBytes) {
  size_t size = 1;
  auto* block = static_cast<unsigned char*>(std::malloc(size));
  block[0] = 0;
  // Up to 32 MiB and back, checking every byte written so far each time.
  for (; size < (32u << 20); size = size * 3 + 1) {
    size_t grown = size * 3 + 1;
    block = static_cast<unsigned char*>(std::realloc(block, opaque(grown)));
    ASSERT_NE(block, nullptr);
    for (size_t i = 0; i < size; i += 97)
      ASSERT_EQ(block[i], static_cast<unsigned char>(i % 251));
    for (size_t i = 0; i < grown; ++i)
      block[i] = static_cast<unsigned char>(i % 251);
  }
  for (; size > 1; size /= 5) {
    block = static_cast<unsigned char*>(std::realloc(block, opaque(size)));
    ASSERT_NE(block, nullptr);
    for (size_t i = 0; i < size; i += 13)
      ASSERT_EQ(block[i], static_cast<unsigned char>(i % 251));
  }
  std::free(block);
}

TEST(Realloc, ImpossibleSizeKeepsTheBlock) {
  auto* block = static_cast<char*>(std::malloc(64));
  std::strcpy(block, "still here");
  errno = 0;
  EXPECT_EQ(std::realloc(opaque(block), opaque(SIZE_MAX - 8)), nullptr);
  EXPECT_EQ(errno, ENOMEM);
  EXPECT_STREQ(block, "still here");
  std::free(block);
}

TEST(Reallocarray, OverflowFailsAndKeepsTheBlock) {
  auto* block = static_cast<char*>(std::malloc(64));
  std::strcpy(block, "kept");
  errno = 0;
  EXPECT_EQ(reallocarray(opaque(block), opaque(SIZE_MAX / 2), 3), nullptr);
  EXPECT_EQ(errno, ENOMEM);
  EXPECT_STREQ(block, "kept");
  block = static_cast<char*>(reallocarray(block, opaque<size_t>(100), 100));
  ASSERT_NE(block, nullptr);
  EXPECT_STREQ(block, "kept");
  EXPECT_EQ(reallocarray(block, opaque<size_t>(0), 5), nullptr) << "a zero size frees, as realloc";
}

// memalign and aligned_alloc: glibc 2.36 takes any alignment.
TEST(Memalign, AnyAlignmentUpToHalfTheAddressSpace) {
  using Fn = void* (*)(size_t, size_t);
  for (auto [name, fn] : {std::pair<const char*, Fn>{"memalign", memalign},
                          std::pair<const char*, Fn>{"aligned_alloc", aligned_alloc}}) {
    for (size_t alignment : {0ul, 1ul, 3ul, 8ul, 16ul, 24ul, 32ul, 48ul, 64ul, 100ul, 4096ul,
                             5000ul, 65536ul, 2ul << 20}) {
      for (size_t size : {0ul, 1ul, 100ul, 5000ul}) {
        SCOPED_TRACE(std::string(name) + " alignment " + std::to_string(alignment) + " size " +
                     std::to_string(size));
        errno = kErrnoSentinel;
        void* block = fn(opaque(alignment), size);
        ASSERT_NE(block, nullptr);
        EXPECT_EQ(errno, kErrnoSentinel);
        EXPECT_TRUE(aligned(block, std::max<size_t>(16, nextPowerOfTwo(alignment))));
        EXPECT_GE(malloc_usable_size(block), size);
        std::memset(block, 1, size);
        std::free(block);  // an aligned block is freed by free
      }
    }
    for (size_t alignment : {SIZE_MAX / 2 + 2, SIZE_MAX}) {
      errno = 0;
      EXPECT_EQ(fn(opaque(alignment), 10), nullptr) << name;
      EXPECT_EQ(errno, EINVAL) << name << " alignment " << alignment;
    }
    errno = 0;
    EXPECT_EQ(fn(opaque<size_t>(64), SIZE_MAX - 10), nullptr);
    EXPECT_EQ(errno, ENOMEM) << name;
  }
}

TEST(PosixMemalign, PowersOfTwoMultipleOfAPointer) {
  for (size_t alignment : {0ul, 1ul, 2ul, 4ul, 3ul, 12ul, 24ul, 48ul, 100ul, 4097ul}) {
    void* out = reinterpret_cast<void*>(0x1234);
    errno = kErrnoSentinel;
    EXPECT_EQ(posix_memalign(&out, opaque(alignment), 10), EINVAL) << alignment;
    EXPECT_EQ(out, reinterpret_cast<void*>(0x1234)) << "*out changed on failure";
    EXPECT_EQ(errno, kErrnoSentinel) << "posix_memalign reports in its result, not errno";
  }
  for (size_t alignment : {8ul, 16ul, 32ul, 64ul, 4096ul, 1ul << 20}) {
    void* out = nullptr;
    ASSERT_EQ(posix_memalign(&out, opaque(alignment), 100), 0) << alignment;
    EXPECT_TRUE(aligned(out, alignment));
    std::free(out);
  }
  void* out = reinterpret_cast<void*>(0x1234);
  EXPECT_EQ(posix_memalign(&out, 64, opaque(SIZE_MAX - 10)), ENOMEM);
  EXPECT_EQ(out, reinterpret_cast<void*>(0x1234));
}

TEST(Valloc, PageAlignedAndPvallocRoundsUp) {
  size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
  for (size_t size : {0ul, 1ul, 5000ul, 3ul << 20}) {
    void* block = valloc(opaque(size));
    ASSERT_NE(block, nullptr);
    EXPECT_TRUE(aligned(block, page));
    EXPECT_GE(malloc_usable_size(block), size);
    std::free(block);
    block = pvalloc(opaque(size));
    ASSERT_NE(block, nullptr);
    EXPECT_TRUE(aligned(block, page));
    EXPECT_GE(malloc_usable_size(block), (size + page - 1) / page * page);
    std::free(block);
  }
  errno = 0;
  EXPECT_EQ(pvalloc(opaque(SIZE_MAX - 100)), nullptr);
  EXPECT_EQ(errno, ENOMEM);
}

// --- C++
void* g_sink;  // where the result of a new that should throw goes

struct alignas(64) Line {
  unsigned char bytes[64];
};
struct alignas(4096) Page {
  unsigned char bytes[4096];
};

TEST(New, ZeroBytesGivesUniqueBlocks) {
  void* a = ::operator new(opaque<size_t>(0));
  void* b = ::operator new(opaque<size_t>(0));
  EXPECT_NE(a, nullptr);
  EXPECT_NE(a, b);
  ::operator delete(a);
  ::operator delete(b);
}

TEST(New, ImpossibleSizeThrowsBadAlloc) {
  EXPECT_THROW(g_sink = ::operator new(opaque(SIZE_MAX - 4096)), std::bad_alloc);
  EXPECT_THROW(g_sink = ::operator new[](opaque(SIZE_MAX - 4096)), std::bad_alloc);
  EXPECT_THROW(g_sink = ::operator new (opaque(SIZE_MAX - 4096), std::align_val_t{64}),
               std::bad_alloc);
  EXPECT_EQ(::operator new(opaque(SIZE_MAX - 4096), std::nothrow), nullptr);
  EXPECT_EQ(::operator new[](opaque(SIZE_MAX - 4096), std::nothrow), nullptr);
  EXPECT_EQ(::operator new (opaque(SIZE_MAX - 4096), std::align_val_t{4096}, std::nothrow),
            nullptr);
}

std::atomic<int> g_handler_calls{0};

TEST(New, CallsTheNewHandlerUntilItGivesUp) {
  g_handler_calls = 0;
  std::set_new_handler([] {
    if (++g_handler_calls == 3) std::set_new_handler(nullptr);
  });
  EXPECT_THROW(g_sink = ::operator new(opaque(SIZE_MAX - 4096)), std::bad_alloc);
  EXPECT_EQ(g_handler_calls.load(), 3);
  std::set_new_handler(nullptr);
}

TEST(New, OverAlignedTypes) {
  for (int i = 0; i < 100; ++i) {
    auto line = std::make_unique<Line>();
    auto page = std::make_unique<Page>();
    EXPECT_TRUE(aligned(line.get(), 64));
    EXPECT_TRUE(aligned(page.get(), 4096));
    auto lines = std::make_unique<Line[]>(static_cast<size_t>(i) + 1);
    auto pages = std::make_unique<Page[]>(static_cast<size_t>(i % 5) + 1);
    EXPECT_TRUE(aligned(lines.get(), 64));
    EXPECT_TRUE(aligned(pages.get(), 4096));
    pages[0].bytes[4095] = 1;
  }
  std::vector<Page> pages;
  for (int i = 0; i < 40; ++i) {
    pages.emplace_back();
    pages.back().bytes[0] = static_cast<unsigned char>(i);
    EXPECT_TRUE(aligned(pages.data(), 4096));
  }
  for (int i = 0; i < 40; ++i)
    EXPECT_EQ(pages[i].bytes[0], i);
}

TEST(New, EveryDeleteFormTakesItsNew) {
  for (size_t size : {0ul, 8ul, 100ul, 5000ul, 1ul << 20}) {
    ::operator delete(::operator new(size));
    ::operator delete[](::operator new[](size));
    ::operator delete(::operator new(size), size);
    ::operator delete[](::operator new[](size), size);
    ::operator delete(::operator new(size, std::nothrow), std::nothrow);
    ::operator delete[](::operator new[](size, std::nothrow), std::nothrow);
    for (size_t alignment : {32ul, 64ul, 4096ul, 1ul << 16}) {
      auto al = std::align_val_t{alignment};
      void* block = ::operator new(size, al);
      EXPECT_TRUE(aligned(block, alignment));
      ::operator delete(block, al);
      ::operator delete[](::operator new[](size, al), al);
      ::operator delete(::operator new(size, al), size, al);
      ::operator delete[](::operator new[](size, al), size, al);
      ::operator delete(::operator new(size, al, std::nothrow), al, std::nothrow);
      ::operator delete[](::operator new[](size, al, std::nothrow), al, std::nothrow);
    }
  }
}

// --- threads and fork
TEST(Threads, CrossThreadFreesKeepTheBytes) {
  constexpr int kThreads = 4;
  constexpr int kBlocks = 50000;
  std::vector<std::vector<unsigned char*>> made(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t)
    threads.emplace_back([&, t] {
      for (int i = 0; i < kBlocks; ++i) {
        size_t size = 1 + static_cast<size_t>((i * 7919 + t * 31) % 3000);
        auto* block = static_cast<unsigned char*>(std::malloc(size));
        std::memset(block, t + 1, size);
        made[t].push_back(block);
      }
    });
  for (auto& thread : threads)
    thread.join();
  threads.clear();
  std::atomic<int> corrupt{0};
  // Each thread frees another's blocks, checking them first.
  for (int t = 0; t < kThreads; ++t)
    threads.emplace_back([&, t] {
      int owner = (t + 1) % kThreads;
      for (int i = 0; i < kBlocks; ++i) {
        size_t size = 1 + static_cast<size_t>((i * 7919 + owner * 31) % 3000);
        unsigned char* block = made[owner][i];
        if (block[0] != owner + 1 || block[size - 1] != owner + 1) ++corrupt;
        std::free(block);
        if (i % 3 == 0) std::free(std::malloc(size));  // reuse what came back
      }
    });
  for (auto& thread : threads)
    thread.join();
  EXPECT_EQ(corrupt.load(), 0);
}

TEST(Fork, ChildAllocatesWhileParentThreadsDo) {
  std::atomic<bool> stop{false};
  std::vector<std::thread> workers;
  for (int t = 0; t < 3; ++t)
    workers.emplace_back([&] {
      std::vector<void*> held;
      while (!stop.load(std::memory_order_relaxed)) {
        held.push_back(std::malloc(16 + held.size() * 40));
        if (held.size() == 200) {
          for (void* block : held)
            std::free(block);
          held.clear();
        }
        delete new Line;
      }
      for (void* block : held)
        std::free(block);
    });
  int failures = 0;
  for (int round = 0; round < 30; ++round) {
    pid_t child = fork();
    ASSERT_GE(child, 0);
    if (child == 0) {
      alarm(120);  // a deadlocked child dies instead of hanging the suite
      std::vector<void*> blocks;
      for (int i = 0; i < 2000; ++i)
        blocks.push_back(std::malloc(static_cast<size_t>(i) * 17));
      for (void* block : blocks)
        std::free(block);
      delete new Page;
      _exit(0);
    }
    int status = 0;
    ASSERT_EQ(waitpid(child, &status, 0), child);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) ++failures;
  }
  stop = true;
  for (auto& worker : workers)
    worker.join();
  EXPECT_EQ(failures, 0) << "children that crashed or deadlocked after fork";
}

// Strings and stdio, the way ordinary programs use the heap through libc.
TEST(Libc, InternalAllocationsComeBackThroughFree) {
  for (int i = 0; i < 1000; ++i) {
    char* copy = strdup("a string copied by libc");
    ASSERT_NE(copy, nullptr);
    std::free(copy);
    char* printed = nullptr;
    ASSERT_GT(asprintf(&printed, "%d %s", i, "formatted"), 0);
    std::free(printed);
  }
  FILE* file = tmpfile();
  ASSERT_NE(file, nullptr);
  for (int i = 0; i < 1000; ++i)
    std::fprintf(file, "line %d\n", i);
  std::rewind(file);
  char* line = nullptr;
  size_t capacity = 0;
  int lines = 0;
  while (getline(&line, &capacity, file) > 0)
    ++lines;
  std::free(line);
  std::fclose(file);
  EXPECT_EQ(lines, 1000);
}

}  // namespace
