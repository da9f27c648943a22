// Every entry point of the malloc family and of C++ new/delete that
// libtier-preload.so takes over from glibc, in one file, with glibc 2.36's
// semantics (checked by tests/libtier/preload/conformance_test.cpp against
// glibc itself):
//   - malloc(0) and new(0) return a unique block that free accepts;
//   - failure: NULL with errno = ENOMEM (posix_memalign returns it instead);
//     errno is untouched on success; calloc and reallocarray check overflow;
//   - realloc(NULL, n) is malloc(n); realloc(p, 0) frees p and returns NULL;
//   - memalign and aligned_alloc accept any alignment: up to 16 it is plain
//     malloc, a non-power of two is rounded up to the next power of two, above
//     SIZE_MAX/2+1 it is EINVAL; posix_memalign wants a power of two multiple
//     of sizeof(void*) (else EINVAL, *out untouched);
//   - valloc and pvalloc align to the page; pvalloc rounds the size up to it;
//   - every block, aligned or not, is freed by free;
//   - new calls the new_handler until it gives up, then throws std::bad_alloc;
//     the nothrow forms return NULL instead.
// mallinfo, malloc_trim, malloc_stats and mallopt stay glibc's: they describe
// glibc's own heap, which serves only what the engine cannot.
#include <malloc.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <new>

#include "preload/shim.h"

namespace {

using tier::preload::allocate;
using tier::preload::allocateAligned;
using tier::preload::release;

constexpr size_t kMinAlignment = 16;  // what malloc guarantees on x86-64 (glibc's MALLOC_ALIGNMENT)

bool isPowerOfTwo(size_t n) {
  return n != 0 && (n & (n - 1)) == 0;
}

// memalign's rules: see the top of this file.
void* allocateAlignedLikeGlibc(size_t alignment, size_t size) {
  if (alignment <= kMinAlignment) return allocate(size);
  if (alignment > SIZE_MAX / 2 + 1) {
    errno = EINVAL;
    return nullptr;
  }
  if (!isPowerOfTwo(alignment)) alignment = size_t{1} << (64 - __builtin_clzll(alignment));
  return allocateAligned(alignment, size);
}

size_t pageSize() {
  static const size_t page = static_cast<size_t>(::sysconf(_SC_PAGESIZE));
  return page;
}

// operator new's loop: the new_handler may free memory; without one, throw.
void* allocateOrThrow(size_t alignment, size_t size) {
  for (;;) {
    void* block = alignment > kMinAlignment ? allocateAligned(alignment, size) : allocate(size);
    if (block != nullptr) [[likely]]
      return block;
    std::new_handler handler = std::get_new_handler();
    if (handler == nullptr) throw std::bad_alloc();
    handler();
  }
}

void* allocateOrNull(size_t alignment, size_t size) noexcept {
  try {
    return allocateOrThrow(alignment, size);
  } catch (...) {
    return nullptr;
  }
}

}  // namespace

#define TIER_EXPORT extern "C" __attribute__((visibility("default")))

TIER_EXPORT void* malloc(size_t size) noexcept {
  return allocate(size);
}

TIER_EXPORT void free(void* block) noexcept {
  release(block);
}

TIER_EXPORT void* calloc(size_t count, size_t size) noexcept {
  size_t total;
  if (__builtin_mul_overflow(count, size, &total)) {
    errno = ENOMEM;
    return nullptr;
  }
  return tier::preload::allocateZeroed(total);
}

TIER_EXPORT void* realloc(void* block, size_t size) noexcept {
  if (block == nullptr) return allocate(size);
  if (size == 0) {
    release(block);
    return nullptr;
  }
  return tier::preload::reallocate(block, size);
}

TIER_EXPORT void* reallocarray(void* block, size_t count, size_t size) noexcept {
  size_t total;
  if (__builtin_mul_overflow(count, size, &total)) {
    errno = ENOMEM;
    return nullptr;
  }
  return realloc(block, total);
}

TIER_EXPORT void* memalign(size_t alignment, size_t size) noexcept {
  return allocateAlignedLikeGlibc(alignment, size);
}

