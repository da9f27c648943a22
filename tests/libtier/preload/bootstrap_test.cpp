// The shim's bootstrap buffer (libtier/preload/bootstrap.h), on its own
// static buffer in this test binary.
#include "preload/bootstrap.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <thread>
#include <utility>
#include <vector>

namespace tier::preload::boot {
namespace {

// One test: the buffer is process-wide and fills up for good.
TEST(Bootstrap, AlignedZeroedDisjointBlocksUntilFullFromManyThreads) {
  EXPECT_EQ(allocate(16, kBytes + 1), nullptr) << "larger than the buffer";
  EXPECT_EQ(allocate(kBytes * 2, 1), nullptr) << "an alignment past the buffer";
  EXPECT_FALSE(owns(nullptr));
  int on_stack = 0;
  EXPECT_FALSE(owns(&on_stack));

  void* first = allocate(0, 0);
  ASSERT_NE(first, nullptr);
  EXPECT_TRUE(owns(first));
  EXPECT_EQ(sizeOf(first), 0u);

  // Four threads take blocks of mixed sizes and alignments until it is full.
  std::vector<std::vector<std::pair<unsigned char*, size_t>>> taken(4);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&, t] {
      for (size_t i = 0;; ++i) {
        size_t alignment = size_t{16} << (i % 5);  // 16 .. 256
        size_t size = 1 + (i * 37 + static_cast<size_t>(t)) % 700;
        auto* block = static_cast<unsigned char*>(allocate(alignment, size));
        if (block == nullptr) return;
        taken[t].emplace_back(block, size);
        bool zero = std::all_of(block, block + size, [](unsigned char c) { return c == 0; });
        if (!zero || reinterpret_cast<uintptr_t>(block) % alignment != 0) {
          taken[t].back().second = 0;  // flagged: checked below
          return;
        }
        std::memset(block, t + 1, size);
      }
    });
  for (auto& thread : threads)
    thread.join();

  std::vector<std::pair<unsigned char*, size_t>> all;
  for (int t = 0; t < 4; ++t)
    for (auto [block, size] : taken[t]) {
      ASSERT_NE(size, 0u) << "a block that was not zeroed or not aligned";
      EXPECT_TRUE(owns(block));
      EXPECT_EQ(sizeOf(block), size);
      EXPECT_TRUE(std::all_of(block, block + size, [t](unsigned char c) { return c == t + 1; }))
          << "blocks overlap";
      all.emplace_back(block, size);
    }
  std::sort(all.begin(), all.end());
  for (size_t i = 1; i < all.size(); ++i)
    EXPECT_GE(all[i].first, all[i - 1].first + all[i - 1].second + 16) << "header overwritten";
  EXPECT_GT(all.size(), 400u);
  EXPECT_GT(used(), kBytes - 1024) << "stopped long before full";
  EXPECT_LE(used(), kBytes);
  EXPECT_EQ(allocate(16, 1024), nullptr);
}

}  // namespace
}  // namespace tier::preload::boot
