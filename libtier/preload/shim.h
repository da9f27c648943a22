// The shim's core, under the exported malloc family (override.cpp): glibc's
// semantics are checked there, these do the work. Every block comes from the
// engine (placed by the policy), from the static bootstrap buffer (requests
// made while the shim starts), or from glibc (only when the engine cannot
// serve); free, realloc and usable-size tell them apart by address.
#pragma once

#include <cstddef>

namespace tier::preload {

// NULL with errno = ENOMEM when nothing can serve. errno is untouched on success.
void* allocate(std::size_t size);
void* allocateZeroed(std::size_t size);  // size: the product, already checked for overflow
// `alignment`: a power of two.
void* allocateAligned(std::size_t alignment, std::size_t size);
void release(void* block);
void releaseSized(void* block, std::size_t size);
// realloc with `size` > 0 and a non-NULL block.
void* reallocate(void* block, std::size_t size);
std::size_t usableSize(const void* block);

}  // namespace tier::preload
