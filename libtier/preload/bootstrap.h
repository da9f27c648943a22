// The shim's bootstrap buffer: a static bump allocator for the requests made
// while the shim starts (before the engine is up), so start-up never
// recurses into malloc. Lock-free; blocks are never reused: free ignores them,
// realloc copies them out. Each block has a 16-byte header holding its size.
#pragma once

#include <cstddef>

namespace tier::preload::boot {

inline constexpr std::size_t kBytes = 256 * 1024;

// A zeroed block (the buffer is .bss and never reused); NULL once full.
// `alignment`: a power of two (16 at least is used).
void* allocate(std::size_t alignment, std::size_t size);
// Whether `block` lies in the buffer.
bool owns(const void* block);
// The requested size of one of its blocks.
std::size_t sizeOf(const void* block);
// Bytes handed out so far (headers and padding included).
std::size_t used();

}  // namespace tier::preload::boot
