// In the lab (far preset): where the engine's pages really are, read back
// with move_pages(nodes = NULL). Skips outside a machine with a far node.
#include <gtest/gtest.h>
#include <numa.h>
#include <numaif.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <set>
#include <vector>

#include "engine.h"
#include "support/far_node.h"
#include "tier/tier.h"

namespace {

const size_t kPage = static_cast<size_t>(sysconf(_SC_PAGESIZE));

struct Placement {
  size_t pages = 0;
  size_t on_node = 0;
  double share() const { return pages == 0 ? 0 : double(on_node) / double(pages); }
};

// Touches every page of the blocks and counts those on `node`.
Placement placementOf(const std::vector<std::pair<char*, size_t>>& blocks, int node) {
  std::set<uintptr_t> pages;
  for (auto [block, size] : blocks) {
    memset(block, 0x77, size);
    for (uintptr_t a = reinterpret_cast<uintptr_t>(block) & ~(kPage - 1);
         a < reinterpret_cast<uintptr_t>(block) + size; a += kPage)
      pages.insert(a);
  }
  std::vector<void*> list;
  for (uintptr_t a : pages) list.push_back(reinterpret_cast<void*>(a));
  std::vector<int> status(list.size(), -1);
  EXPECT_EQ(move_pages(0, list.size(), list.data(), nullptr, status.data(), 0), 0);
  Placement p;
  p.pages = list.size();
  for (int s : status) p.on_node += s == node;
  return p;
}

// LIBTIER_DEVDAX set (lab_devdax.sh): the device is the last tier, its
// blocks hold bytes, and it fills up without failing requests.
TEST(LabDevdax, DeviceDaxIsTheLastTier) {
  if (getenv("LIBTIER_DEVDAX") == nullptr) GTEST_SKIP() << "LIBTIER_DEVDAX not set";
  ASSERT_EQ(tier_engine_devdax_status(), 1);
  int rank = tier_count() - 1;
  tier_stats_t stats{};
  ASSERT_EQ(tier_stats(rank, &stats), 0);
  EXPECT_EQ(stats.node_count, 0);
  printf("devdax tier: rank %d, %llu bytes mapped\n", rank,
         static_cast<unsigned long long>(stats.reserved_bytes));
  EXPECT_GE(stats.reserved_bytes, uint64_t{64} << 20);
  std::vector<std::pair<char*, size_t>> blocks;
  size_t sizes[] = {48, 1000, 30000, 1 << 20};
  for (int i = 0; i < 200; ++i) {
    size_t size = sizes[i % 4];
    auto* block = static_cast<char*>(tier_malloc(TIER_RANK(rank), size));
    ASSERT_NE(block, nullptr);
    EXPECT_EQ(tier_of(block), rank);
    memset(block, i & 0xff, size);
    blocks.emplace_back(block, size);
  }
  for (size_t i = 0; i < blocks.size(); ++i)
    for (size_t j = 0; j < blocks[i].second; j += 97)
      ASSERT_EQ(static_cast<unsigned char>(blocks[i].first[j]), i & 0xff);
  for (auto [block, size] : blocks) tier_free(block);
  // Past the device's size, requests are served by the tier above.
  std::vector<void*> big;
  size_t on_device = 0;
  for (uint64_t total = 0; total < stats.reserved_bytes + (uint64_t{64} << 20);
       total += 8 << 20) {
    void* block = tier_malloc(TIER_RANK(rank), 8 << 20);
    ASSERT_NE(block, nullptr);
    on_device += tier_of(block) == rank;
    big.push_back(block);
  }
  EXPECT_GT(on_device, 0u);
  EXPECT_LT(on_device, big.size());
  for (void* block : big) tier_free(block);
}

class Lab : public ::testing::Test {
 protected:
  void SetUp() override {
    far_node_ = tier::test::farNode();
    if (far_node_ < 0 || tier_count() < 2) GTEST_SKIP() << "no far node here";
    tier_stats_t fast{}, far{};
    ASSERT_EQ(tier_stats(0, &fast), 0);
    ASSERT_EQ(tier_stats(1, &far), 0);
    fast_node_ = fast.nodes[0];
    ASSERT_EQ(tier_engine_rank_of_node(far_node_), 1);
  }
  int far_node_ = -1;
  int fast_node_ = -1;
};

std::vector<std::pair<char*, size_t>> allocateMixed(tier_where_t where, size_t total) {
  std::vector<std::pair<char*, size_t>> blocks;
  size_t sizes[] = {64, 200, 1000, 4096, 20000, 65536, 300000};
  for (size_t done = 0, i = 0; done < total; ++i) {
    size_t size = sizes[i % 7];
    auto* block = static_cast<char*>(tier_malloc(where, size));
    EXPECT_NE(block, nullptr);
    if (block == nullptr) break;
    blocks.emplace_back(block, size);
    done += size;
  }
  return blocks;
}

TEST_F(Lab, FarBlocksAreOnTheFarNode) {
  auto blocks = allocateMixed(TIER_FAR, size_t{64} << 20);
  for (auto [block, size] : blocks) ASSERT_EQ(tier_of(block), 1);
  Placement p = placementOf(blocks, far_node_);
  printf("far: %zu of %zu pages on node %d\n", p.on_node, p.pages, far_node_);
  EXPECT_GE(p.share(), 0.99);
  for (auto [block, size] : blocks) tier_free(block);
}

TEST_F(Lab, FastBlocksAreOnTheFastNode) {
  auto blocks = allocateMixed(TIER_FAST, size_t{32} << 20);
  Placement p = placementOf(blocks, fast_node_);
  printf("fast: %zu of %zu pages on node %d\n", p.on_node, p.pages, fast_node_);
  EXPECT_GE(p.share(), 0.99);
  for (auto [block, size] : blocks) tier_free(block);
}

// Freed far blocks sit in the far tier's caches; a fast request must not get them.
TEST_F(Lab, CachesNeverMixTiers) {
  std::vector<std::pair<char*, size_t>> far, fast;
  for (int i = 0; i < 20000; ++i) far.emplace_back(static_cast<char*>(tier_malloc(TIER_FAR, 64)), 64);
  placementOf(far, far_node_);
  for (auto [block, size] : far) tier_free(block);
  for (int i = 0; i < 20000; ++i)
    fast.emplace_back(static_cast<char*>(tier_malloc(TIER_FAST, 64)), 64);
  for (auto [block, size] : fast) ASSERT_EQ(tier_of(block), 0);
  Placement p = placementOf(fast, fast_node_);
  printf("fast after far frees: %zu of %zu pages on node %d\n", p.on_node, p.pages, fast_node_);
  EXPECT_EQ(p.on_node, p.pages);
  for (auto [block, size] : fast) tier_free(block);
  // And the other way: fast frees (jemalloc's automatic tcache) never feed far requests.
  std::vector<std::pair<char*, size_t>> far_again;
  for (int i = 0; i < 20000; ++i)
    far_again.emplace_back(static_cast<char*>(tier_malloc(TIER_FAR, 64)), 64);
  for (auto [block, size] : far_again) ASSERT_EQ(tier_of(block), 1);
  Placement q = placementOf(far_again, far_node_);
  printf("far after fast frees: %zu of %zu pages on node %d\n", q.on_node, q.pages, far_node_);
  EXPECT_EQ(q.on_node, q.pages);
  for (auto [block, size] : far_again) tier_free(block);
}

// Fill the fast node with locked ballast: fast requests must still succeed,
// served by the far tier.
TEST_F(Lab, AnExhaustedFastTierSpillsToFar) {
  long long free_bytes = 0;
  numa_node_size64(fast_node_, &free_bytes);
  size_t ballast_size = static_cast<size_t>(free_bytes) - (size_t{96} << 20);
  void* ballast = mmap(nullptr, ballast_size, PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  ASSERT_NE(ballast, MAP_FAILED);
  unsigned long mask = 1UL << fast_node_;
  ASSERT_EQ(mbind(ballast, ballast_size, MPOL_PREFERRED, &mask, sizeof mask * 8, 0), 0);
  ASSERT_EQ(mlock(ballast, ballast_size), 0);  // faults it in and keeps it there
  tier_stats_t before{}, after{};
  ASSERT_EQ(tier_stats(1, &before), 0);
  std::vector<std::pair<char*, size_t>> blocks;
  size_t on_far_tier = 0;
  for (int i = 0; i < 1024; ++i) {  // 256 MiB
    auto* block = static_cast<char*>(tier_malloc(TIER_FAST, 256 * 1024));
    ASSERT_NE(block, nullptr) << "block " << i;
    memset(block, 1, 256 * 1024);
    on_far_tier += tier_of(block) == 1;
    blocks.emplace_back(block, 256 * 1024);
  }
  ASSERT_EQ(tier_stats(1, &after), 0);
  Placement p = placementOf(blocks, far_node_);
  printf("spill: %zu of 1024 blocks on the far tier, %zu of %zu pages on node %d\n", on_far_tier,
         p.on_node, p.pages, far_node_);
  EXPECT_GT(after.spilled_in, before.spilled_in);
  EXPECT_GE(on_far_tier, 1024u / 2);
  EXPECT_GE(p.share(), 0.5);
  for (auto [block, size] : blocks) tier_free(block);
  munlock(ballast, ballast_size);
  munmap(ballast, ballast_size);
}

}  // namespace