TIER_EXPORT void* aligned_alloc(size_t alignment, size_t size) noexcept {
  return allocateAlignedLikeGlibc(alignment, size);
}

TIER_EXPORT int posix_memalign(void** out, size_t alignment, size_t size) noexcept {
  if (alignment % sizeof(void*) != 0 || !isPowerOfTwo(alignment)) return EINVAL;
  int saved_errno = errno;
  void* block = allocateAlignedLikeGlibc(alignment, size);
  errno = saved_errno;
  if (block == nullptr) return ENOMEM;
  *out = block;
  return 0;
}

TIER_EXPORT void* valloc(size_t size) noexcept {
  return allocateAligned(pageSize(), size);
}

TIER_EXPORT void* pvalloc(size_t size) noexcept {
  size_t page = pageSize();
  size_t rounded;
  if (__builtin_add_overflow(size, page - 1, &rounded)) {
    errno = ENOMEM;
    return nullptr;
  }
  rounded &= ~(page - 1);
  return allocateAligned(page, rounded == 0 ? page : rounded);
}

TIER_EXPORT size_t malloc_usable_size(void* block) noexcept {
  return tier::preload::usableSize(block);
}

// --- C++: every replaceable form of new and delete.
#define TIER_EXPORT_CXX __attribute__((visibility("default")))

TIER_EXPORT_CXX void* operator new(size_t size) {
  return allocateOrThrow(0, size);
}
TIER_EXPORT_CXX void* operator new[](size_t size) {
  return allocateOrThrow(0, size);
}
TIER_EXPORT_CXX void* operator new(size_t size, const std::nothrow_t&) noexcept {
  return allocateOrNull(0, size);
}
TIER_EXPORT_CXX void* operator new[](size_t size, const std::nothrow_t&) noexcept {
  return allocateOrNull(0, size);
}
TIER_EXPORT_CXX void* operator new(size_t size, std::align_val_t alignment) {
  return allocateOrThrow(static_cast<size_t>(alignment), size);
}
TIER_EXPORT_CXX void* operator new[](size_t size, std::align_val_t alignment) {
  return allocateOrThrow(static_cast<size_t>(alignment), size);
}
TIER_EXPORT_CXX void* operator new(size_t size, std::align_val_t alignment,
                                   const std::nothrow_t&) noexcept {
  return allocateOrNull(static_cast<size_t>(alignment), size);
}
TIER_EXPORT_CXX void* operator new[](size_t size, std::align_val_t alignment,
                                     const std::nothrow_t&) noexcept {
  return allocateOrNull(static_cast<size_t>(alignment), size);
}

TIER_EXPORT_CXX void operator delete(void* block) noexcept {
  release(block);
}
TIER_EXPORT_CXX void operator delete[](void* block) noexcept {
  release(block);
}
TIER_EXPORT_CXX void operator delete(void* block, const std::nothrow_t&) noexcept {
  release(block);
}
TIER_EXPORT_CXX void operator delete[](void* block, const std::nothrow_t&) noexcept {
  release(block);
}
TIER_EXPORT_CXX void operator delete(void* block, size_t size) noexcept {
  tier::preload::releaseSized(block, size);
}
TIER_EXPORT_CXX void operator delete[](void* block, size_t size) noexcept {
  tier::preload::releaseSized(block, size);
}
TIER_EXPORT_CXX void operator delete(void* block, std::align_val_t) noexcept {
  release(block);
}
TIER_EXPORT_CXX void operator delete[](void* block, std::align_val_t) noexcept {
  release(block);
}
TIER_EXPORT_CXX void operator delete(void* block, std::align_val_t,
                                     const std::nothrow_t&) noexcept {
  release(block);
}
TIER_EXPORT_CXX void operator delete[](void* block, std::align_val_t,
                                       const std::nothrow_t&) noexcept {
  release(block);
}
TIER_EXPORT_CXX void operator delete(void* block, size_t, std::align_val_t) noexcept {
  release(block);
}
TIER_EXPORT_CXX void operator delete[](void* block, size_t, std::align_val_t) noexcept {
  release(block);
}
