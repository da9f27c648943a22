// Other memory-tiering managers on the host: the kernel's NUMA-balancing
// tiering mode, demotion on reclaim, running DAMON kdamonds, numad and
// memtierd. tierd reports them and, in takeover mode, turns the kernel's
// competing promotion off (and restores it when it stops).
#pragma once

#include <sys/types.h>

#include <optional>
#include <string>
#include <vector>

#include "base/result.h"
#include "fs/fs_root.h"

namespace tierd {

struct OtherManagers {
  std::optional<int> numa_balancing;  // bit 1 (value 2): memory tiering mode
  std::optional<bool> demotion_enabled;
  std::vector<int> kdamonds_running;  // kdamond indexes whose state is "on"
  std::vector<pid_t> numad, memtierd;

  bool kernelPromotes() const { return numa_balancing && (*numa_balancing & 2); }
  // One sentence per manager that competes with tierd, for status and logs.
  std::vector<std::string> conflicts() const;
};

OtherManagers detectOtherManagers(const tier::FsRoot& sys, const tier::FsRoot& proc);

// Clears the memory-tiering bit of numa_balancing; returns the old value.
tier::Result<int> disableKernelPromotion(const tier::FsRoot& proc);
tier::Result<void> restoreNumaBalancing(const tier::FsRoot& proc, int value);

}  // namespace tierd
