// include/tier/tier.hpp: the allocator in containers (with over-aligned
// types) and the pmr resource.
#include "tier/tier.hpp"

#include <gtest/gtest.h>

#include <cstdint>
#include <map>
#include <memory_resource>
#include <string>
#include <vector>

namespace {

struct alignas(128) Wide {
  unsigned char bytes[200];
};

TEST(Cpp, AllocatorPlacesContainersOnItsTier) {
  std::vector<int, tier::allocator<int>> v{tier::allocator<int>(tier::where::fast())};
  for (int i = 0; i < 100000; ++i) v.push_back(i);
  EXPECT_EQ(tier_of(v.data()), 0);
  long sum = 0;
  for (int x : v) sum += x;
  EXPECT_EQ(sum, 99999L * 100000 / 2);

  using Alloc = tier::allocator<std::pair<const int, std::string>>;
  std::map<int, std::string, std::less<>, Alloc> m{Alloc(tier::where::far())};
  for (int i = 0; i < 1000; ++i) m.emplace(i, std::string(50, 'x'));
  EXPECT_EQ(tier_of(&*m.begin()), tier_count() > 1 ? 1 : 0);
  EXPECT_EQ(m.size(), 1000u);
}

TEST(Cpp, OverAlignedTypesAreAligned) {
  std::vector<Wide, tier::allocator<Wide>> v{tier::allocator<Wide>(tier::where::far())};
  for (int i = 0; i < 1000; ++i) {
    v.emplace_back();
    ASSERT_EQ(reinterpret_cast<std::uintptr_t>(v.data()) % 128, 0u);
  }
  EXPECT_GE(tier_of(v.data()), 0);
}

TEST(Cpp, AllocatorsCompareByTier) {
  EXPECT_EQ(tier::allocator<int>(tier::where::far()), tier::allocator<long>(tier::where::far()));
  EXPECT_NE(tier::allocator<int>(tier::where::far()), tier::allocator<int>(tier::where::fast()));
  tier::allocator<long> rebound = tier::allocator<int>(tier::where::rank(2));
  EXPECT_EQ(rebound.placement(), tier::where::rank(2));
}

TEST(Cpp, MemoryResourceServesPmrContainers) {
  tier::memory_resource fast(TIER_FAST), also_fast(tier::where::fast()), far(TIER_FAR);
  EXPECT_TRUE(fast.is_equal(also_fast));
  EXPECT_FALSE(fast.is_equal(far));
  EXPECT_FALSE(fast.is_equal(*std::pmr::new_delete_resource()));
  std::pmr::vector<std::pmr::string> names(&far);
  for (int i = 0; i < 1000; ++i) names.emplace_back(std::string(100, static_cast<char>('a' + i % 26)));
  EXPECT_GE(tier_of(names.data()), 0);
  EXPECT_GE(tier_of(names[7].data()), 0);
  void* aligned = fast.allocate(100, 4096);
  EXPECT_EQ(reinterpret_cast<std::uintptr_t>(aligned) % 4096, 0u);
  EXPECT_EQ(tier_of(aligned), 0);
  fast.deallocate(aligned, 100, 4096);
}

}  // namespace
