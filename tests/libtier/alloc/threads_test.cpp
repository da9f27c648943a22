// Threads and fork: many threads allocating on every tier and freeing each
// other's blocks; short-lived threads (their caches are given back); fork
// while other threads allocate, the child allocating and freeing.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <mutex>
#include <random>
#include <thread>
#include <vector>

#include "engine.h"
#include "tier/tier.h"

namespace {

struct Block {
  unsigned char* bytes;
  size_t size;
  unsigned char tag;
};

bool intact(const Block& b) {
  for (size_t i = 0; i < b.size; ++i)
    if (b.bytes[i] != b.tag) return false;
  return true;
}

TEST(Threads, FourThreadsWithCrossThreadFrees) {
  constexpr int kThreads = 4;
  constexpr int kOps = 100'000;
  tier_engine_flush_thread_stats();
  std::vector<uint64_t> live_before;
  for (int rank = 0; rank < tier_count(); ++rank) {
    tier_stats_t stats{};
    ASSERT_EQ(tier_stats(rank, &stats), 0);
    live_before.push_back(stats.allocated_bytes);
  }
  std::mutex shared_lock;
  std::vector<Block> shared;  // blocks any thread may free
  std::atomic<int> corrupt{0}, failed{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      std::mt19937 random(static_cast<unsigned>(t) + 1);
      std::vector<Block> mine;
      for (int op = 0; op < kOps; ++op) {
        auto r = static_cast<unsigned>(random());
        if (r % 3 != 0 || mine.empty()) {
          size_t size = 1 + (r >> 8) % (r % 17 == 0 ? 100000 : 512);
          tier_where_t where = (r >> 4) % 2 == 0 ? TIER_FAST : TIER_FAR;
          auto* bytes = static_cast<unsigned char*>(tier_malloc(where, size));
          if (bytes == nullptr) {
            ++failed;
            continue;
          }
          auto tag = static_cast<unsigned char>(r);
          memset(bytes, tag, size);
          mine.push_back({bytes, size, tag});
        } else {
          Block b = mine.back();
          mine.pop_back();
          if (r % 5 == 0) {  // hand it to whichever thread frees next
            std::lock_guard lock(shared_lock);
            shared.push_back(b);
            if (shared.size() > 64) {
              Block other = shared.front();
              shared.erase(shared.begin());
              if (!intact(other)) ++corrupt;
              tier_free(other.bytes);
            }
            continue;
          }
          if (!intact(b)) ++corrupt;
          tier_free(b.bytes);
        }
      }
      for (const Block& b : mine) {
        if (!intact(b)) ++corrupt;
        tier_free(b.bytes);
      }
    });
  }
  for (auto& thread : threads)
    thread.join();
  for (const Block& b : shared) {
    if (!intact(b)) ++corrupt;
    tier_free(b.bytes);
  }
  EXPECT_EQ(corrupt.load(), 0);
  EXPECT_EQ(failed.load(), 0);
  // Every thread folded its statistics at exit: nothing is live any more.
  tier_engine_flush_thread_stats();
  for (int rank = 0; rank < tier_count(); ++rank) {
    tier_stats_t stats{};
    ASSERT_EQ(tier_stats(rank, &stats), 0);
    EXPECT_EQ(stats.allocated_bytes, live_before[static_cast<size_t>(rank)]) << "rank " << rank;
  }
}

// jemalloc has 4096 explicit tcaches in all: threads must give theirs back.
TEST(Threads, ShortLivedThreadsReturnTheirCaches) {
  for (int i = 0; i < 5000; ++i) {
    std::thread([] {
      void* fast = tier_malloc(TIER_FAST, 100);
      void* far = tier_malloc(TIER_FAR, 100);
      ASSERT_NE(fast, nullptr);
      ASSERT_NE(far, nullptr);
      tier_free(fast);
      tier_free(far);
    }).join();
  }
}

// A thread whose first call frees a block starts its cache on that free;
// the cache (fresh, or one a dead thread left) must then hand out only live,
// distinct blocks, never what its empty slots held before.
TEST(Threads, AThreadStartingWithAFreeGetsDistinctBlocks) {
  for (tier_where_t where : {TIER_FAST, TIER_FAR}) {
    std::vector<void*> held;
    for (int i = 0; i < 64; ++i)
      held.push_back(tier_malloc(where, 32));
    for (int generation = 0; generation < 20; ++generation) {
      std::thread([&] {
        tier_free(held.back());
        held.pop_back();
        for (int i = 0; i < 40; ++i)
          held.push_back(tier_malloc(where, 32));
      }).join();
      std::vector<void*> sorted = held;
      std::sort(sorted.begin(), sorted.end());
      ASSERT_EQ(sorted.front() == nullptr, false) << "generation " << generation;
      ASSERT_EQ(std::adjacent_find(sorted.begin(), sorted.end()), sorted.end())
          << "a block handed out twice, generation " << generation;
    }
    for (void* block : held)
      tier_free(block);
  }
}

// Under ASan the process's malloc is ASan's, whose locks a fork can leave
// held: then neither the busy threads nor the child touch it (fixed arrays,
// no thread creation); the engine's own paths are exercised the same.
#if defined(__SANITIZE_ADDRESS__)
constexpr bool kProcessMallocForkSafe = false;
#else
constexpr bool kProcessMallocForkSafe = true;
#endif

TEST(Fork, ChildAllocatesWhileParentThreadsWereAllocating) {
  std::atomic<bool> stop{false};
  std::vector<std::thread> busy;
  for (int t = 0; t < 2; ++t)
    busy.emplace_back([&] {
      void* held[64];
      while (!stop.load(std::memory_order_relaxed)) {
        for (int i = 0; i < 64; ++i)
          held[i] = tier_malloc(i % 2 ? TIER_FAR : TIER_FAST, static_cast<size_t>(100 * i));
        for (void* p : held)
          tier_free(p);
        // New threads' first allocations take the tcache-creation path too.
        if (kProcessMallocForkSafe)
          std::thread([] { tier_free(tier_malloc(TIER_FAR, 64)); }).join();
      }
    });
  static void* blocks[2000];
  for (int round = 0; round < 30; ++round) {
    pid_t child = fork();
    ASSERT_GE(child, 0);
    if (child == 0) {
      bool ok = true;
      for (int i = 0; i < 2000; ++i) {
        size_t size = static_cast<size_t>(i) * 3 + 1;
        void* p = tier_malloc(i % 2 ? TIER_FAR : TIER_FAST, size);
        ok = ok && p != nullptr;
        if (p != nullptr) memset(p, 1, size);
        blocks[i] = p;
      }
      for (void* p : blocks)
        tier_free(p);
      if (kProcessMallocForkSafe)
        std::thread([&] { ok = ok && tier_malloc(TIER_FAST, 10) != nullptr; }).join();
      _exit(ok ? 0 : 1);
    }
    int status = 0;
    ASSERT_EQ(waitpid(child, &status, 0), child);
    ASSERT_TRUE(WIFEXITED(status)) << "round " << round;
    EXPECT_EQ(WEXITSTATUS(status), 0) << "round " << round;
  }
  stop = true;
  for (auto& thread : busy)
    thread.join();
}

}  // namespace
