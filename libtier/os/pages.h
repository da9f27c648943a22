// move_pages(2) in its two modes: where are these pages, and move them.
// The per-page status array is the kernel's answer (a node id, or -errno).
#pragma once

#include <sys/types.h>

#include <span>

#include "base/result.h"

namespace tier {

// Fills status[i] with the node of pages[i], or -ENOENT (not present),
// -EFAULT (not mapped) and the like. pid 0 is the caller.
Result<void> queryPageNodes(pid_t pid, std::span<void* const> pages, std::span<int> status);

// Moves pages[i] to nodes[i]; status[i] receives the node it is on afterwards
// or -errno for that page. Fails as a whole (ESRCH, EPERM, ENODEV, ...) only
// when the kernel refuses the call.
Result<void> movePages(pid_t pid, std::span<void* const> pages, std::span<const int> nodes,
                       std::span<int> status);

// The size of a base page.
size_t pageSize();

}  // namespace tier
