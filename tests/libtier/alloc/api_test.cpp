// The C API's semantics on this host (one tier or more): sizes, alignment,
// errors, realloc, usable size, tier_of, tier_node_of, statistics, the
// chooser, growth granularity.
#include <errno.h>
#include <gtest/gtest.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <fstream>
#include <string>
#include <vector>

#include "engine.h"
#include "private_jemalloc.h"
#include "tier/tier.h"

namespace {

void fill(void* block, size_t size, unsigned seed) {
  auto* bytes = static_cast<unsigned char*>(block);
  for (size_t i = 0; i < size; ++i) bytes[i] = static_cast<unsigned char>(seed + i * 7);
}

bool holds(const void* block, size_t size, unsigned seed) {
  auto* bytes = static_cast<const unsigned char*>(block);
  for (size_t i = 0; i < size; ++i)
    if (bytes[i] != static_cast<unsigned char>(seed + i * 7)) return false;
  return true;
}

TEST(Api, EverySizeFromZeroToLargeIsUsable) {
  for (size_t size : {size_t{0}, size_t{1}, size_t{7}, size_t{8}, size_t{15}, size_t{16},
                      size_t{100}, size_t{4096}, size_t{65536}, size_t{65537}, size_t{1} << 20,
                      size_t{64} << 20}) {
    SCOPED_TRACE(size);
    errno = 1234;
    void* block = tier_malloc(TIER_FAST, size);
    ASSERT_NE(block, nullptr);
    EXPECT_EQ(errno, 1234);  // untouched on success
    EXPECT_GE(tier_usable_size(block), size == 0 ? 1 : size);
    EXPECT_EQ(tier_of(block), 0);
    fill(block, size, 3);
    EXPECT_TRUE(holds(block, size, 3));
    tier_free(block);
  }
}

TEST(Api, ZeroSizeBlocksAreDistinct) {
  void* a = tier_malloc(TIER_DEFAULT, 0);
  void* b = tier_malloc(TIER_DEFAULT, 0);
  ASSERT_NE(a, nullptr);
  ASSERT_NE(b, nullptr);
  EXPECT_NE(a, b);
  tier_free(a);
  tier_free(b);
}

TEST(Api, UsableSizeIsJemallocsSizeClass) {
  for (size_t size = 1; size <= 70000; size += (size < 1024 ? 1 : 37)) {
    void* block = tier_malloc(TIER_FAST, size);
    ASSERT_EQ(tier_usable_size(block), tierje_nallocx(size, 0)) << size;
    tier_free(block);
  }
}

TEST(Api, AlignmentIsCheckedAndHonoured) {
  errno = 0;
  EXPECT_EQ(tier_aligned_alloc(TIER_FAST, 3, 64), nullptr);
  EXPECT_EQ(errno, EINVAL);
  errno = 0;
  EXPECT_EQ(tier_aligned_alloc(TIER_FAST, 0, 64), nullptr);
  EXPECT_EQ(errno, EINVAL);
  void* out = reinterpret_cast<void*>(0x1);
  EXPECT_EQ(tier_posix_memalign(TIER_FAST, &out, 4, 64), EINVAL);  // not a multiple of void*
  EXPECT_EQ(tier_posix_memalign(TIER_FAST, &out, 24, 64), EINVAL);
  EXPECT_EQ(out, reinterpret_cast<void*>(0x1));  // untouched on failure
  for (size_t alignment = 1; alignment <= (size_t{1} << 21); alignment <<= 1) {
    SCOPED_TRACE(alignment);
    void* block = tier_aligned_alloc(TIER_FAST, alignment, 100);
    ASSERT_NE(block, nullptr);
    EXPECT_EQ(reinterpret_cast<uintptr_t>(block) % alignment, 0u);
    fill(block, 100, 1);
    tier_free(block);
    if (alignment >= sizeof(void*)) {
      ASSERT_EQ(tier_posix_memalign(TIER_FAR, &out, alignment, 3000), 0);
      EXPECT_EQ(reinterpret_cast<uintptr_t>(out) % alignment, 0u);
      tier_free(out);
    }
  }
}

TEST(Api, CallocChecksOverflowAndZeroes) {
  errno = 0;
  EXPECT_EQ(tier_calloc(TIER_FAST, SIZE_MAX / 2, 3), nullptr);
  EXPECT_EQ(errno, ENOMEM);
  // Dirty blocks go back to the caches first, so calloc must clear reused ones.
  for (size_t size : {size_t{24}, size_t{512}, size_t{40000}, size_t{200000}}) {
    std::vector<void*> dirty;
    for (int i = 0; i < 64; ++i) {
      dirty.push_back(tier_malloc(TIER_FAST, size));
      memset(dirty.back(), 0xab, size);
    }
    for (void* block : dirty) tier_free(block);
    for (int i = 0; i < 64; ++i) {
      auto* block = static_cast<unsigned char*>(tier_calloc(TIER_FAST, 1, size));
      ASSERT_NE(block, nullptr);
      for (size_t j = 0; j < size; ++j) ASSERT_EQ(block[j], 0) << size << " at " << j;
      dirty[static_cast<size_t>(i)] = block;
    }
    for (void* block : dirty) tier_free(block);
  }
}

TEST(Api, ReallocKeepsBytesGrowingAndShrinking) {
  void* block = tier_malloc(TIER_FAST, 10);
  fill(block, 10, 9);
  size_t size = 10;
  for (size_t next : {size_t{100}, size_t{5000}, size_t{1} << 20, size_t{3000}, size_t{20}}) {
    void* moved = tier_realloc(block, next);
    ASSERT_NE(moved, nullptr);
    EXPECT_TRUE(holds(moved, size < next ? size : next, 9)) << next;
    fill(moved, next, 9);
    block = moved;
    size = next;
    EXPECT_EQ(tier_of(block), 0);
  }
  EXPECT_EQ(tier_realloc(block, 0), nullptr);  // glibc's realloc(p, 0): freed
  void* fresh = tier_realloc(nullptr, 40);
  ASSERT_NE(fresh, nullptr);
  errno = 0;
  int on_stack = 0;
  EXPECT_EQ(tier_realloc(&on_stack, 40), nullptr);  // not libtier's
  EXPECT_EQ(errno, EINVAL);
  void* far = tier_realloc_on(TIER_FAR, fresh, 4000);
  ASSERT_NE(far, nullptr);
  EXPECT_EQ(tier_of(far), tier_count() > 1 ? 1 : 0);
  tier_free(far);
}

TEST(Api, FreeIgnoresNullAndForeignPointers) {
  tier_free(nullptr);
  int on_stack = 0;
  tier_free(&on_stack);
  void* plain = malloc(16);
  EXPECT_EQ(tier_of(plain), -1);
  EXPECT_EQ(tier_engine_owns(plain), 0);
  EXPECT_EQ(tier_usable_size(plain), 0u);
  free(plain);
}

TEST(Api, BadWhereIsEinval) {
  errno = 0;
  EXPECT_EQ(tier_malloc(-5, 16), nullptr);
  EXPECT_EQ(errno, EINVAL);
  errno = 0;
  EXPECT_EQ(tier_malloc(TIER_NODE(1000), 16), nullptr);
  EXPECT_EQ(errno, EINVAL);
  errno = 0;
  EXPECT_EQ(tier_malloc(0x40000, 16), nullptr);
  EXPECT_EQ(errno, EINVAL);
}

TEST(Api, AbsentTiersAndNodesSpillInsteadOfFailing) {
  void* deep = tier_malloc(TIER_RANK(7), 64);
  ASSERT_NE(deep, nullptr);
  EXPECT_EQ(tier_of(deep), tier_count() - 1);
  void* on_node = tier_malloc(TIER_NODE(63), 64);  // no such node here
  ASSERT_NE(on_node, nullptr);
  EXPECT_EQ(tier_of(on_node), 0);
  tier_free(deep);
  tier_free(on_node);
}

TEST(Api, NodeOfReportsTouchedPagesAndEnoentForUntouched) {
  auto* block = static_cast<char*>(tier_malloc(TIER_FAST, size_t{8} << 20));
  ASSERT_NE(block, nullptr);
  block[0] = 1;
  int node = tier_node_of(block);
  EXPECT_GE(node, 0);
  EXPECT_EQ(tier_engine_rank_of_node(node), 0);
  // The allocator may hand back pages touched before: drop one to be sure.
  auto* page = reinterpret_cast<char*>(reinterpret_cast<uintptr_t>(block + (size_t{6} << 20)) &
                                       ~uintptr_t{4095});
  ASSERT_EQ(madvise(page, 4096, MADV_DONTNEED), 0);
  EXPECT_EQ(tier_node_of(page), -ENOENT);
  tier_free(block);
}

TEST(Api, StatsCountLiveBytesAndAllocations) {
  ASSERT_GE(tier_count(), 1);
  tier_stats_t before{}, during{}, after{};
  tier_engine_flush_thread_stats();
  ASSERT_EQ(tier_stats(0, &before), 0);
  std::vector<void*> blocks;
  for (int i = 0; i < 1000; ++i) blocks.push_back(tier_malloc(TIER_FAST, 1000));
  tier_engine_flush_thread_stats();
  ASSERT_EQ(tier_stats(0, &during), 0);
  EXPECT_EQ(during.allocated_bytes - before.allocated_bytes, 1000u * tier_usable_size(blocks[0]));
  EXPECT_EQ(during.allocations - before.allocations, 1000u);
  EXPECT_GE(during.mapped_bytes, during.allocated_bytes);
  EXPECT_GE(during.reserved_bytes, during.mapped_bytes);
  EXPECT_GE(during.node_count, 1);
  for (void* block : blocks) tier_free(block);
  tier_engine_flush_thread_stats();
  ASSERT_EQ(tier_stats(0, &after), 0);
  EXPECT_EQ(after.allocated_bytes, before.allocated_bytes);
  EXPECT_EQ(tier_stats(tier_count(), &after), -EINVAL);
  EXPECT_EQ(tier_stats(-1, &after), -EINVAL);
}

struct ChooserLog {
  size_t last_size = 0;
  int calls = 0;
  int answer = 0;
};

int choose(size_t size, void* ctx) {
  auto* log = static_cast<ChooserLog*>(ctx);
  log->last_size = size;
  ++log->calls;
  return log->answer;
}

TEST(Api, DefaultPlacementAsksTheChooser) {
  ChooserLog log;
  log.answer = 99;  // clamped to the last tier
  tier_engine_set_chooser(choose, &log);
  void* block = tier_malloc(TIER_DEFAULT, 4321);
  EXPECT_EQ(log.calls, 1);
  EXPECT_EQ(log.last_size, 4321u);
  EXPECT_EQ(tier_of(block), tier_count() - 1);
  tier_free(block);
  void* fast = tier_malloc(TIER_FAST, 10);  // an explicit tier does not ask
  EXPECT_EQ(log.calls, 1);
  tier_free(fast);
  tier_engine_set_chooser(nullptr, nullptr);
  block = tier_malloc(TIER_DEFAULT, 10);
  EXPECT_EQ(tier_of(block), 0);
  EXPECT_EQ(log.calls, 1);
  tier_free(block);
}

// At most one mprotect per 2 MiB of growth; the range stays a few VMAs.
TEST(Api, GrowthIsAtLeastTwoMebibytesPerCall) {
  tier_stats_t before{}, after{};
  ASSERT_EQ(tier_stats(0, &before), 0);
  unsigned long grows_before = tier_engine_grow_calls(0);
  std::vector<void*> blocks;
  for (int i = 0; i < 4096; ++i) blocks.push_back(tier_malloc(TIER_FAST, 64 * 1024));  // 256 MiB
  ASSERT_EQ(tier_stats(0, &after), 0);
  unsigned long grows = tier_engine_grow_calls(0) - grows_before;
  uint64_t grown = after.mapped_bytes - before.mapped_bytes;
  ASSERT_GT(grows, 0u);
  EXPECT_GE(grown / grows, uint64_t{2} << 20);
  // VMAs inside the tier's range, from /proc/self/maps.
  std::ifstream maps("/proc/self/maps");
  std::string line;
  int inside = 0;
  while (std::getline(maps, line)) {
    uintptr_t start = std::stoull(line.substr(0, line.find('-')), nullptr, 16);
    uintptr_t end = std::stoull(line.substr(line.find('-') + 1), nullptr, 16);
    if (tier_of(reinterpret_cast<void*>(start)) == 0 ||
        tier_of(reinterpret_cast<void*>(end - 1)) == 0)
      ++inside;
  }
  EXPECT_LE(inside, 8);
  for (void* block : blocks) tier_free(block);
}

}  // namespace
