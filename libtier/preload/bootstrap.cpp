#include "preload/bootstrap.h"

#include <algorithm>
#include <atomic>
#include <cstdint>

namespace tier::preload::boot {
namespace {

alignas(4096) char g_buffer[kBytes];
std::atomic<size_t> g_used{0};

}  // namespace

bool owns(const void* block) {
  auto p = reinterpret_cast<uintptr_t>(block);
  auto base = reinterpret_cast<uintptr_t>(g_buffer);
  return p >= base && p < base + kBytes;
}

size_t sizeOf(const void* block) {
  return static_cast<const size_t*>(block)[-2];
}

size_t used() {
  return g_used.load(std::memory_order_relaxed);
}

void* allocate(size_t alignment, size_t size) {
  alignment = std::max<size_t>(alignment, 16);
  if (size > kBytes || alignment > kBytes) return nullptr;
  auto base = reinterpret_cast<uintptr_t>(g_buffer);
  size_t offset = g_used.load(std::memory_order_relaxed);
  for (;;) {
    uintptr_t start = base + offset + 16;  // room for the header
    uintptr_t aligned = (start + alignment - 1) & ~(alignment - 1);
    size_t end = aligned - base + size;
    if (end > kBytes) return nullptr;
    if (g_used.compare_exchange_weak(offset, end, std::memory_order_relaxed)) {
      auto* header = reinterpret_cast<size_t*>(aligned);
      header[-2] = size;
      header[-1] = 0;
      return reinterpret_cast<void*>(aligned);
    }
  }
}

}  // namespace tier::preload::boot
