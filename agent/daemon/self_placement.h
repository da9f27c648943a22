// tierd's own memory on a slower tier. The agent exists to give workloads
// the fast tier; its heap, stacks, perf rings and the text it reads (about
// 20 MiB in the lab, a quarter of the bench's fast-tier room) would otherwise
// take fast memory from them. Its hot loops fit in the CPU caches, so the
// slower tier costs it little.
#pragma once

#include <cstdint>
#include <vector>

#include "base/result.h"

namespace tierd {

struct SelfPlacement {
  std::vector<int> nodes;   // where tierd now prefers to allocate
  uint64_t pages_left = 0;  // pages migrate_pages could not move (shared, busy)
};

// Makes `slower` the calling thread's preferred nodes (threads it starts
// later inherit that), then moves the process's pages off `fast` onto them.
// Call before any other thread starts.
tier::Result<SelfPlacement> placeSelfOn(const std::vector<int>& slower,
                                        const std::vector<int>& fast);

}  // namespace tierd
