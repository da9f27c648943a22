// libtier for C++: an allocator for standard containers and a
// std::pmr::memory_resource, both placing memory on one tier (see tier.h).
//
//   std::vector<int, tier::allocator<int>> v(tier::where::far());
//   tier::memory_resource far(TIER_FAR);
//   std::pmr::vector<double> w(&far);
#pragma once

#include <cstddef>
#include <limits>
#include <memory_resource>
#include <new>

#include "tier/tier.h"

namespace tier {

// A `tier_where_t` with names.
struct where {
  tier_where_t value = TIER_DEFAULT;
  static constexpr where fast() { return {TIER_FAST}; }
  static constexpr where far() { return {TIER_FAR}; }
  static constexpr where rank(int r) { return {TIER_RANK(r)}; }
  static constexpr where node(int n) { return {TIER_NODE(n)}; }
  static constexpr where placement_default() { return {TIER_DEFAULT}; }
  friend constexpr bool operator==(where, where) = default;
};

// std::allocator's interface over tier_aligned_alloc/tier_free. Stateful (the
// tier is chosen at run time); copies and rebinds keep it. Two allocators are
// equal when they place on the same tier, but any one of them may free any
// libtier block (tier_free finds the tier from the address).
template <typename T>
class allocator {
 public:
  using value_type = T;

  constexpr allocator() noexcept = default;
  constexpr explicit allocator(where w) noexcept : where_(w) {}
  template <typename U>
  constexpr allocator(const allocator<U>& other) noexcept : where_(other.placement()) {}

  [[nodiscard]] T* allocate(std::size_t n) {
    if (n > std::numeric_limits<std::size_t>::max() / sizeof(T)) throw std::bad_array_new_length();
    void* block = alignof(T) > alignof(std::max_align_t)
                      ? tier_aligned_alloc(where_.value, alignof(T), n * sizeof(T))
                      : tier_malloc(where_.value, n * sizeof(T));
    if (block == nullptr) throw std::bad_alloc();
    return static_cast<T*>(block);
  }
  void deallocate(T* block, std::size_t) noexcept { tier_free(block); }

  constexpr where placement() const noexcept { return where_; }

  template <typename U>
  friend constexpr bool operator==(const allocator& a, const allocator<U>& b) noexcept {
    return a.placement() == b.placement();
  }

 private:
  where where_{};
};

// A std::pmr::memory_resource on one tier. Its blocks may be freed by any
// tier resource or tier_free; is_equal holds between resources placing on the
// same tier.
class memory_resource : public std::pmr::memory_resource {
 public:
  explicit memory_resource(where w = where::placement_default()) noexcept : where_(w) {}
  explicit memory_resource(tier_where_t w) noexcept : where_{w} {}
  where placement() const noexcept { return where_; }

 private:
  void* do_allocate(std::size_t bytes, std::size_t alignment) override {
    void* block = alignment > alignof(std::max_align_t)
                      ? tier_aligned_alloc(where_.value, alignment, bytes)
                      : tier_malloc(where_.value, bytes);
    if (block == nullptr) throw std::bad_alloc();
    return block;
  }
  void do_deallocate(void* block, std::size_t, std::size_t) override { tier_free(block); }
  bool do_is_equal(const std::pmr::memory_resource& other) const noexcept override {
    auto* same = dynamic_cast<const memory_resource*>(&other);
    return same != nullptr && same->where_ == where_;
  }

  where where_;
};

}  // namespace tier
